# SPDX-License-Identifier: GPL-2.0
"""Cache eviction: the pure plan (age, size, in-use protection) and `bpf-audit-harness cache --prune`."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.kernel import cache, gc
from harness.settings import REPO_ROOT, CacheLayout

NOW = 1_800_000_000.0
DAY = gc.DAY


def _item(name: str, age_days: float, size: int = 100, kind: str = "kernel") -> gc.Item:
    return gc.Item(kind, name, (Path(name),), size, NOW - age_days * DAY)


def test_only_items_unused_for_longer_than_the_age_go_oldest_first():
    items = [_item("new", 1), _item("old", 40), _item("older", 90), _item("edge", 29.9)]
    assert [i.name for i in gc.plan(items, gc.Policy(30), NOW)] == ["older", "old"]


def test_max_size_evicts_least_recently_used_until_it_fits():
    items = [_item("a", 1, 400), _item("b", 2, 300), _item("c", 3, 200), _item("d", 4, 100)]
    doomed = gc.plan(items, gc.Policy(older_than_days=None, max_bytes=550), NOW)
    assert [i.name for i in doomed] == ["d", "c", "b"]  # 1000 -> 900 -> 700 -> 400 <= 550


def test_nothing_used_in_the_last_hours_is_evicted_even_over_the_size_limit():
    items = [_item("running", 0.01, 10_000), _item("old", 50, 10)]
    doomed = gc.plan(items, gc.Policy(older_than_days=0, max_bytes=0), NOW)
    assert [i.name for i in doomed] == ["old"]


@given(st.lists(st.tuples(st.floats(0, 400), st.integers(0, 10**9)), max_size=30),
       st.one_of(st.none(), st.floats(0, 100)), st.one_of(st.none(), st.integers(0, 10**10)))
def test_plan_properties(specs, days, max_bytes):
    items = [_item(f"i{n}", age, size) for n, (age, size) in enumerate(specs)]
    doomed = gc.plan(items, gc.Policy(days, max_bytes), NOW)
    names = {i.name for i in doomed}
    assert len(names) == len(doomed)
    assert all(NOW - i.last_used > gc.IN_USE_SECONDS for i in doomed)
    kept = [i for i in items if i.name not in names]
    if days is not None:  # everything old enough and not in use went
        assert all(NOW - i.last_used <= max(days * DAY, gc.IN_USE_SECONDS) for i in kept)
    if max_bytes is not None and sum(i.size for i in kept) > max_bytes:  # over only if the rest is in use
        assert all(NOW - i.last_used <= gc.IN_USE_SECONDS for i in kept)


@pytest.mark.parametrize("text, value", [("20G", 20 << 30), ("500M", 500 << 20), ("1.5K", 1536), ("1024", 1024),
                                         ("2GiB", 2 << 30)])
def test_parse_size(text, value):
    assert gc.parse_size(text) == value


def test_parse_size_says_what_it_expected():
    with pytest.raises(ValueError, match="optional K, M, G or T suffix"):
        gc.parse_size("lots")


def _kernel_entry(layout: CacheLayout, key: str, age_days: float) -> Path:
    entry = layout.kernels / key
    entry.mkdir(parents=True)
    (entry / "bzImage").write_bytes(b"\0" * 4096)
    (entry / "meta.json").write_text(json.dumps({"key": key, "release": "6.12.0"}))
    stamp = time.time() - age_days * DAY
    for f in entry.iterdir():
        os.utime(f, (stamp, stamp))
    return entry


def test_a_cache_hit_counts_as_a_use(tmp_path):
    layout = CacheLayout(tmp_path)
    _kernel_entry(layout, "k1", 60)
    assert [i.name for i in gc.plan(gc.scan(layout), gc.Policy(30), time.time())] == ["k1"]
    assert cache.published(layout, "k1") is not None
    assert gc.plan(gc.scan(layout), gc.Policy(30), time.time()) == []


def test_cli_prunes_old_kernels_and_objects_and_keeps_the_rest(tmp_path):
    layout = CacheLayout(tmp_path)
    _kernel_entry(layout, "old", 45)
    _kernel_entry(layout, "fresh", 2)
    (layout.kernels / ".staging-x-1").mkdir()  # a build in progress is not an entry
    layout.objects.mkdir()
    for stem, age in (("a.bpf-1", 40), ("b.bpf-2", 1)):
        for suffix in (".o", ".json"):
            f = layout.objects / f"{stem}{suffix}"
            f.write_text("{}")
            os.utime(f, (time.time() - age * DAY,) * 2)
    base = [sys.executable, "-m", "harness.cli", "cache", "--cache-dir", str(tmp_path)]
    dry = subprocess.run(base + ["--prune", "--dry-run"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert "would evict kernel old" in dry.stdout and "would evict 2 items" in dry.stdout, dry.stdout
    assert (layout.kernels / "old").is_dir()
    out = subprocess.run(base + ["--prune"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and "evicted 2 items" in out.stdout, out.stdout + out.stderr
    assert sorted(p.name for p in layout.kernels.iterdir()) == [".staging-x-1", "fresh"]
    assert sorted(p.name for p in layout.objects.iterdir()) == ["b.bpf-2.json", "b.bpf-2.o"]
    bad = subprocess.run(base + ["--prune", "--max-size", "lots"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert bad.returncode != 0 and "--max-size" in bad.stderr


def test_build_slots_and_patched_trees_are_listed_and_pruned_by_their_last_use(tmp_path):
    """A slot is used by every build in it (its info file is rewritten); a patched tree by every sync."""
    import json as _json

    from harness.kernel.build import SLOT_INFO
    from harness.kernel.trees import STATE

    layout = CacheLayout(tmp_path)
    for name, age in (("oldslot", 40), ("newslot", 1)):
        slot = layout.slots / name
        (slot / "kernel").mkdir(parents=True)
        (slot / "kernel" / "fork.o").write_bytes(b"\0" * 8192)
        (slot / SLOT_INFO).write_text(_json.dumps({"tree": str(tmp_path / "src")}))
        os.utime(slot / SLOT_INFO, (time.time() - age * DAY,) * 2)
    tree = layout.trees / "patched-old"
    tree.mkdir(parents=True)
    (tree / "Makefile").write_text("VERSION = 6\n")
    (tree / STATE).write_text(_json.dumps({"source": str(tmp_path / "src")}))
    os.utime(tree / STATE, (time.time() - 50 * DAY,) * 2)
    base = [sys.executable, "-m", "harness.cli", "cache", "--cache-dir", str(tmp_path)]
    listing = subprocess.run(base, cwd=REPO_ROOT, capture_output=True, text=True)
    assert "slots: 2, " in listing.stdout and "trees: 1, " in listing.stdout, listing.stdout
    out = subprocess.run(base + ["--prune"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "evicted slot oldslot" in out.stdout and "evicted tree patched-old" in out.stdout, out.stdout
    assert [p.name for p in layout.slots.iterdir()] == ["newslot"] and not any(layout.trees.iterdir())


@pytest.mark.faults  # issue 21: provokes the fault for real
def test_prune_takes_the_lock_the_builder_holds_even_mid_sync(tmp_path):
    """Issue 21 item 8: while a build syncs a patched tree (its state file removed, the tree's lock held), a prune
    must wait on that same lock, not read a lock name from the vanished state file and delete the tree under the
    build. A real second process holds the lock."""
    import hashlib
    import textwrap

    from harness.kernel.trees import STATE

    layout = CacheLayout(tmp_path)
    source = tmp_path / "src"
    h = hashlib.sha256(str(source).encode()).hexdigest()[:16]
    tree = layout.trees / f"patched-{h}"
    tree.mkdir(parents=True)
    (tree / "Makefile").write_text("VERSION = 6\n")
    os.utime(tree, (time.time() - 50 * DAY,) * 2)
    assert not (tree / STATE).exists()  # mid-sync: the state file is gone
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""\
        import sys, time
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from pathlib import Path
        from harness.kernel.cache import key_lock
        from harness.settings import CacheLayout
        with key_lock(CacheLayout(Path({str(tmp_path)!r})), "tree-{h}", holder="syncing the patched tree"):
            print("held", flush=True)
            sys.stdin.readline()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    prune = None
    try:
        assert holder.stdout.readline() == "held\n"
        prune = subprocess.Popen([sys.executable, "-m", "harness.cli", "cache", "--cache-dir", str(tmp_path),
                                  "--prune"], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)
        time.sleep(3)
        assert prune.poll() is None, f"the prune did not wait for the build's lock: {prune.communicate()[0]}"
        assert (tree / "Makefile").is_file(), "the tree was pruned while the build held its lock"
        holder.stdin.write("\n")
        holder.stdin.flush()
        out = prune.communicate(timeout=60)[0]
        assert prune.returncode == 0, out
        assert f"evicted tree patched-{h}" in out and not tree.exists(), out
    finally:
        holder.kill()
        holder.wait()
        if prune is not None and prune.poll() is None:
            prune.kill()
            prune.wait()
