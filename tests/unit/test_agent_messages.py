# SPDX-License-Identifier: GPL-2.0
"""The agent protocol's message classes (guests/agent/messages.py): round trips, required fields, the loss sum."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.cases.window import Capture, rise
from harness.machine.messages import msg
from harness.settings import GUESTS_DIR

STATUS = {"enabled": 1, "lost": 3, "backlog_limit": 8192}
# One full request and one full reply per op: every field, optional ones included.
REQUESTS = {
    "ping": {}, "exit": {},
    "load": {"path": "/x.o", "programs": ["p"], "log_level": 1, "log_levels": {"p": 2}, "log_size": 4096,
             "log_retry": False, "prog_flags": {"p": 1}, "no_autocreate_maps": ["m"], "object_name": "o",
             "drop_caps": ["CAP_BPF"], "keep_caps": [39], "unpriv": True, "mitigations_config": False,
             "program_logs": True, "dump": {"p": ["xlated"]}, "btf_custom_path": "/b", "btf_func_path": "/f"},
    "attach": {"handle": 1, "program": "p"}, "detach": {"link": 2}, "unload": {"handle": 1},
    "pin": {"handle": 1, "program": "p", "path": "/sys/fs/bpf/p"},
    "test_run": {"handle": 1, "program": "p", "data_in": "00", "data_size_out": 4, "ctx_in": "01",
                 "ctx_size_out": 8, "repeat": 1, "empty": False, "drop_caps": ["CAP_SYS_ADMIN"]},
    "probe": {"prog_flags": {"BPF_F_TEST_RND_HI32": 4}, "prog_name": "flag-test", "mitigations_config": True},
    "trigger": {"action": "open", "timeout": 30.0, "comm": "bah", "drop_caps": ["CAP_BPF"], "path": "/tmp/x"},
    "audit_open": {"enable": True, "backlog_limit": 8192, "mode": "daemon"}, "audit_close": {}, "audit_mark": {},
    "audit_read": {"since": 3, "wait": 0.3, "types": [1334]}, "audit_status": {},
    "audit_set": {"enabled": 1, "failure": 1, "rate_limit": 0, "backlog_limit": 64, "backlog_wait_time": 0},
    "audit_user": {"text": "t", "type": 1199},
    "map_update": {"handle": 1, "map": "m", "key": "00", "value": "01", "flags": 0},
    "attach_struct_ops": {"handle": 1, "maps": ["ops"]},
    "stream_read": {"handle": 1, "program": "p", "stream": 2}, "kmsg": {"text": "x"}, "load_module": {"path": "/m.ko"},
}
BASE = {"id": 7, "ok": True, "elapsed": 0.01}
REPLIES = {
    "ping": {}, "exit": {}, "audit_user": {}, "kmsg": {},
    "load": {"loaded": False, "errno": 13, "verifier_log": "v", "programs": [{"name": "p", "id": 0}],
             "libbpf_log": ["l"], "maps": [], "handle": 4, "failed_program": "p", "btf_log": "b", "log_size": 1024,
             "log_retries": 0, "stage": "open", "error": "e", "skipped": "s"},
    "attach": {"link": 2, "errno": 0, "libbpf_log": [], "link_id": 5, "prog_id": 6},
    "detach": {"errno": 0, "libbpf_log": []}, "unload": {"detached": [2], "libbpf_log": []},
    "pin": {"path": "/p", "libbpf_log": []},
    "test_run": {"errno": 0, "retval": 1, "duration": 9, "data_size_out": 4, "libbpf_log": [], "data_out": "00"},
    "probe": {"unprivileged_bpf_disabled": 2, "mitigations_off": False, "unpriv_disabled_reason": None,
              "jit_enabled": True, "efficient_unaligned_access": None, "machine": "x86_64", "prog_flags": {}},
    "trigger": {"rc": 0, "errno": 2, "pid": 10, "timed_out": False, "stdout": "o", "stderr": "e", "comm": "c",
                "step": "open", "strerror": "No such file", "tid": 11, "ino": 12, "target_pid": 13},
    "audit_open": {"mode": "daemon", "mark": 1, "status": STATUS, "already_open": True},
    "audit_close": {"was_open": True, "status": STATUS, "unregister_error": "x"},
    "audit_mark": {"mark": 5, "overruns": 0, "lost": None},
    "audit_read": {"records": [{"seq": 1, "type": 1334, "text": "t"}], "mark": 2, "status": STATUS, "overruns": 0,
                   "dropped_before": 1},
    "audit_status": {**STATUS, "agent_mode": "daemon"}, "audit_set": {"status": STATUS},
    "map_update": {"errno": 0, "error": ""},
    "attach_struct_ops": {"attached": ["a"], "errno": 22, "libbpf_log": [], "failed": "b"},
    "stream_read": {"ret": 3, "text": "abc"}, "load_module": {"errno": 0},
}


def test_every_op_has_a_request_and_a_reply_example() -> None:
    assert set(msg.REQUESTS) == set(REQUESTS) == set(REPLIES)


@pytest.mark.parametrize("op", sorted(REQUESTS))
def test_a_request_round_trips_and_keeps_its_wire_form(op: str) -> None:
    req = msg.REQUESTS[op].from_dict(REQUESTS[op])
    assert req.OP == op
    assert req.to_dict() == REQUESTS[op]
    assert type(req).from_dict(req.to_dict()) == req


@pytest.mark.parametrize("op", sorted(REPLIES))
def test_a_reply_round_trips_and_keeps_its_wire_form(op: str) -> None:
    wire = {**BASE, **REPLIES[op]}
    reply = msg.parse_reply(op, wire)
    assert isinstance(reply, msg.REPLIES[op])
    assert reply.to_dict() == wire
    assert type(reply).from_dict(reply.to_dict()) == reply


@pytest.mark.parametrize("op", sorted(op for op, cls in msg.REPLIES.items() if cls is not msg.Empty))
def test_a_reply_missing_a_required_field_names_the_op_and_the_field(op: str) -> None:
    cls = msg.REPLIES[op]
    required = [n for n in cls._FIELDS if n not in cls._DEFAULTS and n not in msg.Reply._FIELDS]
    assert required, f"{op}: a reply with no required field"
    for name in required:
        wire = {k: v for k, v in {**BASE, **REPLIES[op]}.items() if k != name}
        with pytest.raises(msg.ProtocolError, match=f"agent's {op} reply has no '{name}' field"):
            msg.parse_reply(op, wire)


def test_a_missing_retval_is_an_error_not_zero() -> None:
    with pytest.raises(msg.ProtocolError, match="test_run reply has no 'retval'"):
        msg.parse_reply("test_run", {**BASE, "errno": 0, "duration": 1, "data_size_out": 0, "libbpf_log": []})


def test_ok_false_is_a_failure_with_what_else_the_op_said() -> None:
    wire = {"id": 3, "ok": False, "error": "attach p failed", "errno": 95, "libbpf_log": ["x"], "elapsed": 0.1}
    reply = msg.parse_reply("attach", wire)
    assert isinstance(reply, msg.Failure)
    assert (reply.error, reply.errno, reply.extra) == ("attach p failed", 95, {"libbpf_log": ["x"]})
    assert reply.to_dict() == wire


def test_a_request_needs_its_required_arguments() -> None:
    with pytest.raises(TypeError, match="needs argument 'path'"):
        msg.Load()  # type: ignore[call-arg]
    with pytest.raises(msg.ProtocolError, match="agent's attach request has no 'program' field"):
        msg.Attach.from_dict({"handle": 1})


def test_the_agent_imports_the_messages_with_a_bare_stdlib() -> None:
    # As in the guest: python3 -S, no site-packages, and neither `re` nor `dataclasses` pulled in.
    code = ("import sys, agent.messages as m; assert m.Ping().to_dict() == {}; "
            "print(sorted({'re', 'dataclasses', 'typing'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-S", "-c", code], cwd=GUESTS_DIR, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# The agent's dispatcher with an op swapped for one that builds its reply wrongly (no libbpf, no guest needed).
DISPATCH = """
import sys
from agent.dispatch import Agent
from agent.messages import Empty, PinReply
agent = Agent("/nonexistent/libbpf.so")
print(list(agent.handle(b'{"id": 7, "op": "ping"}')))
for op in ({K}):
    agent.op_ping = op
    print(agent.handle(b'{"id": 8, "op": "ping"}')["error"])
"""


def test_an_op_builds_its_reply_class_and_a_wrong_one_fails_where_it_is_built() -> None:
    ops = ("lambda req: Empty(id=None, ok=True, bogus=1), lambda req: PinReply(id=None, ok=True, path='/p', "
           "libbpf_log=[]), lambda req: PinReply(id=None, ok=True, path='/p'), lambda req: Empty(id=None, ok=False)")
    out = subprocess.run([sys.executable, "-S", "-c", DISPATCH.replace("{K}", ops)], cwd=GUESTS_DIR,
                         capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [
        "['id', 'ok', 'elapsed']",
        "internal error: TypeError: Empty: unexpected or repeated argument 'bogus'",
        "internal error: TypeError: op_ping answered with PinReply; messages.py declares Empty",
        "internal error: TypeError: PinReply needs argument 'libbpf_log'",
        "internal error: TypeError: op_ping answered with ok=False",
    ]


@pytest.mark.parametrize(("before", "after", "rose"), [(3, 5, 2), (5, 5, 0), (5, 0, 0), (None, 4, None),
                                                        (4, None, None), (0, 0, 0)])
def test_rise_of_a_counter_over_a_window(before: int | None, after: int | None, rose: int | None) -> None:
    assert rise(before, after) == rose


def test_a_window_without_the_lost_counter_is_no_verdict() -> None:
    capture = Capture([], True, None, 0, None)
    assert "not given" in (capture.problem() or "")
    assert Capture([], True, 0, 0, None).problem() is None
    assert "lost 2" in (Capture([], True, 2, 0, None).problem() or "")
