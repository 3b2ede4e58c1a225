# SPDX-License-Identifier: GPL-2.0
"""The one result model and JUnit reader on every recorded file and on real pytest runs; the one inner argv."""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

import pytest
from helpers import DATA

from harness.campaigns.bisect import step
from harness.campaigns.inner import inner_pytest_argv
from harness.campaigns.matrix import run as matrix_run
from harness.campaigns.matrix import spec as matrix_spec
from harness.campaigns.mutants import suite_argv as mutant_suite_argv
from harness.campaigns.results import CaseResult, parse_junit
from harness.kernel.request import KernelOptions
from harness.status import Status

pytest_plugins = ["pytester"]

# Every recorded JUnit file: its family and the statuses the reader must give (the <testsuite> counts agree).
RECORDED = {
    "matrix/6.1-debian-kptr-task-fails-no-nodeids.junit.xml": ("xunit1", {"pass": 4, "skip": 81, "fail": 1}),
    "matrix/6.1-debian-series-and-task-kfunc-cases-skip.junit.xml": ("xunit1", {"pass": 4, "skip": 82}),
    "matrix/6.1-debian-selftests-test_global_func1.junit.xml": ("xunit2", {"pass": 1}),
    "matrix/6.12-plain-series-cases-skip.junit.xml": ("xunit1", {"pass": 5, "skip": 81}),
    "matrix/6.12-series-collection-error.junit.xml": ("xunit1", {"pass": 85, "error": 1}),
    "matrix/6.12-series-green.junit.xml": ("xunit1", {"pass": 86}),
    "matrix/6.12-series-serial-case-timeout-lost-vm.junit.xml": ("xunit1", {"lost": 1}),  # a <failure>: "lost VM"
    "matrix/6.12-series-serial-rerun-passes.junit.xml": ("xunit1", {"pass": 1}),
    "matrix/6.12-series-worker-setup-race-rerun.junit.xml": ("xunit1", {"pass": 76}),
    "matrix/6.12-series-worker-setup-race.junit.xml": ("xunit1", {"pass": 10, "error": 76}),
    "mutants/junit-dentry-untrusted-args-worker-collection-race.xml": ("xunit2", {"error": 1}),
    "mutants/junit-start-not-ret-null.xml": ("xunit2", {"pass": 84, "fail": 2}),
}


def test_every_recorded_file_is_in_the_table():
    assert sorted(str(p.relative_to(DATA)) for p in DATA.glob("*/*.xml")) == sorted(RECORDED)


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_recorded_junit_gives_the_statuses_its_testsuite_counts(name):
    family, want = RECORDED[name]
    text = (DATA / name).read_text()
    assert (' file="' in text) == (family == "xunit1")  # xunit1 has file/line attributes, xunit2 does not
    results = parse_junit(text)
    assert all(isinstance(r.status, Status) for r in results)
    assert Counter(r.status.value for r in results) == want
    suite = dict(re.findall(r'(errors|failures|skipped|tests)="(\d+)"', re.search(r"<testsuite [^>]*>", text)[0]))
    assert (int(suite["tests"]), int(suite["failures"]), int(suite["errors"]), int(suite["skipped"])) == (
        len(results), want.get("fail", 0) + want.get("lost", 0), want.get("error", 0),
        want.get("skip", 0) + want.get("xfail", 0))
    assert not {Status.FLAKY, Status.MISSING} & {r.status for r in results}  # the matrix derives those


def test_node_ids_come_from_the_plugins_property_else_from_the_dotted_classname():
    green = parse_junit((DATA / "matrix/6.12-series-green.junit.xml").read_text())
    assert all(r.nodeid.startswith("cases/") and ".bpf.c::" in r.nodeid and r.rerunnable for r in green)
    old = parse_junit((DATA / "matrix/6.1-debian-kptr-task-fails-no-nodeids.junit.xml").read_text())
    # No property: pytest's dotted classname (cases.audit.deny.bpf.c) is turned back into the case file's path.
    assert "cases/audit/deny.bpf.c::deny_only_its_file" in {r.nodeid for r in old}
    assert all(r.nodeid.startswith("cases/") and ".bpf.c::" in r.nodeid for r in old)
    (error,) = [r for r in parse_junit((DATA / "matrix/6.12-series-collection-error.junit.xml").read_text())
                if r.status is Status.ERROR]
    assert error.nodeid == "cases/verifier/kptr_store_task.bpf.c"  # a collection error: the file, no '::'


def test_properties_are_read_in_order():
    (r,) = parse_junit((DATA / "matrix/6.12-series-serial-rerun-passes.junit.xml").read_text())
    assert [k for k, _ in r.properties] == ["spec_rule", "description", "nodeid", "verifier log", "libbpf log",
                                           "audit records"]
    assert r.prop("spec_rule") == "16" and r.props("spec_rule") == ("16",) and r.prop("console log") == ""
    assert r.prop("audit records").endswith("/cases/serial.bpf-grouped_with_syscall/records.txt")


@pytest.mark.parametrize("name", [n for n, (family, _) in RECORDED.items() if family == "xunit1"])
def test_a_recorded_xunit1_file_reads_the_same_as_xunit2(name):
    """xunit2 is xunit1 without the testcase's file and line attributes: the reader must not depend on them."""
    text = (DATA / name).read_text()
    as_xunit2 = re.sub(r'(<testcase [^>]*?) file="[^"]*"( line="\d+")?', r"\1", text)
    assert ' file="' not in as_xunit2
    assert parse_junit(as_xunit2) == parse_junit(text)


def test_collection_errors_failures_and_skips_keep_message_and_detail():
    (lost,) = parse_junit((DATA / "matrix/6.12-series-serial-case-timeout-lost-vm.junit.xml").read_text())
    assert lost.message.startswith("LOST VM (not a verdict on the case)")  # "Failed: " dropped, first line only
    assert "\n" not in lost.message and "Last console lines:" in lost.detail and lost.seconds == 43.34
    (gw1,) = parse_junit((DATA / "mutants/junit-dentry-untrusted-args-worker-collection-race.xml").read_text())
    assert (gw1.nodeid, gw1.status, gw1.message) == ("gw1", Status.ERROR, "collection failure")
    assert gw1.detail.startswith("Different tests were collected between gw0 and gw1") and not gw1.rerunnable
    skips = parse_junit((DATA / "matrix/6.12-plain-series-cases-skip.junit.xml").read_text())
    skip = next(r for r in skips if r.status is Status.SKIP)
    assert skip.message == "kernel lacks bpf_audit_log_start (not in vmlinux BTF)"
    assert skip.detail.endswith(": kernel lacks bpf_audit_log_start (not in vmlinux BTF)")  # file:line: reason


def test_a_status_is_its_printed_value_and_a_stale_outcome_name_is_refused():
    assert CaseResult("c::a", "pass").status is Status.PASS and f"{Status.XFAIL}" == "xfail"
    assert [s for s in Status if s.failing] == [Status.FAIL, Status.ERROR, Status.LOST]
    assert [s for s in Status if not s.verdict] == [Status.ERROR, Status.LOST]
    with pytest.raises(ValueError):
        CaseResult("c::a", "passed")  # the old mutants outcome names


KINDS = """
    import pytest

    def test_pass():
        pass

    def test_fail():
        assert 0, "boom"

    @pytest.fixture
    def broken():
        raise RuntimeError("setup broke")

    def test_error(broken):
        pass

    def test_skip():
        pytest.skip("not here")

    @pytest.mark.xfail(reason="known bug")
    def test_xfail():
        assert 0

    @pytest.mark.xfail(reason="fixed?")
    def test_xpass():
        pass

    @pytest.mark.xfail(reason="fixed?", strict=True)
    def test_xpass_strict():
        pass

    @pytest.fixture
    def bad_teardown():
        yield
        raise RuntimeError("teardown broke")

    def test_skip_then_teardown_error(bad_teardown):
        pytest.skip("skipped")
"""

EXPECTED = {
    "test_kinds.py::test_pass": (Status.PASS, ""),
    "test_kinds.py::test_fail": (Status.FAIL, "AssertionError: boom"),
    "test_kinds.py::test_error": (Status.ERROR, 'failed on setup with "RuntimeError: setup broke"'),
    "test_kinds.py::test_skip": (Status.SKIP, "not here"),
    "test_kinds.py::test_xfail": (Status.XFAIL, "known bug"),
    "test_kinds.py::test_xpass": (Status.PASS, ""),  # not strict: pytest passes it
    "test_kinds.py::test_xpass_strict": (Status.FAIL, "[XPASS(strict)] fixed?"),
    "test_kinds.py::test_skip_then_teardown_error": (Status.ERROR,
                                                     'failed on teardown with "RuntimeError: teardown broke"'),
    "test_broken": (Status.ERROR, "collection failure"),  # a collection error: the file, dotted, no '::'
}


@pytest.mark.parametrize("family", ["xunit1", "xunit2"])
def test_a_real_pytest_run_reads_the_same_in_either_family(pytester, family):
    pytester.makepyfile(test_kinds=KINDS, test_broken="def test_x(:\n")
    junit = pytester.path / "junit.xml"
    pytester.runpytest("-p", "no:cacheprovider", "--continue-on-collection-errors", f"--junitxml={junit}",
                       "-o", f"junit_family={family}")
    results = parse_junit(junit.read_text())
    assert {r.nodeid: (r.status, r.message) for r in results} == EXPECTED
    fail = next(r for r in results if r.nodeid.endswith("::test_fail"))
    assert "def test_fail" in fail.detail and 'assert 0, "boom"' in fail.detail


# ---------------------------------------------------------------- the one inner command line

def _tail(argv: list[str], junit: Path) -> list[str]:
    i = argv.index(f"--junitxml={junit}")
    return argv[i:i + 7]


COMMON = ["-o", "junit_family=xunit2", "-p", "no:cacheprovider", "-q", "-rfEs"]


def test_argv_for_a_matrix_target(tmp_path):
    """The inner session gets the target's prepared kernel (its cache entry) and its command line, no recipe."""
    m = matrix_spec.load()
    opts = matrix_run.MatrixOptions(out_dir=tmp_path, cache_dir=tmp_path / "c", accel="tcg", extra_pytest=("-x",))
    junit = tmp_path / "6.1-debian" / "junit.xml"
    entry = tmp_path / "c" / "kernels" / "k1"
    target = m.get("6.1-debian")
    assert matrix_run.suite_argv(target, entry, opts, junit, ["cases"], 2) == [
        sys.executable, "-m", "pytest", "cases", "--kernel", str(entry), "--accel", "tcg", f"--junitxml={junit}",
        *COMMON, "-n", "2", "--cache-dir", str(tmp_path / "c"), *(f"--append={w}" for w in target.append), "-x"]


def test_argv_for_a_mutant(tmp_path, monkeypatch):
    """The inner session gets the very kernel the mutant build made (its cache entry), no recipe to re-derive."""
    monkeypatch.chdir(tmp_path)  # relative paths are made absolute: the session runs in the harness's repo
    opts = KernelOptions(kernel_src="linux", extra_fragments=(Path("x.config"),), cache_dir=Path("c"))
    junit = tmp_path / "junit-prog-id-zero.xml"
    entry = Path("c/kernels/k1")
    argv = mutant_suite_argv(opts, entry, junit, cases=["cases/verifier"], workers=2, extra=["-k", "x"])
    assert argv == [
        sys.executable, "-m", "pytest", "cases/verifier", "--kernel", str(tmp_path / "c/kernels/k1"),
        f"--junitxml={junit}", *COMMON, "-n", "2", "--cache-dir", str(tmp_path / "c"), "-k", "x"]
    for option in ("--kernel-src", "--patches", "--mutant", "--kernel-config-dir"):
        assert option not in argv  # the build's options (a --fragment too) are in the artifact already


def test_argv_for_a_bisect_step(tmp_path):
    ns = argparse.Namespace(cases=["/repo/cases/verifier/null_unchecked.bpf.c::unchecked_to_end"],
                            tree=tmp_path / "linux", config_dir=None, accel="auto", cache_dir=tmp_path / "c",
                            pytest_arg=["--case-timeout=60"])
    junit = tmp_path / "junit-0123456789ab-1.xml"
    entry = tmp_path / "c" / "kernels" / "k1"
    assert step.suite_argv(ns, junit, entry) == [
        sys.executable, "-m", "pytest", *ns.cases, "--kernel", str(entry),
        "--accel", "auto", f"--junitxml={junit}", *COMMON, "--cache-dir", str(tmp_path / "c"),
        "--case-timeout=60"]


def test_every_campaign_gets_the_same_report_flags_and_an_artifact_by_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    junit = tmp_path / "j.xml"
    a = inner_pytest_argv(["cases"], junit=junit, kernel=Path("c/kernels/k1"))
    b = inner_pytest_argv(["cases"], junit=junit, kernel=tmp_path / "k2", workers=4)
    assert _tail(a, junit) == _tail(b, junit) == [f"--junitxml={junit}", *COMMON]
    assert a[a.index("--kernel") + 1] == str(tmp_path / "c" / "kernels" / "k1")
    with pytest.raises(TypeError):  # no recipe: a campaign hands over what it prepared
        inner_pytest_argv(["cases"], junit=junit, kernel=tmp_path, kernel_src="linux")  # type: ignore[call-arg]
