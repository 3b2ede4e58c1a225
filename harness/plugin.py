# SPDX-License-Identifier: GPL-2.0
"""pytest plugin: options, fixtures and hooks only; the stages live in their own modules."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness.run_kernel import (  # a small module: the stages themselves stay lazily imported
    CACHE_ROOT,
    KERNEL_TARGET,
    VM_SETTINGS,
    Prepared,
    given,
    harness_cache_root,
    kernel_options_from,
    kernel_target,
)

__all__ = ["harness_cache_root", "kernel_options_from", "kernel_target"]  # for conftest.py files and tests

PREPARED = pytest.StashKey[Prepared]()  # when the controller prepared the kernel
CALL_FAILED = pytest.StashKey[bool]()  # the test's call phase failed (read by the vm fixture's teardown)
CONSOLE_WATCH = pytest.StashKey[tuple]()  # (case session, console offset) of a scenario test, checked after its call


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("bpf-audit-harness", "kernel under test (bpf-audit-harness)")
    from harness.kernel.choice import add_options as add_kernel_options

    add_kernel_options(g.addoption)  # --kernel, --kernel-src, ..., --cache-dir (--harness-cache): harness.kernel.choice
    g.addoption("--accel", default="auto", choices=("auto", "kvm", "tcg"),
                help="QEMU accelerator; auto probes KVM with a real boot and falls back to TCG")
    g.addoption("--target", help="run on an existing machine over SSH instead of a local VM: ssh://user@host:port")
    g.addoption("--target-key", type=Path, help="private key for --target (default ~/.ssh/id_ed25519)")
    g.addoption("--target-known-hosts", type=Path,
                help="known_hosts file pinning the --target's host key (default: ~/.ssh/known_hosts)")
    g.addoption("--clang", metavar="PATH", help="the clang that compiles BPF programs (>= 16, keeping btf_type_tag; "
                "a name on PATH such as clang-20 or clang, or a path); default $CLANG, else clang-19 or another")
    from harness.machine.options import add_options

    add_options(g.addoption, aliases=True)  # --cpus, --memory (--vm-memory), --append, --gdb
    g.addoption("--kernel-target", metavar="NAME",
                help="run on this kernel of the matrix file (kernel-config/matrix.toml): sets source, series and "
                     "boot options; a prebuilt-deb target is booted as shipped. Without it and without any kernel "
                     "option: the target with default = true")
    g.addoption("--kernel-matrix", type=Path, metavar="FILE", help="matrix file for --kernel-target")
    g.addoption("--case-timeout", type=float, default=300.0, metavar="SECONDS",
                help="a test (case) that holds its VM longer than this is stopped: its VM is killed, the test "
                     "is reported as a lost VM and the next test gets a fresh VM (default 300; 0: no limit)")
    g.addoption("--console-findings", default="fail", choices=("fail", "warn"),
                help="a WARNING:/BUG:/Oops on the guest console during a case, scenario test or selftest that "
                     "otherwise passed: fail it (default) or only warn")
    g.addoption("--selftests-filter", metavar="JSON", help="selftests: test_progs' selection (harness.selftests."
                "select.Selector as JSON: what `selftests -t/-a/-b/-d` and the tree's DENYLIST make)")
    g.addoption("--selftests-verbosity", type=int, default=0, help="selftests: test_progs' -v (1) or -vv (2): the "
                "verifier log level every load gets at least")
    g.addoption("--selftests-record", metavar="DIR", help="write the guest agent's answers for each selftest subtest "
                "as JSON under DIR (what tests/unit/test_selftests_compare.py replays)")
    g.addoption("--test-progs-timeout", type=float, default=1800.0, metavar="SECONDS",
                help="prog_tests/*.c files: how long their test_progs run may take in the guest (default 1800)")
    g.addoption("--test-progs-verbose", action="store_true",
                help="prog_tests/*.c files: run test_progs with -v (every subtest's lines, skip reasons among them; "
                     "-v writes while tests run, which tests counting their own syscalls can see)")
    g.addoption("--keep-vm-on-failure", nargs="?", const=30.0, default=None, metavar="MINUTES",
                type=_keep_minutes,
                help="keep the VM of the first failing test running (its case's program loaded and pinned) for "
                     "inspection: the summary says how to reach it (`bpf-audit-harness ssh RUN`); it is stopped "
                     "MINUTES (default 30) after the run ends, or by `bpf-audit-harness ssh RUN --stop`")


def _keep_minutes(text: str) -> float:
    from harness.machine.keep import parse_minutes

    return parse_minutes(text)


@pytest.hookimpl(tryfirst=True)  # before hypothesis' own: it loads --hypothesis-profile, which must be registered
def pytest_configure(config: pytest.Config) -> None:
    from harness.settings import cache_root

    # Case items carry these marks in any project, not only in one whose ini file declares them.
    config.addinivalue_line("markers", "vm: needs a booted guest (boots the cached kernel under QEMU)")
    config.addinivalue_line("markers", "slow: builds a kernel or boots several guests")
    if getattr(config.option, "xmlpath", None) and not hasattr(config, "workerinput"):
        from harness.cases.collect import JUnitCaseNames  # the JUnit file names case files by path, not dotted

        config.pluginmanager.register(JUnitCaseNames(config), "bpf-audit-harness-junit-names")
    # Nothing here installs a signal handler or touches the cache: a session that collects no harness item and asks
    # for no harness fixture must not notice the plugin (activate() does that, once the run turns out to need it).
    if config.getoption("--case-timeout") < 0:
        raise pytest.UsageError("--case-timeout must be a number of seconds >= 0 (0: no limit).")
    # Resolved once, at start-up: a test may change HOME (pytester does) and must not move the cache.
    config.stash[CACHE_ROOT] = (config.getoption("--cache-dir") or cache_root()).resolve()
    if config.getoption("hypothesis_profile", None):  # the property's profiles (ci, nightly), by hypothesis' option
        from harness.gen.profiles import register

        register(config.stash[CACHE_ROOT])
    config.stash[KERNEL_TARGET] = _kernel_target(config)
    if config.getoption("--patches") and not config.getoption("--no-patches"):
        _check_patches(config)
    if config.getoption("--target"):
        _check_target(config)
    if config.getoption("--mutant"):
        _check_mutant(config)
    if config.getoption("--keep-vm-on-failure") is not None:
        _keep_vms(config)
    config.stash[VM_SETTINGS] = _vm_settings(config)
    if config.getoption("--clang"):
        _use_clang(config)


ACTIVE = pytest.StashKey[bool]()  # the run needs the harness: handlers installed, cache GC at its end


def activate(config: pytest.Config) -> None:
    """The run needs the harness (it prepares a kernel, or a test asked for a harness fixture): from here on its
    VMs must not outlive it. SIGHUP/SIGTERM: VMs SIGKILLed at once, then the run reports; Ctrl-C: graceful. An xdist
    worker ends (and stops its VM) when its controller dies. Idempotent."""
    if config.stash.get(ACTIVE, False):
        return
    config.stash[ACTIVE] = True
    from harness.machine.lifetime import exit_on_hangup_and_term

    exit_on_hangup_and_term()
    if hasattr(config, "workerinput"):
        import signal

        from harness.tools import die_with_parent_preexec

        die_with_parent_preexec(signal.SIGTERM)()


def _vm_settings(config: pytest.Config):
    """--cpus/--memory/--append/--gdb checked; with --gdb the controller picks the run's ports before xdist starts
    its workers (they inherit them)."""
    from harness.errors import UsageError
    from harness.machine import options

    try:
        settings = options.check_settings(config.getoption("--cpus"), config.getoption("--memory"),
                                          config.getoption("--append"), config.getoption("--gdb"))
        if settings.gdb is not None:
            if config.getoption("--target"):
                raise UsageError("--gdb starts QEMU's gdb stub of a local VM; a --target machine is not booted here")
            if not hasattr(config, "workerinput"):
                workers = getattr(config.option, "numprocesses", None)
                options.pick_gdb_ports(settings, workers if isinstance(workers, int) and workers > 0 else 1)
    except UsageError as e:
        raise pytest.UsageError(str(e)) from None
    return settings


def _use_clang(config: pytest.Config) -> None:
    """--clang: checked once (version, type tags) and named in $CLANG for the workers and every compile site."""
    from harness.cases import clang
    from harness.errors import HarnessError

    try:
        clang.use(config.getoption("--clang"))
    except HarnessError as e:
        raise pytest.UsageError(str(e)) from None


def _keep_vms(config: pytest.Config) -> None:
    """--keep-vm-on-failure: one Keeper per process; the run's first failing test claims the one kept VM."""
    from harness import run_kernel
    from harness.machine.keep import KEEPER, Keeper

    if config.getoption("--target"):
        raise pytest.UsageError("--keep-vm-on-failure keeps a local VM; with --target the machine is yours already")
    state = config.stash[CACHE_ROOT] / "state" / "runs"
    config.stash[KEEPER] = Keeper(config.getoption("--keep-vm-on-failure"),
                                  lambda: state / f"{run_kernel.run_id()}.kept-vm")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Where the kept VM is and how to get a shell in it (--keep-vm-on-failure)."""
    from harness.machine.keep import KEEPER

    keeper = config.stash.get(KEEPER, None)
    kept = keeper.kept() if keeper is not None else None
    if kept is None:
        return
    from harness.tools import quoted

    tr = terminalreporter
    tr.section("VM kept for inspection (--keep-vm-on-failure)", yellow=True)
    tr.write_line(f"the VM of {kept.case or 'the first failing test'} still runs: stopped {kept.minutes:g} min "
                  "after this run ends, or now with --stop")
    for note in kept.notes:
        tr.write_line(f"  {note}")
    run = Path(kept.run_dir).name
    tr.write_line(f"  shell:    bpf-audit-harness ssh {run}")
    tr.write_line(f"  command:  bpf-audit-harness ssh {run} -- bpftool prog show")
    tr.write_line(f"  or ssh:   {quoted(kept.ssh_argv())}")
    tr.write_line(f"  stop:     bpf-audit-harness ssh {run} --stop")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Once per run (the controller, not each xdist worker): evict case objects unused for 30 days. They are
    recompiled in a second; kernels are only evicted by `bpf-audit-harness cache --prune`."""
    config = session.config
    if hasattr(config, "workerinput") or not config.stash.get(ACTIVE, False):
        return  # a worker, or a session that never needed the harness: its cache is not touched
    from harness.kernel import gc
    from harness.settings import CacheLayout

    try:
        gc.collect(CacheLayout(harness_cache_root(config)), gc.Policy(older_than_days=30), kinds=("object",))
    except OSError:
        pass  # a read-only or vanished cache: nothing to evict


def _kernel_target(config: pytest.Config):
    """The matrix Target named by --kernel-target (None without it); bad names and combinations are usage errors."""
    name = config.getoption("--kernel-target")
    if not name:
        if config.getoption("--kernel-matrix"):
            raise pytest.UsageError("--kernel-matrix needs --kernel-target NAME")
        return None
    from harness.campaigns.matrix import spec as matrix_spec

    clash = [o for o in ("--kernel", "--kernel-src", "--kernel-ref", "--patches", "--no-patches", "--target",
                         "--mutant", "--kernel-config")
             if given(config, o)]
    if clash:
        raise pytest.UsageError(f"--kernel-target {name} already says which kernel to run; drop {', '.join(clash)}")
    try:
        return matrix_spec.load(config.getoption("--kernel-matrix")).get(name)
    except matrix_spec.MatrixError as e:
        raise pytest.UsageError(str(e)) from e


def _check_target(config: pytest.Config) -> None:
    """--target: a URL that parses, and one worker (workers would share the machine's agent, audit daemon slot,
    /tmp/bah and audit rules, and wipe each other's)."""
    from harness.machine.ssh import Target

    url = config.getoption("--target")
    try:
        Target.parse(url, Path("unused"))
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None
    workers = getattr(config.option, "numprocesses", None)
    if workers not in (None, 0, 1):
        raise pytest.UsageError(f"--target {url} runs on one machine: use one worker (drop -n {workers}); "
                                "several workers would share its agent, audit daemon and rules")


def _series_directory(config: pytest.Config) -> Path:
    """The series directory the run's source takes from --patches (or patches/): its kernel line's, or --patches
    itself when it holds a series file. Known without fetching or unpacking anything (HarnessError otherwise)."""
    from harness.kernel.request import series_directory

    return series_directory(kernel_options_from(config))


def _check_patches(config: pytest.Config) -> None:
    from harness.errors import HarnessError
    from harness.kernel.patches import load_series

    try:
        load_series(_series_directory(config))
    except HarnessError as e:
        raise pytest.UsageError(f"--patches: {e}") from None


def _check_mutant(config: pytest.Config) -> None:
    from harness.campaigns.mutants import mutant_path
    from harness.errors import HarnessError

    if config.getoption("--no-patches"):
        raise pytest.UsageError("--mutant applies on top of the patch series: it cannot be used with --no-patches.")
    try:
        mutant_path(_series_directory(config), config.getoption("--mutant"))
    except HarnessError as e:
        raise pytest.UsageError(f"--mutant: {e}") from None


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
        for session in pool.__dict__.get("_case_sessions", {}).values():
            session.close()  # a --target gets its own audit rules back
        pool.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call" and CONSOLE_WATCH in item.stash:
        _console_verdict(item, report)
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed  # read by the vm fixture's teardown
    return report


def _console_verdict(item: pytest.Item, report) -> None:
    """A scenario test's console, read to a barrier after its call, as a case's: a kernel report fails a test that
    passed (--console-findings warn: a warning), a console not read to the end gives it no pass."""
    from harness.cases.run import check_console

    session, start = item.stash[CONSOLE_WATCH]
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
    watchdog = None
    if timeout and timeout > 0:
        from harness.machine.pool import Watchdog

        watchdog = Watchdog(machine, timeout, request.node)
    try:
        yield machine
    finally:
        if watchdog is not None:
            watchdog.cancel()
    if watchdog is not None and watchdog.fired:
        vm_pool.discard(f"killed after --case-timeout={timeout:g}s")
    elif request.node.stash.get(CALL_FAILED, False) and _kept(request, vm_pool, machine):
        pass  # handed over for inspection: a fresh VM for the next test
    elif not machine.alive():
        vm_pool.discard("lost during a test")
    elif request.node.stash.get(CALL_FAILED, False) and not vm_pool.responsive():
        vm_pool.discard("did not answer after a failed test (wedged)")


def _kept(request: pytest.FixtureRequest, vm_pool, machine) -> bool:
    """--keep-vm-on-failure: hand the failed test's VM over if it claimed the run's kept VM (a case claims it while
    pinning its program; any other test here, if its VM still answers)."""
    from harness.machine import keep
    from harness.machine.vm import LocalVM

    keeper = request.config.stash.get(keep.KEEPER, None)
    if keeper is None or not isinstance(machine, LocalVM) or not machine.alive():
        return False
    notes = request.node.stash.get(keep.CLAIMED, None)
    if notes is None:
        if not vm_pool.responsive() or not keeper.claim():
            return False
        notes = []
    vm_pool.__dict__.get("_case_sessions", {}).pop(id(machine), None)  # its agent goes with the connection
    vm_pool.release()
    keeper.note(keep.hand_over(machine, keeper.minutes, request.node.nodeid, notes))
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # JUnit names a case file's items by a dotted classname that cannot be mapped back to a path; the matrix
    # reruns and matches known failures by node id, so write it into the JUnit properties.
    if getattr(config.option, "xmlpath", None):
        for item in items:
            item.user_properties.append(("nodeid", item.nodeid))


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if file_path.name.endswith(".bpf.c"):
        from harness.cases.collect import CaseFileCollector, is_case_file

        if is_case_file(file_path):
            return CaseFileCollector.from_parent(parent, path=file_path)
    elif file_path.suffix == ".c" and file_path.parent.name == "prog_tests":
        from harness import run_kernel
        from harness.selftests.testprogs.collect import TestProgsFileCollector

        if file_path.resolve() in run_kernel.prog_tests_args(parent.config):
            return TestProgsFileCollector.from_parent(parent, path=file_path)
    elif file_path.suffix == ".c" and file_path.parent.name == "progs":
        from harness.selftests.collect import KERNEL, SelftestFileCollector, is_selftest_file

        if is_selftest_file(file_path):
            config = parent.config
            if config.stash.get(KERNEL, None) is None:
                config.stash[KERNEL] = _kernel_for_selftests(config)
            return SelftestFileCollector.from_parent(parent, path=file_path)
    return None


def _kernel_for_selftests(config: pytest.Config):
    """What collecting a kernel tree's selftests needs of the kernel under test (its vmlinux.h): prepared once per
    process, a cache hit after the controller prepared it at session start."""
    import functools

    @functools.cache
    def get():
        from harness import run_kernel
        from harness.selftests.collect import KernelForSelftests

        art = run_kernel.prepare(config).artifact
        return KernelForSelftests(art.vmlinux_h, art.release, harness_cache_root(config), art.vmlinux, art.config,
                                  art.dir)

    return get


@pytest.fixture
def selftest_sessions(case_session, vm_pool, pytestconfig: pytest.Config):
    """A function: the selftests runner's per-machine state for a skeleton of some kernel tree, its agent running on
    that tree's own libbpf (built once into the cache; the guest's own libbpf, with a note, when that cannot be)."""
    from harness.selftests.run import SelftestSession, libbpf_for

    sessions = vm_pool.__dict__.setdefault("_selftest_sessions", {})

    def get(skeleton) -> SelftestSession:
        libbpf, notes = libbpf_for(skeleton, harness_cache_root(pytestconfig),
                                   remote=bool(pytestconfig.getoption("--target")))
        session = sessions.get(libbpf)
        if session is None or session.guest is not case_session:  # a new machine: its own agent
            session = sessions[libbpf] = SelftestSession(case_session, libbpf, list(notes))
        return session

    return get


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


@pytest.fixture
def case_session(vm, vm_pool):
    """The runner's per-machine state (agent, pushed objects, audit registration) for this worker's VM."""
    from harness.cases.run import GuestSession

    sessions = vm_pool.__dict__.setdefault("_case_sessions", {})
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
    from harness.cases.run import console_start

    if CONSOLE_WATCH not in request.node.stash:
        request.node.stash[CONSOLE_WATCH] = (session, console_start(session.machine))


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
