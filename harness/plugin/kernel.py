# SPDX-License-Identifier: GPL-2.0
"""pytest plugin, the kernel under test: prepared once per run in the controller, its header lines and fixtures."""

from __future__ import annotations

import pytest

from harness.plugin import activate, run_session
from harness.run_kernel import kernel_options_from


@pytest.fixture(scope="session")
def kernel_options(pytestconfig: pytest.Config):
    """The KernelOptions this session was asked to test."""
    activate(pytestconfig)
    return kernel_options_from(pytestconfig)


# -- the kernel under test: prepared once per run, in the controller, before any worker needs it ----------------
#
# When it is needed is decided by the run's session (harness.run_kernel.session.RunSession, registered as a plugin:
# its pytest_sessionstart, pytest_collection_finish and pytest_xdist_node_collection_finished); it is prepared by
# RunSession.acquire_kernel(), which the fixture below calls too.


@pytest.fixture(scope="session")
def kernel_build(pytestconfig: pytest.Config, request: pytest.FixtureRequest):
    """The BuildResult for the kernel under test (the controller prepared it; otherwise, on first use, under the
    cache's lock). A prebuilt-deb --kernel-target is fetched and booted once for its BTF instead. A failure stops
    the run after this test, and no other worker tries again."""
    from harness import run_kernel
    from harness.errors import HarnessError

    activate(pytestconfig)
    try:
        return run_session(pytestconfig).acquire_kernel()
    except run_kernel.AlreadyFailed as e:
        pytest.fail(f"{e} (not retried: it failed earlier in this run)", pytrace=False)
    except HarnessError as e:
        request.session.shouldstop = f"kernel {e.stage} stage failed" + (f" (log: {e.log_path})" if e.log_path else "")
        pytest.fail(f"kernel {e.stage} stage failed: {e}", pytrace=False)


@pytest.fixture(scope="session")
def kernel_artifact(kernel_build):
    """The cached kernel artifact (bzImage, vmlinux, vmlinux.h, audit.h, config)."""
    return kernel_build.artifact


@pytest.fixture(scope="session")
def kernel_under_test(kernel_artifact):
    """Features, audit type names and vmlinux.h of the kernel the cases run on."""
    from harness.cases import audit, features
    from harness.cases import compile as bpfobj
    from harness.cases.run import KernelUnderTest

    clang = bpfobj.find_clang()
    return KernelUnderTest(
        release=kernel_artifact.release,
        features=features.from_vmlinux(kernel_artifact.vmlinux),
        audit_types=audit.parse_audit_h(kernel_artifact.audit_h.read_text()),
        vmlinux_h=kernel_artifact.vmlinux_h,
        type_tags=bpfobj.compiler_emits_type_tags(clang),
    )
