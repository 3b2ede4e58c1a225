# SPDX-License-Identifier: GPL-2.0
"""Matrix results: per-kernel pytest JUnit files -> cells (pass/fail/skip/xfail/flaky) -> JUnit, JSON, HTML, text.

Pure: strings in, strings out. harness/campaigns/matrix/run.py runs the suites and does the file I/O; the
results it judges (Status, CaseResult, the JUnit reader) are harness/campaigns/results.py's.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.campaigns.matrix.spec import KnownFailure
from harness.campaigns.results import CaseResult, Status, first_line
from harness.campaigns.results import parse_junit as parse_junit  # tests/test_matrix_html.py reads it from here


@dataclass(frozen=True)
class Cell:
    """The verdict for one case on one kernel, after reruns and the known-failures list."""

    case: str
    kernel: str
    status: Status  # any of them: FLAKY from reruns, XFAIL from the known-failures list, MISSING from grid()
    reason: str = ""
    detail: str = ""
    attempts: tuple[Status, ...] = ()  # statuses of every try (first run + reruns), when reruns happened
    known: KnownFailure | None = None
    seconds: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))


def judge(kernel: str, first: list[CaseResult], reruns: Sequence[list[CaseResult]] = (),
          known: tuple[KnownFailure, ...] = ()) -> tuple[list[Cell], list[tuple[str, KnownFailure]]]:
    """Cells for one kernel, and the known failures that passed (to prune).

    A case that failed and was rerun: if any try passed it is flaky (never a plain pass or fail); if every try
    failed it is a failure. A failure matching the known-failures list becomes xfail with that reason.
    """
    later: dict[str, list[CaseResult]] = {}
    for run in reruns:
        for r in run:
            later.setdefault(r.nodeid, []).append(r)
    cells: list[Cell] = []
    now_passing: list[tuple[str, KnownFailure]] = []
    for r in first:
        status, reason, detail = r.status, r.message, r.detail
        if status is Status.XFAIL:
            reason = f"pytest xfail: {reason}"  # the case's own mark, not the known-failures list
        tries = (r, *later.get(r.nodeid, ()))
        attempts = tuple(t.status for t in tries) if len(tries) > 1 else ()
        if status.failing and attempts:
            passes = attempts.count(Status.PASS)
            if passes:
                bad = next(t for t in tries if t.status.failing)
                status = Status.FLAKY
                reason = f"flaky: passed {passes} of {len(attempts)} tries; a failing try said: {bad.message}"
            else:
                reason = f"failed all {len(attempts)} tries: {r.message}"
        kf = next((k for k in known if k.matches(r.nodeid, kernel)), None)
        if kf is not None:
            if status.failing:
                detail = f"{reason}\n{detail}".strip()
                status, reason = Status.XFAIL, f"known failure: {kf.reason} ({kf.link})"
            elif status in (Status.PASS, Status.FLAKY):
                now_passing.append((r.nodeid, kf))
                note = f"listed as a known failure ({kf.link}) but passed: prune it"
                reason = f"{reason}; {note}" if reason else note
        cells.append(Cell(r.nodeid, kernel, status, reason, detail, attempts, kf, r.seconds))
    return cells, now_passing


@dataclass(frozen=True)
class KernelRun:
    """One matrix column: the target, what ran and how it went."""

    kernel: str
    description: str = ""
    release: str = ""
    cells: tuple[Cell, ...] = ()
    error: str = ""  # the target could not be run at all (build failed, pytest crashed)
    now_passing: tuple[tuple[str, KnownFailure], ...] = ()
    seconds: float = 0.0
    artifact_key: str = ""
    packages: tuple[tuple[str, str], ...] = ()  # the exact Debian packages the kernel came from (name, version)
    version_notes: tuple[str, ...] = ()  # e.g. a pinned version the archive no longer had, and what was used

    def counts(self) -> dict[str, int]:
        c = Counter(cell.status for cell in self.cells)
        return {s: c.get(s, 0) for s in Status if s is not Status.MISSING}

    def cell(self, case: str) -> Cell | None:
        return next((c for c in self.cells if c.case == case), None)


@dataclass(frozen=True)
class Report:
    kernels: tuple[KernelRun, ...]
    title: str = "bpf-audit-harness kernel matrix"
    generated: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def cases(self) -> list[str]:
        return sorted({c.case for k in self.kernels for c in k.cells})

    def grid(self) -> list[tuple[str, list[Cell]]]:
        """Rows of the table: each case with one cell per kernel ('missing' where it did not run)."""
        rows = []
        for case in self.cases():
            row = []
            for k in self.kernels:
                cell = k.cell(case)
                if cell is None:
                    why = f"not run on {k.kernel}" + (f": {k.error}" if k.error else "")
                    cell = Cell(case, k.kernel, Status.MISSING, why)
                row.append(cell)
            rows.append((case, row))
        return rows

    def ok(self) -> bool:
        """No kernel errored and no case failed (xfail, skip and flaky do not fail the matrix)."""
        return all(not k.error and not any(c.status.failing for c in k.cells) for k in self.kernels)


# -- JUnit -----------------------------------------------------------------------------------------------------

def to_junit(report: Report) -> str:
    """One <testsuite> per kernel. Flaky: passed with status="flaky" and the tries in system-out; known failure:
    skipped with status="xfail" and the reason (the original failure in the skip text)."""
    from junit_xml import TestCase, TestSuite, to_xml_report_string

    suites = []
    for k in report.kernels:
        cases = []
        for c in k.cells:
            file, _, name = c.case.rpartition("::")
            tc = TestCase(name or c.case, classname=file or k.kernel, elapsed_sec=c.seconds, status=c.status,
                          file=file or None)
            if c.attempts:
                tc.stdout = f"tries: {', '.join(c.attempts)}"
            if c.status is Status.FAIL:
                tc.add_failure_info(message=c.reason, output=c.detail)
            elif c.status is Status.ERROR:
                tc.add_error_info(message=c.reason, output=c.detail)
            elif c.status is Status.SKIP:
                tc.add_skipped_info(message=c.reason)
            elif c.status is Status.XFAIL:
                tc.add_skipped_info(message=c.reason, output=c.detail)
            elif c.status is Status.FLAKY:
                tc.stdout = f"FLAKY ({', '.join(c.attempts)}): {c.reason}"
            cases.append(tc)
        if k.error:
            tc = TestCase("kernel setup", classname=k.kernel, status=Status.ERROR)
            tc.add_error_info(message=first_line(k.error), output=k.error)
            cases.append(tc)
        props = {"kernel": k.kernel, "release": k.release, "description": k.description,
                 "artifact_key": k.artifact_key}
        props.update({f"package.{name}": version for name, version in k.packages})
        props.update({f"version_note.{i}": note for i, note in enumerate(k.version_notes, 1)})
        props.update({f"count.{s}": str(n) for s, n in k.counts().items()})
        suites.append(TestSuite(k.kernel, cases, properties=props, package="bpf-audit-harness.matrix"))
    return to_xml_report_string(suites, prettyprint=True, encoding="utf-8")


# -- JSON ------------------------------------------------------------------------------------------------------

def to_json(report: Report) -> dict:
    return {
        "title": report.title,
        "generated": report.generated,
        "ok": report.ok(),
        "notes": list(report.notes),
        "kernels": [
            {
                "name": k.kernel, "description": k.description, "release": k.release, "error": k.error,
                "artifact_key": k.artifact_key, "seconds": round(k.seconds, 1), "counts": k.counts(),
                "packages": dict(k.packages), "version_notes": list(k.version_notes),
                "flaky": [c.case for c in k.cells if c.status is Status.FLAKY],
                "failed": [c.case for c in k.cells if c.status.failing],
                "known_failures_now_passing": [{"case": case, "pattern": kf.case, "reason": kf.reason,
                                                "link": kf.link} for case, kf in k.now_passing],
            }
            for k in report.kernels
        ],
        "cases": {
            case: {c.kernel: {"status": c.status, "reason": c.reason, **({"attempts": list(c.attempts)}
                                                                          if c.attempts else {})} for c in row}
            for case, row in report.grid()
        },
    }


# -- text ------------------------------------------------------------------------------------------------------

SHORT = {Status.PASS: "pass", Status.FAIL: "FAIL", Status.ERROR: "ERROR", Status.SKIP: "skip",
         Status.XFAIL: "xfail", Status.FLAKY: "FLAKY", Status.MISSING: "-"}


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
        counts = ", ".join(f"{n} {s}" for s, n in k.counts().items() if n)
        extra = f" [ERROR: {first_line(k.error)}]" if k.error else ""
        lines.append(f"{k.kernel} ({k.release or '?'}): {counts or 'no results'}{extra}")
        if k.packages:
            lines.append("  packages: " + ", ".join(f"{name} {version}" for name, version in k.packages))
        lines += [f"  {note}" for note in k.version_notes]
        for case, kf in k.now_passing:
            lines.append(f"  known failure now passes, prune it: {case} ({kf.link})")
    return "\n".join(lines) + "\n"


# -- HTML ------------------------------------------------------------------------------------------------------

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table.matrix { border-collapse: collapse; }
table.matrix th, table.matrix td { border: 1px solid #ccc; padding: 3px 8px; }
table.matrix th.case, table.matrix td.case { text-align: left; font-family: ui-monospace, monospace; }
table.matrix td.cell { text-align: center; font-weight: 600; min-width: 5em; cursor: help; }
.pass { background: #d8f0d8; color: #1d5e1d; }
.fail, .error { background: #f6c9c9; color: #8a1010; }
.skip { background: #eeeeee; color: #666; }
.xfail { background: #fde9c4; color: #7a4d00; }
.flaky { background: #f4d6f4; color: #6d1d6d; }
.missing { background: #fff; color: #aaa; }
tr.counts td { font-size: 12px; color: #444; }
.legend span { display: inline-block; padding: 1px 8px; margin-right: 6px; border: 1px solid #ccc; }
"""


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _overall(report: Report) -> str:
    flaky = sum(c.status is Status.FLAKY for k in report.kernels for c in k.cells)
    return ("OK" if report.ok() else "FAILURES") + (f" ({flaky} flaky)" if flaky else "")


def to_html(report: Report) -> str:
    """A static page: cases x kernels, each cell's reason in its title (hover)."""
    head = "".join(
        f'<th class="kernel" title="{_e(k.description + (" — " + k.release if k.release else ""))}">{_e(k.kernel)}'
        f"<br><small>{_e(k.release)}</small>"
        + "".join(f'<br><small class="package">{_e(name)} {_e(version)}</small>' for name, version in k.packages)
        + "</th>" for k in report.kernels)
    body = []
    for case, row in report.grid():
        cells = "".join(
            f'<td class="cell {c.status}" data-kernel="{_e(c.kernel)}" data-status="{c.status}" '
            f'title="{_e(c.reason or c.status)}">{_e(SHORT[c.status])}</td>' for c in row)
        body.append(f'<tr data-case="{_e(case)}"><td class="case">{_e(case)}</td>{cells}</tr>')
    counts = "".join(
        '<td title="{}">{}</td>'.format(
            _e(k.error) if k.error else "",
            _e(", ".join(f"{n} {s}" for s, n in k.counts().items() if n) or ("ERROR" if k.error else "no results")))
        for k in report.kernels)
    legend = "".join(f'<span class="{s}">{_e(SHORT[s])}: {s}</span>' for s in Status)
    notes = []
    for k in report.kernels:
        if k.error:
            notes.append(f"<li><b>{_e(k.kernel)}</b>: could not run: <code>{_e(first_line(k.error))}</code></li>")
        for note in k.version_notes:
            notes.append(f"<li><b>{_e(k.kernel)}</b>: {_e(note)}</li>")
        for case, kf in k.now_passing:
            notes.append(f"<li><b>{_e(k.kernel)}</b>: known failure now passes, prune it from known-failures.toml: "
                         f"<code>{_e(case)}</code> ({_e(kf.link)})</li>")
        for c in k.cells:
            if c.status is Status.FLAKY:
                notes.append(f"<li><b>{_e(k.kernel)}</b>: flaky <code>{_e(c.case)}</code>: {_e(c.reason)}</li>")
    notes += [f"<li>{_e(n)}</li>" for n in report.notes]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{_e(report.title)}</title><style>{_CSS}</style></head><body>\n"
        f"<h1>{_e(report.title)}</h1>\n<p>{_e(report.generated)} — hover a cell for its reason. "
        f"Overall: <b id=\"overall\">{_overall(report)}</b></p>\n"
        f'<p class="legend">{legend}</p>\n'
        f'<table class="matrix" id="matrix"><thead><tr><th class="case">case</th>{head}</tr>\n'
        f'<tr class="counts"><td class="case">counts</td>{counts}</tr></thead>\n<tbody>\n'
        + "\n".join(body)
        + "\n</tbody></table>\n"
        + (f"<h2>Notes</h2><ul>{''.join(notes)}</ul>\n" if notes else "")
        + "</body></html>\n"
    )
