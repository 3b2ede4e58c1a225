# SPDX-License-Identifier: GPL-2.0
"""harness.proc.pid_alive: one answer for a zombie (not alive), the same from the harness and from the reaper script."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from harness import settings
from harness.machine import lifetime
from harness.proc import pid_alive

REAPER = Path(lifetime.__file__).resolve().with_name("reaper.py")


def _state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2:].split()[0]


def test_a_real_zombie_is_not_alive_for_the_harness_nor_for_the_reaper():
    pid = os.fork()
    if pid == 0:  # the child exits at once; it stays a zombie until the parent reaps it
        os._exit(0)
    try:
        deadline = time.monotonic() + 10
        while _state(pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _state(pid) == "Z"
        assert pid_alive(pid) is False
        assert settings.pid_alive is pid_alive  # the settings' users (run-dir pruning) get the same answer
        # The reaper runs stdlib-only as `python3 -S reaper.py`: its answer, in such a process, on the same zombie.
        code = ("import importlib.util, sys; s = importlib.util.spec_from_file_location('r', sys.argv[1]); "
                "m = importlib.util.module_from_spec(s); s.loader.exec_module(m); print(m._alive(int(sys.argv[2])))")
        out = subprocess.run([sys.executable, "-S", "-c", code, str(REAPER), str(pid)], capture_output=True,
                             text=True, check=True).stdout.strip()
        assert out == "False"
    finally:
        os.waitpid(pid, 0)
    assert pid_alive(pid) is False  # reaped: gone


def test_a_running_process_is_alive_and_a_free_pid_is_not():
    assert pid_alive(os.getpid())
    assert pid_alive(1)  # another user's (or init's) process counts
    assert not pid_alive(2**22 + 1)  # above pid_max's ceiling: never a process
