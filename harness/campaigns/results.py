# SPDX-License-Identifier: GPL-2.0
"""One model of an inner pytest run's results (Status, CaseResult) and its one JUnit XML reader."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """What happened to one case, in the order summaries list them. The values are what reports print.

    The reader gives the first five. FLAKY and MISSING are verdicts the matrix derives for a case on one kernel
    (failed, then passed on a rerun; did not run there): `parse_junit` never returns them.
    """

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"  # setup/teardown or collection failed: the case gave no verdict of its own
    SKIP = "skip"
    XFAIL = "xfail"  # failed as expected: pytest's xfail mark, or the matrix's known-failures list
    FLAKY = "flaky"
    MISSING = "missing"

    @property
    def failing(self) -> bool:
        return self in FAILING


FAILING = frozenset({Status.FAIL, Status.ERROR})


@dataclass(frozen=True)
class CaseResult:
    """One <testcase> of one pytest JUnit file."""

    nodeid: str  # cases/audit/serial.bpf.c::grouped_with_syscall (see parse_junit for files without it)
    status: Status
    message: str = ""  # first line: the skip or xfail reason, the failure's or error's message
    detail: str = ""  # the full text (traceback, skip location), else the whole message
    seconds: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))  # "pass" works, a stale "passed" raises

    @property
    def rerunnable(self) -> bool:
        """Whether pytest can be asked to run this node id again (a collection error's dotted name is not)."""
        path, sep, _ = self.nodeid.partition("::")
        return bool(sep and path and ("/" in path or path.endswith((".py", ".c"))))


def parse_junit(text: str | bytes) -> list[CaseResult]:
    """Every <testcase> of a pytest --junitxml file, xunit1 or xunit2, in file order.

    Node id: the `nodeid` property the plugin writes, else rebuilt from file, classname and name (the dotted
    classname stays dotted when nothing says which file it was). A failure or error anywhere in a testcase wins
    over a skip (a skipped case whose teardown failed is an error). A collection error (or an xdist worker's)
    is an ERROR whose node id has no '::'. pytest writes xfail as <skipped type="pytest.xfail">: XFAIL, not
    SKIP (an xpass is a <failure> when strict, else a pass, so it needs nothing here).
    """
    out: list[CaseResult] = []
    for tc in ET.fromstring(text).iter("testcase"):
        status, elem = Status.PASS, None
        for child in tc:
            if child.tag in ("failure", "error"):
                status, elem = (Status.FAIL if child.tag == "failure" else Status.ERROR), child
                break
            if child.tag == "skipped" and elem is None:
                elem = child
                status = Status.XFAIL if child.get("type") == "pytest.xfail" else Status.SKIP
        message = detail = ""
        if elem is not None:
            message = elem.get("message") or ""
            detail = elem.text if elem.text and elem.text.strip() else message
        out.append(CaseResult(_nodeid(tc), status, first_line(message or detail), detail,
                              float(tc.get("time") or 0.0)))
    return out


def _nodeid(tc: ET.Element) -> str:
    for prop in tc.iter("property"):
        if prop.get("name") == "nodeid" and prop.get("value"):
            return prop.get("value", "")
    name = tc.get("name", "")
    file = tc.get("file")  # xunit1 only
    classname = tc.get("classname", "")
    module = file.removesuffix(".py").replace("/", ".") if file else ""
    if module and (classname == module or classname.startswith(module + ".")):
        cls = classname[len(module) + 1:]
        return "::".join(p for p in (file, cls, name) if p)
    if not classname:  # a collection error: pytest names the file, dotted, in `name` (or the xdist worker)
        return name
    return f"{classname}::{name}" if name else classname


def first_line(text: str) -> str:
    """The first line of a message, without pytest's "Skipped: " / "Failed: " prefix."""
    text = text.strip()
    for prefix in ("Skipped: ", "Failed: "):
        text = text.removeprefix(prefix)
    return text.splitlines()[0] if text else ""
