# SPDX-License-Identifier: GPL-2.0
"""The agent protocol: one class per op's request and reply, shared by the agent and the host (guests/README.md)."""

# The classes are @message classes (wire.py): required fields have no default, fields that may be absent default to
# None. A new op is a request class and a reply class here (named in REQUESTS) plus its op_<name> in the agent.

from __future__ import annotations

from .wire import Message, ProtocolError, RequestBase, field, message

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar, TypeVar

    R = TypeVar("R", bound="Reply")
else:
    R = "R"

__all__ = ["Message", "ProtocolError"]

# -- replies --------------------------------------------------------------------------------------------------------


@message
class Reply(Message):
    """Every answer to a request: its id, ok, how long the agent took. A failed one is a Failure."""

    id: int | None
    ok: bool
    elapsed: float | None = None


@message
class Failure(Reply):
    """ok: false: a bad request, an op that was tried and failed, or an OSError (errno); what else the op said
    (libbpf_log, auditd_pid, ...) is in `extra`."""

    error: str = ""
    errno: int | None = None
    extra: dict = field(default_factory=dict)

    def describe(self) -> str:
        return self.error + (f" (errno {self.errno})" if self.errno else "")


@message
class Empty(Reply):
    """An op that answers with nothing besides ok (ping, exit, audit_user, kmsg)."""


@message
class Hello(Reply):
    OP = "hello"
    pid: int
    kernel: str
    libbpf: str | None  # the path of the libbpf.so it mapped, null when it could not load one
    op: str = "hello"
    libbpf_version: str | None = None
    libbpf_error: str | None = None
    python: str | None = None
    startup: float | None = None


@message
class LoadReply(Reply):
    OP = "load"
    loaded: bool
    errno: int
    verifier_log: str
    programs: list  # [{name, section, type, id, fd, autoload, tag, flags, (verifier_log, dumps)}]
    libbpf_log: list = field(default_factory=list)
    maps: list = field(default_factory=list)
    handle: int | None = None  # when loaded
    failed_program: str | None = None
    btf_log: str | None = None
    log_size: int | None = None
    log_retries: int | None = None
    stage: str | None = None  # "open" (the ELF could not be opened), "btf_fixup"
    error: str | None = None  # with stage btf_fixup
    skipped: str | None = None  # unpriv: why unprivileged BPF cannot run here

    def program_id(self, name: str) -> int:
        """The kernel's id of the loaded program `name` (0: not loaded)."""
        return next((p["id"] for p in self.programs if p["name"] == name), 0)


@message
class AttachReply(Reply):
    OP = "attach"
    link: int
    errno: int
    libbpf_log: list
    link_id: int | None = None
    prog_id: int | None = None


@message
class DetachReply(Reply):
    OP = "detach"
    errno: int
    libbpf_log: list


@message
class UnloadReply(Reply):
    OP = "unload"
    detached: list
    libbpf_log: list


@message
class PinReply(Reply):
    OP = "pin"
    path: str
    libbpf_log: list


@message
class TestRunReply(Reply):
    OP = "test_run"
    errno: int
    retval: int
    duration: int
    data_size_out: int
    libbpf_log: list
    data_out: str | None = None


@message
class ProbeReply(Reply):
    OP = "probe"
    unprivileged_bpf_disabled: int | None
    mitigations_off: bool
    unpriv_disabled_reason: str | None  # null when unprivileged BPF may run
    jit_enabled: bool
    efficient_unaligned_access: bool | None  # null without /proc/config.gz
    machine: str
    prog_flags: dict  # name -> true or "refused: ..."


@message
class TriggerReply(Reply):
    OP = "trigger"
    rc: int
    errno: int
    pid: int
    timed_out: bool
    stdout: str | None = None
    stderr: str | None = None
    comm: str | None = None
    step: str | None = None
    strerror: str | None = None
    tid: int | None = None
    extra: dict = field(default_factory=dict)  # the action's own fields (target_pid, ino, nread, child_error ...)


@message
class AuditStatus(Message):
    """AUDIT_GET's fields as the kernel gave them (an older kernel sends fewer: those are None)."""

    OP = "audit status"
    mask: int | None = None
    enabled: int | None = None
    failure: int | None = None
    pid: int | None = None
    rate_limit: int | None = None
    backlog_limit: int | None = None
    lost: int | None = None
    backlog: int | None = None
    feature_bitmap: int | None = None
    version: int | None = None
    backlog_wait_time: int | None = None
    backlog_wait_time_actual: int | None = None


@message
class AuditStatusReply(Reply, AuditStatus):
    OP = "audit_status"
    agent_mode: str | None  # daemon, multicast or null (not open)

    def counters(self) -> AuditStatus:
        return AuditStatus(**{n: getattr(self, n) for n in AuditStatus._FIELDS})


@message
class AuditOpenReply(Reply):
    OP = "audit_open"
    NESTED = {"status": AuditStatus}
    mode: str
    mark: int
    status: AuditStatus
    already_open: bool | None = None


@message
class AuditCloseReply(Reply):
    OP = "audit_close"
    NESTED = {"status": AuditStatus}
    was_open: bool
    status: AuditStatus
    unregister_error: str | None = None


@message
class AuditMarkReply(Reply):
    OP = "audit_mark"
    mark: int
    overruns: int
    lost: int | None  # the kernel's lost counter now (null if AUDIT_GET did not give it)


@message
class AuditReadReply(Reply):
    OP = "audit_read"
    NESTED = {"status": AuditStatus}
    records: list  # [{seq, type, text}]
    mark: int
    status: AuditStatus
    overruns: int
    dropped_before: int | None = None


@message
class AuditSetReply(Reply):
    OP = "audit_set"
    NESTED = {"status": AuditStatus}
    status: AuditStatus


@message
class MapUpdateReply(Reply):
    OP = "map_update"
    errno: int
    error: str  # "" on success (test_loader's PRINT_FAIL text otherwise)


@message
class AttachStructOpsReply(Reply):
    OP = "attach_struct_ops"
    attached: list
    errno: int
    libbpf_log: list
    failed: str | None = None  # the map that would not attach


@message
class StreamReadReply(Reply):
    OP = "stream_read"
    ret: int  # bytes read, or -errno
    text: str


@message
class LoadModuleReply(Reply):
    OP = "load_module"
    errno: int


# -- requests: the op's arguments (None: the agent's default); REPLY is the class of its answer ---------------------


class Request(Message, RequestBase[R]):
    REPLY: ClassVar[type[Reply]] = Empty


@message
class Ping(Request[Empty]):
    OP, REPLY = "ping", Empty


@message
class Exit(Request[Empty]):
    OP, REPLY = "exit", Empty


@message
class Load(Request[LoadReply]):
    OP, REPLY = "load", LoadReply
    path: str
    programs: list | None = None  # the programs to autoload (the others are not)
    log_level: int | None = None
    log_levels: dict | None = None
    log_size: int | None = None
    log_retry: bool | None = None
    prog_flags: dict | None = None
    no_autocreate_maps: list | None = None
    object_name: str | None = None
    drop_caps: list | None = None
    keep_caps: list | None = None
    unpriv: bool | None = None
    mitigations_config: bool | None = None
    program_logs: bool | None = None
    dump: dict | None = None
    btf_custom_path: str | None = None
    btf_func_path: str | None = None


@message
class Attach(Request[AttachReply]):
    OP, REPLY = "attach", AttachReply
    handle: int
    program: str


@message
class Detach(Request[DetachReply]):
    OP, REPLY = "detach", DetachReply
    link: int


@message
class Unload(Request[UnloadReply]):
    OP, REPLY = "unload", UnloadReply
    handle: int


@message
class Pin(Request[PinReply]):
    OP, REPLY = "pin", PinReply
    handle: int
    program: str
    path: str


@message
class TestRun(Request[TestRunReply]):
    OP, REPLY = "test_run", TestRunReply
    handle: int
    program: str
    data_in: str | None = None  # hex
    data_size_out: int | None = None
    ctx_in: str | None = None  # hex
    ctx_size_out: int | None = None
    repeat: int | None = None
    empty: bool | None = None
    drop_caps: list | None = None


@message
class Probe(Request[ProbeReply]):
    OP, REPLY = "probe", ProbeReply
    prog_flags: dict | None = None
    prog_name: str | None = None
    mitigations_config: bool | None = None


@message
class Trigger(Request[TriggerReply]):
    """`shell` or `action` (with the action's parameters in `extra`); `timeout` is the guest's limit."""

    OP, REPLY = "trigger", TriggerReply
    shell: str | None = None
    action: str | None = None
    timeout: float | None = None
    comm: str | None = None
    drop_caps: list | None = None
    cwd: str | None = None
    input: str | None = None
    extra: dict = field(default_factory=dict)


@message
class AuditOpen(Request[AuditOpenReply]):
    OP, REPLY = "audit_open", AuditOpenReply
    enable: bool | None = None
    backlog_limit: int | None = None
    mode: str | None = None


@message
class AuditClose(Request[AuditCloseReply]):
    OP, REPLY = "audit_close", AuditCloseReply


@message
class AuditMark(Request[AuditMarkReply]):
    OP, REPLY = "audit_mark", AuditMarkReply


@message
class AuditRead(Request[AuditReadReply]):
    OP, REPLY = "audit_read", AuditReadReply
    since: int | None = None
    wait: float | None = None
    types: list | None = None


@message
class AuditStatusRequest(Request[AuditStatusReply]):
    OP, REPLY = "audit_status", AuditStatusReply


@message
class AuditSet(Request[AuditSetReply]):
    OP, REPLY = "audit_set", AuditSetReply
    enabled: int | None = None
    failure: int | None = None
    rate_limit: int | None = None
    backlog_limit: int | None = None
    backlog_wait_time: int | None = None


@message
class AuditUser(Request[Empty]):
    OP, REPLY = "audit_user", Empty
    text: str
    type: int | None = None


@message
class MapUpdate(Request[MapUpdateReply]):
    OP, REPLY = "map_update", MapUpdateReply
    handle: int
    map: str
    key: str  # hex
    value: str  # hex
    flags: int | None = None


@message
class AttachStructOps(Request[AttachStructOpsReply]):
    OP, REPLY = "attach_struct_ops", AttachStructOpsReply
    handle: int
    maps: list


@message
class StreamRead(Request[StreamReadReply]):
    OP, REPLY = "stream_read", StreamReadReply
    handle: int
    program: str
    stream: int  # 1 stdout, 2 stderr


@message
class Kmsg(Request[Empty]):
    OP, REPLY = "kmsg", Empty
    text: str


@message
class LoadModule(Request[LoadModuleReply]):
    OP, REPLY = "load_module", LoadModuleReply
    path: str


REQUESTS: dict[str, type[Request]] = {c.OP: c for c in (
    Ping, Exit, Load, Attach, Detach, Unload, Pin, TestRun, Probe, Trigger, AuditOpen, AuditClose, AuditMark,
    AuditRead, AuditStatusRequest, AuditSet, AuditUser, MapUpdate, AttachStructOps, StreamRead, Kmsg, LoadModule)}
REPLIES: dict[str, type[Reply]] = {op: req.REPLY for op, req in REQUESTS.items()}


def parse_reply(op: str, data: dict) -> Reply:
    """The reply to `op` as its class (a Failure when ok is false); ProtocolError if it lacks a required field."""
    if isinstance(data, dict) and data.get("ok") is False:
        return Failure.from_dict(data)
    cls = REPLIES.get(op)
    if cls is None:
        raise ProtocolError(f"no reply class for op {op!r}")
    return cls.from_dict(data)
