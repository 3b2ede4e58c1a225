# SPDX-License-Identifier: GPL-2.0
"""A VM never outlives its owner: a reaper tied to the owner's life, signals that clean up, and a safety net."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from harness.proc import pid_alive
from harness.settings import KEPT_SUFFIX, kept_until, listdir, run_files, start_ticks

REAPER = Path(__file__).resolve().with_name("reaper.py")
RECORD_SUFFIX = ".vm.json"


def owned(argv: list[str], *, keep_file: Path | None = None) -> list[str]:
    """argv run under the reaper: when this process dies (even by SIGKILL), the VM's whole group goes too, unless
    `keep_file` exists then: the VM was handed over for inspection and lives until that file's deadline (or until
    the file is removed)."""
    keep = ["--keep-file", str(keep_file)] if keep_file is not None else []
    return [sys.executable, "-S", str(REAPER), str(os.getpid()), *keep, "--", *argv]


def kept_file(run_dir: Path, name: str) -> Path:
    """The file that keeps VM `name` alive after its owner exits (see harness.machine.keep)."""
    return run_dir / f"{name}{KEPT_SUFFIX}"


def write_record(run_dir: Path, name: str, pgid: int, **facts: object) -> Path:
    """Which process group a VM runs in (its leader, the reaper, by pid and start time) and who owns it, kept
    after the VM stops (tests and later runs check that nothing of it outlived its owner)."""
    path = run_dir / f"{name}{RECORD_SUFFIX}"
    path.write_text(json.dumps({"pgid": pgid, "leader_start": start_ticks(pgid), "owner_pid": os.getpid(),
                                "started": time.time(), **facts}) + "\n")
    return path


def recorded(run_dir: Path) -> dict[str, tuple[int, int | None]]:
    """VM name -> (process group, its leader's start ticks) of every VM a run directory recorded."""
    out = {}
    for rec in (f for f in listdir(run_dir) if f.name.endswith(RECORD_SUFFIX)):
        try:
            data = json.loads(rec.read_text())
            out[rec.name.removesuffix(RECORD_SUFFIX)] = (int(data["pgid"]), data.get("leader_start"))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


def recorded_groups(run_dir: Path) -> dict[str, int]:
    """VM name -> process group of every VM a run directory recorded."""
    return {name: pgid for name, (pgid, _) in recorded(run_dir).items()}


def _stat(pid: int | str) -> list[bytes] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2:].split()


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in process group `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(entry.name)
            if fields is not None and int(fields[2]) == pgid and fields[0] != b"Z":
                members.append(int(entry.name))
    return members


def group_alive(pgid: int) -> bool:
    return bool(group_members(pgid))


def is_our_reaper(pid: int, leader_start: int | None) -> bool:
    """Whether `pid` is still the reaper a record names: its command line runs our reaper and it started when the
    record says (a pid recycled to another session's reaper has another start time). A record without a start
    time names nothing we can prove is ours."""
    if leader_start is None or start_ticks(pid) != leader_start:
        return False
    try:
        return str(REAPER) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def reap_orphans(runs: Path, say=None) -> list[str]:
    """The safety net: end the VM groups whose owner died without ending them (recorded in run directories).
    Only groups whose leader is still this harness's reaper (same pid and start time) are touched: a recycled
    process group is not ours. Keep files left by VMs that are gone, or whose deadline passed, are removed."""
    reaped: list[str] = []
    now = time.time()
    for rec in run_files(runs, RECORD_SUFFIX):
        try:
            data = json.loads(rec.read_text())
            pgid, owner = int(data["pgid"]), int(data["owner_pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        name = rec.name.removesuffix(RECORD_SUFFIX)
        kept = kept_file(rec.parent, name)
        ours = group_alive(pgid) and is_our_reaper(pgid, data.get("leader_start"))
        if not ours:
            kept.unlink(missing_ok=True)  # its VM is gone: the keep file pins nothing any more
            continue
        if owner == os.getpid() or pid_alive(owner):
            continue
        if kept_until(kept) > now:
            continue  # kept for inspection: its reaper ends it at the deadline
        kept.unlink(missing_ok=True)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
        reaped.append(f"{rec.parent.name}/{name} (owner pid {owner} is gone)")
    if reaped and say is not None:
        say(f"[vm] ended {len(reaped)} VM(s) whose owner had died: {', '.join(reaped)}")
    return reaped


# -- signals: what each one does to the VMs this process runs -----------------------------------------------------
#
# SIGHUP (a closed terminal, a dropped ssh session) and SIGTERM (a CI timeout, a supervisor): nobody waits for a
# graceful end, so the VM process groups are SIGKILLed inside the handler, before anything else runs (a guest's
# state is disposable), the signal is passed on to this process's children in its own process group (pytest-xdist
# workers, which end their VMs the same way), and only then the run unwinds as Ctrl-C does (reports, JUnit). Nothing
# in the unwinding talks to a live guest any more, so no load, boot or guest request can delay the VMs' end.
#
# SIGINT (Ctrl-C): the graceful path (teardown stops each VM), bounded: a watchdog ends every VM GRACEFUL_DEADLINE
# seconds later if teardown has not, and a second Ctrl-C ends them at once.

GRACEFUL_DEADLINE = 15.0
_GROUPS: dict[int, tuple[str, Path | None]] = {}  # process group -> (VM name, its console log), of our VMs
_HANDLED: set[int] = set()
_interrupts = 0


def own_group(pgid: int, name: str, console_log: Path | None = None) -> None:
    """A VM of this process runs in process group `pgid` (the reaper's): a signal that ends the run ends it, and
    says so at the end of its console log."""
    _GROUPS[pgid] = (name, console_log)


def disown_group(pgid: int) -> None:
    _GROUPS.pop(pgid, None)


def end_groups_now(why: str = "") -> list[str]:
    """SIGKILL every VM group this process runs, now; safe from a signal handler and from any thread. The VMs'
    stop() later reaps them and removes their files. `why` is appended to each one's console log. Returns their
    names."""
    ended = []
    for pgid, (name, console_log) in list(_GROUPS.items()):
        try:
            os.killpg(pgid, signal.SIGKILL)
            ended.append(name)
        except (ProcessLookupError, PermissionError):
            continue
        if why and console_log is not None:
            try:
                with open(console_log, "a") as f:
                    f.write(f"\nbpf-audit-harness: VM {name} ended by its owner (pid {os.getpid()}): {why}\n")
            except OSError:
                pass
    return ended


def _children_in_my_group() -> list[int]:
    """Direct children of this process in its own process group: pytest-xdist workers (a VM's reaper runs in a
    session of its own and is ended through its group)."""
    me, group = os.getpid(), os.getpgrp()
    out: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for name in entries:
        if name.isdigit():
            fields = _stat(name)
            if fields is not None and int(fields[1]) == me and int(fields[2]) == group and fields[0] != b"Z":
                out.append(int(name))
    return out


def exit_on_hangup_and_term() -> None:
    """Install the handlers described above. A handler someone else installed is left alone; only the main thread
    can install one (elsewhere this does nothing)."""
    for sig, handler, default in ((signal.SIGTERM, _end_now, signal.SIG_DFL), (signal.SIGHUP, _end_now, signal.SIG_DFL),
                                  (signal.SIGINT, _interrupt, signal.default_int_handler)):
        if sig in _HANDLED or signal.getsignal(sig) not in (default, None):
            continue
        try:
            signal.signal(sig, handler)
            _HANDLED.add(sig)
        except ValueError:  # not the main thread
            pass


def _end_now(signum, frame):
    name = signal.Signals(signum).name
    ended = end_groups_now(f"{name}, {where(frame)}")
    children = _children_in_my_group()
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    _say(f"{name}: ended {len(ended)} VM(s) at once{': ' + ', '.join(ended) if ended else ''}"
         f"{f', passed SIGTERM to {len(children)} worker(s)' if children else ''}; "
         f"the run stops ({where(frame)})")
    raise KeyboardInterrupt(f"signal {name}")


def _interrupt(signum, frame):
    global _interrupts
    _interrupts += 1
    if _interrupts == 1:
        if _GROUPS:
            import threading

            timer = threading.Timer(GRACEFUL_DEADLINE, _graceful_deadline)
            timer.daemon = True
            timer.start()
    else:
        ended = end_groups_now(f"a second Ctrl-C, {where(frame)}")
        if ended:
            _say(f"second Ctrl-C: ended {len(ended)} VM(s) at once: {', '.join(ended)}")
    raise KeyboardInterrupt


def _graceful_deadline() -> None:
    ended = end_groups_now(f"teardown did not stop it within {GRACEFUL_DEADLINE:g}s of Ctrl-C")
    if ended:
        _say(f"Ctrl-C: teardown did not stop {', '.join(ended)} within {GRACEFUL_DEADLINE:g}s; ended them")


def where(frame) -> str:
    """Where the main thread was when a signal landed: the innermost frames of the harness (or the top frame), as
    `file:line function` (printed with the signal, to tell boot, ssh wait, a guest request or a lock apart)."""
    import traceback

    if frame is None:
        return "unknown"
    stack = traceback.extract_stack(frame)
    ours = [f for f in stack if "/harness/" in f.filename or "/guests/" in f.filename] or stack[-1:]
    return "in " + " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(ours[-3:]))


def _say(msg: str) -> None:
    try:
        os.write(2, f"bpf-audit-harness: {msg}\n".encode(errors="replace"))
    except OSError:
        pass
