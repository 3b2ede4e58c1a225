# SPDX-License-Identifier: GPL-2.0
"""Cache keys and atomic publish: any input change gives a new key; nothing half-built is visible."""

import dataclasses
import json
from pathlib import Path

import pytest

from harness.errors import CacheError
from harness.kernel import cache
from harness.settings import CacheLayout

BASE = cache.KeyInputs(
    source_identity="tarball:abc",
    patches=(("0001-a.patch", 1, "11"), ("0002-b.patch", 1, "22")),
    merged_config="CONFIG_A=y\n",
    toolchain=("gcc 12.2.0", "ld 2.40", "v1.24"),
)


def test_same_inputs_same_key():
    assert BASE.key() == dataclasses.replace(BASE).key()


@pytest.mark.parametrize(
    "change",
    [
        {"source_identity": "tarball:abd"},
        {"patches": (("0001-a.patch", 1, "11"), ("0002-b.patch", 1, "23"))},  # one patch's content
        {"patches": (("0002-b.patch", 1, "22"), ("0001-a.patch", 1, "11"))},  # order
        {"patches": (("0001-a.patch", 1, "11"),)},  # dropped patch
        {"merged_config": "CONFIG_A=y\nCONFIG_B=y\n"},
        {"toolchain": ("gcc 13.1.0", "ld 2.40", "v1.24")},
        {"recipe": cache.RECIPE_VERSION + 1},
    ],
)
def test_any_input_change_gives_a_new_key(change):
    assert dataclasses.replace(BASE, **change).key() != BASE.key()


def test_publish_is_all_or_nothing(tmp_path: Path):
    layout = CacheLayout(tmp_path)
    with pytest.raises(RuntimeError):
        with cache.staging(layout, "k1") as staged:
            (staged / "bzImage").write_text("half")
            raise RuntimeError("build died")
    assert cache.published(layout, "k1") is None
    assert list(layout.kernels.iterdir()) == []
    with cache.staging(layout, "k2") as staged:
        (staged / "bzImage").write_text("whole")
        entry = cache.publish(layout, "k2", staged, {"key": "k2", "release": "6.12.0"})
    assert cache.published(layout, "k2") == entry
    assert json.loads((entry / "meta.json").read_text()) == {"key": "k2", "release": "6.12.0"}
    assert [p.name for p in layout.kernels.iterdir()] == ["k2"]


def test_stale_work_dirs_of_dead_processes_are_swept(tmp_path: Path):
    layout = CacheLayout(tmp_path)
    dead = layout.work / "build-k-dead"
    alive = layout.work / "build-k-alive"
    for d, pid in ((dead, 2**22 + 12345), (alive, __import__("os").getpid())):
        d.mkdir(parents=True)
        (d / ".owner-pid").write_text(str(pid))
    cache.sweep_stale(layout)
    assert not dead.exists() and alive.exists()


def test_unwritable_cache_dir_is_a_clear_error(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(CacheError, match="is not writable.*BPF_AUDIT_HARNESS_CACHE"):
        cache.ensure_writable(CacheLayout(blocker / "cache"))
