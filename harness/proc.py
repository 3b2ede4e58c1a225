# SPDX-License-Identifier: GPL-2.0
"""Whether a process is alive: the one answer the harness and its stdlib-only reaper script give (zombies: no)."""

# Stdlib only and importing nothing of the harness: harness/machine/reaper.py, which runs as `python3 -S` without
# the harness on its path, loads this file by its path.

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs: it exists and is not a zombie.

    A zombie is NOT alive: it has exited and only waits for its parent to reap it; it holds no files, runs nothing
    and owns nothing any more (an owner that is a zombie has gone). A process of another user counts as alive.
    Without a readable /proc the kernel is asked (kill 0), which cannot tell a zombie: then it counts as alive.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (or not readable): ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat[stat.rindex(b")") + 2:].split()[0] != b"Z"  # the state field, after "(comm)"
