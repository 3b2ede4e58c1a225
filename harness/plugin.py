# SPDX-License-Identifier: GPL-2.0
"""pytest plugin: options, fixtures and hooks only; the stages live in their own modules."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("bpf-audit-harness", "kernel under test (bpf-audit-harness)")
    g.addoption("--kernel-src", help="kernel tree, git tree (with --kernel-ref) or tarball; default Debian 6.12")
    g.addoption("--kernel-ref", help="git ref to build from --kernel-src (checked out in a worktree)")
    g.addoption("--patches", type=Path, help="patch directory with a series file (default: the repo's patches/)")
    g.addoption("--no-patches", action="store_true", help="build the source without the patch series")
    g.addoption("--kernel-config-dir", type=Path, help="directory of *.config fragments (default: kernel-config/)")
    g.addoption("--harness-cache", type=Path, help="build cache directory (default: ~/.cache/bpf-audit-harness)")


def kernel_options_from(config: pytest.Config):
    from harness.pipeline import KernelOptions

    kw = dict(
        kernel_src=config.getoption("--kernel-src"),
        ref=config.getoption("--kernel-ref"),
        no_patches=config.getoption("--no-patches"),
        cache_dir=config.getoption("--harness-cache"),
    )
    if config.getoption("--patches"):
        kw["patches_dir"] = config.getoption("--patches")
    if config.getoption("--kernel-config-dir"):
        kw["config_dir"] = config.getoption("--kernel-config-dir")
    return KernelOptions(**kw)


@pytest.fixture(scope="session")
def kernel_options(pytestconfig: pytest.Config):
    """The KernelOptions this session was asked to test."""
    return kernel_options_from(pytestconfig)


@pytest.fixture(scope="session")
def kernel_build(kernel_options):
    """The BuildResult for the kernel under test: one build shared by all xdist workers (file lock)."""
    from harness.errors import HarnessError
    from harness.pipeline import build_kernel

    try:
        return build_kernel(kernel_options, progress=True)
    except HarnessError as e:
        pytest.fail(f"kernel {e.stage} stage failed: {e}", pytrace=False)


@pytest.fixture(scope="session")
def kernel_artifact(kernel_build):
    """The cached kernel artifact (bzImage, vmlinux, vmlinux.h, audit.h, config)."""
    return kernel_build.artifact
