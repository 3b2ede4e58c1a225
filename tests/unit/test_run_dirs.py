# SPDX-License-Identifier: GPL-2.0
"""Run directories: old ones are pruned, but never one whose owner process is still running."""

import os

from harness.settings import KEEP_RUNS, CacheLayout, new_run_dir


def _dead_pid() -> int:
    pid = 4_000_000  # above the default pid_max: no such process
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        pid += 1


def test_prune_keeps_the_newest_and_any_run_whose_owner_lives(tmp_path):
    layout = CacheLayout(tmp_path)
    layout.runs.mkdir(parents=True)
    mine = layout.runs / f"20000101-000000-bisect-{os.getpid()}"  # oldest of all, but its owner is us
    mine.mkdir()
    os.utime(mine, (1, 1))
    dead = _dead_pid()
    for i in range(KEEP_RUNS + 5):
        d = layout.runs / f"20000101-0001{i:02d}-build-{dead}"
        d.mkdir()
        os.utime(d, (100 + i, 100 + i))
    new_run_dir(layout, "x")
    left = sorted(p.name for p in layout.runs.iterdir())
    assert mine.name in left
    assert len(left) == KEEP_RUNS + 1  # the newest KEEP_RUNS plus the live one
    assert f"20000101-000100-build-{dead}" not in left
