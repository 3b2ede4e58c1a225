# SPDX-License-Identifier: GPL-2.0
"""Matrix results: per-kernel pytest JUnit files -> cells (pass/fail/skip/xfail/flaky) -> JUnit, JSON, HTML, text.

Pure: strings in, strings out. harness/campaigns/matrix/run.py runs the suites and does the file I/O.
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field

from harness.campaigns.matrix.spec import KnownFailure

# Cell statuses, in the order the summary lists them.
STATUSES = ("pass", "fail", "error", "skip", "xfail", "flaky", "missing")
FAILING = ("fail", "error")


@dataclass(frozen=True)
class CaseResult:
    """One test in one pytest JUnit file."""

    case: str  # pytest node id: cases/audit/serial.bpf.c::grouped_with_syscall
    status: str  # pass | fail | error | skip
    message: str = ""  # skip reason or the failure's first line
    detail: str = ""  # full failure text
    seconds: float = 0.0


def _case_id(tc: ET.Element) -> str:
    """The pytest node id: the `nodeid` property the plugin writes, else rebuilt from file/classname/name."""
    for prop in tc.iter("property"):
        if prop.get("name") == "nodeid" and prop.get("value"):
            return prop.get("value", "")
    name = tc.get("name", "")
    file = tc.get("file")
    classname = tc.get("classname", "")
    module = file.removesuffix(".py").replace("/", ".") if file else ""
    if module and (classname == module or classname.startswith(module + ".")):
        cls = classname[len(module) + 1:]
        return "::".join(p for p in (file, cls, name) if p)
    if not classname:  # a collection error: pytest names the file, dotted, in `name`
        return name
    return f"{classname}::{name}" if name else classname


def rerunnable(case: str) -> bool:
    """Whether `case` is a node id pytest can be asked to run again (a collection error's dotted name is not)."""
    path, sep, _ = case.partition("::")
    return bool(sep and path and ("/" in path or path.endswith((".py", ".c"))))


def parse_junit(text: str) -> list[CaseResult]:
    """Results from one pytest --junitxml file (xunit1 or xunit2). Collection errors count as errors."""
    root = ET.fromstring(text)
    out: list[CaseResult] = []
    for tc in root.iter("testcase"):
        seconds = float(tc.get("time") or 0.0)
        status, message, detail = "pass", "", ""
        for child in tc:
            if child.tag in ("failure", "error"):
                status = "fail" if child.tag == "failure" else "error"
                message = child.get("message") or ""
                detail = child.text or ""
                break
            if child.tag == "skipped":
                status = "skip"
                message = child.get("message") or ""
                detail = child.text or ""
                break
        if status == "skip" and (child.get("type") == "pytest.xfail"):
            status, message = "xfail", f"pytest xfail: {message}"
        out.append(CaseResult(_case_id(tc), status, _first_line(message or detail), detail, seconds))
    return out


def _first_line(text: str) -> str:
    text = text.strip()
    for prefix in ("Skipped: ", "Failed: "):
        text = text.removeprefix(prefix)
    return text.splitlines()[0] if text else ""


@dataclass(frozen=True)
class Cell:
    """The verdict for one case on one kernel, after reruns and the known-failures list."""

    case: str
    kernel: str
    status: str
    reason: str = ""
    detail: str = ""
    attempts: tuple[str, ...] = ()  # statuses of every try (first run + reruns), when reruns happened
    known: KnownFailure | None = None
    seconds: float = 0.0


def judge(kernel: str, first: list[CaseResult], reruns: list[list[CaseResult]] = (),
          known: tuple[KnownFailure, ...] = ()) -> tuple[list[Cell], list[tuple[str, KnownFailure]]]:
    """Cells for one kernel, and the known failures that passed (to prune).

    A case that failed and was rerun: if any try passed it is flaky (never a plain pass or fail); if every try
    failed it is a failure. A failure matching the known-failures list becomes xfail with that reason.
    """
    later: dict[str, list[CaseResult]] = {}
    for run in reruns:
        for r in run:
            later.setdefault(r.case, []).append(r)
    cells: list[Cell] = []
    now_passing: list[tuple[str, KnownFailure]] = []
    for r in first:
        status, reason, detail = r.status, r.message, r.detail
        tries = (r, *later.get(r.case, ()))
        attempts = tuple(t.status for t in tries) if len(tries) > 1 else ()
        if status in FAILING and attempts:
            passes = attempts.count("pass")
            if passes:
                bad = next(t for t in tries if t.status in FAILING)
                status = "flaky"
                reason = f"flaky: passed {passes} of {len(attempts)} tries; a failing try said: {bad.message}"
            else:
                reason = f"failed all {len(attempts)} tries: {r.message}"
        kf = next((k for k in known if k.matches(r.case, kernel)), None)
        if kf is not None:
            if status in FAILING:
                detail = f"{reason}\n{detail}".strip()
                status, reason = "xfail", f"known failure: {kf.reason} ({kf.link})"
            elif status in ("pass", "flaky"):
                now_passing.append((r.case, kf))
                note = f"listed as a known failure ({kf.link}) but passed: prune it"
                reason = f"{reason}; {note}" if reason else note
        cells.append(Cell(r.case, kernel, status, reason, detail, attempts, kf, r.seconds))
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
        return {s: c.get(s, 0) for s in STATUSES if s != "missing"}

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
                    cell = Cell(case, k.kernel, "missing", why)
                row.append(cell)
            rows.append((case, row))
        return rows

    def ok(self) -> bool:
        """No kernel errored and no case failed (xfail, skip and flaky do not fail the matrix)."""
        return all(not k.error and not any(c.status in FAILING for c in k.cells) for k in self.kernels)


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
            if c.status == "fail":
                tc.add_failure_info(message=c.reason, output=c.detail)
            elif c.status == "error":
                tc.add_error_info(message=c.reason, output=c.detail)
            elif c.status == "skip":
                tc.add_skipped_info(message=c.reason)
            elif c.status == "xfail":
                tc.add_skipped_info(message=c.reason, output=c.detail)
            elif c.status == "flaky":
                tc.stdout = f"FLAKY ({', '.join(c.attempts)}): {c.reason}"
            cases.append(tc)
        if k.error:
            tc = TestCase("kernel setup", classname=k.kernel, status="error")
            tc.add_error_info(message=_first_line(k.error), output=k.error)
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
                "flaky": [c.case for c in k.cells if c.status == "flaky"],
                "failed": [c.case for c in k.cells if c.status in FAILING],
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

SHORT = {"pass": "pass", "fail": "FAIL", "error": "ERROR", "skip": "skip", "xfail": "xfail", "flaky": "FLAKY",
         "missing": "-"}


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
        extra = f" [ERROR: {_first_line(k.error)}]" if k.error else ""
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
    flaky = sum(c.status == "flaky" for k in report.kernels for c in k.cells)
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
    legend = "".join(f'<span class="{s}">{_e(SHORT[s])}: {s}</span>' for s in STATUSES)
    notes = []
    for k in report.kernels:
        if k.error:
            notes.append(f"<li><b>{_e(k.kernel)}</b>: could not run: <code>{_e(_first_line(k.error))}</code></li>")
        for note in k.version_notes:
            notes.append(f"<li><b>{_e(k.kernel)}</b>: {_e(note)}</li>")
        for case, kf in k.now_passing:
            notes.append(f"<li><b>{_e(k.kernel)}</b>: known failure now passes, prune it from known-failures.toml: "
                         f"<code>{_e(case)}</code> ({_e(kf.link)})</li>")
        for c in k.cells:
            if c.status == "flaky":
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
