# SPDX-License-Identifier: GPL-2.0
"""Run a built test_progs in a guest: push it, run `-a TESTS -J FILE` there, fetch its log and JSON back."""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import AgentExitedError, GuestCommandError, LostVMError
from harness.machine import console
from harness.machine.messages import msg
from harness.selftests.testprogs.entry import BINARY, SHIM, BuiltTestProgs

RUN_TIMEOUT = 1800.0  # the guest agent's limit for one test_progs run (its own maximum is 3600 s)
LOG = "test_progs.log"
JSON = "test_progs.json"
NO_NETNS = "bah: no /proc/self/ns/net"


@dataclass
class GuestRun:
    """What one test_progs run in a guest gave: its exit status (rc < 0: killed by that signal; None: no status,
    the run was lost), its output and -J summary as files in `out_dir` (None when it wrote none), and why it
    was lost if it was (a lost VM or agent: no verdict)."""

    argv: list[str]
    rc: int | None
    timed_out: bool = False
    log: Path | None = None
    json: Path | None = None
    seconds: float = 0.0
    lost: str | None = None
    console_log: Path | None = None
    findings: tuple[console.Finding, ...] = ()
    notes: list[str] = field(default_factory=list)
    remote_dir: str = ""

    @property
    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log is not None and self.log.is_file() else ""

    @property
    def json_text(self) -> str | None:
        return self.json.read_text(errors="replace") if self.json is not None and self.json.is_file() else None


def argv_for(selectors: Sequence[str], remote_dir: str, *, verbose: bool = False) -> list[str]:
    """test_progs' command line: exactly these tests (`-a`, test_progs' exact-name allowlist; `-t` would also run
    every test whose name merely contains one) and its JSON summary; with `verbose`, -v (every subtest's own log
    lines, skip reasons among them, printed while it runs)."""
    return [f"./{BINARY}", "-a", ",".join(selectors), *(["-v"] if verbose else []), "-J", f"{remote_dir}/{JSON}"]


def shell_command(selectors: Sequence[str], remote_dir: str, *, verbose: bool = False) -> str:
    """The guest shell command: in the run directory (test_progs opens its BPF objects by name there), with the
    shim preloaded (it stands in for /proc/self/ns/net only where the kernel has none; without -v it makes stdout
    line-buffered, so a crash keeps every result line printed so far), output to the log file. Its exit status
    is test_progs' own."""
    d = shlex.quote(remote_dir)
    env = f"LD_PRELOAD={d}/{SHIM}" + ("" if verbose else " BPF_AUDIT_HARNESS_LINE_BUFFERED=1")
    return (f"cd {d} || exit 125; [ -e /proc/self/ns/net ] || echo {shlex.quote(NO_NETNS)}; "
            f"{env} exec {shlex.join(argv_for(selectors, remote_dir, verbose=verbose))} > {d}/{LOG} 2>&1")


def run_in_guest(machine, built: BuiltTestProgs, selectors: Sequence[str], out_dir: Path, *,
                 timeout: float = RUN_TIMEOUT, verbose: bool = False, modules: Sequence[Path] = ()) -> GuestRun:
    """Push the build (and `modules`, the test .ko files test_progs loads from its directory) into a directory of
    the session's private directory, run it, and copy its log and JSON to `out_dir`. A guest or agent that goes
    away is reported in `lost` (with the console's findings), never raised."""
    out_dir.mkdir(parents=True, exist_ok=True)
    guest = machine.guest
    run = GuestRun(argv_for(selectors, "<dir>", verbose=verbose), None,
                   console_log=getattr(machine, "console_log", None))
    start = len(machine.console_text()) if hasattr(machine, "console_text") else 0
    t0 = time.monotonic()
    try:
        remote = f"{guest.private_dir()}/test_progs-{built.key}"
        run.remote_dir = remote
        run.argv = argv_for(selectors, remote, verbose=verbose)
        guest.run(f"mkdir -p {shlex.quote(remote)}", timeout=60, check=True)
        for path in (*built.files, *modules):
            guest.put(path, f"{remote}/{path.name}", mode=0o755 if path.name in (BINARY, SHIM) else 0o644)
        agent = guest.agent()
        res = agent.call(msg.Trigger(timeout=timeout, shell=shell_command(selectors, remote, verbose=verbose)),
                         timeout=timeout + 60)
        if isinstance(res, msg.Failure):
            run.rc = None
            run.notes.append(f"the agent could not run test_progs: {res.error}")
        else:
            run.rc, run.timed_out = res.rc, res.timed_out
            if NO_NETNS in (res.stdout or ""):
                run.notes.append("the kernel has no network namespaces (no /proc/self/ns/net: CONFIG_NET_NS is off): "
                                 "test_progs ran with the harness's shim standing in for its saved netns")
    except (AgentExitedError, GuestCommandError, LostVMError) as e:
        run.lost = _why_lost(machine, e)
    run.seconds = time.monotonic() - t0
    if run.remote_dir and (run.lost is None or _answers(machine)):
        for name, attr in ((LOG, "log"), (JSON, "json")):
            try:
                guest.get(f"{run.remote_dir}/{name}", out_dir / name)
                setattr(run, attr, out_dir / name)
            except (OSError, GuestCommandError, LostVMError, EOFError):
                pass  # not written (a crash before the summary) or the guest went
    if hasattr(machine, "console_text"):
        run.findings = console.scan(machine.console_text()[start:])
    return run


def _why_lost(machine, e: Exception) -> str:
    alive = machine.alive() if hasattr(machine, "alive") else True
    if not alive:
        lost = machine.lost(str(e)) if hasattr(machine, "lost") else e
        return f"the VM was lost while test_progs ran: {lost}"
    if isinstance(e, AgentExitedError):
        return f"the guest agent died while test_progs ran: {e}"
    return f"the guest stopped answering while test_progs ran: {e}"


def _answers(machine) -> bool:
    return machine.guest is not None and machine.guest.unanswered(timeout=20) is None
