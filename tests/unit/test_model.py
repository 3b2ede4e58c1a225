# SPDX-License-Identifier: GPL-2.0
"""The pure reference model of generated programs (harness/gen): hand-picked programs with known outcomes,
and properties tying strategy, model, renderer, case parser and record judge together (no kernel)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from harness.cases import audit, expect, verifier_log
from harness.cases.parse import parse_case_text
from harness.gen import model, render, strategy
from harness.gen.ast import (
    ALLOW,
    BAD_NETIF,
    DENY,
    HOOKS,
    LOGGERS,
    End,
    Exit,
    KptrStore,
    Log,
    Program,
    Start,
    drop_unspecified,
)

os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.expanduser("~/.cache/hypothesis/bpf-audit-harness"))
PURE = settings(database=None, deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
LEADING = ("prog-id", "pid", "comm")
FILE = ("path", "dev", "ino")


def names(prog: Program) -> list[tuple[str, ...]]:
    pred = model.predict(prog)
    assert pred.run is not None, pred.summary()
    return [rec.names for rec in pred.run.records]


def rejected(prog: Program) -> model.Rejection:
    pred = model.predict(prog)
    assert pred.rejection is not None, pred.summary()
    return pred.rejection


# --- verifier rules ---------------------------------------------------------------------------------------------


def test_checked_started_ended_loads_and_logs_in_call_order() -> None:
    prog = Program("file_open", (Start(0), Log(0, "file"), Log(0, "cause", "denied"), End(0)), DENY)
    pred = model.predict(prog)
    assert pred.accepted and pred.run is not None
    assert names(prog) == [LEADING + FILE + ("cause",)]
    assert pred.run.verdict == DENY and pred.run.errno == 1


def test_missing_end_is_rule_1() -> None:
    r = rejected(Program("file_open", (Start(0), Log(0, "cause", "x"))))
    assert (r.rule, r.messages) == (1, (model.MSG_UNRELEASED,))


def test_double_end_and_use_after_end_are_rule_2() -> None:
    assert rejected(Program("file_open", (Start(0), End(0), End(0)))).rule == 2
    r = rejected(Program("file_open", (Start(0), End(0), Log(0, "cause", "x"))))
    assert (r.rule, r.messages) == (2, (model.MSG_RELEASED_USE,))
    assert rejected(Program("file_open", (Start(0), End(0), End(0)))).messages == (model.MSG_RELEASED,)
    assert model.MSG_RELEASED.old == model.MSG_RELEASED_USE.old  # 6.12 words both alike, 7.3 does not


def test_an_ended_context_passed_to_a_kernel_object_logger_is_refused_in_its_words_on_7_3() -> None:
    """7.3's net_sockaddr is KF_OBJ_ARGS (patch 0002): its check comes before the scalar-struct one, so the words
    are its own there (found by the property on 7.3.4: socket_connect, start, end, net_sockaddr); 6.12 has no
    such flag and words it as any other use after the end."""
    r = rejected(Program("socket_connect", (Start(0), End(0), Log(0, "net_sockaddr", 0, side="dst")), sleepable=True))
    assert (r.rule, r.messages) == (2, (model.MSG_RELEASED_OBJ,))
    assert r.messages[0].on("7.3.4") == "R1 must be a kernel object STRUCT bpf_audit_context, not program memory"
    assert r.messages[0].on("6.12.118") == model.MSG_RELEASED_USE.on("6.12.118")


def test_unchecked_context_is_rule_3_for_loggers_and_end() -> None:
    assert rejected(Program("file_open", (Start(0, False), End(0)))).messages == (model.MSG_MAYBE_NULL,)
    assert rejected(Program("file_open", (Start(0, False), Log(0, "file"), End(0)))).rule == 3


def test_unchecked_context_never_used_is_a_leak() -> None:
    assert rejected(Program("file_open", (Start(0, False),))).rule == 1


def test_kptr_store_is_rule_4_with_the_btf_refusal_first() -> None:
    r = rejected(Program("file_open", (Start(0), KptrStore(0), End(0))))
    assert (r.rule, r.messages) == (4, (model.MSG_KPTR_BTF, model.MSG_KPTR))


def test_an_earlier_error_wins_over_kptr_but_the_btf_refusal_is_still_logged() -> None:
    r = rejected(Program("file_open", (Start(0), End(0), End(0), KptrStore(0))))
    assert (r.rule, r.messages) == (2, (model.MSG_KPTR_BTF, model.MSG_RELEASED))


def test_non_constant_cause_is_rule_7_with_the_message_of_its_kind() -> None:
    stack = rejected(Program("file_open", (Start(0), Log(0, "cause", "x", "stack"), End(0))))
    writable = rejected(Program("file_open", (Start(0), Log(0, "cause", "x", "writable"), End(0))))
    assert (stack.rule, stack.messages) == (7, (model.MSG_CONST_STACK,))
    assert (writable.rule, writable.messages) == (7, (model.MSG_CONST_WRITABLE,))


def test_arg0_is_checked_before_the_cause_string() -> None:
    assert rejected(Program("file_open", (Start(0, False), Log(0, "cause", "x", "stack"), End(0)))).rule == 3


def test_exit_branch_that_skips_an_end_is_rule_1() -> None:
    r = rejected(Program("file_open", (Start(0), Exit(()), End(0))))
    assert r.rule == 1 and "exit branch" in r.reason


def test_exit_branch_ending_everything_loads() -> None:
    assert model.predict(Program("file_open", (Start(0), Exit((0,)), End(0)))).accepted


def test_main_path_or_exit_branch_first_depends_on_block_layout() -> None:
    r = rejected(Program("file_open", (Start(0), Exit(()), End(0), End(0))))
    assert (r.rule, r.alternatives) == (2, ((1, model.MSG_UNRELEASED),))
    case = parse_case_text(render.render(Program("file_open", (Start(0), Exit(()), End(0), End(0)))),
                           Path("/gen/x.bpf.c")).programs[0]
    assert case.rules == (2, 1) and case.msgs == ()  # the released-context message differs by line
    assert case.msgs_for("6.12.118")[-1].startswith("{{arg#0 pointer type")
    assert case.msgs_for("7.3.4")[-1].startswith("{{release kfunc bpf_audit_log_end expects")


def test_deferred_side_paths_are_explored_last_pushed_first() -> None:
    # two exit branches: the second one ends a released context (rule 2), the first leaks (rule 1)
    prog = Program("file_open", (Start(0), Exit(()), End(0), Exit((0,))))
    r = rejected(prog)
    assert r.rule == 2 and r.rules == (2, 1)


def test_a_layout_independent_error_has_no_alternatives() -> None:
    assert rejected(Program("file_open", (Start(0), Exit((0,)), Log(0, "file")))).alternatives == ()


def test_null_branch_ends_the_other_open_contexts() -> None:
    prog = Program("file_open", (Start(0), Start(1), Log(1, "cause", "b"), End(1), End(0)))
    assert model.predict(prog).accepted
    assert "if (!ac1) {\n\t\tbpf_audit_log_end(ac0);" in render.render(prog)


# --- records ----------------------------------------------------------------------------------------------------


def test_second_call_of_a_logger_logs_nothing_and_path_shares_the_file_field() -> None:
    prog = Program("file_open", (Start(0), Log(0, "file"), Log(0, "path"), Log(0, "cap", 21), Log(0, "cap", 1),
                                 End(0)))
    assert names(prog) == [LEADING + FILE + ("capability",)]


def test_cap_logs_any_number_as_given() -> None:
    prog = Program("file_open", (Start(0), Log(0, "cap", 4242), Log(0, "cap", 12), End(0)))
    rec = model.predict(prog).run.records[0]  # type: ignore[union-attr]
    assert [(f.name, f.value) for f in rec.fields[3:]] == [("capability", "4242")]
    minus = model.predict(Program("file_open", (Start(0), Log(0, "cap", -1), End(0)))).run
    assert minus is not None and minus.records[0].fields[3] == model.FieldSpec("capability", "-1")


def test_a_call_of_a_kind_after_a_failed_one_is_unspecified_and_never_generated() -> None:
    failed_then_good = (Start(0), Log(0, "net_sockaddr", 0, "short", "dst"), Log(0, "net_sock", 0), End(0))
    with pytest.raises(model.Unspecified, match="does not say"):
        model.predict(Program("socket_connect", failed_then_good))
    assert drop_unspecified(failed_then_good) == (failed_then_good[0], failed_then_good[1], failed_then_good[3])
    # a good call first: the failed one after it is a second call of the kind, nothing left open
    good_then_failed = (Start(0), Log(0, "net_sock", 0), Log(0, "net_sockaddr", 0, "null"), Log(0, "net_sock", 0),
                        End(0))
    assert drop_unspecified(good_then_failed) == good_then_failed
    assert names(Program("socket_connect", good_then_failed)) == [LEADING + ("laddr", "lport")]
    # a new context starts afresh
    again = (Start(0), Log(0, "net_sockaddr", 0, "null"), End(0), Start(0), Log(0, "net_sock", 0), End(0))
    assert drop_unspecified(again) == again


def test_net_loggers_netif_no_device_short_addrlen_and_lo() -> None:
    prog = Program("socket_connect", (Start(0), Log(0, "net_sockaddr", 0, "short", "dst"),
                                      Log(0, "net_sock", BAD_NETIF), Log(0, "net_sockaddr", 0, side="dst"), End(0)))
    with pytest.raises(model.Unspecified):
        model.predict(prog)
    prog = Program("socket_connect", (Start(0), Log(0, "net_sock", BAD_NETIF), Log(0, "net_sockaddr", 1, side="dst"),
                                      End(0), Start(1), Log(1, "net_sockaddr", 1, side="dst"), End(1)))
    assert names(prog) == [LEADING + ("laddr", "lport"), LEADING + ("daddr", "dest", "netif")]
    assert model.predict(prog).run.errno == model.ECONNREFUSED  # type: ignore[union-attr]


def test_net_sockaddr_prints_only_the_sides_it_was_given() -> None:
    for side, fields in (("src", ("saddr", "src")), ("dst", ("daddr", "dest")),
                         ("both", ("saddr", "src", "daddr", "dest"))):
        prog = Program("socket_bind", (Start(0), Log(0, "net_sockaddr", 1, side=side), End(0)))
        assert names(prog) == [LEADING + fields + ("netif",)], side
    # net_sock on a socket not bound yet: every address part is zero, only netif=
    assert names(Program("socket_bind", (Start(0), Log(0, "net_sock", 1), End(0)))) == [LEADING + ("netif",)]
    assert names(Program("socket_bind", (Start(0), Log(0, "net_sockaddr", 0, "null"), End(0)))) == [LEADING]


def test_sleepable_programs_give_the_same_records_and_only_on_sleepable_hooks() -> None:
    ops = (Start(0), Log(0, "file"), Log(0, "cause", "x"), End(0))
    assert names(Program("file_open", ops, sleepable=True)) == names(Program("file_open", ops))
    assert 'SEC("lsm.s/file_open")' in render.render(Program("file_open", ops, sleepable=True))
    with pytest.raises(ValueError, match="not a sleepable hook"):
        Program("task_kill", (), sleepable=True)


def test_inode_and_file_repeat_dev_and_ino() -> None:
    prog = Program("file_open", (Start(0), Log(0, "inode", "file"), Log(0, "file"), End(0)))
    assert names(prog) == [LEADING + ("name", "dev", "ino") + FILE]


def test_two_contexts_give_records_in_end_order() -> None:
    prog = Program("task_kill", (Start(0), Log(0, "cause", "first"), Start(1), Log(1, "task", "target"), End(1),
                                 End(0)))
    assert names(prog) == [LEADING + ("opid", "ocomm"), LEADING + ("cause",)]


def test_taken_exit_ends_the_run_with_its_own_verdict() -> None:
    prog = Program("inode_unlink", (Start(0), Log(0, "dentry"), Exit((0,), DENY, taken=True), Log(0, "cause", "no"),
                                    End(0)),
                   ALLOW)
    run = model.predict(prog).run
    assert run is not None and run.verdict == DENY and run.errno == 1
    assert [r.names for r in run.records] == [LEADING + ("name", "dev", "ino")]


def test_untrusted_strings_carry_their_wire_encoding() -> None:
    prog = Program("file_open", (Start(0), Log(0, "cause", "has space"), End(0)))
    cause = model.predict(prog).run.records[0].fields[3]  # type: ignore[union-attr]
    assert (cause.value, cause.raw) == ("has space", "686173207370616365")


# --- the pieces fit together -------------------------------------------------------------------------------------


def _as_record(rec: model.RecordSpec, variables: dict[str, str], serial: int) -> audit.Record:
    """The record a conforming kernel would print for `rec` (unknown values made up)."""
    parts = []
    for f in rec.fields:
        value = f.value if f.value is not None else "4242"
        value = value.replace("${", "{").format(**variables)
        raw = f.raw if f.raw is not None else (
            audit.encode_untrusted(value.encode()) if audit.is_untrusted_field(f.name) else value)
        parts.append(f"{f.name}={raw}")
    return audit.parse_netlink(1427, f"audit(1.0:{serial}): " + " ".join(parts), {1427: "BPF_LSM_ACCESS"})


@PURE
@given(strategy.programs())
def test_every_generated_program_renders_to_a_case_that_accepts_the_model_s_own_records(prog: Program) -> None:
    pred = model.predict(prog)
    text = render.render(prog, pred)
    case = parse_case_text(text, Path(f"/gen/{prog.setup.name}.bpf.c")).programs[0]
    assert case.name == prog.setup.name
    if pred.rejection is not None:
        rej = pred.rejection
        assert case.expect == "failure" and case.rules == rej.rules
        for release in ("6.12.118", "7.3.4"):  # each line's words pass on that line only
            # the verifier's log holds the verifier's words only; libbpf's own are __libbpf_msg, in libbpf's log
            want = tuple(m.text for m in case.messages_for(release) if m.log == "verifier")
            other = tuple(m.text for m in case.messages_for("7.3.4" if release.startswith("6.") else "6.12.118")
                          if m.log == "verifier")
            assert [m.text for m in case.messages_for(release) if m.log == "libbpf"] == [
                m.old for m in rej.messages if m.log == "libbpf"]
            first = [m.on(release) for m in rej.messages[:-1] if m.log == "verifier"]
            for vmsg in [rej.messages[-1]] + [m for _, m in rej.alternatives]:  # any possible first error passes
                msg = vmsg.on(release)
                log = "\n".join([*first, "0: (b7) r1 = 0", msg, "processed 9 insns"])
                assert verifier_log.match_messages(log, want).ok, (msg, want)
                if vmsg.varies:
                    assert not verifier_log.match_messages(log, other).ok, (msg, other)
            assert not verifier_log.match_messages("\n".join(first) + "\nsomething else", want).ok
        return
    assert pred.run is not None and case.expect == "success" and case.expect_errno == pred.run.errno
    variables = {"prog_id": "7", "pid": "100", "comm": prog.setup.comm, "target_pid": "101"}
    records = [_as_record(r, variables, i) for i, r in enumerate(pred.run.records)]
    verdict = expect.judge(records, case.expect_records, case.expect_no_records, variables)
    assert verdict.ok, verdict.problems
    if records:  # and a record with one field too many is refused
        extra = records[:-1] + [_as_record(model.RecordSpec(pred.run.records[-1].fields + (
            model.FieldSpec("faddr", "1.2.3.4"),)), variables, 99)]
        assert not expect.judge(extra, case.expect_records, case.expect_no_records, variables).ok


@pytest.mark.parametrize("hook", list(HOOKS))
def test_empty_program_of_each_hook_renders_its_trigger_and_filter(hook: str) -> None:
    prog = Program(hook, (), DENY)
    case = parse_case_text(render.render(prog), Path("/gen/x.bpf.c")).programs[0]
    assert case.trigger is not None and case.trigger.comm == prog.setup.comm
    assert case.expect_errno == 1 and not case.expect_records and case.expect_no_records


def test_trigger_errno_when_allowed_depends_on_the_trigger() -> None:
    errnos = {hook: model.predict(Program(hook, ())).run.errno  # type: ignore[union-attr]
              for hook in HOOKS}
    assert errnos == {"file_open": 0, "file_ioctl": model.EFAULT, "inode_unlink": 0, "task_kill": 0,
                      "socket_connect": model.ECONNREFUSED, "socket_bind": 0}


def test_field_sequence_mismatch_compares_every_record_in_order() -> None:
    prog = Program("file_open", (Start(0), Log(0, "cause", "a"), Start(1), End(1), End(0)))
    run = model.predict(prog).run
    assert run is not None
    types = {1427: "BPF_LSM_ACCESS"}
    first = audit.parse_netlink(1427, 'audit(1.0:1): prog-id=3 pid=5 comm="x"', types)
    second = audit.parse_netlink(1427, 'audit(1.0:2): prog-id=3 pid=5 comm="x" cause="a"', types)
    other = audit.parse_netlink(1300, "audit(1.0:2): arch=c000003e syscall=2", {1300: "SYSCALL"})
    assert model.field_sequence_mismatch(run, [first, other, second]) is None
    assert "expected" in (model.field_sequence_mismatch(run, [second, first]) or "")
    extra = audit.parse_netlink(1427, 'audit(1.0:2): prog-id=3 pid=5 comm="x" cause="a" zz=1', types)
    assert model.field_sequence_mismatch(run, [first, extra]) is not None


def test_found_case_is_a_case_file_saying_expected_and_observed() -> None:
    prog = Program("file_open", (Start(0, False), End(0)))
    pred = model.predict(prog)
    text = render.found_case(prog, pred, "it loaded (prog ids [12])", "report */ with a comment end",
                             "6.12.117", "pytest cases/scenarios/test_generated_programs.py")
    case = parse_case_text(text, Path(f"/found/{prog.setup.name}.bpf.c")).programs[0]
    assert case.expect == "failure" and case.msgs_for("6.12.118") == (model.MSG_MAYBE_NULL.old,)
    assert case.msgs_for("7.3.4") == (model.MSG_MAYBE_NULL.new,)
    assert "expected rejected (rule 3" in case.description and "the kernel: it loaded" in case.description
    assert "Start(ctx=0, null_check=False)" in text and "report * / with a comment end" in text


def test_starting_an_open_context_again_loses_the_first_reference() -> None:
    r = rejected(Program("file_open", (Start(0), Start(0), End(0))))
    assert r.rule == 1 and "overwritten" in r.reason


def test_the_null_branch_of_a_second_start_leaks_an_overwritten_context() -> None:
    # the main path fails (rule 3) at the end of the unchecked restart, the NULL branch leaks (rule 1)
    r = rejected(Program("file_open", (Start(0), Start(0, False), End(0))))
    assert r.rules == (3,)  # the unchecked start has no NULL branch: only the main path
    r = rejected(Program("file_open", (Start(0), Start(0), Log(0, "cause", "x", "stack"), End(0))))
    assert r.rule == 7 and r.alternatives == ((1, model.MSG_UNRELEASED),)


def test_explicit_examples_cover_every_logger_and_load() -> None:
    used = {op.logger for prog in strategy.EXPLICIT for op in prog.ops if isinstance(op, Log)}
    assert used == set(LOGGERS)
    assert all(model.predict(prog).accepted for prog in strategy.EXPLICIT)
    assert {op.side for prog in strategy.EXPLICIT for op in prog.ops if isinstance(op, Log)} >= {"src", "dst", "both"}
    assert any(prog.sleepable for prog in strategy.EXPLICIT) and set(HOOKS) <= {p.hook for p in strategy.EXPLICIT}


@PURE
@given(strategy.programs())
def test_generated_programs_never_leave_an_outcome_to_what_the_spec_does_not_say(prog: Program) -> None:
    assert drop_unspecified(prog.ops) == prog.ops
    model.predict(prog)  # never Unspecified
