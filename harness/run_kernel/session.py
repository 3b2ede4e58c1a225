# SPDX-License-Identifier: GPL-2.0
"""A pytest run's state: one RunSession per process, registered as a plugin; its processes talk through one run dir.

The state (the xdist `DSession` pattern): pytest_configure makes one `RunSession` and registers it with
`config.pluginmanager.register(session, PLUGIN_NAME)`; `run_session(config)` fetches it. It holds what the run
decided at start-up (cache root, --kernel-target, VM settings, --keep-vm-on-failure's keeper), the kernel it
prepared, and per-test state keyed by node id (dropped when the test's reports are out). Its hook methods decide
*when* the kernel is needed; `acquire_kernel()` is the one place that prepares it.

The channel: a run's processes (the controller and its xdist workers) share nothing but the run directory
`<cache>/state/runs/<run id>/`. The controller makes the run id in pytest_configure and hands it to each worker
once, in xdist's `workerinput` (key WORKERINPUT_KEY, set in pytest_configure_node), with the one other thing
decided before workers start: --gdb's first port, given or picked free by the controller (GDB_WORKERINPUT_KEY; gwN
listens on it + N). Nothing goes through the environment. A pytest started from a test gets a run of its own.
Every file is written whole (tmp + rename) or created exclusively:

    kernel.json    the run's kernel: {"entry", "key", "source", "notes"} once prepared, {"failed": why} if that
                   failed. Written by the first caller of acquire_kernel() under the run's lock (the controller,
                   before workers start, unless the kernel was only needed later); later callers read it instead
                   of resolving the source again, or fail with the reason instead of building again.
    needs-kernel   a worker collected items that need the kernel (empty; the controller looks for it when xdist
                   reports the worker's collection, before scheduling it).
    kept-vm        --keep-vm-on-failure: the first failing test claims it (O_EXCL), then the KeptVM it describes.
    test-progs.json  {"summaries": [...]}: the controller's test_progs runs for named prog_tests files (written at
                   session start, before workers collect), read when their items are collected.
"""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.errors import HarnessError

PLUGIN_NAME = "bpf_audit_harness_session"
WORKERINPUT_KEY = "bpf_audit_harness_run"  # the run id, from the controller to each xdist worker
GDB_WORKERINPUT_KEY = "bpf_audit_harness_gdb_port"  # --gdb's first port as the controller settled it


class RunDir:
    """The run directory: the one place a run's processes exchange state (see the module docstring)."""

    def __init__(self, state_dir: Path, run_id: str) -> None:
        self.run_id = run_id
        self.path = state_dir / "runs" / run_id

    def file(self, name: str) -> Path:
        return self.path / name

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        """Write one file whole: a reader sees the old one or the new one, never a part."""
        path = self.file(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data) + "\n")
        os.replace(tmp, path)

    def read_json(self, name: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self.file(name).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def mark(self, name: str) -> None:
        path = self.file(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()

    def marked(self, name: str) -> bool:
        return self.file(name).is_file()


@dataclass
class TestState:
    """What the plugin's hooks and fixtures note about one test while it runs (keyed by node id)."""

    call_failed: bool = False  # its call phase failed (read by the vm fixture's teardown)
    console_watch: tuple[Any, Any] | None = None  # (guest session, console offset) of a scenario test
    kept_notes: list[str] | None = None  # its case claimed the kept VM: where the program is pinned
    watchdog: Any = None  # its --case-timeout Watchdog (harness.machine.pool)

    @property
    def timed_out(self) -> float | None:
        """The --case-timeout that killed the test's VM, or None."""
        return self.watchdog.seconds if self.watchdog is not None and self.watchdog.fired else None


@dataclass(eq=False)  # a plugin is hashed by identity (pluggy keeps plugins in sets)
class RunSession:
    """One pytest process's share of the run (controller or worker), registered as the plugin PLUGIN_NAME."""

    config: pytest.Config
    cache_root: Path  # resolved once, at start-up: a test may change HOME (pytester does) and must not move it
    run: RunDir
    kernel_target: Any = None  # the matrix target named by --kernel-target, or None
    vm_settings: Any = None  # the checked --cpus/--memory/--append/--gdb (harness.machine.options.VMSettings)
    keeper: Any = None  # --keep-vm-on-failure's Keeper (harness.machine.keep), or None
    active: bool = False  # the run needs the harness: handlers installed, cache GC at its end
    prepared: Any = None  # the run_kernel.Prepared of the kernel, once this process prepared it for the header
    selftests_kernel: Any = None  # what collecting selftest files needs of the kernel (a cached callable)
    tests: dict[str, TestState] = field(default_factory=dict)

    @classmethod
    def create(cls, config: pytest.Config, cache_root: Path) -> RunSession:
        """This process's session: a worker joins its controller's run, anyone else starts one."""
        run_id = getattr(config, "workerinput", {}).get(WORKERINPUT_KEY) or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        from harness.settings import CacheLayout

        return cls(config, cache_root, RunDir(CacheLayout(cache_root).state, run_id))

    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    @property
    def controller_gdb_port(self) -> int | None:
        """A worker's: --gdb's first port as its controller settled it (None: no --gdb, or not a worker)."""
        return getattr(self.config, "workerinput", {}).get(GDB_WORKERINPUT_KEY)

    def test_progs_summaries(self) -> list[Path]:
        """The summary files of this run's test_progs runs (none: it ran none)."""
        return [Path(p) for p in (self.run.read_json("test-progs.json") or {}).get("summaries", [])]

    def test(self, nodeid: str) -> TestState:
        return self.tests.setdefault(nodeid, TestState())

    def activate(self) -> None:
        """The run needs the harness (it prepares a kernel, or a test asked for a harness fixture): from here on
        its VMs must not outlive it. SIGHUP/SIGTERM: VMs SIGKILLed at once, then the run reports; Ctrl-C:
        graceful. An xdist worker ends (and stops its VM) when its controller dies. Idempotent."""
        if self.active:
            return
        self.active = True
        from harness.machine.lifetime import exit_on_hangup_and_term

        exit_on_hangup_and_term()
        if self.is_worker:
            import signal

            from harness.tools import die_with_parent_preexec

            die_with_parent_preexec(signal.SIGTERM)()

    # -- the kernel under test: acquired once per run --------------------------------------------------------

    def acquire_kernel(self, *, progress: bool = True):
        """The BuildResult of this run's kernel (built, or a prebuilt package prepared, on a cache miss). The first
        caller of the run pins it in the run directory; every later caller (xdist workers, fixtures) gets that very
        artifact and never resolves the source again. A failure is noted there too, so a second caller fails at
        once instead of building again."""
        from harness import run_kernel
        from harness.kernel import cache

        opts = run_kernel.kernel_options_from(self.config)
        layout = opts.layout()
        cache.ensure_writable(layout)
        # One caller of this run at a time: a second xdist worker waits here, then reads the first one's verdict.
        with cache.key_lock(layout, f"run-{self.run.run_id}"):
            note = self.run.read_json("kernel.json") or {}
            if "failed" in note:
                raise run_kernel.AlreadyFailed(str(note["failed"]))
            pinned = pinned_kernel(note)
            if pinned is not None:
                return pinned
            try:
                from harness.kernel.request import acquire

                built = acquire(opts, target=run_kernel.kernel_target(self.config),
                                accel=self.config.getoption("--accel"), progress=progress,
                                say=run_kernel.say_to_terminal(self.config) if progress else None)
            except HarnessError as e:
                self.run.write_json("kernel.json", {"failed": f"kernel {e.stage} stage failed: {_first_line(str(e))}"
                                                    + (f" (log: {e.log_path})" if e.log_path else "")})
                raise
            self.run.write_json("kernel.json", pin_of(built))
            return built

    def prepare_kernel(self, *, in_header: bool) -> None:
        """The controller's kernel: acquired with its progress on the terminal, the accelerator decided; a failure
        ends the run here, once, before any test runs. Said in the report header, or at once (in_header=False)."""
        from harness import run_kernel

        self.activate()
        say = run_kernel.say_to_terminal(self.config)
        try:
            compiler = run_kernel.bpf_compiler().describe()
        except HarnessError as e:
            if e.usage:  # $CLANG names one that fails the checks: nothing would be compiled with what was asked
                say(f"BPF compiler: {e}")
                pytest.exit(f"no test ran: {e.stage} error, the BPF compiler (above)", returncode=4)
            compiler = f"none usable ({e}); tests that compile BPF programs fail with this"  # others may still run
        try:
            built = self.acquire_kernel()
            accel = run_kernel.choose_accel(self.config, built, say)
        except HarnessError as e:
            # The error once, in full; pytest repeats the short reason it exits with (summary and stderr).
            say(f"kernel {e.stage} stage failed: {e}")
            pytest.exit(f"no test ran: the kernel could not be prepared ({e.stage} stage, the error is above)",
                        returncode=3)
        self.prepared = dataclasses.replace(run_kernel.describe(self.config, built), accel=accel, compiler=compiler,
                                            gdb=run_kernel.gdb_lines(self.config, built))
        if not in_header:
            for line in self.prepared.header():
                say(line)

    # -- hooks: when the kernel is needed ------------------------------------------------------------------------
    #
    # Case files always need it: prepared at session start, named in the report header. Otherwise the collected
    # items decide (their fixtures, after -k/-m): right after collection without xdist; with xdist, when a worker
    # reports items that need it, while xdist waits to schedule them.

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.is_worker:
            return
        from harness import run_kernel

        if run_kernel.workers_elsewhere(self.config):
            return  # xdist workers on other hosts prepare their kernel from their own caches
        if not self.config.option.collectonly and run_kernel.selects_cases(self.config):
            self.prepare_kernel(in_header=True)
            if run_kernel.prog_tests_args(self.config):
                self._run_test_progs()

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node) -> None:
        """xdist's controller, for each worker it starts: the run it joins (the one channel: the run directory), and
        --gdb's first port (settled in pytest_configure, before any worker starts)."""
        node.workerinput[WORKERINPUT_KEY] = self.run.run_id
        gdb = getattr(self.vm_settings, "gdb", None)
        if gdb:
            node.workerinput[GDB_WORKERINPUT_KEY] = gdb

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.config.option.collectonly or self.prepared is not None:
            return
        from harness import run_kernel

        if not any(run_kernel.item_needs_kernel(item) for item in session.items):
            return
        if self.is_worker:
            self.run.mark("needs-kernel")  # read by the controller before it schedules the items
        elif not self.config.pluginmanager.hasplugin("dsession"):
            self.prepare_kernel(in_header=False)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids) -> None:
        if self.prepared is None and self.run.marked("needs-kernel"):
            self.prepare_kernel(in_header=False)

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        return self.prepared.header() if self.prepared is not None else []

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self.tests.pop(nodeid, None)  # its reports are out: nothing reads the test's state any more

    def _run_test_progs(self) -> None:
        """The prog_tests files' test_progs run (before xdist starts workers: they read its verdicts). A usage error
        (a file that defines no test) ends the run; a build or machine failure is each file's item's no verdict."""
        from harness import run_kernel
        from harness.errors import UsageError

        try:
            run_kernel.run_test_progs(self.config, run_kernel.say_to_terminal(self.config))
        except UsageError as e:
            raise pytest.UsageError(str(e)) from None


def run_session(config: pytest.Config) -> RunSession:
    """The run's state in this process (registered by the plugin's pytest_configure)."""
    session = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if session is None:
        raise RuntimeError("the bpf-audit-harness plugin is not configured in this pytest session")
    return session


def pin_of(built) -> dict[str, Any]:
    """kernel.json of a prepared kernel: its cache entry, by path and key."""
    return {"entry": str(built.artifact.dir), "key": built.artifact.key, "source": built.source,
            "notes": list(built.notes)}


def pinned_kernel(data: dict[str, Any]):
    """The BuildResult kernel.json pins, or None (none yet, or its entry is not the one pinned)."""
    from harness.kernel.artifact import BuildResult
    from harness.kernel.prebuilt import load_entry

    try:
        artifact = load_entry(Path(data["entry"]))  # a prebuilt image as one: its bzImage is in the package root
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if artifact.key != data.get("key"):
        return None
    return BuildResult(artifact, True, 0.0, None, tuple(data.get("notes", ())), data.get("source", ""))


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
