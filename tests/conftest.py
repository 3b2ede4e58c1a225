# SPDX-License-Identifier: GPL-2.0
"""The project's own tests: marks follow what a test really does, a guard holds each test to its marks, and
the marks hold each test to its directory (tests/unit: no build, no VM; tests/system: a build or a VM).

This conftest's directory is on sys.path (rootdir-relative "prepend" imports: tests/ is no package), so the
test files of both directories `import helpers`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.plugin import harness_cache_root
from harness.settings import FORBID_ENV

pytest.register_assert_rewrite("helpers")  # its checks (one_paragraph_error) explain a failure like a test's

# Fixtures (the plugin's and ours) by the most expensive thing they do. A test that requests one of them,
# directly or through another fixture, is marked for it; a test that builds or boots in its own body carries
# the mark by hand, and the guard below fails it if it does not.
BUILDS = frozenset({"kernel_build", "kernel_artifact", "kernel_under_test"})
BOOTS = frozenset({"vm_pool", "vm", "case_session", "case_log_root", "bpf", "audit"})
UNPACKS = frozenset({"plain_source", "source_7_3", "default_source_tree"})
HERE = Path(__file__).resolve().parent
UNIT, SYSTEM = HERE / "unit", HERE / "system"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "source: fetches a Debian linux-source (the debian-6.12 or debian-7.3 line) "
                                       "into the harness cache and unpacks it there (once: a download and about "
                                       "20 s); needs no build and no VM")
    config.addinivalue_line("markers", "default_slot: builds in (or reads) the default kernel's build slot; runs "
                                       "alone there (helpers.DEFAULT_SLOT)")
    config.addinivalue_line("markers", "faults: provokes a fault for real (a signal, a race, a lost guest, a damaged "
                                       "cache, a full disk): every tests/*/test_faults_*.py test; `pytest -m faults`")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & BOOTS:
            item.add_marker(pytest.mark.vm)
        if names & (BOOTS | BUILDS):
            item.add_marker(pytest.mark.slow)
        if names & UNPACKS:
            item.add_marker(pytest.mark.source)
        if item.path.name.startswith("test_faults_"):
            item.add_marker(pytest.mark.faults)
    misplaced = [problem for item in items if (problem := misplaced_because(item))]
    if misplaced:
        message = ("tests in the wrong directory (tests/unit: no kernel build and no VM; tests/system: a build or a "
                   "VM):\n  " + "\n  ".join(misplaced))
        if items and hasattr(config, "workerinput"):  # xdist shows a worker's shouldstop, not its usage error
            items[0].session.shouldstop = message
        # pytest_collection_finish runs even so: with no items, no hook of it prepares a kernel for them
        items.clear()
        raise pytest.UsageError(message)


def misplaced_because(item: pytest.Item) -> str | None:
    """Why the item's marks (the automatic ones included) do not fit its directory, and where it belongs."""
    path = Path(item.path).resolve()
    slow, vm = item.get_closest_marker("slow") is not None, item.get_closest_marker("vm") is not None
    if path.is_relative_to(UNIT) and (slow or vm):
        does = {(True, False): "builds a kernel (slow)", (False, True): "boots a VM (vm)",
                (True, True): "builds a kernel or boots a VM (slow, vm)"}[slow, vm]
        return f"{item.nodeid} {does}: move it to tests/system/"
    if path.is_relative_to(SYSTEM) and not (slow or vm):
        return (f"{item.nodeid} neither builds a kernel nor boots a VM (no slow or vm mark): move it to tests/unit/, "
                "or mark it for the build or boot it does in its body")
    return None


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


@pytest.fixture(autouse=True)
def _default_slot_to_itself(request: pytest.FixtureRequest):
    """A test marked default_slot holds the cache's tests-default-slot lock while it runs (helpers.DEFAULT_SLOT)."""
    if request.node.get_closest_marker("default_slot") is None:
        yield
        return
    from harness.kernel.cache import key_lock
    from harness.settings import CacheLayout

    # the cache's own lock: released if this process dies, and a waiter is told which test holds it
    with key_lock(CacheLayout(Path(harness_cache_root(request.config))), "tests-default-slot",
                  holder=f"test {request.node.nodeid}"):
        yield


@pytest.fixture(scope="session")
def default_source_tree(pytestconfig: pytest.Config) -> Path:
    """The default kernel's source (matrix.toml's default target: Debian 7.3 today), fetched and unpacked into the
    cache: the tree the tests that build kernels of their own start from, so a run builds one kernel line only."""
    from helpers import default_source

    from harness.kernel.source import SourceSpec, resolve
    from harness.settings import CacheLayout

    return resolve(SourceSpec.from_args(default_source()[0], None), CacheLayout(harness_cache_root(pytestconfig))).path


@pytest.fixture(scope="session")
def plain_source(pytestconfig: pytest.Config) -> Path:
    """Debian's linux-source-6.12 as shipped (the debian-6.12 line of kernel-config/sources.toml), fetched and
    unpacked by the harness into its own cache: the same tree every 6.12 build starts from."""
    from helpers import PLAIN_SOURCE

    from harness.kernel.source import SourceSpec, resolve
    from harness.settings import CacheLayout

    return resolve(SourceSpec.from_args(PLAIN_SOURCE, None), CacheLayout(harness_cache_root(pytestconfig))).path


@pytest.fixture(scope="session")
def source_7_3(pytestconfig: pytest.Config) -> Path:
    """Debian's linux-source-7.3 as shipped (the debian-7.3 line), fetched and unpacked by the harness into its
    cache: the pristine 7.3 tree patches/7.3 is checked against (its checkpatch.pl, its files)."""
    from harness.kernel.source import SourceSpec, resolve
    from harness.settings import CacheLayout

    return resolve(SourceSpec.from_args("debian-7.3", None), CacheLayout(harness_cache_root(pytestconfig))).path


@pytest.fixture
def inner_args(kernel_options) -> list[str]:
    """Options for an inner pytest session on this session's cache (so the kernel is a cache hit)."""
    from helpers import inner_args as args

    return args(kernel_options.layout().root)
