# SPDX-License-Identifier: GPL-2.0
"""Patch series: parsing the series file, applying, skipping applied ones, naming the failing hunk."""

import subprocess
from pathlib import Path

import pytest

from harness.errors import PatchError
from harness.kernel.patches import (
    apply_series,
    lines_with_series,
    load_series,
    parse_series_text,
    reproduction,
    series_dir,
)


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


# -- which series: one per kernel line under the patches root ----------------------------------------------------

def _root(tmp_path: Path, *lines: str) -> Path:
    root = tmp_path / "patches"
    root.mkdir(parents=True)
    for line in lines:
        (root / line).mkdir(parents=True)
        (root / line / "series").write_text("")
    return root


def test_the_series_of_the_trees_kernel_line_is_picked(tmp_path: Path):
    root = _root(tmp_path, "6.12", "7.3")
    assert series_dir(root, "7.3") == root / "7.3" and series_dir(root, "6.12") == root / "6.12"
    (root / "7.30").mkdir()  # not a line with a series: ignored
    (root / "mutants").mkdir()
    assert lines_with_series(root) == ["6.12", "7.3"]


def test_a_directory_holding_a_series_itself_is_used_for_any_tree(tmp_path: Path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "series").write_text("")
    assert series_dir(mine, "7.3") == mine and series_dir(mine, "6.1") == mine


def test_a_line_without_a_series_is_a_usage_error_naming_the_lines_that_have_one(tmp_path: Path):
    root = _root(tmp_path, "6.12")
    with pytest.raises(PatchError) as e:
        series_dir(root, "7.3")
    msg = str(e.value)
    assert f"no patch series for Linux 7.3 in {root}: {root / '7.3' / 'series'} does not exist" in msg
    assert f"series exist for 6.12 ({root / '6.12' / 'series'})" in msg and "--no-patches" in msg
    assert e.value.exit_code == 2
    with pytest.raises(PatchError, match="no kernel line has one there"):
        series_dir(_root(tmp_path / "empty"), "7.3")
    with pytest.raises(PatchError, match="does not exist. Check the path"):
        series_dir(tmp_path / "nope", "7.3")


def test_the_shipped_patches_root_has_a_series_per_line_and_mutants_beside_it():
    from harness.settings import DEFAULT_PATCHES_DIR

    assert DEFAULT_PATCHES_DIR.name == "patches" and not (DEFAULT_PATCHES_DIR / "series").exists()
    assert {"6.12", "7.3"} <= set(lines_with_series(DEFAULT_PATCHES_DIR))
    assert (DEFAULT_PATCHES_DIR / "7.3" / "mutants").is_dir()  # the default line's: `mutants` runs there
    for line in lines_with_series(DEFAULT_PATCHES_DIR):
        load_series(DEFAULT_PATCHES_DIR / line)  # every listed patch exists


def test_the_request_takes_the_series_of_its_sources_line(tmp_path: Path):
    """--patches ROOT with a tree: the tree's Makefile says its line; the default kernel's line is in its name."""
    from harness.kernel.request import KernelOptions, series_directory

    root = _root(tmp_path, "6.12")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 3\n")
    opts = KernelOptions(kernel_src=str(tree), patches_dir=root, cache_dir=tmp_path / "cache")
    assert series_directory(opts) == root / "6.12"
    with pytest.raises(PatchError, match="no patch series for Linux 7.3"):
        series_directory(KernelOptions(patches_dir=root, cache_dir=tmp_path / "cache"))  # the default: debian-7.3


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
