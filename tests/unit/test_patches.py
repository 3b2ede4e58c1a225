# SPDX-License-Identifier: GPL-2.0
"""Patch series: parsing the series file, applying, skipping applied ones, naming the failing hunk."""

import subprocess
from pathlib import Path

import pytest

from harness.errors import PatchError
from harness.kernel.patches import apply_series, load_series, parse_series_text, reproduction


def test_series_parsing_skips_comments_and_reads_strip_level():
    text = "# the reference series\n0001-a.patch\n\n0002-b.patch -p0  # trailing comment\n"
    assert parse_series_text(text) == [("0001-a.patch", 1, 2), ("0002-b.patch", 0, 4)]


def test_series_unknown_option_is_an_error():
    with pytest.raises(PatchError, match=r"series:1: unknown option '--fuzz'"):
        parse_series_text("a.patch --fuzz\n")


def test_a_patch_directory_without_a_series_file_or_at_all_is_an_error(tmp_path: Path):
    """A mistyped --patches used to build the unpatched kernel under the --no-patches key."""
    with pytest.raises(PatchError, match=r"series does not exist: a patch directory needs a series file"):
        load_series(tmp_path)
    with pytest.raises(PatchError, match=r"patch directory .*/nonexistent does not exist.*--no-patches"):
        load_series(tmp_path / "nonexistent")


def test_listed_patch_that_does_not_exist(tmp_path: Path):
    (tmp_path / "series").write_text("gone.patch\n")
    with pytest.raises(PatchError, match=r"series:1: patch gone.patch is listed"):
        load_series(tmp_path)


def _make_patch(tmp: Path, name: str, path: str, old: str, new: str) -> str:
    a, b = tmp / "a", tmp / "b"
    for d, text in ((a, old), (b, new)):
        (d / Path(path).parent).mkdir(parents=True, exist_ok=True)
        (d / path).write_text(text)
    diff = subprocess.run(["diff", "-u", f"a/{path}", f"b/{path}"], cwd=tmp, capture_output=True, text=True).stdout
    (tmp / "patches").mkdir(exist_ok=True)
    (tmp / "patches" / name).write_text(diff)
    return diff


def _series_of(tmp_path: Path, *names: str):
    """The patches _make_patch wrote under tmp_path/p1, p2, ... gathered into one series, in this order."""
    pdir = tmp_path / "patches"
    pdir.mkdir()
    for n in range(1, len(names) + 1):
        for f in (tmp_path / f"p{n}" / "patches").iterdir():
            (pdir / f.name).write_text(f.read_text())
    (pdir / "series").write_text("".join(f"{name}\n" for name in names))
    return load_series(pdir)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    t = tmp_path / "tree"
    (t / "security").mkdir(parents=True)
    (t / "security" / "Makefile").write_text("".join(f"line {i}\n" for i in range(1, 30)))
    return t


def test_apply_in_order_and_detect_already_applied(tmp_path: Path, tree: Path):
    base = (tree / "security/Makefile").read_text()
    one = base.replace("line 5\n", "line 5 patched\n")
    two = one.replace("line 20\n", "line 20 patched\n")
    _make_patch(tmp_path / "p1", "0001-one.patch", "security/Makefile", base, one)
    _make_patch(tmp_path / "p2", "0002-two.patch", "security/Makefile", one, two)
    series = _series_of(tmp_path, "0001-one.patch", "0002-two.patch")
    assert apply_series(series, tree).applied == ("0001-one.patch", "0002-two.patch")
    assert (tree / "security/Makefile").read_text() == two
    again = apply_series(series, tree)
    assert again.applied == () and again.already_applied == ("0001-one.patch", "0002-two.patch")


def test_failing_patch_names_patch_file_and_hunk(tmp_path: Path, tree: Path):
    base = (tree / "security/Makefile").read_text()
    _make_patch(tmp_path, "0001-bad.patch", "security/Makefile", base.replace("line 12\n", "other\n"),
                base.replace("line 12\n", "changed\n"))
    (tmp_path / "patches" / "series").write_text("0001-bad.patch\n")
    with pytest.raises(PatchError) as e:
        apply_series(load_series(tmp_path / "patches"), tree)
    msg = str(e.value)
    assert "0001-bad.patch does not apply" in msg
    assert "security/Makefile, hunk #1 at line" in msg
    assert "patch -p1 --dry-run -d" in msg
    assert (tree / "security/Makefile").read_text() == base  # nothing half-applied


def test_reproduction_redoes_the_failure_on_a_copy_of_the_pristine_source(tmp_path: Path, tree: Path):
    """The build's own tree is gone by the time a user reads the error: the recipe starts from the source."""
    base = (tree / "security/Makefile").read_text()
    one = base.replace("line 5\n", "line 5 patched\n")
    _make_patch(tmp_path / "p1", "0001-one.patch", "security/Makefile", base, one)
    _make_patch(tmp_path / "p2", "0002-bad.patch", "security/Makefile", base.replace("line 5\n", "other\n"),
                base.replace("line 5\n", "changed\n"))
    series = _series_of(tmp_path, "0001-one.patch", "0002-bad.patch")
    work = tmp_path / "work"
    subprocess.run(["cp", "-a", str(tree), str(work)], check=True)
    with pytest.raises(PatchError) as e:
        apply_series(series, work, pristine=tree)
    assert f"cp -a {tree} /tmp/bpf-audit-harness-patch-check" in str(e.value)
    recipe = reproduction(series, series.patches[1], ["0001-one.patch"], tree, scratch=str(tmp_path / "by-hand"))
    res = subprocess.run(["sh", "-c", recipe], capture_output=True, text=True)
    assert res.returncode != 0 and "Hunk #1 FAILED" in res.stdout, res.stdout + res.stderr
    assert (tmp_path / "by-hand/security/Makefile").read_text() == one  # the first patch went in by hand too
    assert (tree / "security/Makefile").read_text() == base  # the pristine source is never touched
