# SPDX-License-Identifier: GPL-2.0
"""harness.selftests.run against a stand-in agent: what a subtest asks the agent for (test_loader's per-subtest
load, its test run), how the answers become verdicts, and that a dead agent is no verdict."""

from __future__ import annotations

from pathlib import Path

from harness.errors import AgentExitedError
from harness.machine.messages import msg
from harness.selftests.dialect import LINUX_6_12
from harness.selftests.discover import Caps, Skeleton
from harness.selftests.elf import BtfMap
from harness.selftests.run import SelftestSession, load_request, run_subtest
from harness.selftests.spec import PRIV, UNPRIV, parse_spec
from harness.selftests.suite import FileSpecs

PROBE = {"ok": True, "machine": "x86_64", "efficient_unaligned_access": True, "unpriv_disabled_reason": None,
         "prog_flags": {"BPF_F_TEST_RND_HI32": True, "BPF_F_TEST_REG_INVARIANTS": True}}


# What a test's answer leaves out: the rest of each op's required fields (the agent always sends them).
FILL = {"probe": {"unprivileged_bpf_disabled": 0, "mitigations_off": False, "jit_enabled": True},
        "load": {"programs": [], "verifier_log": "", "libbpf_log": []},
        "test_run": {"duration": 0, "data_size_out": 0, "libbpf_log": []},
        "attach_struct_ops": {"libbpf_log": []}, "map_update": {"error": ""},
        "unload": {"detached": [], "libbpf_log": []}, "load_module": {"errno": 0}}


def hello(**fields: object) -> msg.Hello:
    return msg.Hello.from_dict({"id": 0, "ok": True, "pid": 1, "kernel": "7.3.4", **fields})


class FakeAgent:
    def __init__(self, answers: dict) -> None:
        self.answers = answers
        self.requests: list[tuple[str, dict]] = []
        self.hello = hello(libbpf="/cache/libbpf.so.1.5.0", libbpf_version="v1.5")

    def request(self, op: str, timeout: float = 60, **args):
        self.requests.append((op, args))
        answer = self.answers.get(op, {"ok": True})
        if isinstance(answer, Exception):
            raise answer
        answer = answer(args) if callable(answer) else answer
        return {"id": 1, **(FILL.get(op, {}) if answer.get("ok") else {}), **answer}

    def call(self, req: msg.Request, timeout: float = 60):
        return msg.parse_reply(req.OP, self.request(req.OP, timeout, **req.to_dict()))


class FakeGuest:
    def __init__(self, agent: FakeAgent) -> None:
        self._agent = agent
        self.forgotten: list = []

    def agent(self, libbpf=None):
        return self._agent

    def forget_agent(self, libbpf=None):
        self.forgotten.append(libbpf)


class FakeMachine:
    def __init__(self, agent: FakeAgent) -> None:
        self.guest = FakeGuest(agent)

    def alive(self) -> bool:
        return True


class FakeFiles:
    def push(self, obj: Path) -> str:
        return f"/guest/{obj.name}"


class FakeGuestSession:
    def __init__(self, agent: FakeAgent) -> None:
        self.machine = FakeMachine(agent)
        self.files = FakeFiles()


def file_specs(tmp_path: Path, *specs, caps: Caps = Caps(), maps=()) -> FileSpecs:
    skel = Skeleton("verifier_demo", tmp_path / "verifier_demo.c", "verifier", "prog_tests/verifier.c:1", "test_x",
                    caps)
    return FileSpecs(skel, tmp_path / "verifier_demo.o", tuple(specs), tuple(maps))


def session(answers: dict) -> tuple[SelftestSession, FakeAgent]:
    agent = FakeAgent({"probe": PROBE, **answers})
    return SelftestSession(FakeGuestSession(agent), "/cache/libbpf.so.1.5.0"), agent


def loaded(name: str = "prog", type_: int = 1, log: str = "", **extra) -> dict:
    return {"ok": True, "loaded": True, "errno": 0, "handle": 7, "verifier_log": log, "libbpf_log": [],
            "programs": [{"name": name, "type": type_, "autoload": True, "verifier_log": log}], **extra}


def test_the_load_request_is_test_loaders(tmp_path: Path) -> None:
    prog = parse_spec(["comment:test_expect_failure", "comment:test_expect_failure_unpriv", "comment:test_log_level=2",
                       "comment:test_prog_flags=BPF_F_ANY_ALIGNMENT"], "prog")
    aux = parse_spec(["comment:test_auxiliary", "comment:test_auxiliary_unpriv"], "aux")
    fs = file_specs(tmp_path, aux, prog, caps=Caps((), ("CAP_SYS_ADMIN",)),
                    maps=(BtfMap("seeded", 1, 64), BtfMap("plain", 1, 0), BtfMap("lpm", 11, 0)))
    priv, unpriv = fs.subtests()
    req = load_request(fs, priv, "/guest/x.o", testing_flags=4 | 128).to_dict()
    assert req["programs"] == ["prog", "aux"] and req["log_level"] == 0 and req["log_levels"] == {"prog": 2}
    assert req["prog_flags"] == {"prog": 4 | 128 | 2} and req["object_name"] == "verifier_demo"
    assert req["drop_caps"] == ["CAP_SYS_ADMIN"] and "unpriv" not in req and "no_autocreate_maps" not in req
    assert req["program_logs"] and req["log_retry"] is False and req["log_size"] == 2 * 1024 * 1024
    req = load_request(fs, unpriv, "/guest/x.o", testing_flags=0).to_dict()
    assert req["unpriv"] is True and req["no_autocreate_maps"] == ["seeded", "lpm"]
    assert req["drop_caps"] == ["CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_PERFMON", "CAP_BPF"]


def test_retval_subtests_run_the_program_and_unload(tmp_path: Path) -> None:
    spec = parse_spec(["comment:test_expect_success", "comment:test_retval=2"], "prog")
    fs = file_specs(tmp_path, spec, caps=Caps((), ("CAP_SYS_ADMIN",)))
    s, agent = session({"load": loaded(), "test_run": {"ok": True, "errno": 0, "retval": 2}})
    (sub,) = fs.subtests()
    res = run_subtest(s, fs, sub)
    assert (res.status, res.reason) == ("pass", "loaded as expected, retval 2")
    ops = [op for op, _ in agent.requests]
    assert ops == ["probe", "load", "test_run", "unload"]
    run_args = agent.requests[2][1]
    assert run_args == {"handle": 7, "program": "prog", "empty": False, "drop_caps": ["CAP_SYS_ADMIN"]}
    assert s.libbpf_used == "/cache/libbpf.so.1.5.0 (v1.5)"

    s, agent = session({"load": loaded(type_=31), "test_run": {"ok": True, "errno": 0, "retval": 3}})
    res = run_subtest(s, fs, sub)
    assert res.status == "fail" and "Unexpected retval: 3 != 2" in res.reason
    assert agent.requests[2][1]["empty"] is True  # BPF_PROG_TYPE_SYSCALL: test_loader's empty options


def test_an_expected_failure_is_not_run(tmp_path: Path) -> None:
    spec = parse_spec(["comment:test_expect_failure", "comment:test_retval=0", "comment:test_expect_msg=0=bad"],
                      "prog")
    fs = file_specs(tmp_path, spec)
    refused = {"ok": True, "loaded": False, "errno": 13, "verifier_log": "0: bad thing", "failed_program": "prog",
               "libbpf_log": [], "programs": [{"name": "prog", "autoload": True, "verifier_log": "0: bad thing"}]}
    s, agent = session({"load": refused})
    res = run_subtest(s, fs, fs.subtests()[0])
    assert res.status == "pass" and [op for op, _ in agent.requests] == ["probe", "load"]
    assert res.verifier_log == "0: bad thing"


def test_unprivileged_subtests_skip_with_the_sysctl(tmp_path: Path) -> None:
    spec = parse_spec(["comment:test_expect_success", "comment:test_expect_success_unpriv"], "prog")
    fs = file_specs(tmp_path, spec)
    why = "kernel.unprivileged_bpf_disabled = 2: unprivileged BPF is disabled"
    s, agent = session({"probe": {**PROBE, "unpriv_disabled_reason": why}})
    res = run_subtest(s, fs, fs.subtests()[1])
    assert res.mode == UNPRIV and res.status == "skip" and why in res.reason
    assert [op for op, _ in agent.requests] == ["probe"]  # nothing loaded
    # the agent says so itself too (the sysctl changed after the probe)
    s, agent = session({"load": {"ok": True, "loaded": False, "errno": 0, "skipped": why, "programs": []}})
    res = run_subtest(s, fs, fs.subtests()[1])
    assert res.status == "skip" and why in res.reason


def test_a_dead_agent_is_no_verdict_and_is_started_again_next_time(tmp_path: Path) -> None:
    fs = file_specs(tmp_path, parse_spec(["comment:test_expect_success"], "prog"))
    s, agent = session({"load": AgentExitedError("guest agent exited: killed by a signal")})
    res = run_subtest(s, fs, fs.subtests()[0])
    assert res.mode == PRIV and res.status == "error" and "died during this subtest" in res.reason
    assert s.machine.guest.forgotten == ["/cache/libbpf.so.1.5.0"]


def test_a_libbpf_the_guest_cannot_load_falls_back_with_a_note(tmp_path: Path) -> None:
    fs = file_specs(tmp_path, parse_spec(["comment:test_expect_success"], "prog"))
    s, agent = session({"load": loaded()})
    agent.hello = hello(libbpf=None, libbpf_error="cannot load libbpf: no such file")
    run_subtest(s, fs, fs.subtests()[0])
    assert s.libbpf is None and "no such file" in s.notes[0] and "guest's own libbpf" in s.notes[0]


def test_before_a_test_run_struct_ops_attach_and_the_pre_execution_writes(tmp_path: Path) -> None:
    """Was: a __retval subtest of a file with a pre-execution callback or a struct_ops map was a skip after its
    load; now the maps are written and attached first, and a step that fails fails the subtest as test_loader's
    PRINT_FAIL does."""
    from dataclasses import replace

    from harness.selftests.preexec import MapWrite

    spec = parse_spec(["comment:test_expect_success", "comment:test_retval=0"], "prog")
    fs = replace(file_specs(tmp_path, spec), pre_execution=(MapWrite("map_array_ro", b"\0" * 4, b"\1" * 48),),
                 struct_ops_maps=("ops",))
    (sub,) = fs.subtests()
    s, agent = session({"load": loaded(), "attach_struct_ops": {"ok": True, "attached": [9], "errno": 0},
                        "map_update": {"ok": True, "errno": 0}, "test_run": {"ok": True, "errno": 0, "retval": 0}})
    res = run_subtest(s, fs, sub)
    assert res.status == "pass", res.reason
    assert [op for op, _ in agent.requests] == ["probe", "load", "attach_struct_ops", "map_update", "test_run",
                                                 "unload"]
    assert agent.requests[3][1] == {"handle": 7, "map": "map_array_ro", "key": "00000000", "value": "01" * 48}
    s, _ = session({"load": loaded(), "attach_struct_ops": {"ok": True, "attached": [], "failed": "ops", "errno": 22}})
    res = run_subtest(s, fs, sub)
    assert res.status == "fail" and "bpf_map__attach_struct_ops failed for map ops: err=-22" in res.reason
    s, _ = session({"load": loaded(), "attach_struct_ops": {"ok": True, "attached": [9], "errno": 0},
                    "map_update": {"ok": True, "errno": 2, "error": "Error while updating map 'map_array_ro'"}})
    res = run_subtest(s, fs, sub)
    assert res.status == "fail" and res.reason.startswith("pre_execution_cb failed")
    # a callback the harness cannot do is no verdict on the run, never a skip
    fs = replace(fs, pre_execution=(), pre_execution_error="init_x_maps() in verifier.c does not only return ...")
    (sub,) = fs.subtests()
    s, _ = session({"load": loaded()})
    assert run_subtest(s, fs, sub).status == "error"


def test_a_recorded_subtest_replays_to_its_verdict(tmp_path: Path) -> None:
    """--selftests-record's files, read back by harness.selftests.replay, give the same verdict through the spec
    and judge code (what tests/unit/test_selftests_compare.py does with whole recorded runs)."""
    from harness.selftests.replay import replay_subtest, subtest_record

    spec = parse_spec(["comment:test_expect_failure", "comment:test_expect_msg=0=R1 invalid"], "prog")
    fs = file_specs(tmp_path, spec)
    (sub,) = fs.subtests()
    refused = {"ok": True, "loaded": False, "errno": 13, "verifier_log": "0: R1 invalid mem access",
               "failed_program": "prog", "libbpf_log": [],
               "programs": [{"name": "prog", "autoload": True, "verifier_log": "0: R1 invalid mem access"}]}
    s, _ = session({"load": refused})
    res = run_subtest(s, fs, sub)
    rec = subtest_record(sub, res)
    meta = {"dialect": {**__import__("dataclasses").asdict(LINUX_6_12), "tags": sorted(LINUX_6_12.tags)},
            "helpers": {}, "programs": {"prog": {"section": "socket", "prog_type": 1, "unsupported": [],
                                                 "exec_unsupported": [],
                                                 "tags": ["comment:test_expect_failure",
                                                          "comment:test_expect_msg=0=R1 invalid"]}}}
    assert replay_subtest(meta, rec, []) == (res.status, res.reason) == ("pass", "load failed as expected")
    meta["programs"]["prog"]["tags"][1] = "comment:test_expect_msg=0=R2 invalid"  # the spec code runs again
    assert replay_subtest(meta, rec, [])[0] == "fail"
