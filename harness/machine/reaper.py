# SPDX-License-Identifier: GPL-2.0
"""Run a VM's command (vng -> virtme-run -> QEMU) and end its whole process group when the owner process dies.

Usage: python3 -S reaper.py OWNER_PID -- COMMAND...   (stdlib only; started by harness.machine.lifetime)

The harness starts this in a new session, so its process group holds everything the command starts. QEMU is a
grandchild: the kernel's parent-death signal would only reach the direct child, so this process watches the
owner itself (a pidfd: notified by the kernel the moment the owner exits, even by SIGKILL) and then kills the
group. It exits with the command's own exit status otherwise.
"""

import os
import select
import signal
import subprocess
import sys
import time

GRACE = 2.0  # seconds QEMU gets after SIGTERM before the group is SIGKILLed


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


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: reaper.py OWNER_PID -- COMMAND...", file=sys.stderr)
        return 2
    owner = int(argv[1])
    fd = watch(owner)
    if fd < 0 and not _alive(owner):
        return 125
    child = subprocess.Popen(argv[3:])  # same process group: ours
    # The harness stops a VM by signalling the whole group; a signal meant for us alone ends the group too.
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, _stop)
    try:
        while True:
            if fd >= 0:
                ready, _, _ = select.select([fd], [], [], 0.5)
                owner_gone = bool(ready)
            else:
                time.sleep(0.5)
                owner_gone = not _alive(owner)
            if owner_gone:
                raise Stop
            rc = child.poll()
            if rc is not None:
                return rc if rc >= 0 else 128 - rc
    except Stop:
        end_group(child)
        return 128 + signal.SIGKILL  # not reached: the group's SIGKILL ends this process too


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


if __name__ == "__main__":
    sys.exit(main(sys.argv))
