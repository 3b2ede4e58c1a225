# SPDX-License-Identifier: GPL-2.0
"""Source stage: a git ref in its own worktree (user's checkout untouched), dirty trees, tarballs, bad paths."""

import subprocess
import tarfile
from pathlib import Path

import pytest

from harness.errors import SourceError
from harness.kernel.source import SourceSpec, resolve
from harness.settings import CacheLayout

MAKEFILE = "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = {sub}\nEXTRAVERSION =\n"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "linux"
    r.mkdir()
    git(r, "init", "-q")
    git(r, "config", "user.email", "t@example.invalid")
    git(r, "config", "user.name", "t")
    for sub in (1, 2):
        (r / "Makefile").write_text(MAKEFILE.format(sub=sub))
        git(r, "add", "Makefile")
        git(r, "commit", "-qm", f"v6.12.{sub}")
        git(r, "tag", f"v6.12.{sub}")
    return r


def test_git_ref_is_checked_out_in_a_worktree_and_the_checkout_is_untouched(repo: Path, tmp_path: Path):
    layout = CacheLayout(tmp_path / "cache")
    head_before = git(repo, "rev-parse", "HEAD")
    tree = resolve(SourceSpec.from_args(str(repo), "v6.12.1"), layout)
    assert tree.kernelversion == "6.12.1"
    assert tree.identity == f"git:{git(repo, 'rev-parse', 'v6.12.1')}"
    assert tree.path.is_relative_to(layout.sources)
    assert git(repo, "rev-parse", "HEAD") == head_before
    assert "SUBLEVEL = 2" in (repo / "Makefile").read_text()
    assert git(repo, "status", "--porcelain") == ""


def test_dirty_tree_changes_identity(repo: Path, tmp_path: Path):
    layout = CacheLayout(tmp_path / "cache")
    clean = resolve(SourceSpec.from_args(str(repo), None), layout)
    (repo / "Makefile").write_text(MAKEFILE.format(sub=2) + "# local edit\n")
    dirty = resolve(SourceSpec.from_args(str(repo), None), layout)
    assert clean.identity != dirty.identity and "+dirty:" in dirty.identity


def test_tarball_identity_is_its_hash_and_unpack_is_reused(tmp_path: Path):
    src = tmp_path / "linux-source-6.12"
    src.mkdir()
    (src / "Makefile").write_text(MAKEFILE.format(sub=7))
    tarball = tmp_path / "linux-source-6.12.tar.xz"
    with tarfile.open(tarball, "w:xz") as t:
        t.add(src, arcname="linux-source-6.12")
    layout = CacheLayout(tmp_path / "cache")
    first = resolve(SourceSpec.from_args(str(tarball), None), layout)
    again = resolve(SourceSpec.from_args(str(tarball), None), layout)
    assert first.identity.startswith("tarball:") and first.identity == again.identity
    assert first.path == again.path and first.kernelversion == "6.12.7"


def test_missing_source_is_a_clear_error(tmp_path: Path):
    with pytest.raises(SourceError, match="does not exist"):
        resolve(SourceSpec.from_args(str(tmp_path / "nope"), None), CacheLayout(tmp_path))
    with pytest.raises(SourceError, match="--ref needs --kernel-src"):
        SourceSpec.from_args(None, "v6.12")
