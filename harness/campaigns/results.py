# SPDX-License-Identifier: GPL-2.0
"""One model of an inner pytest run's results (CaseResult, with harness.status.Status) and its one JUnit XML reader."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from harness.status import NOT_VERDICT_PROPERTY, STATUS_PROPERTY, Status


@dataclass(frozen=True)
class CaseResult:
    """One <testcase> of one pytest JUnit file."""

    nodeid: str  # cases/audit/serial.bpf.c::grouped_with_syscall (see parse_junit for files without it)
    status: Status
    message: str = ""  # first line: the skip or xfail reason, the failure's or error's message
    detail: str = ""  # the full text (traceback, skip location), else the whole message
    seconds: float = 0.0
    # The testcase's <properties> in file order: what the plugin records (nodeid, spec_rule, description) and the
    # case runner's log files ('verifier log', 'libbpf log', 'audit records', 'console log': paths).
    properties: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))  # "pass" works, a stale "passed" raises

    def prop(self, name: str) -> str:
        """The first value of property `name` ("" without it)."""
        return next((v for k, v in self.properties if k == name), "")

    def props(self, name: str) -> tuple[str, ...]:
        """Every value of property `name` (a case may test several spec rules)."""
        return tuple(v for k, v in self.properties if k == name)

    @property
    def not_verdict(self) -> str:
        """What the runner recorded when the case failed without a verdict ("lost VM", "no verdict"), else ""."""
        value = self.prop(STATUS_PROPERTY)
        return value if value in _FROM_PROPERTY else ""

    @property
    def rerunnable(self) -> bool:
        """Whether pytest can be asked to run this node id again (a collection error's dotted name is not)."""
        path, sep, _ = self.nodeid.partition("::")
        return bool(sep and path and ("/" in path or path.endswith((".py", ".c"))))


def parse_junit(text: str | bytes) -> list[CaseResult]:
    """Every <testcase> of a pytest --junitxml file, xunit1 or xunit2, in file order.

    Node id: the `nodeid` property the plugin writes, else rebuilt from file, classname and name (see _nodeid).
    A failure or error anywhere in a testcase wins
    over a skip (a skipped case whose teardown failed is an error). A collection error (or an xdist worker's)
    is an ERROR whose node id has no '::'. pytest writes xfail as <skipped type="pytest.xfail">: XFAIL, not
    SKIP (an xpass is a <failure> when strict, else a pass, so it needs nothing here). A failure the runner marked
    as no verdict (property "status": "lost VM" or "no verdict", see harness.status) is LOST or ERROR, not FAIL.
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
        props = tuple((p.get("name", ""), p.get("value", "")) for p in tc.findall("properties/property"))
        if status.failing:
            status = next((_FROM_PROPERTY[v] for k, v in props if k == STATUS_PROPERTY and v in _FROM_PROPERTY), status)
        out.append(CaseResult(_nodeid(tc, props), status, first_line(message or detail), detail,
                              float(tc.get("time") or 0.0), props))
    return out


def suite_seconds(text: str | bytes) -> float:
    """The wall time of a pytest --junitxml run: the sum of its <testsuite time="..."> (one suite per run)."""
    return sum(float(s.get("time") or 0.0) for s in ET.fromstring(text).iter("testsuite"))


_FROM_PROPERTY = {v: k for k, v in NOT_VERDICT_PROPERTY.items()}
CASE_SUFFIX = ".bpf.c"


def _nodeid(tc: ET.Element, props: tuple[tuple[str, str], ...]) -> str:
    """The pytest node id of a testcase.

    The plugin's `nodeid` property when there is one. Else from the attributes: pytest writes the node id's
    path with '/' made '.' as the classname (a case file's `cases/audit/x.bpf.c` becomes `cases.audit.x.bpf.c`;
    the plugin now writes the path itself, see harness/cases/collect.py); xunit1 also writes the item's file.
    A dotted case file is turned back into its path (a case file's directories and stem hold no dots), so
    node ids, not dotted names, reach the reports. A collection error has no classname and names the file in
    `name` (or the xdist worker: gw1).
    """
    nodeid = next((v for k, v in props if k == "nodeid" and v), "")
    if nodeid:
        return nodeid
    name = tc.get("name", "")
    file = tc.get("file")  # xunit1 only
    classname = tc.get("classname", "")
    if not classname:  # a collection error (xunit1's file attribute is not used: xunit2 has none)
        return _undot_case(name)
    module = file.removesuffix(".py").replace("/", ".") if file else ""
    if module and (classname == module or classname.startswith(module + ".")):
        cls = classname[len(module) + 1:]
        return "::".join(p for p in (file, cls, name) if p)
    classname = _undot_case(classname)
    return f"{classname}::{name}" if name else classname


def _undot_case(dotted: str) -> str:
    """`cases.audit.x.bpf.c` -> `cases/audit/x.bpf.c` (anything else, a path already included, as it is)."""
    if "/" in dotted or not dotted.endswith(CASE_SUFFIX):
        return dotted
    return dotted.removesuffix(CASE_SUFFIX).replace(".", "/") + CASE_SUFFIX


def first_line(text: str) -> str:
    """The first line of a message, without pytest's "Skipped: " / "Failed: " prefix."""
    text = text.strip()
    for prefix in ("Skipped: ", "Failed: "):
        text = text.removeprefix(prefix)
    return text.splitlines()[0] if text else ""
