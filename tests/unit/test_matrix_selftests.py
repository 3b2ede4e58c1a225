# SPDX-License-Identifier: GPL-2.0
"""`matrix --suite selftests` without a kernel: options, each target's selftests tree, files, reports from JUnit."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers import DATA, HARNESS, USAGE, cli
from selftests_tree import BPF, make_tree

from harness.campaigns.matrix import spec as matrix_spec
from harness.campaigns.matrix.formats import to_junit, to_summary
from harness.campaigns.matrix.report import KernelRun, Report
from harness.campaigns.matrix.run import (
    MatrixOptions,
    judge_dir,
    report_from_dir,
    save_target_meta,
    suite_argv,
    write_outputs,
)
from harness.campaigns.matrix.selftests import (
    SUMMARY_JSON,
    absent_note,
    parse_names,
    rerun_args,
    resolve_tree,
    select,
    tree_choice,
    write_summary,
)
from harness.campaigns.selftests import select_files
from harness.errors import SourceError, UsageError
from harness.kernel.apt import parse_madison
from harness.kernel.prebuilt import source_package, source_resolution
from harness.selftests.listing import SelftestsError
from harness.settings import CacheLayout
from harness.status import Status

MATRIX = matrix_spec.load()
RECORDED = DATA / "matrix" / "6.1-debian-selftests-test_global_func1.junit.xml"


def test_parse_names_keeps_order_and_drops_repeats() -> None:
    assert parse_names(None) == ()
    assert parse_names("verifier_and, verifier_lsm,verifier_and") == ("verifier_and", "verifier_lsm")
    with pytest.raises(UsageError, match="names no file"):
        parse_names(" , ")


@pytest.mark.parametrize("args, message", [
    (["--selftests", "verifier_and"], "--selftests only goes with --suite selftests"),
    (["--known-differences", "k.toml"], "--known-differences only goes with --suite selftests"),
    (["--suite", "selftests", "--cases", "cases"], "--cases is for --suite cases"),
    (["--suite", "selftests", "--selftests", ","], "names no file"),
    (["--suite", "selftests", "--known-differences", "/nonexistent/k.toml"], "does not exist"),
    (["--suite", "selftests", "--targets", "nope"], "no kernel target 'nope'"),
])
def test_usage_errors_run_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "out"
    res = cli("matrix", *args, "--out", str(out), "--cache-dir", str(tmp_path / "cache"))
    assert res.returncode == USAGE, res.stderr
    assert message in res.stderr and "Traceback" not in res.stderr
    assert not out.exists() and not (tmp_path / "cache").exists()


def test_suite_is_a_choice() -> None:
    res = cli("matrix", "--suite", "bogus")
    assert res.returncode == USAGE and "invalid choice: 'bogus'" in res.stderr


def test_build_targets_take_their_own_source() -> None:
    c = tree_choice(MATRIX.get("6.12-series"), {})
    assert (c.kernel_src, c.ref, c.image_version) == ("debian-6.12", None, None)
    assert "Debian's linux-source-6.12 (debian-6.12, bookworm-security" in c.describe()
    assert "linux-source-7.3 (debian-7.3, trixie-backports" in tree_choice(MATRIX.get("7.3-plain"), {}).describe()
    git = matrix_spec.KernelTarget("mine", "build", source="/src/linux", ref="v6.13")
    c = tree_choice(git, {"image_version": "ignored"})
    assert (c.kernel_src, c.ref, c.image_version) == ("/src/linux", "v6.13", None)
    assert c.describe().startswith("/src/linux@v6.13")


def test_a_prebuilt_target_takes_the_source_package_of_its_image() -> None:
    t = MATRIX.get("6.1-debian")
    c = tree_choice(t, {"image_version": "6.1.192-2", "image_package": "linux-image-6.1.0-56-amd64"})
    assert c.image_version == "6.1.192-2" and c.kernel_src is None
    assert "linux-source-6.1 of 6.1.192-2" in c.describe()
    with pytest.raises(SelftestsError, match="names no image_version"):
        tree_choice(t, {})


MADISON = """\
linux-source-6.1 |  6.1.192-3 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
linux-source-6.1 |  6.1.192-2 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
linux-source-6.1 |  6.1.190-1 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
"""


def test_source_package_version_follows_the_image() -> None:
    assert source_package("6.1.192-2") == "linux-source-6.1"
    assert source_package("6.12.117-1~deb12u1") == "linux-source-6.12"
    available = parse_madison(MADISON, "linux-source-6.1")
    exact = source_resolution("6.1.192-2", available)
    assert (exact.package, exact.version, exact.note) == ("linux-source-6.1", "6.1.192-2", "")
    other = source_resolution("6.1.192-1", available)  # the archive dropped that revision: same upstream kernel
    assert other.version == "6.1.192-3" and "same upstream kernel 6.1.192" in other.note
    with pytest.raises(SourceError, match="linux-source-6.1 6.1.191-1 is not in the archive"):
        source_resolution("6.1.191-1", available)  # never another upstream kernel's selftests


def test_a_source_that_cannot_be_had_is_a_selftests_error(tmp_path: Path) -> None:
    missing = matrix_spec.KernelTarget("mine", "build", source=str(tmp_path / "nope"))
    with pytest.raises(SelftestsError) as e:
        resolve_tree(tree_choice(missing, {}), CacheLayout(tmp_path / "cache"), tmp_path / "log")
    assert "no selftests tree" in str(e.value) and "nope" in str(e.value)


def test_a_build_targets_directory_is_its_tree(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    t = matrix_spec.KernelTarget("mine", "build", source=str(tree))
    got, packages, notes = resolve_tree(tree_choice(t, {}), CacheLayout(tmp_path / "cache"), tmp_path / "log")
    assert (got, packages, notes) == (tree.resolve(), {}, ())


def test_files_a_tree_lacks_are_left_out_and_said(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    chosen = select(tree, ["foo_success", "verifier_and"])
    assert chosen.names == ["foo_success"] and chosen.absent == ("verifier_and",)
    assert chosen.files == ((tree / BPF / "progs" / "foo_success.c").resolve(),)
    assert "not in this tree's RUN_TESTS set (not run here): verifier_and" in absent_note(chosen)[0]
    with pytest.raises(SelftestsError, match="none of verifier_and, verifier_lsm is in the RUN_TESTS set"):
        select(tree, ["verifier_and", "verifier_lsm"])
    with pytest.raises(SelftestsError, match="no tools/testing/selftests/bpf/prog_tests"):
        select(tmp_path / "empty", [])
    every = select(tree, [])  # the whole set, less what a RUN_TESTS call names but progs/ lacks
    assert len(every.files) > 1 and every.absent == ("bar_missing",)
    with pytest.raises(UsageError, match="verifier_and"):
        select_files(tree, ["verifier_and"])  # the selftests command itself still refuses it


def test_inner_run_roots_node_ids_in_the_tree(tmp_path: Path) -> None:
    opts = MatrixOptions(out_dir=tmp_path, suite="selftests")
    root = tmp_path / "tree" / BPF
    t = MATRIX.get("6.12-series")
    argv = suite_argv(t, MATRIX.path, opts, tmp_path / "j.xml", [str(root / "progs/a.c")], 2, root)
    assert argv[argv.index("--rootdir") + 1] == str(root)
    assert argv[argv.index("--dist") + 1] == "loadfile" and argv[argv.index("-n") + 1] == "2"
    assert "--dist" not in suite_argv(t, MATRIX.path, opts, tmp_path / "j.xml", ["x"], 1, root)
    assert "--rootdir" not in suite_argv(t, MATRIX.path, opts, tmp_path / "j.xml", ["cases"], 2)
    assert rerun_args(root, ["progs/a.c::x [unpriv]"]) == [str(root / "progs/a.c::x [unpriv]")]


def _recorded_dir(tmp_path: Path) -> Path:
    """A matrix output directory: 6.1-debian with the JUnit file `matrix --suite selftests --targets 6.1-debian
    --selftests test_global_func1,verifier_and -n 1` wrote (recorded as is: 6.1's own tree, which has no
    verifier_and), and a 6.12-series whose selftests tree could not be had."""
    out = tmp_path / "m"
    (out / "6.1-debian").mkdir(parents=True)
    (out / "6.1-debian" / "junit.xml").write_text(RECORDED.read_text())
    save_target_meta(KernelRun("6.1-debian", "d", "6.1.0-56-amd64", packages=(("linux-source-6.1", "6.1.192-2"),),
                               version_notes=("selftests not in this tree's RUN_TESTS set (not run here): "
                                              "verifier_and",)), out / "6.1-debian")
    save_target_meta(KernelRun("6.12-series", "d", "6.12.117",
                               error="selftests stage failed: no selftests tree (Debian's linux-source-6.12): gone"),
                     out / "6.12-series")
    return out


def test_reports_from_a_recorded_selftests_run(tmp_path: Path) -> None:
    out = _recorded_dir(tmp_path)
    report = report_from_dir(out, (MATRIX.get("6.12-series"), MATRIX.get("6.1-debian")), (), title="T")
    series, old = report.kernels
    assert [c.case for c in old.cells] == ["progs/test_global_func1.c::global_func1"]
    assert old.counts()[Status.PASS] == 1 and not old.error
    assert series.error.startswith("selftests stage failed: no selftests tree") and not series.cells
    grid = dict(report.grid())
    assert grid["progs/test_global_func1.c::global_func1"][0].status is Status.MISSING  # never a pass
    assert not report.ok() and report.overall() == "FAILURES" and not report.failures()
    from harness.cli.commands import _matrix_exit

    assert _matrix_exit(report) == HARNESS
    junit = to_junit(report)
    assert 'classname="progs/test_global_func1.c"' in junit and 'name="kernel setup"' in junit
    text = to_summary(report)
    assert text.startswith("T: FAILURES") and "linux-source-6.1 6.1.192-2" in text
    assert "not run here): verifier_and" in text
    paths = write_outputs(report, out)
    assert all(p.is_file() for p in paths.values())


def test_per_kernel_summary_is_the_selftests_commands(tmp_path: Path) -> None:
    out = _recorded_dir(tmp_path)
    tdir = out / "6.1-debian"
    from harness.campaigns.selftests import Selection

    files = tuple(Path("/t") / BPF / "progs" / f"{n}.c" for n in ("test_global_func1", "test_global_func2"))
    summary = write_summary(tdir, Selection(Path("/t"), files), tdir / "junit.xml", (), {"kernel": "k"})
    assert list(summary.files) == ["test_global_func1", "test_global_func2"]
    assert summary.files["test_global_func1"]["passed"] == 1
    assert summary.files["test_global_func2"]["error"] == 1  # selected, no result: never a silent pass
    assert (tdir / SUMMARY_JSON).is_file() and "test_global_func1" in (tdir / "selftests.txt").read_text()


def test_report_of_a_failing_selftest_exits_1(tmp_path: Path) -> None:
    text = RECORDED.read_text()
    first = text.index("<testcase ")
    end = text.index(">", first)
    if text[end - 1] == "/":  # <testcase .../>: give it a failure
        text = text[:end - 1] + '><failure message="x: boom">boom</failure></testcase>' + text[end + 1:]
    else:
        text = text[:end + 1] + '<failure message="x: boom">boom</failure>' + text[end + 1:]
    tdir = tmp_path / "6.1-debian"
    tdir.mkdir()
    (tdir / "junit.xml").write_text(text)
    run = judge_dir(tdir, (), kernel="6.1-debian")
    from harness.cli.commands import _matrix_exit

    assert _matrix_exit(Report((run,))) == 1 and run.counts()[Status.FAIL] == 1


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
