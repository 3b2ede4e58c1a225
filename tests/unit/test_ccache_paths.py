# SPDX-License-Identifier: GPL-2.0
"""A patched tree keeps its build slots inside it, so ccache reuses objects of the same kernel at another path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.kernel import build as kbuild
from harness.kernel import gc, trees
from harness.kernel.kconfig import MergedConfig
from harness.kernel.patches import load_series
from harness.kernel.source import SourceSpec, resolve
from harness.settings import CacheLayout

REPO_ROOT = Path(__file__).resolve().parents[2]


def _source(root: Path) -> Path:
    """A tiny tree: a Makefile with a version, a C file and the header it includes."""
    (root / "kernel").mkdir(parents=True)
    (root / "include").mkdir()
    (root / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\nEXTRAVERSION =\n")
    (root / "include" / "audit.h").write_text("#define AUDIT_A 1\n")
    (root / "kernel" / "audit.c").write_text('#include "audit.h"\nconst char *f(void) { return __FILE__; }\n'
                                             "int g(void) { return AUDIT_A; }\n")
    return root


def _series(d: Path) -> Path:
    d.mkdir(parents=True)
    (d / "0001-b.patch").write_text("--- a/include/audit.h\n+++ b/include/audit.h\n@@ -1,1 +1,2 @@\n"
                                    " #define AUDIT_A 1\n+#define AUDIT_B 2\n")
    (d / "series").write_text("0001-b.patch\n")
    return d


def _patched(tmp_path: Path, where: str, layout: CacheLayout) -> trees.BuildTree:
    """`where` (made on first use) patched by the one-patch series, synced as a build would."""
    root = tmp_path / where
    source = resolve(SourceSpec.from_args(str(root if root.exists() else _source(root)), None), layout)
    series = tmp_path / "patches"
    if not series.exists():
        _series(series)
    return trees.prepare(source, load_series(series), layout, tmp_path / "log")


def _merged() -> MergedConfig:
    return MergedConfig(settings=())


def test_a_patched_trees_slots_live_inside_it_and_a_sync_leaves_them_alone(tmp_path):
    layout = CacheLayout(tmp_path / "cache")
    tree = _patched(tmp_path, "src", layout)
    slot = kbuild.slot_dir(layout, tree.path, _merged(), patched=True)
    assert slot.parent == tree.path / trees.SLOTS
    (slot / "kernel").mkdir(parents=True)
    (slot / "kernel" / "audit.o").write_bytes(b"\0" * 4096)
    # The source changes (a file goes): the re-sync removes it from the mirror, never the slot's objects.
    (tmp_path / "src" / "kernel" / "audit.c").unlink()
    again = _patched(tmp_path, "src", layout)
    assert not (again.path / "kernel" / "audit.c").exists()
    assert (slot / "kernel" / "audit.o").stat().st_size == 4096
    # A tree read in place is never written to: its slots stay in the cache's slots/.
    in_place = kbuild.slot_dir(layout, tmp_path / "src", _merged())
    assert in_place.parent == layout.slots
    assert kbuild.ccache_base(tree.path, slot) == str(tree.path)


def test_slots_inside_a_patched_tree_are_listed_apart_and_pruned_under_its_lock(tmp_path):
    """`cache` counts a tree's own bytes without its slots, lists each slot, and prunes an old one alone."""
    import json

    layout = CacheLayout(tmp_path / "cache")
    tree = _patched(tmp_path, "src", layout)
    slot = kbuild.slot_dir(layout, tree.path, _merged(), patched=True)
    slot.mkdir(parents=True)
    (slot / "vmlinux").write_bytes(b"\0" * 65536)
    (slot / kbuild.SLOT_INFO).write_text(json.dumps({"tree": str(tree.path)}))
    old = time.time() - 40 * gc.DAY
    os.utime(slot / kbuild.SLOT_INFO, (old, old))
    items = {(i.kind, i.name): i for i in gc.scan(layout)}
    assert items[("slot", slot.name)].size >= 65536
    assert items[("tree", tree.path.name)].size < 65536  # the slot is not the tree's own bytes
    assert gc._tree_lock_of(items[("slot", slot.name)], layout) == trees.lock_name(
        resolve(SourceSpec.from_args(str(tmp_path / "src"), None), layout))
    out = subprocess.run([sys.executable, "-m", "harness.cli", "cache", "--cache-dir", str(layout.root), "--prune"],
                         cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert f"evicted slot {slot.name}" in out.stdout, out.stdout
    assert not slot.exists() and (tree.path / "Makefile").is_file()


@pytest.mark.skipif(not shutil.which("ccache") or not shutil.which("gcc"), reason="needs ccache and gcc")
def test_ccache_hits_for_the_same_source_patched_at_another_path(tmp_path):
    """Issue 22: a first build of a fresh tree of a kernel ccache already holds missed every object, because the
    paths ccache hashed named the tree's own directory. With the slot inside the patched tree and the tree as
    CCACHE_BASEDIR, kbuild's compile of the same file from a tree at another path (another source directory,
    another cache) is a ccache hit. Real ccache, real gcc, kbuild's way: the slot is make's directory, sources
    and includes by absolute path, __FILE__ mapped with -fmacro-prefix-map."""
    ccache_dir = tmp_path / "ccache"
    stats = []
    for n, where in enumerate(("first/linux", "elsewhere/linux-6.12")):
        layout = CacheLayout(tmp_path / f"cache{n}")
        tree = _patched(tmp_path, where, layout)
        slot = kbuild.slot_dir(layout, tree.path, _merged(), patched=True)
        slot.mkdir(parents=True)
        env = dict(os.environ, CCACHE_DIR=str(ccache_dir), CCACHE_NOHASHDIR="true",
                   CCACHE_BASEDIR=kbuild.ccache_base(tree.path, slot))
        argv = ["ccache", "gcc", "-g", f"-I{tree.path}/include", f"-fmacro-prefix-map={tree.path}/=",
                "-c", f"{tree.path}/kernel/audit.c", "-o", "audit.o"]
        subprocess.run(argv, cwd=slot, env=env, check=True)
        out = subprocess.run(["ccache", "--print-stats"], env=env, capture_output=True, text=True, check=True)
        stats.append(dict(line.split("\t") for line in out.stdout.splitlines() if "\t" in line))
        assert b"kernel/audit.c" in (slot / "audit.o").read_bytes()
    hits = int(stats[1].get("direct_cache_hit", 0)) + int(stats[1].get("preprocessed_cache_hit", 0))
    assert stats[0].get("cache_miss") == "1" and hits == 1, stats
