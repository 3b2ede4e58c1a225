# SPDX-License-Identifier: GPL-2.0
"""The tree make reads: the source as is, or one persistent patched tree per source kept in sync with the series.

A patched tree is a hard-link mirror of its source (no bytes copied) in which only the files the series touches
are real files of their own. Syncing it to another series (a mutant, an edited patch) rewrites exactly the files
whose content changes, with a fresh mtime, so kbuild's own dependency tracking rebuilds what the change needs
and nothing else. A file is never written through a hard link: the source tree stays pristine.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import SourceError
from harness.kernel.patches import ApplyResult, Series, already_applied, apply_series
from harness.kernel.source import SourceTree
from harness.settings import CacheLayout
from harness.tools import child_kwargs

STATE = ".harness-tree.json"
CHECKOUT = ".harness-checkout"
# A patched tree's build slots live inside it: kbuild then reaches the tree from every slot by the same relative
# path (../..), so ccache (CCACHE_BASEDIR = the tree) finds the objects of a tree at another path, or of another
# source of the same kernel. The mirror never touches this directory.
SLOTS = ".harness-slots"
# What kbuild itself refuses to build out of tree from (`make mrproper` removes them).
IN_TREE_BUILD_STATE = (".config", "include/config", "arch/x86/include/generated")


@dataclass(frozen=True)
class BuildTree:
    """The source tree make reads (srctree) and how it came to be."""

    path: Path
    applied: ApplyResult
    patched: bool  # a harness-kept patched tree (False: the source itself, read in place)
    linked: int = 0  # files hard-linked (or copied, across file systems) into a patched tree by this sync
    written: int = 0  # files written or removed because the series changes them


def lock_name(source: SourceTree) -> str:
    """One lock per place make reads from: the tree, its patched mirror and their build slots."""
    return "tree-" + hashlib.sha256(str(source.path).encode()).hexdigest()[:16]


def lock_name_of_built(tree: Path, layout: CacheLayout) -> str:
    """lock_name for the tree make ran in (a kernel's meta `tree`, a slot's info): a patched mirror's name carries
    its source's hash (patched_tree_dir); a tree read in place is its own source."""
    if tree.parent == layout.trees and tree.name.startswith("patched-"):
        return "tree-" + tree.name.removeprefix("patched-")
    return "tree-" + hashlib.sha256(str(tree).encode()).hexdigest()[:16]


def prepare(source: SourceTree, series: Series, layout: CacheLayout, log: Path) -> BuildTree:
    """The tree to build `source` + `series` from. Call with the tree lock (lock_name) held."""
    if source.spec.kind == "git":
        checkout(source, log)
    if not series.patches:
        _require_clean(source)
        return BuildTree(source.path, ApplyResult((), ()), patched=False)
    if source.spec.kind == "dir" and already_applied(series, source.path):
        _require_clean(source)
        names = tuple(p.name for p in series.patches)
        return BuildTree(source.path, ApplyResult((), names), patched=False)
    _require_clean(source)
    dest = patched_tree_dir(source, layout)
    return sync(source, series, dest, log)


def patched_tree_dir(source: SourceTree, layout: CacheLayout) -> Path:
    return layout.trees / ("patched-" + hashlib.sha256(str(source.path).encode()).hexdigest()[:16])


def _require_clean(source: SourceTree) -> None:
    found = [rel for rel in IN_TREE_BUILD_STATE if (source.path / rel).exists()]
    if found:
        raise SourceError(
            f"{source.path} holds an in-tree build ({', '.join(found)}): kbuild builds out of tree (make O=...) only "
            f"from a clean source tree. Run `make -C {source.path} mrproper` (your .config goes too: save it first), "
            "or point --kernel-src at a clean tree (`git worktree add`).")


# -- a git ref: one worktree per repository, moved between commits ---------------------------------------------

def checkout(source: SourceTree, log: Path) -> None:
    """Put the ref's worktree at its commit (created on first use). Interrupted checkouts are redone: the marker
    naming the commit is written only after git finished."""
    wt, commit = source.path, source.identity.removeprefix("git:")
    marker = wt / CHECKOUT
    if marker.is_file() and marker.read_text().strip() == commit:
        return
    repo = source.spec.path
    moving = marker.is_file() and (wt / ".git").exists()  # a finished checkout of another commit
    marker.unlink(missing_ok=True)
    if moving:  # only the files that differ between the commits are rewritten: the next build is incremental
        _git_logged(wt, log, "checkout", "--force", "--detach", commit)
        _git_logged(wt, log, "clean", "-fdq", "--exclude", CHECKOUT)
    else:  # new, or a checkout that was interrupted (its state is unknown: a lock file, half the files)
        shutil.rmtree(wt, ignore_errors=True)
        wt.parent.mkdir(parents=True, exist_ok=True)
        # A killed `worktree add` leaves its entry locked ("initializing") with an index.lock: unlock it so
        # that prune drops the whole entry, instead of a new add reusing it and failing on the lock.
        subprocess.run(["git", "-C", str(repo), "worktree", "unlock", str(wt)], capture_output=True, check=False)
        _git_logged(repo, log, "worktree", "prune")
        _git_logged(repo, log, "worktree", "add", "--detach", "--force", str(wt), commit)
    marker.write_text(commit + "\n")


def _git_logged(tree: Path, log: Path, *args: str) -> None:
    with log.open("a") as f:
        f.write(f"$ git -C {tree} {' '.join(args)}\n")
        f.flush()
        res = subprocess.run(["git", "-C", str(tree), *args], stdout=f, stderr=subprocess.STDOUT, check=False,
                             **child_kwargs())
    if res.returncode != 0:
        raise SourceError(f"git {' '.join(args)} in {tree} failed (exit {res.returncode}); see the log.", log_path=log)


# -- the patched tree ------------------------------------------------------------------------------------------

_DIFF_PATH = re.compile(r"^(?:---|\+\+\+) (\S+)", re.M)


def touched_files(series: Series) -> set[str]:
    """Tree-relative paths every patch of the series reads or writes (after its -pN strip)."""
    out: set[str] = set()
    for patch in series.patches:
        for raw in _DIFF_PATH.findall(patch.path.read_text(errors="replace")):
            if raw == "/dev/null":
                continue
            parts = raw.split("/")[patch.strip:]
            if parts:
                out.add("/".join(parts))
    return out


def _read_state(dest: Path) -> dict:
    try:
        return json.loads((dest / STATE).read_text())
    except (OSError, ValueError):
        return {}


def sync(source: SourceTree, series: Series, dest: Path, log: Path) -> BuildTree:
    """Bring the patched tree `dest` to exactly source + series, touching only what differs."""
    state = _read_state(dest)
    complete = state.get("source") == str(source.path) and (dest / "Makefile").exists()
    touched_before = set(state.get("touched", ())) if complete else set()
    touched = touched_files(series) | touched_before
    # The state says "unknown" while we change the tree: an interrupted sync is redone from the mirror.
    dest.mkdir(parents=True, exist_ok=True)
    (dest / STATE).unlink(missing_ok=True)
    linked = 0
    if not complete or state.get("source_identity") != source.identity:
        linked = mirror(source.path, dest, skip=touched)
    written = 0
    with tempfile.TemporaryDirectory(prefix="harness-series-") as tmp:
        scratch = Path(tmp)
        applied = _apply_to_scratch(series, source.path, touched, scratch, log)
        for rel in sorted(touched):
            want, have = scratch / rel, dest / rel
            if not want.is_file():
                if have.exists() or have.is_symlink():
                    have.unlink()
                    written += 1
                continue
            if have.is_file() and not have.is_symlink() and _same_file_content(have, want):
                continue
            _write_fresh(have, want)
            written += 1
    (dest / STATE).write_text(json.dumps({"source": str(source.path), "source_identity": source.identity,
                                          "series": [list(p) for p in series.key_material()],
                                          "touched": sorted(touched_files(series))}, indent=1))
    with log.open("a") as f:
        f.write(f"== patched tree {dest}: {linked} files mirrored from {source.path}, {written} written by the "
                f"series ({', '.join(applied.applied) or 'no patches'})\n")
    return BuildTree(dest, applied, patched=True, linked=linked, written=written)


def _apply_to_scratch(series: Series, base: Path, touched: set[str], scratch: Path, log: Path) -> ApplyResult:
    """Apply the series to a scratch copy of just the files it touches (from the source `base`)."""
    for rel in touched:
        src = base / rel
        if src.is_file():
            (scratch / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, scratch / rel)
    return apply_series(series, scratch, log, pristine=base)


def _same_file_content(a: Path, b: Path) -> bool:
    sa, sb = a.stat(), b.stat()
    if sa.st_size != sb.st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            x, y = fa.read(1 << 16), fb.read(1 << 16)
            if x != y:
                return False
            if not x:
                return True


def _write_fresh(dest: Path, content_from: Path) -> None:
    """A new inode with a fresh mtime (never through a hard link into the source; never an old mtime, which
    would hide the change from make)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.harness-tmp")
    shutil.copyfile(content_from, tmp)
    shutil.copymode(content_from, tmp)
    os.replace(tmp, dest)


def mirror(src: Path, dest: Path, *, skip: set[str] | frozenset[str] = frozenset()) -> int:
    """Make `dest` a hard-link mirror of `src` (without .git and without `skip`): link what is missing or no
    longer the same file, remove what `src` no longer has. Returns how many files were linked or copied."""
    seen_dirs: set[str] = {""}
    seen_files: set[str] = set()
    changed = _link_missing(str(src), str(dest), skip, seen_dirs, seen_files)
    # What the source no longer has (the series' own files are the sync's business, not the mirror's).
    _remove_gone(str(dest), skip, seen_dirs, seen_files)
    return changed


def _walk_rel(top: str, drop: tuple[str, ...]):
    """os.walk of `top` with each directory's path relative to it ("" for the top), without `drop` at the top."""
    for root, dirs, files in os.walk(top):
        rel_root = os.path.relpath(root, top)
        rel_root = "" if rel_root == "." else rel_root
        if rel_root == "":
            dirs[:] = [d for d in dirs if d not in drop]
        yield root, rel_root, dirs, files


def _link_missing(src_s: str, dest_s: str, skip, seen_dirs: set[str], seen_files: set[str]) -> int:
    changed = 0
    cross_device = os.stat(src_s).st_dev != os.stat(dest_s).st_dev
    for root, rel_root, dirs, files in _walk_rel(src_s, (".git", SLOTS)):
        if rel_root == "":
            files = [f for f in files if f not in (".git", STATE, CHECKOUT)]
        for d in dirs:
            rel = os.path.join(rel_root, d)
            if os.path.islink(os.path.join(root, d)):
                files.append(d)  # a symlink to a directory is mirrored as the link (os.walk does not enter it)
                continue
            seen_dirs.add(rel)
            os.makedirs(os.path.join(dest_s, rel), exist_ok=True)
        for f in files:
            rel = os.path.join(rel_root, f)
            seen_files.add(rel)
            s, t = os.path.join(root, f), os.path.join(dest_s, rel)
            if rel not in skip and not _mirrored(s, t, cross_device):
                _place(s, t, cross_device)
                changed += 1
    return changed


def _remove_gone(dest_s: str, skip, seen_dirs: set[str], seen_files: set[str]) -> None:
    gone_dirs: list[str] = []
    for root, rel_root, dirs, files in _walk_rel(dest_s, (SLOTS,)):  # the build slots kept inside the tree
        for f in files:
            rel = os.path.join(rel_root, f)
            if rel not in seen_files and rel not in skip and not (rel_root == "" and f == STATE):
                os.unlink(os.path.join(root, f))
        for d in list(dirs):
            rel, path = os.path.join(rel_root, d), os.path.join(root, d)
            if os.path.islink(path):
                dirs.remove(d)
                if rel not in seen_files:
                    os.unlink(path)
            elif rel not in seen_dirs:
                gone_dirs.append(path)
    for path in reversed(gone_dirs):  # deepest first
        try:
            os.rmdir(path)
        except OSError:
            pass  # still holds a file the series added


def _mirrored(s: str, t: str, cross_device: bool) -> bool:
    try:
        ts = os.lstat(t)
    except FileNotFoundError:
        return False
    ss = os.lstat(s)
    if os.path.islink(s):
        return os.path.islink(t) and os.readlink(s) == os.readlink(t)
    if cross_device:
        return ts.st_size == ss.st_size and ts.st_mtime_ns == ss.st_mtime_ns and ts.st_mode == ss.st_mode
    return ts.st_ino == ss.st_ino and ts.st_dev == ss.st_dev


def _place(s: str, t: str, cross_device: bool) -> None:
    if os.path.lexists(t):
        os.unlink(t)
    if os.path.islink(s):
        os.symlink(os.readlink(s), t)
    elif cross_device:
        shutil.copy2(s, t)
    else:
        try:
            os.link(s, t)
        except OSError:
            shutil.copy2(s, t)
