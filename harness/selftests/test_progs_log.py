# SPDX-License-Identifier: GPL-2.0
"""test_progs' result lines (`#N/M test/subtest:OK|FAIL|SKIP`) parsed, and compared with this harness's verdicts."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.status import Status

# print_subtest_name(): "#%-7s %s/%s:%s" with "N/M", the test's name (a prog_tests function without test_ or
# serial_test_: no "/" in it), the subtest's (test_loader's: a program's description, " @unpriv" for the
# unprivileged run; it may hold ":" and "/") and OK, FAIL or SKIP. print_test_result(): "#%-7d %s:%s" with OK,
# FAIL, SKIP or "OK (SKIP: n/m)".
SUBTEST_LINE = re.compile(r"^#(\d+)/(\d+)\s+([^/\s]+)/(.*):(OK|FAIL|SKIP)\s*$")
TEST_LINE = re.compile(r"^#(\d+)\s+([^/\s]+):(OK|FAIL|SKIP|OK \(SKIP: (\d+)/(\d+)\))\s*$")
# After the run, test_progs repeats the failed tests' logs and result lines under this line: not new results.
RECAP = "All error logs:"
# 7.x prints "N/M FAILED" (failed tests / failed subtests) where 6.x prints "N FAILED"
SUMMARY_LINE = re.compile(r"^Summary: (\d+)/(\d+) PASSED, (\d+) SKIPPED, (\d+)(?:/\d+)? FAILED\s*$")

# test_progs' results as the harness's statuses.
STATUS = {"OK": Status.PASS, "FAIL": Status.FAIL, "SKIP": Status.SKIP}


@dataclass(frozen=True)
class SubtestLine:
    """One subtest's result as test_progs printed it."""

    test_num: int
    subtest_num: int
    test: str
    subtest: str
    result: str  # OK | FAIL | SKIP

    @property
    def status(self) -> Status:
        return STATUS[self.result]


@dataclass(frozen=True)
class TestProgsLog:
    """What one test_progs run printed: its subtests in order, each test's result, and the summary line."""

    __test__ = False

    subtests: tuple[SubtestLine, ...]
    tests: Mapping[str, str]  # test name -> OK | FAIL | SKIP | "OK (SKIP: n/m)"
    summary: tuple[int, int, int, int] | None = None  # tests passed, subtests passed, skipped, failed

    def of_test(self, test: str) -> list[SubtestLine]:
        return [s for s in self.subtests if s.test == test]


def parse(text: str) -> TestProgsLog:
    """test_progs' output (its stdout, any log lines between): the result lines, in order, up to the recap of
    the failures ("All error logs:"), and the summary line. Carriage returns (a console's line ends) are dropped."""
    subtests: list[SubtestLine] = []
    tests: dict[str, str] = {}
    summary = None
    recap = False
    for raw in text.splitlines():
        line = raw.replace("\r", "")
        if line.strip() == RECAP:
            recap = True
        elif m := SUMMARY_LINE.match(line):
            summary = (int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4)))
        elif recap:
            continue
        elif m := SUBTEST_LINE.match(line):
            subtests.append(SubtestLine(int(m.group(1)), int(m.group(2)), m.group(3), m.group(4), m.group(5)))
        elif m := TEST_LINE.match(line):
            tests[m.group(2)] = m.group(3)
    return TestProgsLog(tuple(subtests), tests, summary)


def name_of_test(function: str) -> str:
    """The test test_progs names after a prog_tests function: test_x and serial_test_x are both `x`."""
    for prefix in ("serial_test_", "test_"):
        if function.startswith(prefix):
            return function[len(prefix):]
    return function


@dataclass(frozen=True)
class Row:
    """One subtest of a selftest file: the harness's status beside test_progs' (None: test_progs printed no such
    subtest), both in the selftests JSON's words (Status.past: the harness's side is read from that JSON).
    `occurrence` counts earlier subtests with the same name in the same test_progs test (two programs may share a
    description; a test may run several skeletons)."""

    file: str
    subtest: str
    occurrence: int
    harness: str
    test_progs: str | None
    reason: str = ""

    @property
    def agrees(self) -> bool:
        return self.harness == self.test_progs

    @property
    def key(self) -> tuple[str, str, int]:
        return self.file, self.subtest, self.occurrence


def compare(log: TestProgsLog, harness_files: Mapping[str, Mapping[str, Any]],
            tests: Mapping[str, str]) -> tuple[list[Row], list[SubtestLine]]:
    """Each harness subtest of the files in `tests` (file -> the test_progs test that runs it, in the order that
    test runs them) beside the test_progs subtest of the same name in that test; a name that repeats in a test
    (two programs with one description, or two skeletons of one test) is matched in order. Also returns the
    test_progs subtests of those tests that no harness subtest matched (a test that runs more than test_loader
    subtests, e.g. task_kfunc's success programs, has some)."""
    rows: list[Row] = []
    used: set[tuple[int, int]] = set()
    pools: dict[str, dict[str, list[SubtestLine]]] = {}
    for s in log.subtests:
        pools.setdefault(s.test, {}).setdefault(s.subtest, []).append(s)
    seen: dict[tuple[str, str], int] = {}
    for file, test in tests.items():
        for sub in harness_files[file]["subtests"]:
            name = sub["name"]
            n = seen.get((test, name), 0)
            seen[(test, name)] = n + 1
            candidates = pools.get(test, {}).get(name, [])
            match = candidates[n] if n < len(candidates) else None
            if match is not None:
                used.add((match.test_num, match.subtest_num))
            rows.append(Row(file, name, n, _harness_status(sub["status"]), match.status.past if match else None,
                            sub.get("reason", "")))
    names = set(tests.values())
    unmatched = [s for s in log.subtests if s.test in names and (s.test_num, s.subtest_num) not in used]
    return rows, unmatched


def _harness_status(status: str) -> str:
    """A known difference is a failure the harness explains; test_progs counts it as one."""
    return Status.FAIL.past if status == "known_difference" else status


def disagreements(rows: Iterable[Row]) -> list[Row]:
    return [r for r in rows if not r.agrees]


def table(rows: Sequence[Row], explained: Mapping[tuple[str, str, int], str] | None = None) -> list[dict[str, Any]]:
    """Per file: subtests, agreeing, disagreeing with an explanation (its Row.key in `explained`) and without."""
    explained = explained or {}
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        row = out.setdefault(r.file, {"file": r.file, "subtests": 0, "agree": 0, "disagree_explained": 0,
                                      "disagree_unexplained": 0})
        row["subtests"] += 1
        if r.agrees:
            row["agree"] += 1
        elif r.key in explained:
            row["disagree_explained"] += 1
        else:
            row["disagree_unexplained"] += 1
    return list(out.values())
