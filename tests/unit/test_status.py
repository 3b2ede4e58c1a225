# SPDX-License-Identifier: GPL-2.0
"""One status vocabulary: a lost VM and a case without a verdict reach the JUnit reader and the reports as statuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.campaigns.matrix import formats as mf
from harness.campaigns.matrix import report as mr
from harness.campaigns.results import parse_junit
from harness.status import NOT_VERDICT_PROPERTY, STATUS_PROPERTY, Status

DATA = Path(__file__).resolve().parent.parent / "data"

# Written for this test (not recorded): the shape harness/cases/collect.py gives pytest's JUnit file for a case that
# lost its VM, one whose audit records were lost (no verdict), a plain failure and a setup error.
INLINE = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="4" failures="3"
errors="1" skipped="0"><testcase classname="cases/a.bpf.c" name="lost" time="1.0"><properties>
<property name="nodeid" value="cases/a.bpf.c::lost"/><property name="status" value="lost VM"/></properties>
<failure message="LOST VM (not a verdict on the case): panic">trace</failure></testcase>
<testcase classname="cases/a.bpf.c" name="records" time="1.0"><properties>
<property name="nodeid" value="cases/a.bpf.c::records"/><property name="status" value="no verdict"/></properties>
<failure message="audit capture incomplete">trace</failure></testcase>
<testcase classname="cases/a.bpf.c" name="fails" time="1.0"><failure message="rule 4">trace</failure></testcase>
<testcase classname="cases/a.bpf.c" name="setup" time="1.0"><error message="boot failed">trace</error></testcase>
</testsuite></testsuites>"""


def test_the_reader_maps_the_runners_not_verdict_property_to_the_status():
    lost, records, fails, setup = parse_junit(INLINE)
    assert (lost.status, lost.not_verdict) == (Status.LOST, "lost VM")
    assert (records.status, records.not_verdict) == (Status.ERROR, "no verdict")
    assert (fails.status, fails.not_verdict) == (Status.FAIL, "")
    assert (setup.status, setup.not_verdict) == (Status.ERROR, "")
    assert all(s.failing for s in (lost.status, records.status)) and not lost.status.verdict


def test_the_property_the_runners_write_is_the_one_the_reader_reads():
    assert STATUS_PROPERTY == "status"
    assert NOT_VERDICT_PROPERTY == {Status.LOST: "lost VM", Status.ERROR: "no verdict"}


def test_a_recorded_lost_vm_is_lost_in_every_matrix_report():
    results = parse_junit((DATA / "matrix/6.12-series-serial-case-timeout-lost-vm.junit.xml").read_text())
    assert [r.status for r in results] == [Status.LOST]
    cells, _ = mr.judge("6.12-series", results)
    report = mr.Report((mr.KernelRun("6.12-series", cells=tuple(cells)),))
    data = mf.to_json(report)
    assert data["kernels"][0]["counts"]["lost"] == 1 and data["failures"][0]["status"] == "lost"
    assert "LOST" in mf.to_text(report) and not report.ok()
    assert 'class="lost' in mf.to_html(report) or ">LOST<" in mf.to_html(report)
    again = parse_junit(mf.to_junit(report))  # the matrix's own JUnit keeps the property: read back as LOST
    assert [r.status for r in again] == [Status.LOST]


def test_the_json_words_of_the_selftests_summary_are_unchanged():
    assert [s.past for s in (Status.PASS, Status.FAIL, Status.SKIP, Status.ERROR)] == [
        "passed", "failed", "skipped", "error"]


def test_from_past_reads_back_every_past_word() -> None:
    for status in Status:
        assert Status.from_past(status.past) is status
    with pytest.raises(ValueError):
        Status.from_past("pass")  # a value, not a past word
