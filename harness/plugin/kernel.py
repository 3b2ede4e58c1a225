# SPDX-License-Identifier: GPL-2.0
"""pytest plugin, the kernel under test: prepared once per run in the controller, its header lines and fixtures."""

from __future__ import annotations

import dataclasses

import pytest

from harness.plugin import PREPARED, activate
from harness.run_kernel import kernel_options_from


@pytest.fixture(scope="session")
def kernel_options(pytestconfig: pytest.Config):
    """The KernelOptions this session was asked to test."""
    activate(pytestconfig)
    return kernel_options_from(pytestconfig)


# -- the kernel under test: prepared once per run, in the controller, before any worker needs it ----------------
#
# Case files always need it: prepared at session start, named in the report header. Otherwise the collected
# items decide (their fixtures, after -k/-m): right after collection without xdist; with xdist, when a worker
# reports items that need it, while xdist waits to schedule them.

@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput"):
        return
    from harness import run_kernel

    run_kernel.start_run()
    if run_kernel.workers_elsewhere(config):
        return  # xdist workers on other hosts prepare their kernel from their own caches
    if not config.option.collectonly and run_kernel.selects_cases(config):
        _prepare_kernel(config, in_header=True)
        if run_kernel.prog_tests_args(config):
            _run_test_progs(config)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    if config.option.collectonly or config.stash.get(PREPARED, None) is not None:
        return
    from harness import run_kernel

    if not any(run_kernel.item_needs_kernel(item) for item in session.items):
        return
    if hasattr(config, "workerinput"):
        run_kernel.note_needs_kernel(config)  # read by the controller before it schedules the items
    elif not config.pluginmanager.hasplugin("dsession"):
        _prepare_kernel(config, in_header=False)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids) -> None:
    from harness import run_kernel

    config = node.config
    if config.stash.get(PREPARED, None) is None and run_kernel.needs_kernel_noted(config):
        _prepare_kernel(config, in_header=False)


def _prepare_kernel(config: pytest.Config, *, in_header: bool) -> None:
    """Build (or fetch) the kernel with its progress on the terminal and decide the accelerator; a failure ends
    the run here, once, before any test runs."""
    from harness import run_kernel
    from harness.errors import HarnessError

    activate(config)
    say = run_kernel.say_to_terminal(config)
    try:
        compiler = run_kernel.bpf_compiler().describe()
    except HarnessError as e:
        if e.usage:  # $CLANG names one that fails the checks: nothing would be compiled with what was asked
            say(f"BPF compiler: {e}")
            pytest.exit(f"no test ran: {e.stage} error, the BPF compiler (above)", returncode=4)
        compiler = f"none usable ({e}); tests that compile BPF programs fail with this"  # others may still run
    try:
        built = run_kernel.prepare(config)
        accel = run_kernel.choose_accel(config, built, say)
    except HarnessError as e:
        # The error once, in full; pytest repeats the short reason it exits with (summary and stderr).
        say(f"kernel {e.stage} stage failed: {e}")
        pytest.exit(f"no test ran: the kernel could not be prepared ({e.stage} stage, the error is above)",
                    returncode=3)
    prepared = dataclasses.replace(run_kernel.describe(config, built), accel=accel, compiler=compiler,
                                   gdb=run_kernel.gdb_lines(config, built))
    config.stash[PREPARED] = prepared
    if not in_header:
        for line in prepared.header():
            say(line)


def _run_test_progs(config: pytest.Config) -> None:
    """The prog_tests files' test_progs run (before xdist starts workers: they read its verdicts). A usage error
    (a file that defines no test) ends the run; a build or machine failure is each file's item's no verdict."""
    from harness import run_kernel
    from harness.errors import UsageError

    try:
        run_kernel.run_test_progs(config, run_kernel.say_to_terminal(config))
    except UsageError as e:
        raise pytest.UsageError(str(e)) from None


def pytest_report_header(config: pytest.Config) -> list[str]:
    prepared = config.stash.get(PREPARED, None)
    return prepared.header() if prepared is not None else []


@pytest.fixture(scope="session")
def kernel_build(pytestconfig: pytest.Config, request: pytest.FixtureRequest):
    """The BuildResult for the kernel under test (the controller prepared it; otherwise, on first use, under the
    cache's lock). A prebuilt-deb --kernel-target is fetched and booted once for its BTF instead. A failure stops
    the run after this test, and no other worker tries again."""
    from harness import run_kernel
    from harness.errors import HarnessError

    activate(pytestconfig)
    try:
        return run_kernel.prepare(pytestconfig)
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
