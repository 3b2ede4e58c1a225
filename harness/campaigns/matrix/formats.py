# SPDX-License-Identifier: GPL-2.0
"""The matrix report written out: JUnit XML, JSON, the text table and summary, and the HTML page (page.py)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from harness.campaigns.matrix.page import render
from harness.campaigns.matrix.report import CASE_LOGS, SHORT, Cell, Report, counts_text, gist
from harness.campaigns.results import first_line
from harness.status import Status

# -- JUnit -----------------------------------------------------------------------------------------------------

# Surefire's elements for tries of a rerun case (maven-surefire's rerunFailingTestsCount; the Jenkins/xunit
# junit-10.xsd): a flaky case is a passing testcase holding a <flakyFailure>/<flakyError> per failing try; a
# case that failed every try is a failing testcase whose reruns are <rerunFailure>/<rerunError>.
# A lost VM is a pytest failure (the case's own call failed) whose "status" property says "lost VM".
_INTERIM = {(True, Status.FAIL): "flakyFailure", (True, Status.ERROR): "flakyError",
            (True, Status.LOST): "flakyFailure",
            (False, Status.FAIL): "rerunFailure", (False, Status.ERROR): "rerunError",
            (False, Status.LOST): "rerunFailure"}
_TYPE = {Status.FAIL: "pytest.failure", Status.ERROR: "pytest.error",  # pytest's own failures carry no type
         Status.LOST: "pytest.failure"}
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    return _XML_ILLEGAL.sub("\ufffd", text)


def _case_properties(report: Report, cell: Cell) -> list[tuple[str, str]]:
    """The testcase's <properties>: node id, rules and description as the plugin wrote them, and its log files
    (the copies in the results directory; the run's own paths when nothing was copied)."""
    last = cell.tries[-1] if cell.tries else None
    props = [("nodeid", cell.case), *(("spec_rule", r) for r in cell.rules)]
    if cell.description:
        props.append(("description", cell.description))
    copied = [link for link in cell.logs if link.label in CASE_LOGS and link.attempt == len(cell.tries)]
    if copied:
        props += [(link.label, report.href(link)) for link in copied]
    elif last is not None:
        props += [(k, v) for k, v in last.properties if k in CASE_LOGS]
    if last is not None:
        props += [(k, v) for k, v in last.properties if k == "status"]  # e.g. "lost VM", "no verdict"
    return props


def _try_output(report: Report, cell: Cell, n: int) -> str:
    """A try's <system-out>: which try it was and its log files."""
    t = cell.tries[n - 1]
    lines = [f"try {n} of {len(cell.tries)} on {cell.kernel}: {t.status}"]
    copied = {link.label: report.href(link) for link in cell.links(n)}
    lines += [f"{k}: {copied.get(k, v)}" for k, v in t.properties if k in CASE_LOGS]
    return "\n".join(lines)


def _add_junit_details(report: Report, tc: ET.Element, cell: Cell) -> None:
    """What junit_xml cannot write (see to_junit), added to the testcase element it built for `cell`."""
    props = ET.Element("properties")
    for name, value in _case_properties(report, cell):
        ET.SubElement(props, "property", name=name, value=_xml_text(value))
    tc.insert(0, props)
    if len(cell.tries) < 2:
        return
    flaky = cell.status is Status.FLAKY
    later = cell.tries if flaky else cell.tries[1:]  # a failing testcase's first try is its <failure>/<error>
    first = 1 if flaky else 2
    interim = []
    for n, t in enumerate(later, first):
        if not t.status.failing:
            continue
        el = ET.Element(_INTERIM[flaky, t.status], message=_xml_text(gist(t)), type=_TYPE[t.status],
                        time=f"{t.seconds:.3f}")
        ET.SubElement(el, "stackTrace").text = _xml_text(t.detail or t.message)
        ET.SubElement(el, "system-out").text = _xml_text(_try_output(report, cell, n))
        interim.append(el)
    at = next((i for i, child in enumerate(tc) if child.tag in ("system-out", "system-err")), len(tc))
    for i, el in enumerate(interim):
        tc.insert(at + i, el)


def to_junit(report: Report) -> str:
    """One <testsuite> per kernel, a <testcase> per case named by its node id (classname: the case file).

    Flaky: a passing testcase (status="flaky") holding Surefire's <flakyFailure>/<flakyError> per failing try;
    failed every try: <failure>/<error> plus a <rerunFailure>/<rerunError> per rerun; each with <stackTrace>
    and <system-out> (the try and its logs). Known failure: skipped with status="xfail" and the reason (the
    original failure in the skip text). Each testcase keeps the plugin's <properties> (node id, spec rule,
    description, log files).
    """
    from junit_xml import TestCase, TestSuite, to_xml_report_string

    suites, cells_of = [], []
    for k in report.kernels:
        cases, cells = [], []
        for c in k.cells:
            file, _, name = c.case.rpartition("::")
            tc = TestCase(name or c.case, classname=file or k.kernel, elapsed_sec=c.seconds, status=c.status,
                          file=file or None)
            if c.attempts:
                tc.stdout = f"tries: {', '.join(c.attempts)}"
            if c.status in (Status.FAIL, Status.LOST):
                tc.add_failure_info(message=c.reason, output=c.detail, failure_type=_TYPE[c.status])
            elif c.status is Status.ERROR:
                tc.add_error_info(message=c.reason, output=c.detail, error_type=_TYPE[Status.ERROR])
            elif c.status is Status.SKIP:
                tc.add_skipped_info(message=c.reason)
            elif c.status is Status.XFAIL:
                tc.add_skipped_info(message=c.reason, output=c.detail)
            elif c.status is Status.FLAKY:
                tc.stdout = f"FLAKY ({', '.join(c.attempts)}): {c.reason}"
            cases.append(tc)
            cells.append(c)
        if k.error:
            tc = TestCase("kernel setup", classname=k.kernel, status=Status.ERROR)
            tc.add_error_info(message=first_line(k.error), output=k.error)
            cases.append(tc)
        props = {"kernel": k.kernel, "release": k.release, "description": k.description,
                 "artifact_key": k.artifact_key, "suite_seconds": f"{k.suite_seconds:.1f}"}
        props.update({f"package.{name}": version for name, version in k.packages})
        props.update({f"version_note.{i}": note for i, note in enumerate(k.version_notes, 1)})
        props.update({f"count.{s}": str(n) for s, n in k.counts().items()})
        props.update({f"file.{link.label}": report.href(link) for link in k.files})
        suites.append(TestSuite(k.kernel, cases, properties=props, package="bpf-audit-harness.matrix"))
        cells_of.append(cells)
    # junit_xml (the project's JUnit writer) has no per-testcase <properties> and none of Surefire's rerun
    # elements (<flakyFailure>, <rerunFailure>, ...). Rather than drop the tries and the log paths, its document
    # is parsed back and those elements are added to the testcases it wrote (in the order it was given them).
    root = ET.fromstring(to_xml_report_string(suites, prettyprint=False, encoding="utf-8"))
    for suite_el, cells in zip(root.iter("testsuite"), cells_of, strict=True):
        for tc_el, cell in zip(suite_el.iter("testcase"), cells, strict=False):  # + "kernel setup"
            _add_junit_details(report, tc_el, cell)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# -- JSON ------------------------------------------------------------------------------------------------------

def _cell_json(report: Report, c: Cell) -> dict:
    out: dict = {"status": c.status, "reason": c.reason}
    if c.attempts:
        out["attempts"] = list(c.attempts)
    if c.seconds:
        out["seconds"] = round(c.seconds, 3)
    if c.logs:
        out["logs"] = [{"label": link.label, "path": report.href(link), "try": link.attempt} for link in c.logs]
    return out


def to_json(report: Report) -> dict:
    return {
        "title": report.title,
        "generated": report.generated,
        "ok": report.ok(),
        "overall": report.overall(),
        "notes": list(report.notes),
        "kernels": [
            {
                "name": k.kernel, "description": k.description, "release": k.release, "error": k.error,
                "artifact_key": k.artifact_key, "seconds": round(k.seconds, 1),
                "suite_seconds": round(k.suite_seconds, 1), "counts": k.counts(),
                "packages": dict(k.packages), "version_notes": list(k.version_notes),
                "files": {link.label: report.href(link) for link in k.files},
                "flaky": [c.case for c in k.cells if c.status is Status.FLAKY],
                "failed": [c.case for c in k.cells if c.status.failing],
                "known_failures_now_passing": [{"case": case, "pattern": kf.case, "reason": kf.reason,
                                                "link": kf.link} for case, kf in k.now_passing],
            }
            for k in report.kernels
        ],
        "failures": [{"kernel": c.kernel, "case": c.case, "status": c.status, "reason": c.reason,
                      "rules": list(c.rules)} for c in report.failures() + report.flaky()],
        "cases": {case: {c.kernel: _cell_json(report, c) for c in row} for case, row in report.grid()},
    }


# -- text ------------------------------------------------------------------------------------------------------



def to_text(report: Report) -> str:
    """The matrix as a plain-text table plus per-kernel counts (for terminals and reports)."""
    names = [k.kernel for k in report.kernels]
    rows = [(case, [SHORT[c.status] for c in row]) for case, row in report.grid()]
    w0 = max([len("case"), *(len(r[0]) for r in rows)])
    widths = [max(len(n), 5) for n in names]
    lines = ["case".ljust(w0) + "  " + "  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True))]
    lines.append("-" * len(lines[0]))
    for case, cells in rows:
        lines.append(case.ljust(w0) + "  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
    lines.append("")
    for k in report.kernels:
        extra = f" [ERROR: {first_line(k.error)}]" if k.error else ""
        lines.append(f"{k.kernel} ({k.release or '?'}): {counts_text(k) or 'no results'}{extra}")
        if k.packages:
            lines.append("  packages: " + ", ".join(f"{name} {version}" for name, version in k.packages))
        lines += [f"  {note}" for note in k.version_notes]
        for case, kf in k.now_passing:
            lines.append(f"  known failure now passes, prune it: {case} ({kf.link})")
    return "\n".join(lines) + "\n"


def to_summary(report: Report) -> str:
    """What a terminal needs after a run: per kernel its counts and exact packages, then the failures and
    flaky cases by node id with their reason (the full table is matrix.txt's)."""
    lines = [f"{report.title}: {report.overall()}"]
    w = max([len(k.kernel) for k in report.kernels] or [0])
    for k in report.kernels:
        timing = f" (suite {k.suite_seconds:.0f}s)" if k.suite_seconds else ""
        state = f"ERROR: {first_line(k.error)}" if k.error else (counts_text(k) or "no results") + timing
        lines.append(f"  {k.kernel.ljust(w)}  {k.release or '?'}: {state}")
        lines += [f"  {''.ljust(w)}    {name} {version}" for name, version in k.packages]
        lines += [f"  {''.ljust(w)}    {note}" for note in k.version_notes]
    for title, cells in (("failed", report.failures()), ("flaky", report.flaky())):
        if cells:
            lines.append(f"{title} ({len(cells)}):")
            for c in cells:
                lines.append(f"  {SHORT[c.status]:5}  {c.kernel.ljust(w)}  {c.case}")
                lines.append(f"         {first_line(c.reason)}")
    prune = [(k.kernel, case, kf) for k in report.kernels for case, kf in k.now_passing]
    if prune:
        lines.append("known failures that now pass (prune them from known-failures.toml):")
        lines += [f"  {kernel}  {case} ({kf.link})" for kernel, case, kf in prune]
    lines += [f"note: {n}" for n in report.notes]
    return "\n".join(lines) + "\n"


# -- HTML ------------------------------------------------------------------------------------------------------

def to_html(report: Report) -> str:
    """The page a person reads: kernels with charts, failures and flaky cases first, then the filterable grid."""
    return render(report)
