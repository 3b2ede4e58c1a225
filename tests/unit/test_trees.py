# SPDX-License-Identifier: GPL-2.0
"""Patched trees and build slots on small real trees: hard-link mirrors, series switches, interrupted builds."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from harness.errors import PatchError, SourceError
from harness.kernel import build as kbuild
from harness.kernel import trees
from harness.kernel.patches import Series, load_series, with_mutant
from harness.kernel.source import SourceSpec, resolve
from harness.settings import CacheLayout


def _tree(root: Path) -> Path:
    """A tiny 'kernel tree': a Makefile with a version, a source file, a header and a subdirectory."""
    (root / "kernel").mkdir(parents=True)
    (root / "include").mkdir()
    (root / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\nEXTRAVERSION =\n")
    (root / "kernel" / "fork.c").write_text("int fork(void)\n{\n\treturn 0;\n}\n")
    (root / "include" / "audit.h").write_text("#define AUDIT_A 1\n")
    (root / "kernel" / "link.h").symlink_to("../include/audit.h")
    return root


def _diff(path: str, old: str, new: str) -> str:
    a = [f"-{line}\n" for line in old.splitlines()]
    b = [f"+{line}\n" for line in new.splitlines()]
    return f"--- a/{path}\n+++ b/{path}\n@@ -1,{len(a)} +1,{len(b)} @@\n" + "".join(a + b)


def _series(d: Path, patches: dict[str, str], mutants: dict[str, str] = ()) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, text in patches.items():
        (d / name).write_text(text)
    (d / "series").write_text("".join(f"{n}\n" for n in patches))
    for name, text in dict(mutants).items():
        (d / "mutants").mkdir(exist_ok=True)
        (d / "mutants" / f"{name}.patch").write_text(text)
    return d


NEW_FILE = ("--- /dev/null\n+++ b/kernel/added.c\n@@ -0,0 +1,1 @@\n+int added;\n")


@pytest.fixture
def setup(tmp_path):
    src = _tree(tmp_path / "src")
    pdir = _series(tmp_path / "patches", {
        "0001-header.patch": _diff("include/audit.h", "#define AUDIT_A 1", "#define AUDIT_A 1\n#define AUDIT_B 2"),
        "0002-new-file.patch": NEW_FILE,
    }, {"bug": _diff("kernel/fork.c", "int fork(void)\n{\n\treturn 0;\n}", "int fork(void)\n{\n\treturn 1;\n}")})
    layout = CacheLayout(tmp_path / "cache")
    source = resolve(SourceSpec.from_args(str(src), None), layout)
    return src, pdir, layout, source, tmp_path / "log"


def _inode(p: Path) -> int:
    return p.stat().st_ino


def test_a_patched_tree_links_the_source_and_owns_only_what_the_series_touches(setup):
    src, pdir, layout, source, log = setup
    tree = trees.prepare(source, load_series(pdir), layout, log)
    assert tree.patched and tree.path.parent == layout.trees
    assert tree.applied.applied == ("0001-header.patch", "0002-new-file.patch")
    assert _inode(tree.path / "kernel/fork.c") == _inode(src / "kernel/fork.c")  # not one byte copied
    assert (tree.path / "kernel/link.h").is_symlink()
    assert "AUDIT_B" in (tree.path / "include/audit.h").read_text()
    assert _inode(tree.path / "include/audit.h") != _inode(src / "include/audit.h")
    assert (src / "include/audit.h").read_text() == "#define AUDIT_A 1\n"  # never written through a link
    assert (tree.path / "kernel/added.c").read_text() == "int added;\n" and not (src / "kernel/added.c").exists()


def test_switching_the_series_rewrites_exactly_the_files_that_change_with_a_fresh_mtime(setup):
    src, pdir, layout, source, log = setup
    series = load_series(pdir)
    first = trees.prepare(source, series, layout, log)
    header, fork = first.path / "include/audit.h", first.path / "kernel/fork.c"
    stamps = {p: p.stat().st_mtime_ns for p in (header, fork)}
    time.sleep(0.02)
    mutant = trees.prepare(source, with_mutant(series, pdir, "bug"), layout, log)
    assert mutant.path == first.path and mutant.written == 1 and mutant.linked == 0
    assert "return 1" in fork.read_text() and fork.stat().st_mtime_ns > stamps[fork]
    assert header.stat().st_mtime_ns == stamps[header]  # unchanged content: untouched, nothing to rebuild
    assert "return 0" in (src / "kernel/fork.c").read_text()
    time.sleep(0.02)
    back = trees.prepare(source, series, layout, log)
    assert back.written == 1 and "return 0" in fork.read_text()
    # Back to the source's content, but with a new mtime: make must see that the object is out of date.
    assert fork.stat().st_mtime_ns > stamps[fork] and _inode(fork) != _inode(src / "kernel/fork.c")


def test_an_interrupted_sync_is_redone_from_the_source(setup):
    src, pdir, layout, source, log = setup
    series = load_series(pdir)
    tree = trees.prepare(source, series, layout, log)
    (tree.path / trees.STATE).unlink()  # what a sync killed half-way leaves
    (tree.path / "include/audit.h").write_text("half written")
    (tree.path / "kernel/fork.c").unlink()
    again = trees.prepare(source, series, layout, log)
    assert "AUDIT_B" in (again.path / "include/audit.h").read_text()
    assert _inode(again.path / "kernel/fork.c") == _inode(src / "kernel/fork.c")


def test_edits_to_a_directory_source_reach_its_patched_tree(setup):
    src, pdir, layout, source, log = setup
    series = load_series(pdir)
    trees.prepare(source, series, layout, log)
    (src / "kernel/fork.c").write_text("int fork(void)\n{\n\treturn 0; /* edited in place */\n}\n")
    (src / "kernel/new.c").write_text("int new;\n")
    (src / "kernel/link.h").unlink()
    edited = resolve(SourceSpec.from_args(str(src), None), layout)
    assert edited.identity != source.identity
    tree = trees.prepare(edited, series, layout, log)
    assert "edited in place" in (tree.path / "kernel/fork.c").read_text()
    assert (tree.path / "kernel/new.c").read_text() == "int new;\n"
    assert not (tree.path / "kernel/link.h").exists() and (tree.path / "kernel/added.c").exists()


def test_a_series_that_does_not_apply_names_the_patch_and_leaves_no_state(setup):
    src, pdir, layout, source, log = setup
    bad = _series(pdir.parent / "bad", {"0001-bad.patch": _diff("kernel/fork.c", "no such line", "x")})
    with pytest.raises(PatchError, match=r"0001-bad.patch does not apply: first failure in kernel/fork.c, hunk #1"):
        trees.prepare(source, load_series(bad), layout, log)
    assert not (trees.patched_tree_dir(source, layout) / trees.STATE).exists()


def test_no_series_builds_the_source_in_place_and_an_in_tree_build_is_refused(setup, tmp_path):
    src, pdir, layout, source, log = setup
    empty = Series(tmp_path, ())
    assert trees.prepare(source, empty, layout, log).path == src
    (src / ".config").write_text("CONFIG_X=y\n")
    with pytest.raises(SourceError, match=r"holds an in-tree build \(\.config\).*mrproper"):
        trees.prepare(source, empty, layout, log)


def test_a_user_tree_that_already_carries_the_series_is_built_in_place(setup):
    src, pdir, layout, source, log = setup
    series = load_series(pdir)
    for p in series.patches:
        subprocess.run(["patch", "-p1", "-i", str(p.path)], cwd=src, check=True, capture_output=True)
    tree = trees.prepare(resolve(SourceSpec.from_args(str(src), None), layout), series, layout, log)
    assert tree.path == src and not tree.patched
    assert tree.applied.already_applied == ("0001-header.patch", "0002-new-file.patch")


def _git(tree: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    return subprocess.run(["git", "-C", str(tree), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def test_untracked_files_count_in_a_git_trees_identity(setup):
    src, pdir, layout, source, log = setup
    _git(src, "init", "-q")
    _git(src, "add", "-A")
    _git(src, "commit", "-qm", "base")
    clean = resolve(SourceSpec.from_args(str(src), None), layout).identity
    assert "+dirty" not in clean
    (src / "kernel/untracked.c").write_text("int a;\n")
    one = resolve(SourceSpec.from_args(str(src), None), layout).identity
    (src / "kernel/untracked.c").write_text("int b;\n")  # same size, other content
    two = resolve(SourceSpec.from_args(str(src), None), layout).identity
    assert len({clean, one, two}) == 3
    (src / ".gitignore").write_text("*.o\n")
    _git(src, "add", ".gitignore")
    _git(src, "commit", "-qm", "ignore objects")
    ignored = resolve(SourceSpec.from_args(str(src), None), layout).identity
    (src / "kernel/fork.o").write_bytes(b"\0object")
    assert resolve(SourceSpec.from_args(str(src), None), layout).identity == ignored  # build outputs do not count


def test_a_ref_is_checked_out_under_the_lock_and_moved_between_commits(setup):
    src, pdir, layout, source, log = setup
    _git(src, "init", "-q")
    _git(src, "add", "-A")
    _git(src, "commit", "-qm", "one")
    first = _git(src, "rev-parse", "HEAD")
    (src / "kernel/fork.c").write_text("int fork(void) { return 2; }\n")
    _git(src, "commit", "-qam", "two")
    at_one = resolve(SourceSpec.from_args(str(src), first), layout)
    assert not at_one.path.exists()  # resolving a ref checks nothing out
    tree = trees.prepare(at_one, load_series(pdir), layout, log)
    assert "return 0" in (tree.path / "kernel/fork.c").read_text()
    assert "AUDIT_B" in (tree.path / "include/audit.h").read_text()
    assert (at_one.path / trees.CHECKOUT).read_text().strip() == first
    at_two = resolve(SourceSpec.from_args(str(src), "HEAD"), layout)
    assert at_two.path == at_one.path  # one worktree per repository
    tree = trees.prepare(at_two, load_series(pdir), layout, log)
    assert "return 2" in (tree.path / "kernel/fork.c").read_text()


def test_a_slot_left_by_a_killed_build_loses_only_what_that_build_wrote(tmp_path):
    slot = tmp_path / "slot"
    (slot / "kernel").mkdir(parents=True)
    old = slot / "kernel" / "fork.o"
    old.write_text("finished build")
    (slot / ".config").write_text("CONFIG_X=y\n")
    past = time.time() - 60
    os.utime(old, (past, past))
    os.utime(slot / ".config", (past, past))
    (slot / kbuild.BUILDING).write_text("123\n")
    half = slot / "kernel" / "exit.o"
    half.write_text("half")
    assert kbuild.recover_interrupted(slot) == 1
    assert old.exists() and (slot / ".config").exists() and not half.exists()
    assert not (slot / kbuild.BUILDING).exists() and kbuild.recover_interrupted(slot) is None


def test_a_build_killed_before_make_wrote_anything_is_still_reported_as_interrupted(tmp_path):
    slot = tmp_path / "slot"
    slot.mkdir()
    (slot / kbuild.BUILDING).write_text("123\n")
    assert kbuild.recover_interrupted(slot) == 0  # 0 files, but an interrupted build: the caller says so
    assert kbuild.recover_interrupted(slot) is None
