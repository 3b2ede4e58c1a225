# SPDX-License-Identifier: GPL-2.0
"""pytest collection of case files: one item per program, running harness.cases.run through fixtures."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from harness.cases.model import CaseProgram
from harness.cases.parse import parse_case_file
from harness.errors import CaseError
from harness.status import NOT_VERDICT_PROPERTY, STATUS_PROPERTY, Status


def is_case_file(path: Path) -> bool:
    """A case is a BPF C file that includes the case header; other BPF sources (test fixtures) are not cases."""
    if not path.name.endswith(".bpf.c"):
        return False
    try:
        return '#include "harness.h"' in path.read_text(errors="replace")
    except OSError:
        return False


class CaseFileCollector(pytest.File):
    """A cases/**/*.bpf.c file. A malformed annotation is a collection error naming file and line."""

    def collect(self):
        case_file = parse_case_file(Path(self.path))
        for prog in case_file.programs:
            item = CaseItem.from_parent(self, name=prog.name, callobj=_case_function(prog))
            item.case_line = prog.line
            item.add_marker(pytest.mark.vm)
            for rule in prog.rules:
                item.user_properties.append(("spec_rule", str(rule)))
            item.user_properties.append(("description", prog.description))
            yield item

    def repr_failure(self, excinfo):  # pytest API
        if isinstance(excinfo.value, CaseError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class CaseItem(pytest.Function):
    """One program of a case file: a pytest.Function located in its case file, not in this module.

    pytest takes an item's location from reportinfo(): a Function's is where its Python function is (this
    file), and its headline a dotted path built from the node chain (`.main.cases.x.bpf.c.prog`). Here it is the
    case file, the program's line and the program's name, as pytest shows a test function (its headline is the
    name, like `test_x`: a full node id there would be mangled by `pytest -v`, which turns the dots of a
    location's name into '::')."""

    case_line = 0  # 1-based line of the program in its case file (set by the collector)

    def reportinfo(self):  # pytest API
        return self.path, max(self.case_line - 1, 0), self.name


class JUnitCaseNames:
    """pytest's --junitxml names a testcase by its node id's path with '/' made '.' (`cases.audit.x.bpf.c`: a
    Python module path, which a case file is not, and which CI readers cannot map back). For case files write
    the path itself: the classname of a case's testcase, the name of a collection error's. pytest has no public
    way to set a testcase's attributes from a hook, so the file pytest wrote is rewritten once it is written
    (pytest_unconfigure runs after the writer's pytest_sessionfinish): the plugin registers this in the process
    that writes the JUnit file (xdist's controller: its workers write none)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.errors: dict[str, str] = {}  # a failed collection's dotted name -> its path

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        path = report.nodeid.partition("::")[0]
        if not report.passed and path.endswith(".c") and "::" not in report.nodeid:
            self.errors[path.replace("/", ".")] = path

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        xmlpath = getattr(config.option, "xmlpath", None)
        if xmlpath:
            rename_case_testcases(Path(xmlpath), self.errors)


def rename_case_testcases(junit: Path, errors: dict[str, str]) -> None:
    """Rewrite `junit`: a case's testcase (its `nodeid` property names a .c file) gets the file's path as its
    classname, a failed collection of a case file (`errors`: dotted name -> path) the path as its name."""
    import xml.etree.ElementTree as ET

    try:
        tree = ET.parse(junit)
    except (OSError, ET.ParseError):
        return
    changed = False
    for tc in tree.getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in tc.iter("property")}
        path = (props.get("nodeid") or "").partition("::")[0]
        if path.endswith(".c"):
            tc.set("classname", path)
            changed = True
            continue
        dotted = ".".join(x for x in (tc.get("classname"), tc.get("name")) if x)
        if dotted in errors:
            tc.set("name", errors[dotted])
            changed = True
    if changed:
        tree.write(junit, encoding="utf-8", xml_declaration=True)


def _case_function(prog: CaseProgram):
    def case(kernel_under_test, case_log_root, case_objects, request):
        from harness.cases import compile as bpfobj
        from harness.cases import run as runner

        compiled = bpfobj.compile_case(Path(prog.path), kernel_under_test.vmlinux_h, case_objects)
        if not compiled.ok or compiled.obj is None:
            pytest.fail(f"{prog.path}: does not compile against {kernel_under_test.release}'s vmlinux.h:\n"
                        f"{compiled.stderr.strip()}\n$ {' '.join(compiled.argv)}", pytrace=False)
        case_session = request.getfixturevalue("case_session")  # a VM only for a case that compiled
        log_dir = case_log_root / _slug(f"{Path(prog.path).stem}-{prog.name}")
        outcome = runner.run_case(prog, compiled.obj, kernel_under_test, case_session, log_dir,
                                  console_policy=request.config.getoption("--console-findings"))
        for name, path in outcome.files.items():
            request.node.user_properties.append((name, str(path)))
        for text in outcome.warnings:
            warnings.warn(pytest.PytestWarning(f"{prog.location}: {text}"), stacklevel=1)
        if outcome.status is Status.SKIP:
            pytest.skip(outcome.summary)
        if not outcome.status.verdict:  # pytest knows no LOST or ERROR: the JUnit reader gets them from this
            request.node.user_properties.append((STATUS_PROPERTY, NOT_VERDICT_PROPERTY[outcome.status]))
        if outcome.status is Status.LOST:
            request.getfixturevalue("vm_pool").discard("lost during a case")
            timed_out = request.getfixturevalue("run_session_state").test(request.node.nodeid).timed_out
            why = (f"the case ran longer than --case-timeout={timed_out:g}s, so its VM was killed; "
                   if timed_out else "")
            pytest.fail(f"LOST VM (not a verdict on the case): {why}{outcome.report()}", pytrace=False)
        if outcome.status in (Status.FAIL, Status.ERROR):
            _keep_for_inspection(request, prog, compiled.obj, case_session, outcome)
        if outcome.status is not Status.PASS:
            pytest.fail(f"{prog.location}: {prog.description}\n{outcome.report()}", pytrace=False)

    case.__doc__ = prog.description
    return case


def _keep_for_inspection(request, prog: CaseProgram, obj: Path, session, outcome) -> None:
    """--keep-vm-on-failure: the run's first failing case claims the kept VM and pins its program there (the vm
    fixture hands the VM over when the test ends)."""
    from harness.errors import GuestCommandError, LostVMError
    from harness.machine import keep
    from harness.machine.vm import LocalVM

    run = request.getfixturevalue("run_session_state")  # harness.run_kernel.session.RunSession
    keeper = run.keeper
    if keeper is None or not isinstance(session.machine, LocalVM) or not session.machine.alive():
        return
    if not keeper.claim():
        return
    from harness.cases import run as runner

    try:
        notes = runner.keep_program(prog, obj, session, keep.PIN_DIR)
    except (GuestCommandError, LostVMError) as e:
        notes = [f"the program could not be kept loaded: {e}"]
    run.test(request.node.nodeid).kept_notes = notes
    outcome.details.append(("VM kept for inspection (--keep-vm-on-failure)", "\n".join(notes)))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:120]
