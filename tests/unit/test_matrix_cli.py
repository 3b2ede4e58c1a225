# SPDX-License-Identifier: GPL-2.0
"""--kernel-target in pytest, `matrix --report-only`, `build --print-key`: the matrix plumbing without booting."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import DATA

from harness.campaigns.matrix import spec as matrix_spec
from harness.campaigns.matrix.report import KernelRun
from harness.campaigns.matrix.run import MatrixOptions, report_from_dir, save_target_meta, suite_argv

pytest_plugins = ["pytester"]
MATRIX_DATA = DATA / "matrix"
CLI = [sys.executable, "-m", "harness.cli"]


@pytest.mark.parametrize("args, message", [
    (["--kernel-target", "nope"], "no kernel target 'nope'"),
    (["--kernel-target", "6.12-plain", "--no-patches"], "--kernel-target 6.12-plain already says which kernel"),
    (["--kernel-target", "6.1-debian", "--kernel-src", "/x"], "drop --kernel-src"),
    (["--kernel-matrix", "m.toml"], "--kernel-matrix needs --kernel-target NAME"),
])
def test_bad_kernel_target_options_are_usage_errors(pytester, args, message):
    result = pytester.runpytest("--collect-only", "-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_kernel_target_selects_the_targets_kernel(pytester):
    pytester.makepyfile(test_opts="""
        from harness.plugin import kernel_target


        def test_opts(kernel_options, pytestconfig):
            t = kernel_target(pytestconfig)
            assert (t.name, t.kind) == ("6.12-plain", "build")
            assert kernel_options.no_patches is True and kernel_options.kernel_src is None
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--kernel-target", "6.12-plain")
    result.assert_outcomes(passed=1)


def test_suite_argv_names_target_matrix_and_junit(tmp_path):
    m = matrix_spec.load()
    t = m.get("6.1-debian")
    opts = MatrixOptions(out_dir=tmp_path, cache_dir=tmp_path / "c", extra_pytest=("-x",))
    argv = suite_argv(t, m.path, opts, tmp_path / "j.xml", ["cases"], 2)
    assert argv[:4] == [sys.executable, "-m", "pytest", "cases"]
    for pair in (["--kernel-target", "6.1-debian"], ["--kernel-matrix", str(m.path)], ["-n", "2"],
                 ["--harness-cache", str(tmp_path / "c")], ["-o", "junit_family=xunit2"]):
        i = argv.index(pair[0])
        assert argv[i:i + 2] == pair
    assert f"--junitxml={tmp_path / 'j.xml'}" in argv and argv[-1] == "-x"
    assert "-n" not in suite_argv(t, m.path, opts, tmp_path / "j.xml", ["x"], 1)


def _results_dir(tmp_path: Path) -> Path:
    """A matrix output directory as CI's kernel jobs leave it: one kernel with a rerun, one whose build failed."""
    out = tmp_path / "matrix"
    series = out / "6.12-series"
    series.mkdir(parents=True)
    shutil.copy(MATRIX_DATA / "6.12-series-serial-case-timeout-lost-vm.junit.xml", series / "junit.xml")
    shutil.copy(MATRIX_DATA / "6.12-series-serial-rerun-passes.junit.xml", series / "rerun-1.junit.xml")
    save_target_meta(KernelRun("6.12-series", "series", "6.12.117", seconds=12.0, artifact_key="k1"), series)
    save_target_meta(KernelRun("6.12-plain", "plain", error="build stage failed: make failed (exit 2)"),
                     out / "6.12-plain")
    return out


def test_report_from_dir(tmp_path):
    m = matrix_spec.load()
    report = report_from_dir(_results_dir(tmp_path), m.targets, ())
    series, plain, deb = report.kernels
    assert series.release == "6.12.117" and series.artifact_key == "k1"
    assert [(c.case, c.status, c.attempts) for c in series.cells] == [
        ("cases/audit/serial.bpf.c::grouped_with_syscall", "flaky", ("fail", "pass"))]
    assert plain.error == "build stage failed: make failed (exit 2)"
    assert deb.error.startswith("no results: ") and deb.error.endswith("6.1-debian/junit.xml does not exist")


def test_cli_report_only_writes_all_outputs_and_fails_on_a_kernel_that_did_not_run(tmp_path):
    out = _results_dir(tmp_path)
    res = subprocess.run([*CLI, "matrix", "--report-only", str(out)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stderr
    assert "cases/audit/serial.bpf.c::grouped_with_syscall  FLAKY" in res.stdout
    assert "6.12-plain (?): no results [ERROR: build stage failed" in res.stdout
    for name in ("matrix.junit.xml", "matrix.json", "matrix.html", "matrix.txt"):
        assert (out / name).is_file()
    data = json.loads((out / "matrix.json").read_text())
    assert [k["name"] for k in data["kernels"]] == ["6.12-series", "6.12-plain", "6.1-debian"]
    res = subprocess.run([*CLI, "matrix", "--report-only", str(out), "--targets", "6.12-series"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr  # a flaky case alone does not fail the matrix


def test_cli_unknown_target_is_a_clear_error(tmp_path):
    res = subprocess.run([*CLI, "matrix", "--targets", "6.12-series,nope", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "no kernel target 'nope'" in res.stderr and "known: 6.12-series, 6.12-plain, 6.1-debian" in res.stderr


def test_cli_print_key_matches_the_prebuilt_request():
    """The key of the version apt really serves for the target's pin (the pin itself while the archive has it)."""
    from harness.campaigns.matrix import spec as matrix_spec
    from harness.kernel.prebuilt import PrebuiltRequest

    res = subprocess.run([*CLI, "build", "--kernel-target", "6.1-debian", "--print-key"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    actual, _ = PrebuiltRequest.for_target(matrix_spec.load().get("6.1-debian")).resolved()
    assert res.stdout.strip() == actual.key()
    assert len(res.stdout.strip()) == 24
