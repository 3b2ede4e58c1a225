# SPDX-License-Identifier: GPL-2.0
"""Pure: test_progs' verdicts from one run (its output, its -J summary, its exit status), subtest by subtest.

test_progs prints a result line for every subtest, `#N/M test/subtest:OK|FAIL|SKIP`, and one per test,
`#N test:OK|FAIL|SKIP|OK (SKIP: n/m)`; those are its verdicts. Its -J file has its counts, and lists the failed
tests and subtests with their messages (the lines each printed: ASSERT lines, libbpf's messages) only without -v
(with -v its "results" list is empty). Without -v nothing is printed for a passing or skipped subtest, and a failed
one's lines are printed before its result line and again under "All error logs:" at the end; with -v every
subtest's lines come before its result line as it runs (a skip's reason among them). So: verdicts from the result
lines, a failure's message from the JSON (else from the lines before its result line), and the JSON's counts must
agree with the result lines. A run whose output and summary disagree, that has no summary (a crash), that was
killed, or that lost its machine, is no verdict for whatever it did not finish.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.selftests.test_progs_log import RECAP, STATUS, SUBTEST_LINE, SUMMARY_LINE, TEST_LINE
from harness.status import Status

# The statuses of verdicts by the names this module's callers import (tests/unit/test_testprogs_results.py).
PASSED, FAILED, SKIPPED, ERROR = Status.PASS, Status.FAIL, Status.SKIP, Status.ERROR
_STATUS = STATUS  # test_progs' OK | FAIL | SKIP
# The result and summary lines, as harness.selftests.test_progs_log reads them too.
_SUBTEST, _TEST, _SUMMARY = SUBTEST_LINE, TEST_LINE, SUMMARY_LINE
_CAUGHT = re.compile(r"Caught signal #(\d+)!")
_RECAP = RECAP  # after it, test_progs repeats the failed tests' lines and result lines
# What test_progs' main() prints before the first test, about loading and unloading its test modules (stdout,
# and one WARNING on stderr, which a buffered stdout can put first): not any test's lines.
_PREAMBLE = re.compile(r"^(?:WARNING! Selftests relying on bpf_testmod\.ko will be skipped\.|"
                       r".*\b\w+\.ko\b.*)$")
_FAIL_LINE = re.compile(r":FAIL:|\bFAIL\b|error|failed", re.I)
_SKIP_LINE = re.compile(r"skip", re.I)
EXIT_NAMES = {0: "success", 1: "a test failed", 2: "no test ran (EXIT_NO_TEST)",
              3: "test_progs could not set up (EXIT_ERR_SETUP_INFRA)"}


@dataclass(frozen=True)
class Verdict:
    """One subtest (or a test without subtests, `subtest` None) as test_progs judged it, with the lines it printed
    for it; or an ERROR the harness reports where test_progs gave no verdict."""

    test: str
    subtest: str | None
    status: Status  # PASS | FAIL | SKIP (test_progs' verdicts) | ERROR (no verdict); the JSON has its `past` word
    message: str  # one line: a failure's first FAIL line, a skip's reason, why there is no verdict
    log: tuple[str, ...] = ()
    number: str = ""  # test_progs' own "#N/M" ("" for an error the harness adds)

    @property
    def name(self) -> str:
        return self.test if self.subtest is None else f"{self.test}/{self.subtest}"


@dataclass(frozen=True)
class Report:
    """Every verdict of one run in test_progs' order, then the harness's errors (no verdict); the run's exit
    status, its summary line and JSON counts; the lines printed before the first test."""

    verdicts: tuple[Verdict, ...]
    exit_code: int | None
    summary: tuple[int, int, int, int] | None = None  # tests passed, subtests passed, skipped, tests failed
    counts: dict[str, Any] | None = None  # the -J file's, without "results"
    json_results: tuple[dict[str, Any], ...] = ()
    preamble: tuple[str, ...] = ()
    problems: tuple[str, ...] = field(default=())

    def count(self, status: Status) -> int:
        return sum(1 for v in self.verdicts if v.status == status)

    @property
    def tests(self) -> list[str]:
        return list(dict.fromkeys(v.test for v in self.verdicts))

    def to_json(self) -> dict[str, Any]:
        return {**{s.past: self.count(s) for s in (Status.PASS, Status.FAIL, Status.SKIP)},
                "errors": self.count(Status.ERROR), "exit_code": self.exit_code,
                "test_progs_summary": dict(zip(("tests_passed", "subtests_passed", "skipped", "tests_failed"),
                                               self.summary, strict=True)) if self.summary else None,
                "test_progs_json": self.counts, "problems": list(self.problems),
                "subtests": [{"test": v.test, "subtest": v.subtest, "name": v.name, "number": v.number,
                              "status": v.status.past, "message": v.message, "log": list(v.log)}
                             for v in self.verdicts]}


@dataclass
class _Test:
    name: str
    number: str = ""
    result: str | None = None
    subtests: list[Verdict] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)  # lines after its last subtest, before its result line


def parse_json(text: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """test_progs' -J file: (the object, None) or (None, why it is not usable)."""
    if text is None:
        return None, "test_progs wrote no JSON summary (-J): it did not reach its end"
    try:
        data = json.loads(text)
    except ValueError as e:
        return None, f"test_progs' JSON summary is not JSON ({e})"
    if not isinstance(data, dict) or not all(isinstance(data.get(k), int) for k in ("success", "success_subtest",
                                                                                     "skipped", "failed")):
        return None, "test_progs' JSON summary lacks its counts (success, success_subtest, skipped, failed)"
    return data, None


@dataclass
class _Log:
    """What one pass over test_progs' log (without its module lines) finds."""

    tests: list[_Test] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # the lines after the last result line
    summary: tuple[int, int, int, int] | None = None
    signal_line: str | None = None
    crashed_in: str | None = None


def _read_log(lines: list[str]) -> _Log:
    log = _Log()
    recap = False
    for line in lines:
        if line.strip() == _RECAP:
            recap = True
        elif m := _SUMMARY.match(line):
            log.summary = (int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4)))
        elif m := _CAUGHT.search(line):
            log.signal_line = line
            log.crashed_in = log.tests[-1].name if log.tests else None
            log.pending.append(line)
        elif recap:
            continue
        elif m := _SUBTEST.match(line):
            test = _current(log.tests, m.group(3), m.group(1))
            status = _STATUS[m.group(5)]
            test.subtests.append(_verdict(m.group(3), m.group(4), status, log.pending, f"#{m.group(1)}/{m.group(2)}"))
            log.pending = []
        elif m := _TEST.match(line):
            test = _current(log.tests, m.group(2), m.group(1))
            test.result, test.tail, log.pending = m.group(3), log.pending, []
        else:
            log.pending.append(line)
    return log


def _no_verdict(why: str, log: _Log, unfinished: list[_Test], never: list[str], verdicts: list[Verdict],
                problems: list[str]) -> list[Verdict]:
    """A run that did not end normally: what did not finish, and what never started, gets no verdict; what
    finished keeps test_progs' own. The verdicts with those added."""
    tail = tuple(log.pending[-40:])
    problems.append(why)
    for t in unfinished:
        rest = " on the rest of it" if t.subtests else ""
        verdicts.append(Verdict(t.name, "(unfinished)", Status.ERROR, f"{why} during {t.name}: no verdict{rest}",
                                tail))
    for sel in never:
        verdicts.append(_never(sel, f"{why} before {sel} ran: no verdict", ()))
    if not unfinished and not never:
        verdicts.append(Verdict("(test_progs)", None, Status.ERROR, f"{why}: the run did not end normally", tail))
    if log.crashed_in is not None:
        # the crash handler prints the running test's result line, then its lines: they are that test's
        fail = _message(Status.FAIL, tail) if any(":FAIL:" in ln for ln in tail) else ""
        head = f"test_progs crashed in this test ({log.signal_line.strip() if log.signal_line else why})"
        verdicts = [Verdict(v.test, v.subtest, v.status, f"{head}; {fail}" if fail else head, (*v.log, *tail),
                            v.number) if v.test == log.crashed_in and v.subtest is None else v for v in verdicts]
    return verdicts


def judge(log_text: str, json_text: str | None, exit_code: int | None, selectors: Sequence[str] = (), *,
          lost: str | None = None, timed_out: bool = False) -> Report:
    """The verdicts of one run. Never raises on odd output: what cannot be read becomes a problem (an ERROR
    verdict, no verdict) naming the test it concerns."""
    lines = [raw.replace("\r", "") for raw in log_text.splitlines()]
    first_result = next((i for i, line in enumerate(lines) if _SUBTEST.match(line) or _TEST.match(line)), len(lines))
    # the module lines come first, before any test's; they may interleave with the first test's (-v, stdout buffered)
    module_lines = {i for i in range(first_result) if _PREAMBLE.match(lines[i])}
    preamble = tuple(lines[i] for i in sorted(module_lines))
    log = _read_log([line for i, line in enumerate(lines) if i not in module_lines])
    tests, summary = log.tests, log.summary
    data, json_problem = parse_json(json_text)
    messages = json_messages(data)
    verdicts: list[Verdict] = []
    problems: list[str] = []
    for t in tests:
        verdicts += [_with_json(v, messages) for v in t.subtests]
        verdicts += [_with_json(v, messages) for v in _test_level(t)]
    counts = {k: v for k, v in data.items() if k != "results"} if data else None
    finished = [t for t in tests if t.result is not None]
    unfinished = [t for t in tests if t.result is None]
    why = _why_no_verdict(exit_code, lost, timed_out, log.signal_line)
    seen = {t.name for t in tests}
    never = [sel for sel in selectors if sel.split("/", 1)[0] not in seen]
    tail = tuple(log.pending[-40:])
    if why is not None:
        verdicts = _no_verdict(why, log, unfinished, never, verdicts, problems)
    else:
        for t in unfinished:
            problems.append(f"{t.name} has no result line")
            verdicts.append(Verdict(t.name, "(unfinished)", Status.ERROR,
                                    f"test_progs printed no result line for {t.name}", tail))
        check = _check_counts(finished, summary, data, json_problem)
        if check:
            problems.append(check)
            verdicts.append(Verdict("(test_progs)", None, Status.ERROR, check, tail))
        for sel in never:
            problems.append(f"{sel}: test_progs ran no such test")
            verdicts.append(_never(sel, f"test_progs ran nothing for {sel} (exit {exit_code}: "
                                        f"{EXIT_NAMES.get(exit_code or 0, '?')})", tail[-20:]))
    return Report(tuple(verdicts), exit_code, summary, counts, tuple((data or {}).get("results") or ()), preamble,
                  tuple(problems))


def _never(selector: str, message: str, log: tuple[str, ...]) -> Verdict:
    test, _, sub = selector.partition("/")
    return Verdict(test, sub or None, Status.ERROR, message, log)


def json_messages(data: dict[str, Any] | None) -> dict[tuple[str, str | None], list[str]]:
    """The -J file's failed tests and subtests: (test, subtest or None) -> the lines test_progs kept for it."""
    out: dict[tuple[str, str | None], list[str]] = {}
    for test in (data or {}).get("results") or ():
        if not isinstance(test, dict) or not isinstance(test.get("name"), str):
            continue
        if test.get("message"):
            out[(test["name"], None)] = str(test["message"]).splitlines()
        for sub in test.get("subtests") or ():
            if isinstance(sub, dict) and isinstance(sub.get("name"), str):
                out[(test["name"], sub["name"])] = str(sub.get("message") or "").splitlines()
    return out


def _with_json(v: Verdict, messages: dict[tuple[str, str | None], list[str]]) -> Verdict:
    """A failure's lines as test_progs' JSON has them (its own split of the output by subtest), when it has them."""
    lines = messages.get((v.test, v.subtest))
    if v.status != Status.FAIL or not lines:
        return v
    return Verdict(v.test, v.subtest, v.status, _message(Status.FAIL, lines), tuple(lines), v.number)


def _current(tests: list[_Test], name: str, number: str) -> _Test:
    if tests and tests[-1].name == name and tests[-1].result is None:
        return tests[-1]
    tests.append(_Test(name, f"#{number}"))
    return tests[-1]


def _verdict(test: str, subtest: str | None, status: Status, log: Sequence[str], number: str) -> Verdict:
    return Verdict(test, subtest, status, _message(status, log), tuple(log), number)


def _message(status: Status, log: Sequence[str]) -> str:
    if status == Status.FAIL:
        fails = [line for line in log if ":FAIL:" in line]
        line = fails[0] if fails else next((ln for ln in reversed(log) if _FAIL_LINE.search(ln)), "")
        return line.strip() or "test_progs reported FAIL (it printed no message)"
    if status == Status.SKIP:
        line = next((ln for ln in reversed(log) if _SKIP_LINE.search(ln) and ":PASS:" not in ln), "")
        return line.strip() or "test_progs skipped it (no reason among its lines; without -v it prints none)"
    return ""


def _test_level(t: _Test) -> list[Verdict]:
    """A test without subtests is one verdict; a test with subtests adds one only when its own result says more
    than its subtests do (it failed, or was skipped, outside any subtest)."""
    if t.result is None:
        return []
    result = "OK" if t.result.startswith("OK") else t.result
    if not t.subtests:
        return [_verdict(t.name, None, _STATUS[result], t.tail, t.number)]
    statuses = {s.status for s in t.subtests}
    if result == "FAIL" and Status.FAIL not in statuses:
        # failed outside its subtests: before the first one (its lines went to the first subtest's) or after the last
        lines = [ln for s in t.subtests[:1] for ln in s.log if ":FAIL:" in ln] + t.tail
        return [_verdict(t.name, None, Status.FAIL, lines, t.number)]
    if result == "SKIP" and statuses != {Status.SKIP}:
        return [_verdict(t.name, None, Status.SKIP, t.tail, t.number)]
    return []


def _why_no_verdict(exit_code: int | None, lost: str | None, timed_out: bool, signal_line: str | None) -> str | None:
    if lost:
        return f"LOST VM: {lost}"
    if timed_out:
        return "test_progs ran out of time and was killed"
    if exit_code is None:
        return "test_progs gave no exit status"
    if exit_code < 0:
        return f"test_progs was killed by signal {-exit_code}" + (f" ({signal_line.strip()})" if signal_line else "")
    if signal_line is not None:
        return f"test_progs crashed ({signal_line.strip()})"
    if exit_code == 3:
        return "test_progs could not set up its environment (exit 3, EXIT_ERR_SETUP_INFRA)"
    if exit_code not in (0, 1, 2):
        return f"test_progs exited {exit_code}"
    return None


def _skip_count(t: _Test) -> int:
    """test_progs' skip_cnt of a test, as its result line says it: "OK (SKIP: n/m)" n, "SKIP" all of its subtests
    (or the test itself), "OK" none; after a FAIL, its skipped subtests."""
    m = re.fullmatch(r"OK \(SKIP: (\d+)/\d+\)", t.result or "")
    if m:
        return int(m.group(1))
    if t.result == "SKIP":
        return len(t.subtests) or 1
    if t.result == "OK":
        return 0
    return sum(1 for s in t.subtests if s.status == Status.SKIP)


def _check_counts(finished: Sequence[_Test], summary: tuple[int, ...] | None, data: dict[str, Any] | None,
                  problem: str | None) -> str | None:
    """test_progs' own counts against its result lines: tests passed and failed, subtests passed, skips."""
    if problem:
        return problem
    assert data is not None
    sub_ok = sum(1 for t in finished for s in t.subtests if s.status == Status.PASS)
    skips = sum(_skip_count(t) for t in finished)
    failed = sum(1 for t in finished if t.result == "FAIL")
    passed = sum(1 for t in finished if t.result != "FAIL")
    mine = {"success": passed, "success_subtest": sub_ok, "skipped": skips, "failed": failed}
    theirs = {k: data[k] for k in mine}
    if mine != theirs:
        return f"test_progs' JSON counts {theirs} do not match its result lines {mine}"
    if summary is not None and summary != (passed, sub_ok, skips, failed):
        return f"test_progs' summary line {summary} does not match its result lines"
    return None
