# SPDX-License-Identifier: GPL-2.0
"""The harness's selftest verdicts against test_progs' own, recorded on one kernel (tests/data/README.md): every
subtest agrees, or its disagreement is in EXPLAINED with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.selftests.test_progs_log import Row, compare, disagreements, name_of_test, parse, table

DATA = Path(__file__).resolve().parents[1] / "data" / "selftests-compare-6.12.117"
LOG = DATA / "test_progs.log"
HARNESS = DATA / "harness.json"

# file (progs/<file>.c) -> the test_progs test that runs it through test_loader (harness.selftests.discover:
# the prog_tests function of its RUN_TESTS/RUN call, without test_), in the order that test runs them.
TESTS = {
    # the files issue 15 names
    "verifier_lsm": "verifier_lsm",
    "verifier_ref_tracking": "verifier_ref_tracking",
    "task_kfunc_failure": "task_kfunc",
    "cgrp_kfunc_failure": "cgrp_kfunc",
    "verifier_kfunc_prog_types": "verifier_kfunc_prog_types",
    "verifier_global_subprogs": "verifier_global_subprogs",
    "verifier_vfs_reject": "verifier_vfs_reject",
    "dynptr_fail": "dynptr",
    # and more: the ones that failed under an earlier kernel config, unpriv subtests, a pre-execution callback,
    # a test running several skeletons (iters), bpf_testmod files, a struct_ops failure
    "verifier_sock": "verifier_sock",
    "verifier_bounds_deduction": "verifier_bounds_deduction",
    "verifier_jeq_infer_not_null": "verifier_jeq_infer_not_null",
    "verifier_netfilter_ctx": "verifier_netfilter_ctx",
    "verifier_map_ptr": "verifier_map_ptr",
    "verifier_array_access": "verifier_array_access",
    "verifier_unpriv": "verifier_unpriv",
    "iters_state_safety": "iters",
    "iters_looping": "iters",
    "iters": "iters",
    "iters_css_task": "iters",
    "iters_testmod": "iters",
    "iters_testmod_seq": "iters",
    "iters_task_failure": "iters",
    "dummy_st_ops_fail": "dummy_st_ops",
}

# Subtests of those tests that are not test_loader's (the test's own test__start_subtest calls, e.g. programs
# it attaches and triggers): the harness has no counterpart and the comparison leaves them out. The FAILs among
# them (dynptr, task_kfunc) are attach failures of that code in this guest (no tracefs: "failed to determine
# tracepoint 'syscalls/sys_enter_nanosleep' perf event ID"), not verifier verdicts.
NOT_TEST_LOADER = {
    "cgrp_kfunc": {"test_cgrp_acquire_release_argument", "test_cgrp_acquire_leave_in_map", "test_cgrp_xchg_release",
                   "test_cgrp_get_release", "test_cgrp_get_ancestors", "test_cgrp_from_id"},
    "dynptr": {"test_read_write", "test_dynptr_data", "test_ringbuf", "test_skb_readonly", "test_dynptr_skb_data",
               "test_adjust", "test_adjust_err", "test_zero_size_dynptr", "test_dynptr_is_null",
               "test_dynptr_is_rdonly", "test_dynptr_clone", "test_dynptr_skb_no_buff", "test_dynptr_skb_strcmp",
               "test_dynptr_skb_tp_btf"},
    "iters": {"num", "testmod_seq", "task_vma", "task", "css_task", "css"},
    "task_kfunc": {"test_task_acquire_release_argument", "test_task_acquire_release_current",
                   "test_task_acquire_leave_in_map", "test_task_xchg_release", "test_task_map_acquire_release",
                   "test_task_current_acquire_release", "test_task_from_pid_arg", "test_task_from_pid_current",
                   "test_task_from_pid_invalid", "task_kfunc_acquire_trusted_walked", "test_task_kfunc_flavor_relo",
                   "test_task_kfunc_flavor_relo_not_found"},
    "dummy_st_ops": {"dummy_st_ops_attach", "dummy_init_ret_value", "dummy_init_ptr_arg", "dummy_multiple_args",
                     "dummy_sleepable", "dummy_sleepable_reject_null"},
}

# (file, subtest, occurrence) -> why the harness and test_progs differ there. Nothing else may differ.
PRE_EXECUTION = ("verifier.c runs init_array_access_maps (fills map_array_ro) before BPF_PROG_TEST_RUN; the harness "
                 "has no such callback, so after the load went as expected it skips the __retval check, where "
                 "test_progs runs it and passes")
NO_TESTMOD = ("test_progs runs this file only with bpf_testmod.ko loaded (prog_tests/iters.c: if "
              "(env.has_testmod)); the kernel has no module support, so test_progs prints no subtest at all, "
              "the harness prints each as a skip (unsupported: bpf_testmod)")
EXPLAINED: dict[tuple[str, str, int], str] = {
    **{("verifier_array_access", name, 0): PRE_EXECUTION for name in (
        "valid map access into an array with a constant",
        "valid map access into an array with a register",
        "valid map access into an array with a variable",
        "valid map access into an array with a signed variable",
        "valid read map access into a read-only array 1",
        "valid read map access into a read-only array 1 @unpriv",
        "valid write map access into a write-only array 1",
        "valid write map access into a write-only array 1 @unpriv",
        "valid read map access into a read-only array 2",
        "valid write map access into a write-only array 2")},
    **{("iters_testmod", name, 0): NO_TESTMOD for name in (
        "iter_next_trusted", "iter_next_trusted_or_null", "iter_next_rcu", "iter_next_rcu_or_null",
        "iter_next_rcu_not_trusted", "iter_next_ptr_mem_not_trusted")},
    **{("iters_testmod_seq", name, 0): NO_TESTMOD for name in (
        "testmod_seq_empty", "testmod_seq_full", "testmod_seq_truncated", "testmod_seq_getter_before_bad",
        "testmod_seq_getter_after_bad", "testmod_seq_getter_good")},
}


@pytest.fixture(scope="module")
def recorded() -> tuple[list[Row], list]:
    return compare(parse(LOG.read_text()), json.loads(HARNESS.read_text())["files"], TESTS)


def test_every_subtest_agrees_or_is_explained(recorded) -> None:
    rows, _ = recorded
    unexplained = [f"{r.file}: {r.subtest!r} (#{r.occurrence}): harness {r.harness}, test_progs {r.test_progs}"
                   for r in disagreements(rows) if r.key not in EXPLAINED]
    assert not unexplained, "\n".join(unexplained)


def test_every_explanation_is_still_a_disagreement(recorded) -> None:
    rows, _ = recorded
    differing = {r.key for r in disagreements(rows)}
    assert not [k for k in EXPLAINED if k not in differing], "stale EXPLAINED entries"


def test_every_other_test_progs_subtest_is_the_tests_own(recorded) -> None:
    """A test_progs subtest no harness subtest matched is one of its test's own (not test_loader's): a subtest the
    harness lost shows here."""
    rows, unmatched = recorded
    assert not [(s.test, s.subtest) for s in unmatched if s.subtest not in NOT_TEST_LOADER.get(s.test, ())]
    assert set(TESTS) == {r.file for r in rows}


def test_the_recording_covers_the_issue_files(recorded) -> None:
    rows, _ = recorded
    asked = {"verifier_lsm", "verifier_ref_tracking", "task_kfunc_failure", "cgrp_kfunc_failure",
             "verifier_kfunc_prog_types", "verifier_global_subprogs", "verifier_vfs_reject", "dynptr_fail"}
    assert asked <= set(TESTS) and len(TESTS) >= len(asked) + 5
    counts = {t["file"]: t for t in table(rows, EXPLAINED)}
    assert all(counts[f]["subtests"] > 0 for f in TESTS)


def test_a_new_disagreement_fails_the_comparison(recorded) -> None:
    """The replay can fail: one subtest's harness verdict flipped is a disagreement EXPLAINED does not cover."""
    data = json.loads(HARNESS.read_text())["files"]
    file = "verifier_lsm"
    sub = next(s for s in data[file]["subtests"] if s["status"] == "passed")
    sub["status"] = "failed"
    rows, _ = compare(parse(LOG.read_text()), data, TESTS)
    assert [(r.file, r.subtest) for r in disagreements(rows) if r.key not in EXPLAINED] == [(file, sub["name"])]


# The parser on its own, on lines as test_progs prints them.
SAMPLE = """\
#485/1   verifier_lsm/before ret, weird cond:OK
#485/2   verifier_lsm/ld_ind: check calling conv, r1 @unpriv:SKIP
run_subtest:FAIL:unexpected_load_failure unexpected error: -22 (errno 22)
#485/3   verifier_lsm/a/b: c:FAIL\r
#485     verifier_lsm:FAIL
#486     verifier_and:OK (SKIP: 2/6)

All error logs:
run_subtest:FAIL:unexpected_load_failure unexpected error: -22 (errno 22)
#485/3   verifier_lsm/a/b: c:FAIL
#485     verifier_lsm:FAIL
Summary: 1/10 PASSED, 3 SKIPPED, 1 FAILED
"""


def test_parse_keeps_names_with_colons_and_slashes_and_skips_the_recap() -> None:
    log = parse(SAMPLE)
    assert [(s.test, s.subtest, s.status) for s in log.subtests] == [
        ("verifier_lsm", "before ret, weird cond", "passed"),
        ("verifier_lsm", "ld_ind: check calling conv, r1 @unpriv", "skipped"),
        ("verifier_lsm", "a/b: c", "failed")]
    assert log.tests == {"verifier_lsm": "FAIL", "verifier_and": "OK (SKIP: 2/6)"}
    assert log.summary == (1, 10, 3, 1)
    assert name_of_test("test_verifier_lsm") == "verifier_lsm" and name_of_test("serial_test_x") == "x"


def test_repeated_names_match_in_order() -> None:
    log = parse("#1/1 t/same:OK\n#1/2 t/same:FAIL\n#1/3 t/extra:OK\n")
    files = {"f": {"subtests": [{"name": "same", "status": "passed"}, {"name": "same", "status": "passed"},
                                {"name": "gone", "status": "skipped"}]}}
    rows, unmatched = compare(log, files, {"f": "t"})
    assert [(r.occurrence, r.harness, r.test_progs) for r in rows] == [
        (0, "passed", "passed"), (1, "passed", "failed"), (0, "skipped", None)]
    assert [s.subtest for s in unmatched] == ["extra"]
    assert [r.key for r in disagreements(rows)] == [("f", "same", 1), ("f", "gone", 0)]
