# SPDX-License-Identifier: GPL-2.0
"""The kernel under test is pinned (issue 21 item 1): edits git was told to hide still change a tree's identity,
and every caller of a run after the first gets the first caller's artifact. Real git, a real cache entry."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from helpers import git

from harness.kernel import cache
from harness.kernel.source import git_identity
from harness.run_kernel.session import RunDir, pin_of, pinned_kernel
from harness.settings import CacheLayout


def _pin(layout: CacheLayout, run: str, built) -> None:  # what RunSession.acquire_kernel writes for the run
    RunDir(layout.state, run).write_json("kernel.json", pin_of(built))


def _pinned(layout: CacheLayout, run: str):  # what a later caller of the run reads back
    return pinned_kernel(RunDir(layout.state, run).read_json("kernel.json") or {})


def _repo(tmp_path: Path) -> Path:
    tree = tmp_path / "linux"
    (tree / "kernel").mkdir(parents=True)
    (tree / "Makefile").write_text("VERSION = 7\nPATCHLEVEL = 3\nSUBLEVEL = 0\n")
    (tree / "kernel" / "fork.c").write_text("int fork;\n")
    (tree / "kernel" / "exit.c").write_text("int exit;\n")
    git(tree, "init", "-q")
    git(tree, "add", ".")
    git(tree, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    return tree


def test_edits_hidden_by_index_flags_change_the_identity(tmp_path):
    tree = _repo(tmp_path)
    clean = git_identity(tree)
    assert clean.startswith("git:") and "+dirty" not in clean
    for flag, rel in (("--assume-unchanged", "kernel/fork.c"), ("--skip-worktree", "kernel/exit.c")):
        git(tree, "update-index", flag, rel)
        (tree / rel).write_text((tree / rel).read_text() + "/* an edit git diff does not show */\n")
        assert subprocess.run(["git", "-C", str(tree), "diff", "HEAD", "--stat"], capture_output=True,
                              text=True).stdout == "", "the flag should hide the edit from git diff"
    ident = git_identity(tree)
    assert ident != clean and ident.endswith("+flagged:2"), ident
    (tree / "kernel" / "fork.c").write_text("int fork; /* edited again */\n")
    assert git_identity(tree) != ident, "a second edit of a flagged file went unseen"


def test_every_later_caller_of_a_run_gets_the_first_callers_artifact(tmp_path):
    layout = CacheLayout(tmp_path / "cache")
    with cache.staging(layout, "k1") as staged:
        (staged / "bzImage").write_text("x")
        entry = cache.publish(layout, "k1", staged, {"key": "k1", "release": "7.3.4"})
    assert _pinned(layout, "run-1") is None

    class Built:  # what prepare() returns, as much of it as the pin keeps
        artifact = type("A", (), {"dir": entry, "key": "k1"})()
        source = "Debian linux-source-7.3 7.3.4-1~bpo13+1"
        notes = ("a note",)

    _pin(layout, "run-1", Built)
    pinned = _pinned(layout, "run-1")
    assert pinned is not None and pinned.artifact.dir == entry and pinned.cache_hit
    assert pinned.source == Built.source and pinned.notes == ("a note",)
    assert _pinned(layout, "run-2") is None, "another run must resolve its own kernel"
    note = layout.state / "runs" / "run-1" / "kernel.json"
    note.write_text(json.dumps({"entry": str(entry), "key": "another"}))
    assert _pinned(layout, "run-1") is None, "a pin naming another key than its entry is not trusted"


def test_a_pinned_prebuilt_image_comes_back_as_one(tmp_path):
    """A matrix's prebuilt-deb kernel keeps its image inside the package root: read back from the pin as a plain
    build's artifact, it had no bzImage and every case of the 6.1 row was a lost VM (CI, 2026-12-07)."""
    layout = CacheLayout(tmp_path / "cache")
    release = "6.1.0-57-amd64"
    with cache.staging(layout, "p1") as staged:
        (staged / "root" / "boot").mkdir(parents=True)
        (staged / "root" / "boot" / f"vmlinuz-{release}").write_text("x")
        entry = cache.publish(layout, "p1", staged, {"key": "p1", "release": release, "kind": "prebuilt-deb"})

    class Built:
        artifact = type("A", (), {"dir": entry, "key": "p1"})()
        source = "linux-image-amd64 6.1.192-3"
        notes = ()

    _pin(layout, "run-p", Built)
    pinned = _pinned(layout, "run-p")
    assert pinned is not None and pinned.artifact.bzimage == entry / "root" / "boot" / f"vmlinuz-{release}"
    assert pinned.artifact.bzimage.is_file()
