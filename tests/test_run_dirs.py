# SPDX-License-Identifier: GPL-2.0
"""Run directories: concurrent creators (xdist workers, matrix and mutants runs) prune old ones without crashing."""

from __future__ import annotations

import threading

from harness import settings
from harness.settings import CacheLayout, new_run_dir


def test_concurrent_new_run_dir_survives_each_others_pruning(tmp_path, monkeypatch):
    # Recorded failure: a matrix run's kernel_build fixture died in _prune_runs with FileNotFoundError on a
    # directory another process had just pruned, and every case of that xdist worker errored at setup.
    monkeypatch.setattr(settings, "KEEP_RUNS", 2)
    layout = CacheLayout(tmp_path)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        for i in range(300):
            try:
                new_run_dir(layout, f"w{n}-{i}")
            except BaseException as e:  # noqa: BLE001 - collected and asserted below
                errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(list(layout.runs.iterdir())) <= 2 + 4  # KEEP_RUNS, plus at most one in flight per worker
