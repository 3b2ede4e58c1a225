# SPDX-License-Identifier: GPL-2.0
"""The project's own tests: marks follow what a test really does, and a guard holds each test to its marks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.plugin import harness_cache_root
from harness.settings import FORBID_ENV

# Fixtures (the plugin's and ours) by the most expensive thing they do. A test that requests one of them,
# directly or through another fixture, is marked for it; a test that builds or boots in its own body carries
# the mark by hand, and the guard below fails it if it does not.
BUILDS = frozenset({"kernel_build", "kernel_artifact", "kernel_under_test"})
BOOTS = frozenset({"vm_pool", "vm", "case_session", "case_log_root", "bpf", "audit"})
UNPACKS = frozenset({"plain_source"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "source: unpacks Debian's linux-source-6.12 into the harness cache (once, "
                                       "about 10 s); needs no build and no VM")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & BOOTS:
            item.add_marker(pytest.mark.vm)
        if names & (BOOTS | BUILDS):
            item.add_marker(pytest.mark.slow)
        if names & UNPACKS:
            item.add_marker(pytest.mark.source)


def forbidden_for(item: pytest.Item) -> list[str]:
    """What a test may not do by its marks: build a kernel unless `slow`, boot a VM unless `vm`."""
    forbid = []
    if item.get_closest_marker("slow") is None:
        forbid.append("build")
    if item.get_closest_marker("vm") is None:
        forbid.append("boot")
    return forbid


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """Set FORBID_ENV around the whole item (session fixtures it triggers included, and any child process): the
    harness refuses a build or boot the test's marks do not admit, naming the mark to add."""
    before = os.environ.get(FORBID_ENV)
    forbid = forbidden_for(item)
    if forbid:
        os.environ[FORBID_ENV] = ",".join(forbid)
    else:
        os.environ.pop(FORBID_ENV, None)
    try:
        return (yield)
    finally:
        if before is None:
            os.environ.pop(FORBID_ENV, None)
        else:
            os.environ[FORBID_ENV] = before


@pytest.fixture(scope="session")
def plain_source(pytestconfig: pytest.Config) -> Path:
    """Debian's linux-source-6.12 as shipped, unpacked by the harness into its own cache (the same tree every
    default build starts from); `make deps` installs the package."""
    from harness.kernel.source import SourceSpec, resolve
    from harness.settings import CacheLayout

    return resolve(SourceSpec.from_args(None, None), CacheLayout(harness_cache_root(pytestconfig))).path


@pytest.fixture
def inner_args(kernel_options) -> list[str]:
    """Options for an inner pytest session on this session's cache (so the kernel is a cache hit)."""
    from helpers import inner_args as args

    return args(kernel_options.layout().root)
