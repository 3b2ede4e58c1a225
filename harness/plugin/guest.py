# SPDX-License-Identifier: GPL-2.0
"""pytest plugin, the guests: this worker's VM pool and VM, its console verdict, and the cases' guest fixtures."""

from __future__ import annotations

import pytest

from harness.plugin import activate, run_session
from harness.run_kernel import harness_cache_root, kernel_options_from


def _worker_id(config: pytest.Config) -> str:
    return getattr(config, "workerinput", {}).get("workerid", "main")


@pytest.fixture(scope="session")
def vm_pool(pytestconfig: pytest.Config, request: pytest.FixtureRequest):
    """This worker's machine pool: one VM (or --target) per pytest-xdist worker, stopped at session end."""
    from harness import run_kernel
    from harness.machine.pool import VMPool
    from harness.settings import new_run_dir

    activate(pytestconfig)
    worker = _worker_id(pytestconfig)
    opts = kernel_options_from(pytestconfig)
    target = pytestconfig.getoption("--target")
    kernel = None if target else request.getfixturevalue("kernel_artifact").bzimage
    run_dir = new_run_dir(opts.layout(), f"vm-{worker}")
    pool = VMPool(run_kernel.pool_config(pytestconfig, kernel=kernel, run_dir=run_dir, worker=worker))
    try:
        yield pool
    finally:
        for session in pool.case_sessions.values():
            session.close()  # a --target gets its own audit rules back
        pool.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        test = run_session(item.config).test(item.nodeid)
        if test.console_watch is not None:
            _console_verdict(item, report, test.console_watch)
        test.call_failed = report.failed  # read by the vm fixture's teardown
    return report


def _console_verdict(item: pytest.Item, report, watch: tuple) -> None:
    """A scenario test's console, read to a barrier after its call, as a case's: a kernel report fails a test that
    passed (--console-findings warn: a warning), a console not read to the end gives it no pass."""
    from harness.cases.console_check import check_console

    session, start = watch
    check = None
    unsure: str | None
    try:
        check = check_console(session, start)
        unsure = check.unsure
    except Exception as e:  # noqa: BLE001 - the machine went: the vm fixture says so; no pass on it
        unsure = f"the console check itself failed: {e}"
    if check is not None and check.findings:
        item.user_properties.append(("kernel console", check.details()))
        if item.config.getoption("--console-findings") == "warn":
            item.user_properties.append(("warning", check.first + " (warn-only)"))
        elif report.passed:
            report.outcome, report.longrepr = "failed", f"{check.first}\n{check.details()}"
    if unsure and report.passed:
        report.outcome = "failed"
        report.longrepr = f"NO VERDICT: the kernel console could not be read to the end of the test ({unsure})"


@pytest.fixture
def vm(vm_pool, request: pytest.FixtureRequest):
    """A live machine for this test. If the test leaves it lost or wedged, the next test gets a fresh one."""
    from harness.errors import HarnessError, LostVMError

    try:
        machine = vm_pool.get()
    except LostVMError as e:
        pytest.fail(f"lost VM: {e}", pytrace=False)
    except HarnessError as e:  # e.g. QEMU not installed
        pytest.fail(f"cannot start a VM: {e.stage} error: {e}", pytrace=False)
    timeout = request.config.getoption("--case-timeout")
    test = run_session(request.config).test(request.node.nodeid)
    watchdog = None
    if timeout and timeout > 0:
        from harness.machine.pool import Watchdog

        watchdog = test.watchdog = Watchdog(machine, timeout)  # its firing is read by the case item
    try:
        yield machine
    finally:
        if watchdog is not None:
            watchdog.cancel()
    if watchdog is not None and watchdog.fired:
        vm_pool.discard(f"killed after --case-timeout={timeout:g}s")
    elif test.call_failed and _kept(request, vm_pool, machine):
        pass  # handed over for inspection: a fresh VM for the next test
    elif not machine.alive():
        vm_pool.discard("lost during a test")
    elif test.call_failed and not vm_pool.responsive():
        vm_pool.discard("did not answer after a failed test (wedged)")


def _kept(request: pytest.FixtureRequest, vm_pool, machine) -> bool:
    """--keep-vm-on-failure: hand the failed test's VM over if it claimed the run's kept VM (a case claims it while
    pinning its program; any other test here, if its VM still answers)."""
    from harness.machine import keep
    from harness.machine.vm import LocalVM

    run = run_session(request.config)
    keeper = run.keeper
    if keeper is None or not isinstance(machine, LocalVM) or not machine.alive():
        return False
    notes = run.test(request.node.nodeid).kept_notes
    if notes is None:
        if not vm_pool.responsive() or not keeper.claim():
            return False
        notes = []
    vm_pool.case_sessions.pop(id(machine), None)  # its agent goes with the connection
    vm_pool.release()
    keeper.note(keep.hand_over(machine, keeper.minutes, request.node.nodeid, notes))
    return True


@pytest.fixture(scope="session")
def run_session_state(pytestconfig: pytest.Config):
    """The run's state in this process (harness.run_kernel.session.RunSession), for code below the plugin's layer
    (a case item notes its kept VM there and reads its --case-timeout)."""
    return run_session(pytestconfig)


@pytest.fixture
def selftest_sessions(case_session, vm_pool, pytestconfig: pytest.Config):
    """A function: the selftests runner's per-machine state for a skeleton of some kernel tree, its agent running on
    that tree's own libbpf (built once into the cache; the guest's own libbpf, with a note, when that cannot be)."""
    from harness.selftests.run import SelftestSession, libbpf_for

    sessions = vm_pool.selftest_sessions

    def get(skeleton) -> SelftestSession:
        libbpf, notes = libbpf_for(skeleton, harness_cache_root(pytestconfig),
                                   remote=bool(pytestconfig.getoption("--target")))
        session = sessions.get(libbpf)
        if session is None or session.guest is not case_session:  # a new machine: its own agent
            session = sessions[libbpf] = SelftestSession(case_session, libbpf, list(notes))
        return session

    return get


@pytest.fixture
def case_session(vm, vm_pool):
    """The runner's per-machine state (agent, pushed objects, audit registration) for this worker's VM."""
    from harness.cases.session import GuestSession

    sessions = vm_pool.case_sessions
    if id(vm) not in sessions:
        sessions.clear()
        sessions[id(vm)] = GuestSession(vm)
    return sessions[id(vm)]


@pytest.fixture(scope="session")
def case_log_root(vm_pool):
    """Where each case's verifier log, libbpf log and records are written."""
    path = vm_pool.cfg.run_dir / "cases"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def case_objects(kernel_options):
    """Compiled case objects, content-addressed in the cache."""
    path = kernel_options.layout().objects
    path.mkdir(parents=True, exist_ok=True)
    return path


def _watch_console(request: pytest.FixtureRequest, session) -> None:
    """A scenario test's console is judged after its call, from here (its first guest fixture) on."""
    from harness.cases.console_check import console_start

    test = run_session(request.config).test(request.node.nodeid)
    if test.console_watch is None:
        test.console_watch = (session, console_start(session.machine))


@pytest.fixture
def bpf(case_session, kernel_under_test, case_objects, request):
    """Compile, load and attach case programs in this worker's VM; everything is unloaded after the test."""
    from harness.cases.scenario import BPF

    _watch_console(request, case_session)
    loader = BPF(case_session, kernel_under_test, case_objects)
    yield loader
    loader.close()


@pytest.fixture
def audit(case_session, kernel_under_test, request):
    """`with audit.capture() as recs:` collects the audit records the guest kernel emits inside the block."""
    from harness.cases.scenario import AuditCapture

    _watch_console(request, case_session)
    return AuditCapture(case_session, kernel_under_test)
