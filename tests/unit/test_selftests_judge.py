# SPDX-License-Identifier: GPL-2.0
"""harness.selftests.judge: run_subtest()'s verdict from the guest agent's `load` reply (see guests/README.md) and,
for __retval, a test run's outcome. An unsupported feature is a skip, never a pass."""

from __future__ import annotations

import dataclasses

import pytest

from harness.machine.messages import msg
from harness.selftests.dialect import LINUX_6_12, LINUX_7_3
from harness.selftests.evidence import KernelEvidence, map_type_enum, map_type_guards, read_config
from harness.selftests.judge import (
    ERROR,
    FAIL,
    PASS,
    SKIP,
    GuestTraits,
    RunOutcome,
    StreamText,
    judge,
    precheck,
    program_log,
    should_execute,
)
from harness.selftests.spec import PRIV, UNPRIV, Reason, parse_spec

POINTER_VALUE = LINUX_6_12.pointer_value

T = "comment:"


def spec(*tags: str, name: str = "prog"):
    return parse_spec([T + t for t in tags], name)


def reply(**fields) -> msg.LoadReply:
    """The agent's load reply (no request id: these were never sent)."""
    return msg.LoadReply.from_dict({"id": None, "ok": True, **fields})


def loaded(log: str = "processed 2 insns", **extra) -> msg.LoadReply:
    return reply(**{"loaded": True, "errno": 0, "verifier_log": log, "libbpf_log": [],
                    "programs": [{"name": "prog", "autoload": True}], **extra})


def refused(log: str, errno: int = 13, **extra) -> msg.LoadReply:
    return reply(**{"loaded": False, "errno": errno, "verifier_log": log, "libbpf_log": ["libbpf: load failed"],
                    "failed_program": "prog", "programs": [{"name": "prog", "autoload": True}], **extra})


def ran(retval: int = 0, errno: int = 0, **streams: tuple[int, str]) -> RunOutcome:
    """A test run's outcome: the agent's test_run reply and the streams read after it (name=(ret, text))."""
    run = msg.TestRunReply(id=None, ok=True, errno=errno, retval=retval, duration=1, data_size_out=0, libbpf_log=[])
    return RunOutcome(run, streams={name: StreamText(*got) for name, got in streams.items()})


def test_must_load_and_must_fail() -> None:
    assert judge(spec(), PRIV, loaded())[0] == PASS
    status, reason = judge(spec(), PRIV, refused("R1 invalid mem access"))
    assert status == FAIL and reason.startswith("unexpected_load_failure: errno 13") and "R1 invalid" in reason
    fail = spec("test_expect_failure", "test_expect_msg=0=invalid mem access")
    assert judge(fail, PRIV, refused("0: R1 invalid mem access 'scalar'")) == (PASS, "load failed as expected")
    status, reason = judge(fail, PRIV, loaded())
    assert status == FAIL and reason.startswith("unexpected_load_success")


def test_messages_are_checked_on_success_too_and_on_the_verifier_log_only() -> None:
    s = spec("test_expect_success", "test_log_level=2", "test_expect_msg=0=R0_w=0", "test_expect_msg=1=exit")
    assert judge(s, PRIV, loaded("0: R0_w=0\n1: exit\n"))[0] == PASS
    status, reason = judge(s, PRIV, loaded("1: exit\n0: R0_w=0\n"))  # order matters
    assert status == FAIL and "EXPECTED   SUBSTR: 'exit'" in reason and "VERIFIER LOG" in reason
    # what libbpf printed does not count
    status, _ = judge(s, PRIV, loaded("", libbpf_log=["R0_w=0", "exit"]))
    assert status == FAIL


def test_the_programs_own_log_is_used() -> None:
    res = loaded("aux log", programs=[{"name": "aux", "autoload": True, "verifier_log": "aux log"},
                                      {"name": "prog", "autoload": True, "verifier_log": "the prog's log"}])
    assert program_log(res, "prog") == "the prog's log"
    no_logs = loaded("first program's log", programs=[{"name": "aux", "autoload": True},
                                                      {"name": "prog", "autoload": True}])
    assert program_log(no_logs, "prog") == ""  # the top-level log is aux's: not this program's
    assert program_log(no_logs, "aux") == "first program's log"
    assert program_log(refused("why", failed_program="aux"), "prog") == ""
    assert program_log(refused("why"), "prog") == "why"


def test_unpriv_subtests_use_their_subspec() -> None:
    s = spec("test_expect_success", "test_expect_failure_unpriv", "test_expect_msg_unpriv=0=unpriv msg")
    assert judge(s, PRIV, loaded())[0] == PASS
    assert judge(s, UNPRIV, refused("x: unpriv msg"))[0] == PASS
    assert judge(s, UNPRIV, refused("other"))[0] == FAIL
    assert judge(s, UNPRIV, refused("unpriv msg"), target=GuestTraits(unpriv_disabled=True))[0] == SKIP
    with pytest.raises(ValueError, match="no unpriv subtest"):
        judge(spec(), UNPRIV, loaded())


def test_any_alignment_on_a_machine_without_efficient_unaligned_access() -> None:
    s = spec("test_expect_success", "test_expect_success_unpriv", "test_retval=1",
             "test_prog_flags=BPF_F_ANY_ALIGNMENT")
    slow = GuestTraits(efficient_unaligned_access=False)
    assert precheck(s, UNPRIV, slow)[0] == SKIP and precheck(s, PRIV, slow) is None
    assert not should_execute(s, PRIV, slow) and should_execute(s, PRIV)
    assert judge(s, PRIV, loaded(), target=slow)[0] == PASS  # loaded; no test run on that machine


def test_retval_needs_a_test_run_and_is_compared_as_a_c_int() -> None:
    s = spec("test_expect_success", "test_retval=0xabcdef12")
    status, reason = judge(s, PRIV, loaded())
    assert status == ERROR and "needs BPF_PROG_TEST_RUN" in reason  # never a pass without the run
    assert judge(s, PRIV, loaded(), ran(0xABCDEF12))[0] == PASS
    status, reason = judge(s, PRIV, loaded(), ran(7))
    assert status == FAIL and reason == f"Unexpected retval: 7 != {0xABCDEF12 - (1 << 32)}"
    assert judge(s, PRIV, loaded(), ran(errno=22))[0] == FAIL
    any_value = spec("test_retval=POINTER_VALUE")
    assert any_value.priv.retval == POINTER_VALUE and judge(any_value, PRIV, loaded(), ran(12345))[0] == PASS
    # a program expected to fail is never run
    assert judge(spec("test_expect_failure", "test_retval=1"), PRIV, refused("no"))[0] == PASS


def test_unsupported_and_other_arch_skip_before_anything_loads() -> None:
    tm = spec().with_unsupported(Reason("bpf_testmod", "kfunc bpf_kfunc_call_test_acquire"))
    assert judge(tm, PRIV, None) == (SKIP, "unsupported: bpf_testmod (kfunc bpf_kfunc_call_test_acquire)")
    arm = spec("test_arch=ARM64")
    assert judge(arm, PRIV, None)[0] == SKIP and "aarch64" in judge(arm, PRIV, None)[1]
    ex = spec("test_retval=0").with_unsupported(Reason("pre-execution callback", "init maps"), execution=True)
    status, reason = judge(ex, PRIV, loaded(), ran(0))
    assert status == SKIP and "pre-execution callback" in reason
    assert judge(ex, PRIV, refused("x"))[0] == FAIL  # the load itself is still judged


def test_invalid_specs_and_agent_errors() -> None:
    bad = spec("test_retval=zz")
    assert judge(bad, PRIV, loaded())[0] == FAIL and "can't parse test spec" in judge(bad, PRIV, loaded())[1]
    assert judge(spec(), PRIV, msg.Failure(id=None, ok=False, error="bad request: path")) == (
        ERROR, "the agent's load failed: bad request: path")
    open_failed = reply(loaded=False, errno=22, stage="open", verifier_log="", programs=[], libbpf_log=["no ELF"])
    assert judge(spec(), PRIV, open_failed)[0] == ERROR
    assert judge(spec(), PRIV, None) == (ERROR, "no load result")


DATA = __import__("pathlib").Path(__file__).resolve().parents[1] / "data"
EVIDENCE = DATA / "selftests-evidence"
XSKMAP = 17  # enum bpf_map_type


def evidence_6_12(**changes) -> KernelEvidence:
    """What harness.selftests.evidence reads of the 6.12-series kernel (recorded: tests/data/selftests-evidence)."""
    recorded = KernelEvidence(
        "6.12.118", map_type_enum((EVIDENCE / "vmlinux-6.12.118-enum-bpf_map_type.h").read_text()),
        read_config((EVIDENCE / "config-6.12.118").read_text()),
        map_type_guards((EVIDENCE / "bpf_types-6.12.118.h").read_text()),
        frozenset({"bpf_task_acquire", "bpf_key_put"}), frozenset())
    return dataclasses.replace(recorded, **changes)


def map_refused(map_name: str, map_type: int, errno_text: str, errno: int = 22):
    log = [f"libbpf: map '{map_name}': found max_entries = 1.",
           f"libbpf: map '{map_name}': failed to create: {errno_text}",
           "libbpf: failed to load object '/tmp/x.o'"]
    return refused("", errno=errno, libbpf_log=log, maps=[{"name": map_name, "type": map_type, "created": False}])


EXPECTATIONS = (spec(), spec("test_expect_failure", "test_expect_msg=0=invalid mem access"))


def test_a_map_type_the_kernel_config_lacks_is_a_skip_naming_the_option() -> None:
    """Recorded from a real run (tests/data/selftests-libbpf-map-type-missing.log: verifier_jeq_infer_not_null on a
    kernel without CONFIG_XDP_SOCKETS); the evidence is that kernel's config, bpf_types.h and BTF enum."""
    libbpf_log = (DATA / "selftests-libbpf-map-type-missing.log").read_text().splitlines()
    no_xsk = evidence_6_12(config={**read_config((EVIDENCE / "config-6.12.118").read_text()),
                                   "CONFIG_XDP_SOCKETS": "n"})
    for expect in EXPECTATIONS:
        load = refused("", errno=22, libbpf_log=libbpf_log, maps=[{"name": "map_xskmap", "type": XSKMAP}])
        status, reason = judge(expect, PRIV, load, evidence=no_xsk)
        assert status == SKIP and "BPF_MAP_TYPE_XSKMAP is registered only with CONFIG_NET and " \
            "CONFIG_XDP_SOCKETS" in reason and "CONFIG_XDP_SOCKETS unset" in reason, reason
    # the same failure on the recorded 6.12 kernel, whose config has CONFIG_XDP_SOCKETS=y: judged as test_loader does
    load = refused("", errno=22, libbpf_log=libbpf_log, maps=[{"name": "map_xskmap", "type": XSKMAP}])
    assert judge(spec(), PRIV, load, evidence=evidence_6_12())[0] == FAIL
    # a type beyond the kernel's own enum (its BTF): the kernel has no such map type
    status, reason = judge(spec(), PRIV, map_refused("m", 99, "-EINVAL"), evidence=evidence_6_12())
    assert status == SKIP and "map type 99 is not in this kernel's enum bpf_map_type" in reason


@pytest.mark.parametrize("map_name, map_type, errno_text", [
    ("map_xskmap", XSKMAP, "Cannot allocate memory(-12)"),  # ENOMEM: memory, not a feature
    ("map_xskmap", XSKMAP, "-EPERM"),  # 7.x's errstr(): no rights
    ("array", 2, "Invalid argument(-22)"),  # ARRAY is never configured out: the kernel refused its attributes
    (".rodata", 2, "Operation not permitted(-1)"),
])
def test_any_other_map_creation_failure_is_judged_as_test_loader_judges_it(map_name, map_type, errno_text) -> None:
    """Was: any `failed to create` line made every subtest of the file a skip ("kernel built without its map
    type"), for __success and __failure specs alike, and the run exited 0."""
    for evidence in (evidence_6_12(), None):
        status, reason = judge(spec(), PRIV, map_refused(map_name, map_type, errno_text), evidence=evidence)
        assert status == FAIL and reason.startswith("unexpected_load_failure"), reason
        # an expected failure whose message the empty log lacks fails on the message
        status, reason = judge(EXPECTATIONS[1], PRIV, map_refused(map_name, map_type, errno_text), evidence=evidence)
        assert status == FAIL and reason.startswith("expect_msg"), reason
    # and a __failure spec without messages passes, as in test_loader (the load failed, as expected)
    assert judge(spec("test_expect_failure"), PRIV, map_refused(map_name, map_type, errno_text),
                 evidence=evidence_6_12())[0] == PASS


def test_a_kfunc_is_missing_only_when_the_kernel_btf_lacks_it() -> None:
    libbpf_log = (DATA / "selftests-libbpf-kfunc-missing.log").read_text().splitlines()
    without = evidence_6_12(btf_funcs=frozenset({"bpf_task_acquire"}))
    status, reason = judge(spec(), PRIV, refused("", errno=2, libbpf_log=libbpf_log), evidence=without)
    assert status == SKIP and "kfunc bpf_key_put is not in this kernel's BTF" in reason, reason
    # the kernel's BTF has it (libbpf failed for another reason), or nothing is known of the BTF: a verdict
    for evidence in (evidence_6_12(), evidence_6_12(btf_funcs=None), None):
        status, reason = judge(spec(), PRIV, refused("", errno=2, libbpf_log=libbpf_log), evidence=evidence)
        assert status == FAIL and reason.startswith("unexpected_load_failure"), reason
    # a verifier rejection with the object's noise around it stays a verdict
    status, reason = judge(spec(), PRIV, refused("R1 invalid mem access", errno=13, libbpf_log=libbpf_log[:2]),
                           evidence=without)
    assert status == FAIL and reason.startswith("unexpected_load_failure")


def test_a_test_run_without_a_retval_is_no_verdict() -> None:
    """A reply without its retval never becomes a 0: reading it fails, naming the field."""
    s = spec("test_retval=0")
    recorded = {"id": 3, "ok": True, "errno": 0, "duration": 1, "data_size_out": 0, "libbpf_log": []}
    with pytest.raises(msg.ProtocolError, match="test_run reply has no 'retval' field"):
        RunOutcome.from_dict(recorded)
    assert judge(s, PRIV, loaded(), RunOutcome.from_dict({**recorded, "retval": 0}))[0] == PASS


def with_dumps(log: str = "processed 2 insns", **prog) -> msg.LoadReply:
    return loaded(log, programs=[{"name": "prog", "autoload": True, **prog}])


def test_xlated_and_jited_are_judged_after_the_load_and_the_messages() -> None:
    """Was: every __xlated/__jited subtest was a skip before it was loaded ("unsupported")."""
    s = spec("test_expect_success", "test_expect_xlated=0=r0 = 0", "test_expect_xlated=1=exit")
    assert judge(s, PRIV, with_dumps(xlated_text="0: r0 = 0\n1: exit\n"))[0] == PASS
    status, reason = judge(s, PRIV, with_dumps(xlated_text="0: r0 = 1\n1: exit\n"))
    assert status == FAIL and reason.startswith("expect_xlated") and "EXPECTED   SUBSTR: 'r0 = 0'" in reason
    status, reason = judge(s, PRIV, with_dumps(xlated_text="0: r0 = 0\n1: r1 = 1\n2: exit\n"))
    assert status == FAIL and "WRONG LINE" in reason  # the next pattern must be on the next line
    assert judge(s, PRIV, with_dumps(xlated_error="Permission denied (errno 13)"))[0] == FAIL
    assert judge(s, PRIV, with_dumps())[0] == ERROR  # nothing fetched: no verdict
    # the load and its messages come first
    s2 = spec("test_expect_success", "test_expect_msg=0=never", "test_expect_xlated=1=r0 = 0")
    assert judge(s2, PRIV, with_dumps(xlated_text="0: r0 = 0\n"))[1].startswith("expect_msg")
    j = spec("test_expect_success", "test_arch=X86_64", "test_jited=0=\tendbr64", "test_jited=1=\tnopl")
    jited = "func #0:\n0:\tf3 0f 1e fa                         \tendbr64\n4:\t0f 1f 44 00 00 \tnopl\t(%rax,%rax)\n"
    assert judge(j, PRIV, with_dumps(jited_text=jited))[0] == PASS
    status, reason = judge(j, PRIV, with_dumps(jited_unsupported="no libLLVM"))
    assert status == SKIP and "disassembly is not supported" in reason  # test_loader's own skip without LLVM


def test_the_test_run_then_its_streams() -> None:
    s = spec("test_expect_success", "test_retval=0")
    failed = RunOutcome(setup_error="pre_execution_cb failed: Error while updating map")
    assert judge(s, PRIV, loaded(), failed) == (FAIL, "pre_execution_cb failed: Error while updating map")
    assert judge(s, PRIV, loaded(), RunOutcome(setup_error="bpf_map__attach_struct_ops failed for map ops: err=-22")
                 )[0] == FAIL
    s73 = parse_spec(["comment:0:test_expect_success", "comment:1:test_retval=0", "comment:2:test_expect_stderr=oops",
                      "comment:3:test_expect_stdout=hello"], "prog", dialect=LINUX_7_3)
    assert judge(s73, PRIV, loaded(), ran(stderr=(5, "oops\n"), stdout=(6, "hello\n")))[0] == PASS
    empty = ran(stderr=(0, ""), stdout=(6, "hello\n"))
    assert judge(s73, PRIV, loaded(), empty)[1].startswith("expect_stderr")
    wrong = ran(stderr=(5, "oops\n"), stdout=(3, "bye"))
    assert judge(s73, PRIV, loaded(), wrong)[1].startswith("expect_stdout")
    assert judge(s73, PRIV, loaded(), ran())[0] == ERROR  # streams not read: no verdict


def test_load_if_jited_and_unknown_tags() -> None:
    s = parse_spec(["comment:0:load_mode=jited"], "prog", dialect=LINUX_7_3)
    assert precheck(s, PRIV, GuestTraits(jit_enabled=True)) is None
    assert precheck(s, PRIV, GuestTraits(jit_enabled=False))[0] == SKIP
    u = parse_spec(["comment:0:test_expect_success", "comment:1:test_log_always"], "prog", dialect=LINUX_7_3)
    status, reason = judge(u, PRIV, loaded())
    assert status == ERROR and "unknown tag 'test_log_always'" in reason


def test_a_test_runs_outcome_is_recorded_as_before_and_read_back() -> None:
    """The record keeps the reply's fields with "streams", or {"setup_error": ...}; the replay reads it back."""
    run = ran(7, stderr=(5, "oops\n"))
    recorded = run.to_dict()
    assert recorded == {"id": None, "ok": True, "errno": 0, "retval": 7, "duration": 1, "data_size_out": 0,
                        "libbpf_log": [], "streams": {"stderr": {"ret": 5, "text": "oops\n"}}}
    assert RunOutcome.from_dict(recorded) == run and "streams" not in ran().to_dict()
    failed = RunOutcome(setup_error="pre_execution_cb failed: x")
    assert failed.to_dict() == {"setup_error": "pre_execution_cb failed: x"}
    assert RunOutcome.from_dict(failed.to_dict()) == failed
