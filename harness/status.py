# SPDX-License-Identifier: GPL-2.0
"""The one status vocabulary: a case's or subtest's verdict, as the runners give it and the reports print it."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """What happened to one case or subtest, in the order summaries list them. The values are what reports print.

    The case runner (harness/cases/run.py) gives PASS, FAIL, SKIP, LOST and ERROR; the selftests judge
    (harness/selftests/judge.py) PASS, FAIL, SKIP and ERROR; the JUnit reader (harness/campaigns/results.py)
    those and XFAIL. FLAKY and MISSING are verdicts the matrix derives for a case on one kernel (failed, then
    passed on a rerun; did not run there). LOST and ERROR are not verdicts on the case: the harness could not
    judge it.
    """

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"  # no verdict: setup/teardown or collection failed, audit records lost, the console unread
    LOST = "lost"  # no verdict either: the VM or its guest agent was lost during the case
    SKIP = "skip"
    XFAIL = "xfail"  # failed as expected: pytest's xfail mark, a matrix known failure, a selftest known difference
    FLAKY = "flaky"
    MISSING = "missing"

    @property
    def failing(self) -> bool:
        """Whether the status fails a run: a failure, or no verdict where one was due."""
        return self in FAILING

    @property
    def verdict(self) -> bool:
        """Whether the status is a verdict on the case (LOST and ERROR are the harness's, not the case's)."""
        return self not in NO_VERDICT

    @property
    def past(self) -> str:
        """The word the JSON summaries of the selftests and test_progs campaigns use ("passed", "skipped", ...)."""
        return _PAST[self]

    @classmethod
    def from_past(cls, word: str) -> Status:
        """The status a JSON summary's word names (the inverse of `past`); ValueError for another word."""
        for status, past in _PAST.items():
            if past == word:
                return status
        raise ValueError(f"not a status word: {word!r}")


FAILING = frozenset({Status.FAIL, Status.ERROR, Status.LOST})
NO_VERDICT = frozenset({Status.ERROR, Status.LOST})
_PAST = {Status.PASS: "passed", Status.FAIL: "failed", Status.ERROR: "error", Status.LOST: "lost",
         Status.SKIP: "skipped", Status.XFAIL: "xfailed", Status.FLAKY: "flaky", Status.MISSING: "missing"}

# A failed testcase that is not a verdict on the case carries the JUnit property STATUS_PROPERTY with the value
# NOT_VERDICT_PROPERTY[status] (harness/cases/collect.py and harness/selftests/collect.py write it, pytest knowing
# only pass/fail/skip); the JUnit reader (harness/campaigns/results.py) turns it back into the status.
STATUS_PROPERTY = "status"
NOT_VERDICT_PROPERTY = {Status.LOST: "lost VM", Status.ERROR: "no verdict"}
