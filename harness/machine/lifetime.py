# SPDX-License-Identifier: GPL-2.0
"""A VM never outlives its owner: a reaper tied to the owner's life, signals that clean up, and a safety net."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from harness.settings import KEPT_SUFFIX

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


def kept_until(path: Path) -> float:
    """When a kept VM is due to end: 0 for "not kept" (no file, or one that does not parse), inf while its owner
    still runs (the reaper sets the deadline when the owner exits), else the deadline (epoch seconds)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return 0.0
    if not isinstance(data, dict):
        return 0.0
    deadline = data.get("deadline")
    return float(deadline) if isinstance(deadline, int | float) else float("inf")


def write_record(run_dir: Path, name: str, pgid: int, **facts: object) -> Path:
    """Which process group a VM runs in and who owns it, kept after the VM stops (tests and later runs check
    that nothing of it outlived its owner)."""
    path = run_dir / f"{name}{RECORD_SUFFIX}"
    path.write_text(json.dumps({"pgid": pgid, "owner_pid": os.getpid(), "started": time.time(), **facts}) + "\n")
    return path


def recorded_groups(run_dir: Path) -> dict[str, int]:
    """VM name -> process group of every VM a run directory recorded."""
    out = {}
    for rec in sorted(run_dir.glob(f"*{RECORD_SUFFIX}")):
        try:
            out[rec.name.removesuffix(RECORD_SUFFIX)] = int(json.loads(rec.read_text())["pgid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


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


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != b"Z"


def is_our_reaper(pid: int) -> bool:
    try:
        return str(REAPER) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def _records(runs: Path) -> list[Path]:
    """Every VM record under the run directories; run directories pruned meanwhile are skipped."""
    out: list[Path] = []
    try:
        run_dirs = list(os.scandir(runs))
    except OSError:
        return out
    for run in run_dirs:
        try:
            out += [Path(e.path) for e in os.scandir(run.path) if e.name.endswith(RECORD_SUFFIX)]
        except OSError:  # not a directory, or pruned by another process just now
            continue
    return out


def reap_orphans(runs: Path, say=None) -> list[str]:
    """The safety net: end the VM groups whose owner died without ending them (recorded in run directories).
    Only groups whose leader is still this harness's reaper are touched: a recycled process group is not ours."""
    reaped: list[str] = []
    for rec in _records(runs):
        try:
            data = json.loads(rec.read_text())
            pgid, owner = int(data["pgid"]), int(data["owner_pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if owner == os.getpid() or _alive(owner) or not group_alive(pgid) or not is_our_reaper(pgid):
            continue
        kept = kept_file(rec.parent, rec.name.removesuffix(RECORD_SUFFIX))
        if kept_until(kept) > time.time():
            continue  # kept for inspection: its reaper ends it at the deadline
        kept.unlink(missing_ok=True)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
        reaped.append(f"{rec.parent.name}/{rec.name.removesuffix(RECORD_SUFFIX)} (owner pid {owner} is gone)")
    if reaped and say is not None:
        say(f"[vm] ended {len(reaped)} VM(s) whose owner had died: {', '.join(reaped)}")
    return reaped


_HANDLED: set[int] = set()


def exit_on_hangup_and_term() -> None:
    """SIGTERM (CI timeouts, xdist teardown) and SIGHUP (a closed terminal, a dropped ssh session) end this
    process as Ctrl-C does: KeyboardInterrupt, which pytest and the CLI already handle (teardown, `finally`
    blocks, atexit stop the VMs). A handler someone else installed is left alone; only the main thread can
    install one."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if sig in _HANDLED or signal.getsignal(sig) not in (signal.SIG_DFL, None):
            continue
        try:
            signal.signal(sig, _raise_exit)
            _HANDLED.add(sig)
        except ValueError:  # not the main thread
            pass


def _raise_exit(signum, frame):
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")
