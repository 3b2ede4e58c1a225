# SPDX-License-Identifier: GPL-2.0
"""Matrix results: per-kernel pytest JUnit files -> cells (pass/fail/skip/xfail/flaky) -> JUnit, JSON, HTML, text.

Pure: strings in, strings out. harness/campaigns/matrix/run.py runs the suites and does the file I/O (it also
copies each case's logs into the results directory and names them in Cell.logs); the results it judges
(Status, CaseResult, the JUnit reader) are harness/campaigns/results.py's; the HTML page is page.py's.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from harness.campaigns.matrix.spec import KnownFailure
from harness.campaigns.results import CaseResult
from harness.campaigns.results import parse_junit as parse_junit  # tests/unit/test_matrix_html.py reads it from here
from harness.status import Status

# The JUnit properties that name a case's log files (harness/cases/collect.py records them); run.py copies them.
CASE_LOGS = ("verifier log", "libbpf log", "audit records", "console log")
# How each status is written in the text table, the summary and the page.
SHORT = {Status.PASS: "pass", Status.FAIL: "FAIL", Status.ERROR: "ERROR", Status.LOST: "LOST", Status.SKIP: "skip",
         Status.XFAIL: "xfail", Status.FLAKY: "FLAKY", Status.MISSING: "-"}


class Link(NamedTuple):
    """A file of the results directory: label, path relative to the directory, the try it belongs to (0: the
    whole kernel run, 1: the first run, 2: the first rerun, ...)."""

    label: str
    href: str
    attempt: int = 0


@dataclass(frozen=True)
class Cell:
    """The verdict for one case on one kernel, after reruns and the known-failures list."""

    case: str  # the pytest node id
    kernel: str
    status: Status  # any of them: FLAKY from reruns, XFAIL from the known-failures list, MISSING from grid()
    reason: str = ""
    detail: str = ""
    attempts: tuple[Status, ...] = ()  # statuses of every try (first run + reruns), when reruns happened
    known: KnownFailure | None = None
    seconds: float = 0.0
    tries: tuple[CaseResult, ...] = ()  # what each try said (first run, then reruns), with its JUnit properties
    logs: tuple[Link, ...] = ()  # its files in the results directory (run.py fills them in)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))

    @property
    def rules(self) -> tuple[str, ...]:
        """The spec rules the case tests (its `spec_rule` properties)."""
        return next((t.props("spec_rule") for t in self.tries if t.props("spec_rule")), ())

    @property
    def description(self) -> str:
        return next((t.prop("description") for t in self.tries if t.prop("description")), "")

    def links(self, attempt: int) -> tuple[Link, ...]:
        return tuple(link for link in self.logs if link.attempt == attempt)


# A case's failure starts by echoing its location and description ("/repo/cases/x.bpf.c:24: rule 4: ..."), which
# the node id already says; the line after it says what went wrong.
_ECHO = re.compile(r"^\S+\.bpf\.c:\d+: ")


def gist(r: CaseResult) -> str:
    """The line of a result that says what happened: its message, or the line after a case's location echo."""
    if not _ECHO.match(r.message):
        return r.message
    lines = [line.strip() for line in r.detail.splitlines() if line.strip()]
    return next((line for line in lines[1:] if not _ECHO.match(line)), r.message)


# What the case runner records (JUnit property "status") for a failure that is not a verdict on the case.
NOT_VERDICTS = frozenset({"lost VM", "no verdict"})


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
        status, reason, detail = r.status, (gist(r) if r.status.failing else r.message), r.detail
        if status is Status.XFAIL:
            reason = f"pytest xfail: {reason}"  # the case's own mark, not the known-failures list
        tries = (r, *later.get(r.nodeid, ()))
        attempts = tuple(t.status for t in tries) if len(tries) > 1 else ()
        if status.failing and attempts:
            passes = attempts.count(Status.PASS)
            if passes:
                bad = next(t for t in tries if t.status.failing)
                status = Status.FLAKY
                reason = f"flaky: passed {passes} of {len(attempts)} tries; a failing try said: {gist(bad)}"
            else:
                reason = f"failed all {len(attempts)} tries: {gist(r)}"
        kf = next((k for k in known if k.matches(r.nodeid, kernel)), None)
        not_verdicts = sorted({t.prop("status") for t in tries if t.status.failing} & NOT_VERDICTS)
        if kf is not None and status.failing and not_verdicts:
            # A known failure explains a verdict of the case, never a lost VM or a case that could not be judged.
            reason = f"{reason} ({' and '.join(not_verdicts)}: not a verdict, so the known failure " \
                     f"{kf.link} does not apply)"
            kf = None
        if kf is not None:
            if status.failing:
                detail = f"{reason}\n{detail}".strip()
                status, reason = Status.XFAIL, f"known failure: {kf.reason} ({kf.link})"
            elif status in (Status.PASS, Status.FLAKY):
                now_passing.append((r.nodeid, kf))
                note = f"listed as a known failure ({kf.link}) but passed: prune it"
                reason = f"{reason}; {note}" if reason else note
        cells.append(Cell(r.nodeid, kernel, status, reason, detail, attempts, kf, r.seconds, tries))
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
    seconds: float = 0.0  # the whole target: kernel build or fetch, suite, reruns
    artifact_key: str = ""
    packages: tuple[tuple[str, str], ...] = ()  # the exact Debian packages the kernel came from (name, version)
    version_notes: tuple[str, ...] = ()  # e.g. a pinned version the archive no longer had, and what was used
    suite_seconds: float = 0.0  # the suite's wall time (first run and reruns), as its JUnit files say
    files: tuple[Link, ...] = ()  # its pytest log and JUnit files in the results directory

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
    link_prefix: str = ""  # prepended to every Link.href: where the results directory is, seen from the reports

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

    def failures(self) -> list[Cell]:
        """Failed and errored cells, kernel by kernel in matrix order, then by node id."""
        return [c for k in self.kernels for c in sorted(k.cells, key=lambda c: c.case) if c.status.failing]

    def flaky(self) -> list[Cell]:
        return [c for k in self.kernels for c in sorted(k.cells, key=lambda c: c.case) if c.status is Status.FLAKY]

    def href(self, link: Link) -> str:
        return self.link_prefix + link.href

    def overall(self) -> str:
        flaky = len(self.flaky())
        return ("OK" if self.ok() else "FAILURES") + (f" ({flaky} flaky)" if flaky else "")



def counts_text(k: KernelRun) -> str:
    return ", ".join(f"{n} {s}" for s, n in k.counts().items() if n)
