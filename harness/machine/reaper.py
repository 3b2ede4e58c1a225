# SPDX-License-Identifier: GPL-2.0
"""Run a VM's command (vng -> virtme-run -> QEMU) and end its whole process group when the owner process dies.

Usage: python3 -S reaper.py OWNER_PID [--keep-file PATH] -- COMMAND...   (stdlib only; started by
harness.machine.lifetime)

The harness starts this in a new session, so its process group holds everything the command starts. QEMU is a
grandchild: the kernel's parent-death signal would only reach the direct child, so this process watches the
owner itself (a pidfd: notified by the kernel the moment the owner exits, even by SIGKILL) and then kills the
group. It exits with the command's own exit status otherwise.

A VM kept for inspection (pytest --keep-vm-on-failure) is handed over: when the owner exits, the keep file exists
and holds {"minutes": M}. This process then writes the deadline (now + M minutes) into it and keeps the group
until the deadline passes or the file is removed (`bpf-audit-harness ssh RUN --stop`), then ends it as above.
"""

import importlib.util
import json
import os
import select
import signal
import subprocess
import sys
import time

GRACE = 2.0  # seconds QEMU gets after SIGTERM before the group is SIGKILLed
POLL = 0.5


class Stop(Exception):
    """A signal told this process (and so its group) to end."""


def _stop(signum, frame):
    raise Stop


def end_group(child: subprocess.Popen) -> None:
    """SIGTERM to the group (not to this process), a moment for QEMU to exit, then SIGKILL to the whole group
    (this process included)."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    try:
        os.killpg(0, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        child.wait(timeout=GRACE)  # vng returns once QEMU is gone
    except subprocess.TimeoutExpired:
        pass
    os.killpg(0, signal.SIGKILL)


def watch(owner: int) -> int:
    """A file descriptor that becomes readable when `owner` exits (-1 when pidfds are not available)."""
    try:
        return os.pidfd_open(owner)
    except (AttributeError, OSError):
        return -1


def parse(argv: list[str]) -> tuple[int, str | None, list[str]] | None:
    """(owner pid, keep file or None, command) from the command line, or None when it is malformed."""
    args = argv[1:]
    if not args or not args[0].isdigit():
        return None
    owner, rest = int(args[0]), args[1:]
    keep_file = None
    if rest[:1] == ["--keep-file"] and len(rest) >= 2:
        keep_file, rest = rest[1], rest[2:]
    if rest[:1] != ["--"] or len(rest) < 2:
        return None
    return owner, keep_file, rest[1:]


def read_keep(path: str | None) -> dict | None:
    """The keep file's content, or None (no file, or one that does not parse: not kept)."""
    if path is None:
        return None
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def start_keeping(path: str, data: dict) -> float:
    """The owner is gone and the VM is kept: write the deadline into the keep file; return it."""
    deadline = data.get("deadline")
    if not isinstance(deadline, int | float):
        minutes = data.get("minutes", 30)
        deadline = time.time() + 60 * float(minutes if isinstance(minutes, int | float) else 30)
        data = {**data, "deadline": deadline, "owner_exited": time.time()}
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
            f.write("\n")
        os.replace(tmp, path)
    return float(deadline)


def keep(path: str, child: subprocess.Popen) -> int | None:
    """Keep the group until the deadline (re-read each time: it may be extended) or the file's removal. The
    command's exit status if it ended by itself, else None (then the group is ended)."""
    while True:
        data = read_keep(path)
        deadline = data.get("deadline") if data else None
        if not isinstance(deadline, int | float) or time.time() >= deadline:
            try:
                os.unlink(path)
            except OSError:
                pass
            return None
        rc = child.poll()
        if rc is not None:
            try:
                os.unlink(path)
            except OSError:
                pass
            return rc if rc >= 0 else 128 - rc
        time.sleep(POLL)


def main(argv: list[str]) -> int:
    parsed = parse(argv)
    if parsed is None:
        print("usage: reaper.py OWNER_PID [--keep-file PATH] -- COMMAND...", file=sys.stderr)
        return 2
    owner, keep_file, command = parsed
    fd = watch(owner)
    if fd < 0 and not _alive(owner):
        return 125
    child = subprocess.Popen(command)  # same process group: ours
    # The harness stops a VM by signalling the whole group; a signal meant for us alone ends the group too.
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, _stop)
    try:
        while True:
            if fd >= 0:
                ready, _, _ = select.select([fd], [], [], POLL)
                owner_gone = bool(ready)
            else:
                time.sleep(POLL)
                owner_gone = not _alive(owner)
            if owner_gone:
                data = read_keep(keep_file)
                if keep_file is None or data is None:
                    raise Stop
                start_keeping(keep_file, data)
                rc = keep(keep_file, child)
                if rc is None:
                    raise Stop
                return rc
            rc = child.poll()
            if rc is not None:
                return rc if rc >= 0 else 128 - rc
    except Stop:
        end_group(child)
        return 128 + signal.SIGKILL  # not reached: the group's SIGKILL ends this process too


def _load_pid_alive():
    """harness.proc.pid_alive (a zombie is not alive), loaded by its path: this script runs stdlib-only, without the
    harness on its path."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "proc.py")
    spec = importlib.util.spec_from_file_location("_harness_proc", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.pid_alive


_alive = _load_pid_alive()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
