# SPDX-License-Identifier: GPL-2.0
"""Cache eviction: which kernel entries and case objects have gone unused long enough to delete."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.kernel.build import SLOT_INFO
from harness.kernel.cache import LAST_USED, key_lock
from harness.kernel.trees import SLOTS as TREE_SLOTS
from harness.kernel.trees import STATE as TREE_STATE
from harness.kernel.trees import lock_name_of_built
from harness.settings import CacheLayout, listdir

DAY = 86400.0
# Never evict what was used this recently: another session may be using it right now.
IN_USE_SECONDS = 6 * 3600.0


@dataclass(frozen=True)
class Item:
    """One evictable thing: a kernel entry (a directory) or a compiled object (its .o and .json)."""

    kind: str  # "kernel" | "object" | "slot" (a build directory) | "tree" (a patched tree)
    name: str
    paths: tuple[Path, ...]
    size: int
    last_used: float


@dataclass(frozen=True)
class Policy:
    older_than_days: float | None = 30.0  # evict what was not used for this long
    max_bytes: int | None = None  # then evict least recently used until the total fits


def plan(items: Iterable[Item], policy: Policy, now: float) -> list[Item]:
    """Pure: the items to delete, oldest first. Nothing used within IN_USE_SECONDS is ever chosen."""
    ordered = sorted(items, key=lambda i: i.last_used)
    evictable = [i for i in ordered if now - i.last_used > IN_USE_SECONDS]
    doomed: list[Item] = []
    if policy.older_than_days is not None:
        doomed = [i for i in evictable if now - i.last_used > policy.older_than_days * DAY]
    if policy.max_bytes is not None:
        total = sum(i.size for i in ordered) - sum(i.size for i in doomed)
        for item in evictable:
            if total <= policy.max_bytes:
                break
            if item not in doomed:
                doomed.append(item)
                total -= item.size
    return sorted(doomed, key=lambda i: i.last_used)


def parse_size(text: str) -> int:
    """'20G', '500M', '1024' -> bytes (binary units)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    try:
        if t and t[-1] in units:
            return int(float(t[:-1]) * units[t[-1]])
        return int(t)
    except ValueError:
        raise ValueError(f"size {text!r}: expected a number with an optional K, M, G or T suffix") from None


def human(n: int) -> str:
    """Bytes for people: 512B, 1.5K, 780.1M, 3.3G (G is the largest unit)."""
    size = float(n)
    for unit in ("B", "K", "M"):
        if size < 1024:
            return f"{n}B" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}G"


# ---------------------------------------------------------------- the cache on disk


def _du(path: Path) -> int:
    if path.is_file():
        try:
            return path.stat().st_size
        except OSError:  # evicted just now by another process
            return 0
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                continue
    return total


def _mtime(*paths: Path) -> float:
    times = []
    for p in paths:
        try:
            times.append(p.stat().st_mtime)
        except OSError:
            continue
    return max(times, default=0.0)


def scan(layout: CacheLayout) -> list[Item]:
    """Published kernel entries and compiled case objects, with their size and last use. Every listing takes an
    entry another process removes meanwhile (a prune, an eviction) as gone, not as an error."""
    items: list[Item] = []
    for entry in listdir(layout.kernels):
        if entry.name.startswith(".") or not (entry / "meta.json").is_file():
            continue  # staging dirs belong to sweep_stale
        items.append(Item("kernel", entry.name, (entry,), _du(entry), _mtime(entry / LAST_USED, entry / "meta.json")))
    # Build slots and patched trees: used by every build from them (the slot's info file is rewritten then).
    trees = [t for t in listdir(layout.trees) if t.is_dir() and not t.name.startswith(".")]
    for slot in [*listdir(layout.slots), *(s for t in trees for s in listdir(t / TREE_SLOTS))]:
        if slot.is_dir() and not slot.name.startswith("."):
            items.append(Item("slot", slot.name, (slot,), _du(slot), _mtime(slot / SLOT_INFO) or _mtime(slot)))
    for tree in trees:
        used = _mtime(tree / TREE_STATE) or _mtime(tree)
        items.append(Item("tree", tree.name, (tree,), own_bytes(tree), used))
    for meta in (p for p in listdir(layout.objects) if p.suffix == ".json"):
        obj = meta.with_suffix(".o")
        paths = (meta, obj) if obj.exists() else (meta,)
        items.append(Item("object", meta.stem, paths, sum(_du(p) for p in paths), _mtime(meta)))
    return items


def own_bytes(path: Path) -> int:
    """Bytes a hard-link tree holds of its own (files linked from its source cost nothing; its build slots are
    items of their own)."""
    total = 0
    for root, dirs, files in os.walk(path):
        if root == str(path):
            dirs[:] = [d for d in dirs if d != TREE_SLOTS]
        for f in files:
            try:
                st = os.lstat(os.path.join(root, f))
            except OSError:
                continue
            if st.st_nlink == 1:
                total += st.st_size
    return total


def _tree_lock_of(item: Item, layout: CacheLayout) -> str | None:
    """The lock a build takes for the tree a slot or patched tree belongs to (harness.kernel.trees.lock_name), or
    None when it cannot be known. Derived from names that never change under a build: a patched tree's directory
    name carries the hash of its source (trees.patched_tree_dir), and a slot's info file (replaced atomically)
    names the tree make reads. Never from the patched tree's state file, which a sync removes while it holds the
    real lock."""
    import json

    if item.kind == "tree" or item.paths[0].parent.name == TREE_SLOTS:  # a slot inside its patched tree
        tree = item.paths[0] if item.kind == "tree" else item.paths[0].parent.parent
        return lock_name_of_built(tree, layout) if tree.name.startswith("patched-") else None
    try:
        tree = Path(json.loads((item.paths[0] / SLOT_INFO).read_text())["tree"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return lock_name_of_built(tree, layout)


def delete(item: Item, layout: CacheLayout) -> None:
    """Kernel entries go by renaming away first, so no reader ever sees half an entry; slots and patched trees
    only while no build holds their tree's lock."""
    if item.kind in ("slot", "tree"):
        lock = _tree_lock_of(item, layout)
        if lock is not None:  # else: which build it belongs to cannot be told now; a later prune takes it
            _evict_dir(layout, item.paths[0], lock)
    elif item.kind == "kernel":
        _evict_dir(layout, item.paths[0], item.paths[0].name)  # not while someone builds this key
    else:
        for p in item.paths:
            p.unlink(missing_ok=True)


def _evict_dir(layout: CacheLayout, path: Path, lock: str) -> None:
    """Rename `path` out of the way under `lock` (a reader then finds it gone, never half-deleted), then delete."""
    doomed = path.with_name(f".evicting-{path.name}-{os.getpid()}")
    with key_lock(layout, lock):
        try:
            os.rename(path, doomed)
        except OSError:
            return
    shutil.rmtree(doomed, ignore_errors=True)


def collect(layout: CacheLayout, policy: Policy, *, dry_run: bool = False, now: float | None = None,
            kinds: tuple[str, ...] = ("kernel", "object", "slot", "tree")) -> list[Item]:
    """Evict what `policy` says (only items of `kinds`); returns what went (or would go, with dry_run)."""
    items = [i for i in scan(layout) if i.kind in kinds]
    doomed = plan(items, policy, time.time() if now is None else now)
    if not dry_run:
        for item in doomed:
            delete(item, layout)
    return doomed
