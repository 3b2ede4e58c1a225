# SPDX-License-Identifier: GPL-2.0
"""Matrix report building on JUnit files recorded from real runs: flaky by rerun, known failures, all outputs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from helpers import DATA

from harness.campaigns.matrix import formats as mf
from harness.campaigns.matrix import report as mr
from harness.campaigns.matrix.spec import KnownFailure
from harness.campaigns.results import CaseResult, parse_junit
from harness.status import Status

MATRIX_DATA = DATA / "matrix"
SERIAL = "cases/audit/serial.bpf.c::grouped_with_syscall"
LACKS_SERIES = "kernel lacks bpf_audit_log_start (not in vmlinux BTF)"


def load(name: str) -> list[CaseResult]:
    return parse_junit((MATRIX_DATA / name).read_text())


@pytest.fixture
def timed_out():  # first try: the case's VM was killed by a 3 s --case-timeout (a lost VM)
    return load("6.12-series-serial-case-timeout-lost-vm.junit.xml")


@pytest.fixture
def rerun_passed():  # the same case run again without the limit: passed
    return load("6.12-series-serial-rerun-passes.junit.xml")


def test_parse_failure_with_node_id(timed_out):
    (r,) = timed_out
    assert r.nodeid == SERIAL
    assert r.status == "lost"  # a <failure> whose "status" property says "lost VM": no verdict, not a fail
    assert r.message.startswith("LOST VM (not a verdict on the case): the case ran longer than --case-timeout=3s")
    assert "console" in r.detail


def test_parse_collection_error_keeps_the_file_and_is_not_rerunnable():
    results = load("6.12-series-collection-error.junit.xml")
    errors = [r for r in results if r.status == "error"]
    assert len(results) == 86 and len(errors) == 1
    (e,) = errors
    assert e.nodeid == "cases/verifier/kptr_store_task.bpf.c"  # pytest wrote it dotted: the path again
    assert "__needs('task_kfuncs'): unknown feature" in e.detail
    assert not e.rerunnable
    assert all(r.rerunnable for r in results if r.status == "pass")


def test_parse_without_node_ids_rebuilds_them_from_the_dotted_classname():
    # Recorded on Debian's 6.1 before the plugin wrote node ids into the JUnit properties.
    results = load("6.1-debian-kptr-task-fails-no-nodeids.junit.xml")
    by = {r.nodeid: r for r in results}
    fail = by["cases/verifier/kptr_store_task.bpf.c::kptr_store_task"]
    assert fail.status == "fail" and "kernel rejected it" in fail.detail
    statuses = [r.status for r in results]
    assert (statuses.count("pass"), statuses.count("skip"), statuses.count("fail")) == (4, 81, 1)
    assert {r.message for r in results if r.status == "skip"} == {LACKS_SERIES}


def test_fail_then_pass_is_flaky(timed_out, rerun_passed):
    cells, now_passing = mr.judge("6.12-series", timed_out, [rerun_passed])
    (c,) = cells
    assert c.status == "flaky"
    assert c.attempts == ("lost", "pass")
    assert c.reason.startswith("flaky: passed 1 of 2 tries; a failing try said: LOST VM")
    assert now_passing == []


def test_fail_on_every_try_is_a_failure(timed_out):
    cells, _ = mr.judge("6.12-series", timed_out, [timed_out, timed_out])
    (c,) = cells
    assert (c.status, c.attempts) == ("lost", ("lost", "lost", "lost"))
    assert c.reason.startswith("failed all 3 tries: LOST VM")


def test_no_rerun_keeps_the_first_verdict(timed_out, rerun_passed):
    assert mr.judge("k", timed_out)[0][0].status == "lost"
    assert mr.judge("k", rerun_passed)[0][0].status == "pass"


KF = KnownFailure(SERIAL, "6.12-series", "guest too slow for a 3 s case limit", "https://example.invalid/issues/8")


def test_known_failure_becomes_xfail_with_its_reason():
    verdict = CaseResult(SERIAL, Status.FAIL, "rule 16: no SYSCALL record shares the serial", "the case's report")
    (c,), now_passing = mr.judge("6.12-series", [verdict], [], (KF,))
    assert c.status == "xfail"
    assert c.reason == "known failure: guest too slow for a 3 s case limit (https://example.invalid/issues/8)"
    assert "the case's report" in c.detail  # the original failure is kept
    assert now_passing == []


@pytest.mark.faults  # issue 21: provokes the fault for real
def test_a_lost_vm_in_a_known_failure_is_never_xfail(timed_out):
    """Issue 21 item 6: a panic or a killed VM in a listed case is not the failure the list explains."""
    assert timed_out[0].prop("status") == "lost VM"
    (c,), _ = mr.judge("6.12-series", timed_out, [], (KF,))
    assert c.status == "lost"
    assert "lost VM: not a verdict, so the known failure https://example.invalid/issues/8 does not apply" in c.reason
    no_verdict = CaseResult(SERIAL, Status.ERROR, "records lost", "", properties=(("status", "no verdict"),))
    (c,), _ = mr.judge("6.12-series", [no_verdict], [], (KF,))
    assert c.status == "error" and "no verdict: not a verdict" in c.reason


def test_known_failure_of_another_kernel_does_not_apply(timed_out):
    (c,), _ = mr.judge("6.1-debian", timed_out, [], (KF,))
    assert c.status == "lost"


def test_known_failure_that_passes_is_reported_for_pruning(rerun_passed):
    (c,), now_passing = mr.judge("6.12-series", rerun_passed, [], (KF,))
    assert c.status == "pass"
    assert now_passing == [(SERIAL, KF)]
    assert "prune it" in c.reason


def test_known_failure_that_is_flaky_is_also_reported(timed_out, rerun_passed):
    (c,), now_passing = mr.judge("6.12-series", timed_out, [rerun_passed], (KF,))
    assert c.status == "flaky" and now_passing == [(SERIAL, KF)]


PIN_NOTE = "linux-image-amd64 6.1.180-1 (pinned) is no longer in the archive; using 6.1.192-2"


def _report(timed_out, rerun_passed) -> mr.Report:
    """Two kernels: one with a flaky case, one with a known failure; plus a kernel that could not run."""
    flaky, _ = mr.judge("6.12-series", timed_out, [rerun_passed])
    series_61 = load("6.1-debian-kptr-task-fails-no-nodeids.junit.xml")
    kf61 = KnownFailure("cases/verifier/kptr_store_task.bpf.c::*", "6.1-debian", "no bpf_task_acquire in 6.1",
                        "https://example.invalid/kptr")
    cells61, np61 = mr.judge("6.1-debian", series_61, [], (kf61,))
    return mr.Report((
        mr.KernelRun("6.12-series", "series", "6.12.117", tuple(flaky)),
        mr.KernelRun("6.1-debian", "prebuilt", "6.1.0-56-amd64", tuple(cells61), now_passing=tuple(np61),
                     packages=(("linux-image-6.1.0-56-amd64", "6.1.192-2"), ("linux-libc-dev", "6.1.192-3")),
                     version_notes=(PIN_NOTE,)),
        mr.KernelRun("6.12-plain", "plain", error="build stage failed: make failed (exit 2)"),
    ), generated="recorded")


def test_junit_has_one_testsuite_per_kernel(timed_out, rerun_passed):
    root = ET.fromstring(mf.to_junit(_report(timed_out, rerun_passed)))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert list(suites) == ["6.12-series", "6.1-debian", "6.12-plain"]
    (flaky,) = suites["6.12-series"].iter("testcase")
    assert (flaky.get("classname"), flaky.get("name")) == ("cases/audit/serial.bpf.c", "grouped_with_syscall")
    assert flaky.get("status") == "flaky" and flaky.find("failure") is None
    assert "FLAKY (lost, pass)" in flaky.find("system-out").text
    xfail = next(t for t in suites["6.1-debian"].iter("testcase") if t.get("status") == "xfail")
    assert xfail.find("skipped").get("message") == "known failure: no bpf_task_acquire in 6.1 (https://example.invalid/kptr)"
    assert int(suites["6.1-debian"].get("skipped")) == 82 and int(suites["6.1-debian"].get("failures")) == 0
    (setup,) = suites["6.12-plain"].iter("testcase")
    assert setup.find("error").get("message") == "build stage failed: make failed (exit 2)"
    props = {p.get("name"): p.get("value") for p in suites["6.1-debian"].find("properties")}
    assert props["release"] == "6.1.0-56-amd64" and props["count.pass"] == "4"
    assert props["package.linux-libc-dev"] == "6.1.192-3" and props["version_note.1"] == PIN_NOTE


def test_junit_flaky_case_is_a_pass_holding_surefire_flaky_failures(timed_out, rerun_passed):
    root = ET.fromstring(mf.to_junit(_report(timed_out, rerun_passed)))
    flaky = next(t for t in root.iter("testcase") if t.get("status") == "flaky")
    assert [child.tag for child in flaky] == ["properties", "flakyFailure", "system-out"]
    (ff,) = flaky.findall("flakyFailure")
    assert ff.get("type") == "pytest.failure"
    assert ff.get("message").startswith("LOST VM (not a verdict on the case): the case ran longer than")
    assert "Last console lines:" in ff.find("stackTrace").text  # the failing try's full report
    assert ff.find("system-out").text == (  # which try, and its logs (the run's own paths: nothing was copied)
        "try 1 of 2 on 6.12-series: lost\n"
        "console log: /root/.cache/bpf-audit-harness/runs/20261123-112656-vm-main-6357/main-1-console.log")
    props = [(p.get("name"), p.get("value")) for p in flaky.find("properties")]
    assert props[:3] == [("nodeid", SERIAL), ("spec_rule", "16"), (
        "description", "rule 16: the record and the open's SYSCALL record share one event serial")]
    assert dict(props)["verifier log"].endswith("/serial.bpf-grouped_with_syscall/verifier.log")  # the passing try's


def test_junit_case_that_failed_every_try_has_surefire_rerun_failures(timed_out):
    cells, _ = mr.judge("6.12-series", timed_out, [timed_out, timed_out])
    root = ET.fromstring(mf.to_junit(mr.Report((mr.KernelRun("6.12-series", cells=tuple(cells)),))))
    (tc,) = root.iter("testcase")
    assert [child.tag for child in tc] == ["properties", "failure", "rerunFailure", "rerunFailure", "system-out"]
    assert tc.find("failure").get("message").startswith("failed all 3 tries: LOST VM")
    reruns = tc.findall("rerunFailure")
    assert [r.find("system-out").text.splitlines()[0] for r in reruns] == [
        "try 2 of 3 on 6.12-series: lost", "try 3 of 3 on 6.12-series: lost"]
    assert all(r.get("message").startswith("LOST VM") and r.find("stackTrace").text for r in reruns)
    assert int(root.get("failures")) == 1 and int(root.get("tests")) == 1


def test_a_junit_reader_library_sees_flaky_and_rerun_failures(tmp_path, timed_out, rerun_passed):
    """junitparser's xunit2 flavour reads Surefire's rerun elements: what CI readers are given."""
    from junitparser.xunit2 import JUnitXml

    flaky, _ = mr.judge("6.12-series", timed_out, [rerun_passed])
    failed, _ = mr.judge("6.12-slow", timed_out, [timed_out])
    report = mr.Report((mr.KernelRun("6.12-series", cells=tuple(flaky)),
                        mr.KernelRun("6.12-slow", cells=tuple(failed))))
    path = tmp_path / "matrix.junit.xml"
    path.write_text(mf.to_junit(report))
    cases = {(suite.name, case.classname, case.name): case for suite in JUnitXml.fromfile(str(path)) for case in suite}
    c = cases["6.12-series", "cases/audit/serial.bpf.c", "grouped_with_syscall"]
    assert c.is_flaky and c.is_passed and not c.is_rerun  # flaky: not a plain pass
    (ff,) = c.flaky_failures()
    assert ff.message.startswith("LOST VM") and ff.type == "pytest.failure" and "Last console lines" in ff.stack_trace
    assert ff.system_out.startswith("try 1 of 2 on 6.12-series: lost")
    assert {p.name: p.value for p in c.properties()}["nodeid"] == SERIAL
    f = cases["6.12-slow", "cases/audit/serial.bpf.c", "grouped_with_syscall"]
    assert f.is_failure and f.is_rerun and not f.is_flaky
    (rf,) = f.rerun_failures()
    assert rf.message.startswith("LOST VM") and rf.system_out.startswith("try 2 of 2 on 6.12-slow: lost")


def test_every_output_names_the_exact_packages_and_the_pin_fallback(timed_out, rerun_passed):
    report = _report(timed_out, rerun_passed)
    k = {x["name"]: x for x in mf.to_json(report)["kernels"]}
    assert k["6.1-debian"]["packages"] == {"linux-image-6.1.0-56-amd64": "6.1.192-2", "linux-libc-dev": "6.1.192-3"}
    assert k["6.1-debian"]["version_notes"] == [PIN_NOTE]
    page = mf.to_html(report)
    assert "linux-image-6.1.0-56-amd64 6.1.192-2" in page and PIN_NOTE in page
    text = mf.to_text(report)
    assert "packages: linux-image-6.1.0-56-amd64 6.1.192-2, linux-libc-dev 6.1.192-3" in text and PIN_NOTE in text


def test_junit_output_parses_back(timed_out, rerun_passed):
    again = parse_junit(mf.to_junit(_report(timed_out, rerun_passed)))
    series, deb = again[:1], again[1:87]  # a testsuite per kernel, in order; then 6.12-plain's "kernel setup"
    assert [(r.nodeid, r.status) for r in series] == [(SERIAL, "pass")]  # flaky is a pass with status="flaky"
    by = {r.nodeid: r.status for r in deb}
    assert by["cases/verifier/kptr_store_task.bpf.c::kptr_store_task"] == "skip"  # xfail is written as skipped
    assert by[SERIAL] == "skip" and len(by) == 86
    assert series[0].prop("spec_rule") == "16" and series[0].prop("verifier log")  # the properties are kept


def test_json_summary(timed_out, rerun_passed):
    data = mf.to_json(_report(timed_out, rerun_passed))
    json.dumps(data)
    assert data["ok"] is False  # 6.12-plain could not run
    k = {x["name"]: x for x in data["kernels"]}
    assert k["6.12-series"]["flaky"] == [SERIAL]
    assert k["6.1-debian"]["counts"] == {"pass": 4, "fail": 0, "error": 0, "lost": 0, "skip": 81, "xfail": 1,
                                             "flaky": 0}
    assert k["6.12-plain"]["error"].startswith("build stage failed")
    assert data["cases"][SERIAL]["6.12-series"] == {
        "status": "flaky", "reason": data["cases"][SERIAL]["6.12-series"]["reason"], "attempts": ["lost", "pass"],
        "seconds": 43.34}
    assert data["cases"][SERIAL]["6.1-debian"]["status"] == "skip"  # the same node id in the older 6.1 file
    assert data["cases"][SERIAL]["6.12-plain"]["status"] == "missing"
    assert data["overall"] == "FAILURES (1 flaky)"
    assert [(f["kernel"], f["case"], f["status"]) for f in data["failures"]] == [("6.12-series", SERIAL, "flaky")]


def test_ok_ignores_skip_xfail_and_flaky(timed_out, rerun_passed):
    flaky, _ = mr.judge("a", timed_out, [rerun_passed])
    assert mr.Report((mr.KernelRun("a", cells=tuple(flaky)),)).ok()
    failed, _ = mr.judge("a", timed_out)
    assert not mr.Report((mr.KernelRun("a", cells=tuple(failed)),)).ok()


class Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cells: list[dict] = []
        self.tables: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "td" and "cell" in (a.get("class") or ""):
            self.cells.append(a)
        if tag == "table":
            self.tables.append(a)


def test_html_table_has_a_cell_per_case_and_kernel_with_reasons(timed_out, rerun_passed):
    page = mf.to_html(_report(timed_out, rerun_passed))
    p = Cells()
    p.feed(page)
    assert [t.get("id") for t in p.tables] == ["matrix"]
    assert len(p.cells) == 86 * 3  # the 86 cases of the 6.1 run (the serial case among them), 3 kernels
    flaky = [c for c in p.cells if c["data-status"] == "flaky"]
    assert len(flaky) == 1 and flaky[0]["title"].startswith("flaky: passed 1 of 2 tries")
    skip = [c for c in p.cells if c["data-kernel"] == "6.1-debian" and c["data-status"] == "skip"]
    assert len(skip) == 81 and {c["title"] for c in skip} == {LACKS_SERIES}
    assert all(c["data-status"] == "missing" for c in p.cells if c["data-kernel"] == "6.12-plain")
    assert "known failure now passes" not in page
    assert "could not run" in page


def test_html_escapes_reasons():
    cell = mr.Cell("t.py::x", "k", "fail", reason='<script>"x"</script>')
    page = mf.to_html(mr.Report((mr.KernelRun("k", cells=(cell,)),)))
    assert page.count("<script>") == 1 and "&lt;script&gt;&quot;x&quot;" in page  # the one is the page's filter


def test_text_table(timed_out, rerun_passed):
    text = mf.to_text(_report(timed_out, rerun_passed))
    header = text.splitlines()[0].split()
    assert header == ["case", "6.12-series", "6.1-debian", "6.12-plain"]
    row = next(line for line in text.splitlines() if line.startswith(SERIAL))
    assert row.split()[1:] == ["FLAKY", "skip", "-"]
    assert "6.1-debian (6.1.0-56-amd64): 4 pass, 81 skip, 1 xfail" in text
    assert "6.12-plain (?): no results [ERROR: build stage failed: make failed (exit 2)]" in text


def test_real_flake_worker_setup_race_is_reported_flaky():
    # A real matrix run: one xdist worker's kernel_build fixture hit a run-directory pruning race (fixed in
    # harness/settings.py), so its 76 cases errored at setup; the rerun passed them all.
    first = load("6.12-series-worker-setup-race.junit.xml")
    rerun = load("6.12-series-worker-setup-race-rerun.junit.xml")
    assert sum(r.status == "error" for r in first) == 76 and {r.status for r in rerun} == {"pass"}
    cells, _ = mr.judge("6.12-series", first, [rerun])
    by_status: dict[str, list[mr.Cell]] = {}
    for c in cells:
        by_status.setdefault(c.status, []).append(c)
    assert {s: len(v) for s, v in by_status.items()} == {"flaky": 76, "pass": 10}
    assert all("FileNotFoundError" in c.reason and c.attempts == ("error", "pass") for c in by_status["flaky"])
    assert mr.Report((mr.KernelRun("6.12-series", cells=tuple(cells)),)).ok()


def test_real_plain_612_run_skips_every_series_case_by_name():
    results = load("6.12-plain-series-cases-skip.junit.xml")
    skipped = [r for r in results if r.status == "skip"]
    assert len(skipped) == 81 and {r.message for r in skipped} == {LACKS_SERIES}
    assert sorted(r.nodeid for r in results if r.status == "pass") == [
        "cases/baseline/lsm_deny.bpf.c::baseline_file_open_deny",
        "cases/baseline/lsm_deny.bpf.c::baseline_file_open_other_file",
        "cases/baseline/prog_records.bpf.c::baseline_lsm_load_unload",
        "cases/baseline/prog_records.bpf.c::baseline_tracing_load_unload",
        "cases/verifier/kptr_store_task.bpf.c::kptr_store_task",
    ]


BASELINE = [
    "cases/baseline/lsm_deny.bpf.c::baseline_file_open_deny",
    "cases/baseline/lsm_deny.bpf.c::baseline_file_open_other_file",
    "cases/baseline/prog_records.bpf.c::baseline_lsm_load_unload",
    "cases/baseline/prog_records.bpf.c::baseline_tracing_load_unload",
]


def test_real_debian_61_run_skips_series_and_task_kfunc_cases_by_name():
    results = load("6.1-debian-series-and-task-kfunc-cases-skip.junit.xml")
    assert sorted(r.nodeid for r in results if r.status == "pass") == BASELINE
    reasons = {r.nodeid: r.message for r in results if r.status == "skip"}
    assert len(reasons) == 82
    assert reasons.pop("cases/verifier/kptr_store_task.bpf.c::kptr_store_task") == (
        "kernel lacks bpf_task_acquire (not in vmlinux BTF)")
    assert set(reasons.values()) == {LACKS_SERIES}


def test_html_overall_counts_flaky_cases(timed_out, rerun_passed):
    flaky, _ = mr.judge("a", timed_out, [rerun_passed])
    assert '<b id="overall" class="badge ok">OK (1 flaky)</b>' in mf.to_html(
        mr.Report((mr.KernelRun("a", cells=tuple(flaky)),)))
    passed, _ = mr.judge("a", rerun_passed)
    assert '<b id="overall" class="badge ok">OK</b>' in mf.to_html(mr.Report((mr.KernelRun("a", cells=tuple(passed)),)))
    failed, _ = mr.judge("a", timed_out)
    assert '<b id="overall" class="badge bad">FAILURES</b>' in mf.to_html(
        mr.Report((mr.KernelRun("a", cells=tuple(failed)),)))


def test_real_three_kernel_matrix_has_the_expected_pattern():
    """The recorded clean runs of the three shipped targets, judged together as `matrix` does."""
    runs = []
    for kernel, name in (("6.12-series", "6.12-series-green.junit.xml"),
                         ("6.12-plain", "6.12-plain-series-cases-skip.junit.xml"),
                         ("6.1-debian", "6.1-debian-series-and-task-kfunc-cases-skip.junit.xml")):
        cells, _ = mr.judge(kernel, load(name))
        runs.append(mr.KernelRun(kernel, cells=tuple(cells)))
    report = mr.Report(tuple(runs))
    assert report.ok()
    assert [k.counts() for k in report.kernels] == [
        {"pass": 86, "fail": 0, "error": 0, "lost": 0, "skip": 0, "xfail": 0, "flaky": 0},
        {"pass": 5, "fail": 0, "error": 0, "lost": 0, "skip": 81, "xfail": 0, "flaky": 0},
        {"pass": 4, "fail": 0, "error": 0, "lost": 0, "skip": 82, "xfail": 0, "flaky": 0},
    ]
    patterns: dict[tuple[str, ...], int] = {}
    for _case, row in report.grid():
        key = tuple(c.status for c in row)
        patterns[key] = patterns.get(key, 0) + 1
    assert patterns == {("pass", "pass", "pass"): 4, ("pass", "skip", "skip"): 81, ("pass", "pass", "skip"): 1}


def test_legend_says_what_each_status_means(timed_out, rerun_passed):
    page = mf.to_html(_report(timed_out, rerun_passed))
    legend = page[page.index('<p class="legend">'):]
    legend = legend[:legend.index("</p>")]
    assert "pass: pass" not in page and "pass</span> passed" in legend
    assert "FLAKY</span> failed, then passed when rerun" in legend and "-</span> not run on this kernel" in legend


def test_summary_lists_kernels_and_packages_then_only_the_failures(timed_out, rerun_passed):
    text = mf.to_summary(_report(timed_out, rerun_passed))
    lines = text.splitlines()
    assert lines[0] == "bpf-audit-harness kernel matrix: FAILURES (1 flaky)"
    assert lines[1].split() == ["6.12-series", "6.12.117:", "1", "flaky"]
    assert "6.1-debian   6.1.0-56-amd64: 4 pass, 81 skip, 1 xfail" in text
    assert "    linux-image-6.1.0-56-amd64 6.1.192-2" in text and PIN_NOTE in text
    assert "6.12-plain   ?: ERROR: build stage failed: make failed (exit 2)" in text
    i = lines.index("flaky (1):")
    assert lines[i + 1].split() == ["FLAKY", "6.12-series", SERIAL]
    assert lines[i + 2].strip().startswith("flaky: passed 1 of 2 tries; a failing try said: LOST VM")
    assert "\nfailed (" not in text  # the known failure is xfail, not a failure
    assert "deny_only_its_file" not in text  # not every row


def test_a_failure_says_what_went_wrong_not_where_the_case_is():
    """pytest's message starts with the case's location and description; the reason is the next line."""
    (r,) = [r for r in load("6.1-debian-kptr-task-fails-no-nodeids.junit.xml") if r.status == "fail"]
    assert r.message.startswith("/work/main/cases/verifier/kptr_store_task.bpf.c:24: rule 4 twin:")
    (c,) = [c for c in mr.judge("6.1-debian", [r])[0]]
    assert c.reason == "expected kptr_store_task to load; the kernel rejected it (errno 22):"
    text = mf.to_summary(mr.Report((mr.KernelRun("6.1-debian", cells=(c,)),)))
    assert "failed (1):\n  FAIL   6.1-debian  cases/verifier/kptr_store_task.bpf.c::kptr_store_task\n" in text
