# SPDX-License-Identifier: GPL-2.0
"""bisect without a kernel: the step's decision table, git's verdict parsing, the trees and endpoints it refuses
(real bisections: tests/system/test_bisect_real_history.py)."""

import dataclasses
import json
import subprocess
import sys

import pytest
from helpers import git

from harness.campaigns.bisect.run import (
    ABORT,
    BAD,
    GOOD,
    SKIP,
    BisectError,
    BisectResult,
    Conclusion,
    StepReport,
    Try,
    check_tree,
    parse_run_output,
    to_json,
    tree_state,
)
from harness.campaigns.bisect.step import judge_step, judge_try
from harness.campaigns.results import CaseResult
from harness.settings import REPO_ROOT
from harness.status import Status


def test_a_step_passes_fails_or_skips_on_what_pytest_reported():
    passed, failed = CaseResult("c::a", Status.PASS), CaseResult("c::a", Status.FAIL, "boom")
    assert judge_try(0, [passed]) == (Try.PASS, "")
    assert judge_try(1, [failed]) == (Try.FAIL, "")
    outcome, reason = judge_try(0, [CaseResult("c::a", Status.SKIP, "kernel lacks bpf_audit_log_start")])
    assert outcome is Try.SKIP and "kernel lacks bpf_audit_log_start" in reason
    outcome, reason = judge_try(1, [CaseResult("c::a", Status.ERROR, "lost VM: no console output")])
    assert outcome is Try.ERROR and "lost VM" in reason
    assert judge_try(5, [])[0] is Try.ABORT
    assert judge_try(2, [])[0] is Try.ABORT


def test_bad_needs_every_try_to_fail_and_a_failure_that_goes_away_is_flaky():
    assert judge_step([Try.PASS]) == (GOOD, "")
    assert judge_step([Try.FAIL, Try.FAIL, Try.FAIL]) == (BAD, "")
    code, why = judge_step([Try.FAIL, Try.PASS])
    assert code == SKIP and why.startswith("flaky")
    assert judge_step([Try.SKIP])[0] == SKIP
    assert judge_step([Try.ERROR])[0] == SKIP
    assert judge_step([Try.FAIL, Try.ABORT])[0] is ABORT and ABORT.code >= 128  # git bisect run stops


def test_git_bisect_run_output_names_the_first_bad_commit_or_the_candidates():
    sha = "3" * 40
    assert parse_run_output(f"running ...\n{sha} is the first bad commit\ncommit {sha}\n") == Conclusion(sha)
    skipped = ("There are only 'skip'ped commits left to test.\nThe first bad commit could be any of:\n"
               f"{'a' * 40}\n{'b' * 40}\nWe cannot bisect more!\n")
    assert parse_run_output(skipped).candidates == ("a" * 40, "b" * 40)
    aborted = parse_run_output("bisect run failed:\nexit code 128 from 'x' is < 0 or >= 128\n")
    assert aborted.first_bad is None and "bisect run failed" in aborted.aborted


def test_a_tree_with_changes_or_mid_bisect_is_refused(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "Makefile").write_text("VERSION = 6\n")
    git(tmp_path, "add", "Makefile")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    check_tree(tmp_path)  # clean: fine
    assert tree_state(tmp_path).branch in ("refs/heads/master", "refs/heads/main")
    (tmp_path / "Makefile").write_text("VERSION = 7\n")
    with pytest.raises(BisectError, match="changes to tracked files"):
        check_tree(tmp_path)
    git(tmp_path, "checkout", "-q", "Makefile")
    git(tmp_path, "bisect", "start")
    with pytest.raises(BisectError, match="already being bisected"):
        check_tree(tmp_path)
    git(tmp_path, "bisect", "reset")


def test_cli_rejects_a_good_that_is_not_an_ancestor_and_leaves_the_tree(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "Makefile").write_text("VERSION = 6\n")
    git(tmp_path, "add", "Makefile")
    for msg in ("one", "two"):
        (tmp_path / "f").write_text(msg)
        git(tmp_path, "add", "f")
        git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", msg)
    before = tree_state(tmp_path)
    out = subprocess.run([sys.executable, "-m", "harness.cli", "bisect", "--kernel-src", str(tmp_path),
                          "--good", "HEAD", "--bad", "HEAD~1", "cases/verifier/null_unchecked.bpf.c"],
                         cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "is not an ancestor of --bad" in out.stderr
    assert tree_state(tmp_path) == before


@pytest.mark.parametrize("rc, name, want, phrase", [
    (0, "--bad", BAD, "the cases pass at --bad"),
    (1, "--good", GOOD, "the cases already fail at --good"),
    (125, "--good", GOOD, "could not be judged"),
    (128, "--bad", BAD, "the step aborted on --bad"),
])
def test_endpoint_verdicts_that_do_not_bound_a_bisection_are_explained(rc, name, want, phrase):
    from harness.campaigns.bisect.run import _endpoint_problem

    assert _endpoint_problem(name, "a" * 40, want, want.code, None) is None
    assert phrase in _endpoint_problem(name, "a" * 40, want, rc, None)


def test_bisect_json_carries_the_conclusion_and_every_step(tmp_path):
    good, bad, mid = "a" * 40, "b" * 40, "c" * 40
    steps = [StepReport(bad, "break it", BAD, 1, tries=["fail", "fail"], failing=["cases/x.bpf.c::p"]),
             StepReport(mid, "tidy", SKIP, 125, reason="flaky: failed 1 of 3 tries"),
             StepReport(good, "base", GOOD, 0, tries=["pass"])]
    data = to_json(BisectResult(Conclusion(bad), steps, 12.34, tmp_path, "break it", good, bad))
    assert (data["first_bad"], data["subject"], data["good"], data["bad"]) == (bad, "break it", good, bad)
    assert data["flaky"] == [mid] and data["seconds"] == 12.3 and data["run_dir"] == str(tmp_path)
    assert [s["verdict"] for s in data["steps"]] == ["bad", "skip", "good"]
    assert data["steps"][0]["failing"] == ["cases/x.bpf.c::p"]
    hidden = to_json(BisectResult(Conclusion(None, (mid, bad)), steps, 1.0, tmp_path, "", good, bad))
    assert hidden["first_bad"] is None and hidden["candidates"] == [mid, bad] and hidden["subject"] == ""


def test_a_steps_verdict_is_its_word_and_its_exit_code_and_its_json_line_is_unchanged():
    assert [(v.value, v.code) for v in (GOOD, BAD, SKIP, ABORT)] == [("good", 0), ("bad", 1), ("skip", 125),
                                                                      ("abort", 128)]
    line = ('{"commit": "' + "b" * 40 + '", "subject": "s", "verdict": "bad", "exit_code": 1, "reason": "", '
            '"tries": ["fail"], "failing": [], "output": "", "kernel_key": "", "build": "", "seconds": 0.0}')
    rep = StepReport.from_json(line)
    assert rep.verdict is BAD and json.dumps(dataclasses.asdict(rep)) == line
