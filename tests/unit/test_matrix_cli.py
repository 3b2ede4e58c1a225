# SPDX-License-Identifier: GPL-2.0
"""--kernel-target in pytest, `matrix --report-only`, `build --print-key`: the matrix plumbing without booting."""

from __future__ import annotations

import dataclasses
import json
import re
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
    (["--kernel-target", "7.3-plain", "--no-patches"], "--kernel-target 7.3-plain already says which kernel"),
    (["--kernel-target", "6.1-debian", "--kernel-src", "/x"], "drop --kernel-src"),
    # every option naming the kernel (harness.kernel.choice.NAMING), as `selftests` says too: none is ignored
    (["--kernel-target", "7.3-series", "--fragment", "x.config", "--kernel-config-dir", "d"],
     "drop --kernel-config-dir, --fragment"),
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
            assert (t.name, t.kind) == ("7.3-plain", "build")
            assert kernel_options.no_patches is True and kernel_options.kernel_src == "debian-7.3"
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--kernel-target", "7.3-plain")
    result.assert_outcomes(passed=1)


def test_without_kernel_options_the_run_is_on_the_matrix_default_target(pytester):
    """No option names a kernel: the target with default = true, as a whole (pytest and the CLI alike); one
    option (--no-patches) names part of it: the options decide, the default target's source fills in."""
    pytester.makepyfile(test_opts="""
        from harness.plugin import kernel_target


        def test_default(kernel_options, pytestconfig):
            t = kernel_target(pytestconfig)
            if pytestconfig.getoption("--no-patches"):
                assert t is None and kernel_options.no_patches and kernel_options.kernel_src is None
            else:
                assert (t.name, t.default) == ("7.3-series", True)
                assert (kernel_options.kernel_src, kernel_options.no_patches) == ("debian-7.3", False)
    """)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    pytester.runpytest("-p", "no:cacheprovider", "--no-patches").assert_outcomes(passed=1)


def test_suite_argv_hands_the_inner_session_the_artifact_and_the_targets_command_line(tmp_path):
    m = matrix_spec.load()
    t = dataclasses.replace(m.get("6.1-debian"), append=("audit=1", "lsm=bpf"))
    opts = MatrixOptions(out_dir=tmp_path, cache_dir=tmp_path / "c", extra_pytest=("-x",))
    entry = tmp_path / "c" / "kernels" / "0123"
    argv = suite_argv(t, entry, opts, tmp_path / "j.xml", ["cases"], 2)
    assert argv[:4] == [sys.executable, "-m", "pytest", "cases"]
    for pair in (["--kernel", str(entry)], ["-n", "2"], ["--cache-dir", str(tmp_path / "c")],
                 ["-o", "junit_family=xunit2"]):
        i = argv.index(pair[0])
        assert argv[i:i + 2] == pair
    assert "--append=audit=1" in argv and "--append=lsm=bpf" in argv
    # nothing the inner session could re-derive a kernel from
    assert not {"--kernel-target", "--kernel-matrix", "--kernel-src", "--patches", "--no-patches"} & set(argv)
    assert f"--junitxml={tmp_path / 'j.xml'}" in argv and argv[-1] == "-x"
    assert "-n" not in suite_argv(t, entry, opts, tmp_path / "j.xml", ["x"], 1)


def _rebase_runs(recorded: str, runs: Path) -> str:
    """The recorded JUnit with its log paths moved from the recording machine's cache (long pruned, never read)
    to `runs`. The old prefix is taken from the file itself, so no path of that machine is written here."""
    prefixes = set(re.findall(r"(/[^\s\"<>]*?/bpf-audit-harness/runs/)", recorded))
    assert len(prefixes) == 1, f"expected one recorded runs/ prefix, found {sorted(prefixes)}"
    return recorded.replace(prefixes.pop(), f"{runs}/")


def _results_dir(tmp_path: Path) -> Path:
    """A matrix output directory as CI's kernel jobs leave it: one kernel with a rerun, one whose build failed.

    The recorded JUnit files name each case's logs under the cache's run directories; here they name files
    under tmp_path/runs (made up, small), and the first try's console log is gone, as a pruned run's would be.
    """
    out = tmp_path / "matrix"
    series = out / "6.12-series"
    series.mkdir(parents=True)
    runs = tmp_path / "runs"
    for name, dest in (("6.12-series-serial-case-timeout-lost-vm.junit.xml", "junit.xml"),
                       ("6.12-series-serial-rerun-passes.junit.xml", "rerun-1.junit.xml")):
        (series / dest).write_text(_rebase_runs((MATRIX_DATA / name).read_text(), runs))
    logs = runs / "20261123-112743-vm-main-6898/cases/serial.bpf-grouped_with_syscall"
    logs.mkdir(parents=True)
    for log in ("verifier.log", "libbpf.log", "records.txt"):
        (logs / log).write_text(f"the {log} of the passing try\n")
    (series / "pytest.log").write_text("$ pytest cases ...\n")
    save_target_meta(KernelRun("6.12-series", "series", "6.12.117", seconds=12.0, artifact_key="k1"), series)
    save_target_meta(KernelRun("7.3-plain", "plain", error="build stage failed: make failed (exit 2)"),
                     out / "7.3-plain")
    return out


TARGETS = "6.12-series,7.3-plain,6.1-debian"  # the kernels _results_dir has a directory for (and one it has not)


def _targets():
    return matrix_spec.load().select(TARGETS.split(","))


def test_report_from_dir(tmp_path):
    report = report_from_dir(_results_dir(tmp_path), _targets(), ())
    series, plain, deb = report.kernels
    assert series.release == "6.12.117" and series.artifact_key == "k1"
    assert [(c.case, c.status, c.attempts) for c in series.cells] == [
        ("cases/audit/serial.bpf.c::grouped_with_syscall", "flaky", ("lost", "pass"))]
    assert plain.error == "build stage failed: make failed (exit 2)"
    assert deb.error.startswith("no results: ") and deb.error.endswith("6.1-debian/junit.xml does not exist")
    assert series.suite_seconds == pytest.approx(43.534 + 40.061)
    assert [(f.label, f.href) for f in series.files] == [
        ("pytest log", "6.12-series/pytest.log"), ("JUnit", "6.12-series/junit.xml"),
        ("JUnit rerun 1", "6.12-series/rerun-1.junit.xml")]


def test_case_logs_are_copied_into_the_results_directory_and_linked(tmp_path):
    out = _results_dir(tmp_path)
    (cell,) = report_from_dir(out, _targets(), ()).kernels[0].cells
    kept = "6.12-series/logs/cases_audit_serial.bpf.c_grouped_with_syscall/try-2"
    assert [(link.label, link.href, link.attempt) for link in cell.logs] == [
        ("JUnit", "6.12-series/junit.xml", 1),  # try 1's console log is gone: no link to a stale path
        ("JUnit rerun 1", "6.12-series/rerun-1.junit.xml", 2),
        ("verifier log", f"{kept}/verifier.log", 2), ("libbpf log", f"{kept}/libbpf.log", 2),
        ("audit records", f"{kept}/records.txt", 2), ("pytest log", "6.12-series/pytest.log", 0)]
    assert (out / kept / "records.txt").read_text() == "the records.txt of the passing try\n"
    shutil.rmtree(tmp_path / "runs")  # the cache pruned the run: the copies stay and are still linked
    (again,) = report_from_dir(out, _targets(), ()).kernels[0].cells
    assert again.logs == cell.logs


def _hrefs(page: str) -> list[str]:
    return re.findall(r'<a href="([^"#][^"]*)"', page)


def test_cli_report_only_writes_all_outputs_and_fails_on_a_kernel_that_did_not_run(tmp_path):
    out = _results_dir(tmp_path)
    summary = tmp_path / "ci" / "summary.json"
    res = subprocess.run([*CLI, "matrix", "--report-only", str(out), "--targets", TARGETS, "--json", str(summary)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode not in (0, 2), res.stderr  # not OK: a kernel did not run (what number: the CLI's codes)
    lines = res.stdout.splitlines()
    assert lines[0] == "bpf-audit-harness kernel matrix: FAILURES (1 flaky)"
    assert "  7.3-plain    ?: ERROR: build stage failed: make failed (exit 2)" in lines
    i = lines.index("flaky (1):")
    assert lines[i + 1].split() == ["FLAKY", "6.12-series", "cases/audit/serial.bpf.c::grouped_with_syscall"]
    for name in ("matrix.junit.xml", "matrix.json", "matrix.html", "matrix.txt"):
        assert (out / name).is_file()
    assert f"--json {summary}" in lines
    data = json.loads((out / "matrix.json").read_text())
    assert json.loads(summary.read_text()) == data
    assert [k["name"] for k in data["kernels"]] == ["6.12-series", "7.3-plain", "6.1-debian"]
    text = (out / "matrix.txt").read_text()
    assert text.startswith(res.stdout.split("junit ")[0])  # the summary, then the full table
    assert "cases/audit/serial.bpf.c::grouped_with_syscall  FLAKY" in text
    # Every link of the page resolves inside the results directory (it can be uploaded as one artifact).
    hrefs = _hrefs((out / "matrix.html").read_text())
    assert "6.12-series/logs/cases_audit_serial.bpf.c_grouped_with_syscall/try-2/verifier.log" in hrefs
    assert all((out / h).is_file() and (out / h).resolve().is_relative_to(out) for h in hrefs), hrefs
    res = subprocess.run([*CLI, "matrix", "--report-only", str(out), "--targets", "6.12-series"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr  # a flaky case alone does not fail the matrix


def test_report_written_elsewhere_links_back_into_the_results_directory(tmp_path):
    out = _results_dir(tmp_path)
    elsewhere = tmp_path / "site"
    res = subprocess.run([*CLI, "matrix", "--report-only", str(out), "--targets", TARGETS, "--out", str(elsewhere)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode not in (0, 2), res.stderr
    hrefs = _hrefs((elsewhere / "matrix.html").read_text())
    assert "../matrix/6.12-series/pytest.log" in hrefs and all((elsewhere / h).is_file() for h in hrefs)


def test_the_written_matrix_junit_reads_as_flaky_in_a_junit_reader_library(tmp_path):
    from junitparser.xunit2 import JUnitXml

    out = _results_dir(tmp_path)
    subprocess.run([*CLI, "matrix", "--report-only", str(out), "--targets", TARGETS], capture_output=True, text=True,
                   timeout=120)
    suites = {suite.name: list(suite) for suite in JUnitXml.fromfile(str(out / "matrix.junit.xml"))}
    (case,) = suites["6.12-series"]
    assert (case.classname, case.name) == ("cases/audit/serial.bpf.c", "grouped_with_syscall")
    assert case.is_flaky and case.is_passed and len(case.flaky_failures()) == 1
    props = {p.name: p.value for p in case.properties()}
    assert props["nodeid"] == "cases/audit/serial.bpf.c::grouped_with_syscall" and props["spec_rule"] == "16"
    kept = "6.12-series/logs/cases_audit_serial.bpf.c_grouped_with_syscall/try-2"
    assert props["verifier log"] == f"{kept}/verifier.log"  # the copy, relative to matrix.junit.xml
    (setup,) = suites["7.3-plain"]
    assert setup.is_error


def test_cli_unknown_target_is_a_clear_error(tmp_path):
    res = subprocess.run([*CLI, "matrix", "--targets", "6.12-series,nope", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "no kernel target 'nope'" in res.stderr
    known = ("7.3-series, 7.3-plain, 7.3-series-stack-none, 7.3-series-testmod, 6.12-series, 6.12-series-testmod, "
             "6.1-debian")
    assert f"known: {known}" in res.stderr


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
