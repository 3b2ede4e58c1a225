# SPDX-License-Identifier: GPL-2.0
"""Shared cache state under two real processes: staging directories, the --ref worktree and its checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from harness.kernel import cache, trees
from harness.kernel.patches import Series
from harness.kernel.source import SourceSpec, resolve
from harness.settings import REPO_ROOT, CacheLayout


def _python(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_build_never_sweeps_another_live_builds_staging_directory(tmp_path):
    """Prebuilt and mutant staging dirs used to carry no owner: another build's sweep removed them mid-build."""
    layout = CacheLayout(tmp_path / "cache")
    holder = _python("""
        import sys, time
        from pathlib import Path
        from harness.kernel import cache
        from harness.settings import CacheLayout
        with cache.staging(CacheLayout(Path(sys.argv[1])), "k1") as staged:
            (staged / "bzImage").write_text("half")
            print(staged, flush=True)
            time.sleep(30)
    """, str(layout.root))
    try:
        staged = Path(holder.stdout.readline().strip())
        assert staged.is_dir(), holder.stderr.read()
        sweeper = _python("""
            import sys
            from pathlib import Path
            from harness.kernel import cache
            from harness.settings import CacheLayout
            cache.sweep_stale(CacheLayout(Path(sys.argv[1])))
        """, str(layout.root))
        assert sweeper.wait(60) == 0, sweeper.stderr.read()
        assert (staged / "bzImage").read_text() == "half", "a live build's staging dir was swept"
    finally:
        holder.kill()
        holder.wait()
    # Its owner is gone now: the next sweep takes it. An owner-less one that was just made is spared.
    fresh = layout.kernels / ".staging-k2-fresh"
    fresh.mkdir()
    cache.sweep_stale(layout)
    assert not staged.exists() and fresh.exists()
    old = time.time() - cache.YOUNG_SECONDS - 5
    os.utime(fresh, (old, old))
    cache.sweep_stale(layout)
    assert not fresh.exists()


def _git(tree: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    return subprocess.run(["git", "-C", str(tree), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def _repo(root: Path, files: int = 300) -> tuple[Path, list[str]]:
    """A toy kernel repository with two commits (enough files that a checkout takes a moment)."""
    root.mkdir()
    (root / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\nEXTRAVERSION =\n")
    for i in range(files):
        (root / f"f{i}.c").write_text(f"int f{i};\n" * 50)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "one")
    first = _git(root, "rev-parse", "HEAD")
    (root / "f0.c").write_text("int changed;\n")
    _git(root, "commit", "-qam", "two")
    return root, [first, _git(root, "rev-parse", "HEAD")]


PREPARE = """
    import json, sys
    from pathlib import Path
    from harness.kernel import cache, trees
    from harness.kernel.patches import Series
    from harness.kernel.source import SourceSpec, resolve
    from harness.settings import CacheLayout
    layout = CacheLayout(Path(sys.argv[1]))
    src = resolve(SourceSpec.from_args(sys.argv[2], sys.argv[3]), layout)
    from harness.tools import hand_down
    with cache.key_lock(layout, trees.lock_name(src), holder="test") as lock, hand_down(lock):
        tree = trees.prepare(src, Series(Path(sys.argv[2]), ()), layout, Path(sys.argv[4]))
    print(json.dumps({"path": str(tree.path), "f0": (tree.path / "f0.c").read_text()}))
"""


def test_two_processes_preparing_one_ref_on_a_cold_cache_share_one_checkout(tmp_path):
    repo, (first, second) = _repo(tmp_path / "repo")
    layout = CacheLayout(tmp_path / "cache")
    procs = [_python(PREPARE, str(layout.root), str(repo), ref, str(tmp_path / f"log{i}"))
             for i, ref in enumerate((first, second))]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append(json.loads(out))
    assert outs[0]["path"] == outs[1]["path"]  # one worktree per repository, moved under the lock
    assert outs[0]["f0"].startswith("int f0;") and outs[1]["f0"] == "int changed;\n"
    assert _git(repo, "worktree", "list").count("\n") == 1  # the repository and that one worktree


def test_a_checkout_killed_half_way_is_redone_not_reused(tmp_path):
    repo, (first, _second) = _repo(tmp_path / "repo", files=2000)
    layout = CacheLayout(tmp_path / "cache")
    src = resolve(SourceSpec.from_args(str(repo), first), layout)
    proc = _python(PREPARE, str(layout.root), str(repo), first, str(tmp_path / "log"))
    deadline = time.monotonic() + 60
    while not (src.path / "f10.c").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.kill()  # mid-checkout (or just after it: either way the marker decides)
    proc.wait()
    marker = src.path / trees.CHECKOUT
    if marker.exists():  # the checkout finished before the kill: make it a half tree by hand
        marker.unlink()
    for f in list(src.path.glob("f1*.c"))[:50]:
        f.unlink()
    with cache.key_lock(layout, trees.lock_name(src)):  # waits for what the killed run's git still does
        tree = trees.prepare(src, Series(repo, ()), layout, tmp_path / "log2")
    assert marker.read_text().strip() == first
    assert all((tree.path / f"f{i}.c").is_file() for i in range(2000)), "a half checkout was reused"
