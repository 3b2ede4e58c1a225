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
            item = pytest.Function.from_parent(self, name=prog.name, callobj=_case_function(prog))
            item.add_marker(pytest.mark.vm)
            for rule in prog.rules:
                item.user_properties.append(("spec_rule", str(rule)))
            item.user_properties.append(("description", prog.description))
            yield item

    def repr_failure(self, excinfo):  # pytest API
        if isinstance(excinfo.value, CaseError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


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
        if outcome.status == "skipped":
            pytest.skip(outcome.summary)
        if outcome.status == "lost":
            request.node.user_properties.append(("status", "lost VM"))
            request.getfixturevalue("vm_pool").discard("lost during a case")
            timed_out = getattr(request.node, "_harness_timed_out", None)
            why = (f"the case ran longer than --case-timeout={timed_out:g}s, so its VM was killed; "
                   if timed_out else "")
            pytest.fail(f"LOST VM (not a verdict on the case): {why}{outcome.report()}", pytrace=False)
        if outcome.status == "error":
            request.node.user_properties.append(("status", "no verdict"))
        if outcome.status != "passed":
            pytest.fail(f"{prog.location}: {prog.description}\n{outcome.report()}", pytrace=False)

    case.__doc__ = prog.description
    return case


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:120]
