# SPDX-License-Identifier: GPL-2.0
"""pytest items for a kernel tree's prog_tests/<name>.c: one per subtest of the test_progs run made at session start.

test_progs' subtests exist only when it runs (test__start_subtest() names them as it goes), so a run made while
collecting could not be shared by xdist workers, and one made per item would repeat it per subtest. The
controller runs test_progs once, at session start (harness.run_kernel.run_test_progs), and writes its verdicts to
summary files the run directory names for every process (harness.run_kernel.session); each item here reports one
verdict.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.selftests.testprogs.plan import PROG_TESTS, read_test_file
from harness.status import NOT_VERDICT_PROPERTY, STATUS_PROPERTY, Status

NO_VERDICT = NOT_VERDICT_PROPERTY[Status.ERROR]  # the JUnit status of an item test_progs gave no verdict
RUN_LEVEL = ("(test_progs)", "(kernel console)")  # verdicts of the whole run, reported with its first file
LOG_LINES = 60  # a failure's own lines shown in the report (all of them are in the run's log file)


def prog_tests_source(path: Path) -> tuple[Path, str] | None:
    """(tree, stem) when `path` is <tree>/tools/testing/selftests/bpf/prog_tests/<stem>.c, else None."""
    path = Path(path)
    if path.suffix != ".c" or path.parent.name != "prog_tests" or path.name == "tests.h":
        return None
    parts = path.resolve().parent.parts
    if tuple(parts[-len(PROG_TESTS.parts):]) != PROG_TESTS.parts:
        return None
    return Path(*parts[:-len(PROG_TESTS.parts)]), path.name.removesuffix(".c")


def is_prog_tests_file(path: Path) -> bool:
    """A prog_tests/<name>.c that defines at least one test."""
    if prog_tests_source(path) is None:
        return False
    try:
        return bool(read_test_file(Path(path)).tests)
    except OSError:
        return False


def load_results(summaries: list[Path]) -> list[dict[str, Any]]:
    """The summaries the controller wrote for this run (none: it ran no test_progs)."""
    out = []
    for name in summaries:
        try:
            out.append(json.loads(Path(name).read_text()))
        except (OSError, ValueError):
            continue
    return out


def _outcome_for(path: Path, results: list[dict[str, Any]]) -> dict[str, Any] | None:
    found = prog_tests_source(path)
    if found is None:
        return None
    tree, stem = found
    for r in results:
        if Path(r.get("tree", "")).resolve() == tree.resolve() and f"{stem}.c" in (r.get("files") or {}):
            return r
    return None


class TestProgsFileCollector(pytest.File):
    """A prog_tests/<name>.c named on the command line: its tests' subtests as test_progs judged them in this run's
    session-start run (or, with --collect-only, its tests, which run nothing)."""

    __test__ = False

    def __init__(self, *, summaries: Callable[[], list[Path]], **kw) -> None:
        super().__init__(**kw)
        self.summaries = summaries  # the summary files of this run's test_progs runs (given by the plugin)

    def collect(self):
        path = Path(self.path)
        results = load_results(self.summaries())
        outcome = _outcome_for(path, results)
        if outcome is None:
            yield from self._without_run(path, bool(results))
            return
        name = path.name
        if outcome.get("error"):
            yield _item(self, name.removesuffix(".c"), _no_verdict(f"{outcome['error_stage']}: {outcome['error']}",
                                                                     outcome), {STATUS_PROPERTY: NO_VERDICT})
            return
        tests = set(outcome["files"][name])
        first = next(iter(outcome["files"])) == name
        for v in outcome.get("subtests", []):
            if v["test"] in tests or (first and v["test"] in RUN_LEVEL):
                status = Status.from_past(v["status"])
                yield _item(self, v["name"], _replay(v, status, outcome), {
                    "test": v["test"], "subtest": v["subtest"] or "", "number": v["number"],
                    STATUS_PROPERTY: NO_VERDICT if status is Status.ERROR else status.past,
                    "test_progs log": (outcome.get("paths") or {}).get("log", "")})

    def _without_run(self, path: Path, others: bool):
        """No run for this file: --collect-only (nothing runs), or the session-start run did not happen."""
        for test in read_test_file(path).tests:
            if self.config.option.collectonly:
                def placeholder() -> None:
                    pytest.skip("collected only: test_progs runs at session start, its subtests are its verdicts")
                yield _item(self, test, placeholder, {})
            else:
                why = ("this file was not part of it" if others else
                       "no test_progs ran at session start (see the start of the output)")
                yield _item(self, test, _no_verdict(why, {}), {STATUS_PROPERTY: NO_VERDICT})


class TestProgsItem(pytest.Function):
    """One subtest's verdict, located in its prog_tests file."""

    __test__ = False

    def reportinfo(self):  # pytest API
        return self.path, 0, self.name


def _item(parent: TestProgsFileCollector, name: str, func, props: dict[str, str]) -> TestProgsItem:
    item = TestProgsItem.from_parent(parent, name=name, callobj=func)
    item.add_marker(pytest.mark.vm)
    item.user_properties += [(k, v) for k, v in props.items() if v]
    return item


def _replay(v: dict[str, Any], status: Status, outcome: dict[str, Any]):
    log_path = (outcome.get("paths") or {}).get("log", "")

    def subtest() -> None:
        message, lines = v["message"], v.get("log") or []
        if status is Status.PASS:
            return
        if status is Status.SKIP:
            pytest.skip(message)
        shown = "\n".join(lines[-LOG_LINES:])
        where = f"\ntest_progs' output: {log_path}" if log_path else ""
        if status is Status.FAIL:
            number = f" ({v['number']})" if v.get("number") else ""
            pytest.fail(f"{v['name']}{number}: {message}\n{shown}{where}".rstrip(), pytrace=False)
        pytest.fail(f"NO VERDICT (a harness or machine problem, not the subtest's): {message}\n{shown}{where}".rstrip(),
                    pytrace=False)

    subtest.__doc__ = v["name"]
    return subtest


def _no_verdict(why: str, outcome: dict[str, Any]):
    paths = outcome.get("paths") or {}
    extra = "".join(f"\n{k}: {p}" for k, p in paths.items() if k in ("build_log", "log", "console_log"))

    def no_run() -> None:
        pytest.fail(f"NO VERDICT (a harness or machine problem, not the test's): {why}{extra}", pytrace=False)

    return no_run
