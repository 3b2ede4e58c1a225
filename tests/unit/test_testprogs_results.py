# SPDX-License-Identifier: GPL-2.0
"""harness.selftests.testprogs.results on test_progs runs recorded in a 6.12.118 guest (tests/data/testprogs-*): the
verdicts are test_progs' own result lines, a failure's lines come from its -J file, its counts are checked, and a
crash, a lost VM or a disagreeing summary is no verdict, never a pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.selftests.testprogs.results import ERROR, FAILED, PASSED, SKIPPED, judge, parse_json

DATA = Path(__file__).resolve().parent.parent / "data"


def recorded(scenario: str) -> tuple[str, str | None, int, list[str]]:
    d = DATA / f"testprogs-6.12.118-{scenario}"
    run = json.loads((d / "run.json").read_text())
    js = d / "test_progs.json"
    return (d / "test_progs.log").read_text(), js.read_text() if js.is_file() else None, run["exit_code"], run["tests"]


def statuses(report) -> dict[str, str]:
    return {v.name: v.status for v in report.verdicts}


def test_a_passing_run_is_one_verdict_per_subtest() -> None:
    log, js, rc, tests = recorded("test_lsm")
    report = judge(log, js, rc, tests)
    assert statuses(report) == {"test_lsm/lsm_basic": PASSED, "test_lsm/lsm_tailcall": PASSED}
    assert report.problems == () and report.exit_code == 0
    assert report.summary == (1, 2, 0, 0)
    assert report.counts == {"success": 1, "success_subtest": 2, "skipped": 0, "failed": 0}
    assert report.preamble == ("Failed to unload bpf_testmod.ko from kernel: -38",
                               "Can't find bpf_testmod.ko kernel module: -2",
                               "WARNING! Selftests relying on bpf_testmod.ko will be skipped.")


def test_a_failure_carries_test_progs_own_lines_from_its_json() -> None:
    log, js, rc, tests = recorded("mixed")
    report = judge(log, js, rc, tests)
    assert statuses(report) == {
        "d_path/basic": PASSED, "d_path/check_rdonly_mem": PASSED, "d_path/check_alloc_mem": PASSED,
        "lsm_cgroup/functional": PASSED, "lsm_cgroup/nonvoid": PASSED,
        "task_local_storage/sys_enter_exit": PASSED, "task_local_storage/exit_creds": FAILED,
        "task_local_storage/recursion": PASSED, "task_local_storage/nodeadlock": SKIPPED,
        "test_local_storage": PASSED,  # a test without subtests is one verdict
    }
    assert report.problems == ()
    failed = next(v for v in report.verdicts if v.status == FAILED)
    assert failed.message.startswith("test_exit_creds:FAIL:sync_rcu count too high")
    assert failed.log == tuple(json.loads(js)["results"][0]["subtests"][0]["message"].splitlines())
    assert failed.number == "#3/2"
    skipped = next(v for v in report.verdicts if v.status == SKIPPED)
    assert "without -v it prints none" in skipped.message
    # "All error logs:" repeats the failure's lines and result lines: not a second verdict
    assert [v.name for v in report.verdicts].count("task_local_storage/exit_creds") == 1


def test_with_v_each_subtest_has_its_own_lines_and_the_json_only_counts() -> None:
    log, js, rc, tests = recorded("mixed-verbose")
    assert parse_json(js)[0]["results"] == []  # -v: test_progs lists no result in its JSON
    report = judge(log, js, rc, tests)
    assert report.problems == () and report.count(FAILED) == 0 and report.count(SKIPPED) == 1
    basic = next(v for v in report.verdicts if v.name == "d_path/basic")
    assert basic.log[0] == "test_d_path_basic:PASS:setup 0 nsec"  # the module lines before it are the preamble
    assert "Loading bpf_testmod.ko..." in report.preamble


def test_v_on_a_line_buffered_stdout_fails_a_test_that_counts_its_own_syscalls() -> None:
    """Why the harness runs test_progs without -v by default: recorded, not assumed."""
    log, js, rc, tests = recorded("mixed-verbose-tty")
    report = judge(log, js, rc, tests)
    v = next(v for v in report.verdicts if v.name == "task_local_storage/sys_enter_exit")
    assert v.status == FAILED and v.message == ("test_sys_enter_exit:FAIL:enter_cnt unexpected enter_cnt: "
                                                "actual 4 != expected 3")
    quiet = judge(*recorded("mixed")[:3], tests)
    assert statuses(quiet)["task_local_storage/sys_enter_exit"] == PASSED


def test_a_crash_keeps_what_finished_and_gives_no_verdict_to_the_rest() -> None:
    log, js, rc, tests = recorded("crash")
    assert js == "" and rc == -11  # test_progs opens its -J file at start and writes it at the end
    report = judge(log, js, rc, tests)
    s = statuses(report)
    assert all(s[n] == PASSED for n in ("d_path/basic", "lsm_cgroup/functional", "lsm_cgroup/nonvoid"))
    crashed = next(v for v in report.verdicts if v.name == "task_local_storage")
    assert crashed.status == FAILED
    assert crashed.message.startswith("test_progs crashed in this test (Caught signal #11!)")
    assert any("Stack trace:" in ln for ln in crashed.log)
    never = next(v for v in report.verdicts if v.name == "test_local_storage")
    assert never.status == ERROR and "killed by signal 11" in never.message and "no verdict" in never.message
    assert not any(v.status == PASSED and v.test == "test_local_storage" for v in report.verdicts)


def test_a_lost_vm_is_no_verdict_for_what_did_not_finish() -> None:
    log, _js, _rc, tests = recorded("crash")
    cut = log[:log.index("#3       task_local_storage:FAIL")]  # the guest went while task_local_storage ran
    cut += "#3/1     task_local_storage/sys_enter_exit:OK\n"
    report = judge(cut, None, None, tests, lost="the VM exited (console: Kernel panic - not syncing)")
    s = statuses(report)
    assert s["lsm_cgroup/nonvoid"] == PASSED and s["task_local_storage/sys_enter_exit"] == PASSED
    unfinished = next(v for v in report.verdicts if v.name == "task_local_storage/(unfinished)")
    assert unfinished.status == ERROR and unfinished.message.startswith("LOST VM: the VM exited")
    assert s["test_local_storage"] == ERROR
    assert report.to_json()["errors"] == 2


def test_a_timeout_before_any_test_is_one_error() -> None:
    report = judge("", None, -9, ["lsm_audit_kfuncs"], timed_out=True)
    assert [(v.name, v.status) for v in report.verdicts] == [("lsm_audit_kfuncs", ERROR)]
    assert "ran out of time" in report.verdicts[0].message


@pytest.mark.parametrize("change, problem", [
    (lambda j: {**j, "success_subtest": j["success_subtest"] + 1}, "do not match its result lines"),
    (lambda j: None, "wrote no JSON summary"),
])
def test_counts_that_disagree_or_a_missing_summary_are_no_verdict(change, problem) -> None:
    log, js, rc, tests = recorded("mixed")
    changed = change(json.loads(js))
    report = judge(log, None if changed is None else json.dumps(changed), rc, tests)
    errors = [v for v in report.verdicts if v.status == ERROR]
    assert len(errors) == 1 and errors[0].name == "(test_progs)" and problem in errors[0].message


def test_a_named_test_that_did_not_run_is_an_error() -> None:
    log, js, rc, _tests = recorded("test_lsm")
    report = judge(log, js, rc, ["test_lsm", "test_lsm/no_such_subtest", "lsm_gone"])
    errors = {v.name: v.message for v in report.verdicts if v.status == ERROR}
    assert list(errors) == ["lsm_gone"] and "ran nothing for lsm_gone" in errors["lsm_gone"]


@pytest.mark.parametrize("text", ["", "\x00\xff garbage\n#\n#1/\n#1 x:MAYBE\nSummary: lots", "#1/1     t/s:OK\n"])
def test_odd_output_never_raises(text: str) -> None:
    report = judge(text, "{not json", 1, ["t"])
    assert report.problems  # whatever it is, it is not a clean pass


def test_7x_output_is_read_too() -> None:
    """7.3's test_progs (built from Debian's linux-source-7.3, run on the 6.12 kernel) prints failed subtests in
    its summary line and counts them in its JSON."""
    d = DATA / "testprogs-7.3.4-test_lsm-on-6.12.118"
    report = judge((d / "test_progs.log").read_text(), (d / "test_progs.json").read_text(), 0, ["test_lsm"])
    assert statuses(report) == {"test_lsm/lsm_basic": PASSED, "test_lsm/lsm_tailcall": PASSED}
    assert report.summary == (1, 2, 0, 0) and report.problems == ()
    assert report.counts == {"success": 1, "success_subtest": 2, "skipped": 0, "failed": 0, "failed_subtest": 0}
