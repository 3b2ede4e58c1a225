# SPDX-License-Identifier: GPL-2.0
"""Pure reference model: what a conforming kernel does with a generated program (verdict, message, records).

Built from the spec (../shared/spec/bpf-audit-kfuncs.md) and what the hand-written cases prove the reference
series does on 6.12 and 7.3 (the verifier's words differ by line: VMsg); no kernel, no I/O. Where the spec
leaves an outcome open (a call that failed on its arguments, then a call of the same kind on the same
context: whether the first used up the kind is not said), the model refuses the program (Unspecified) and
the strategy never generates one. The verifier is modelled as it explores a program: depth first, the
fall-through of each conditional jump before its target (pushed, walked later, last pushed first); the first
error found is the one reported. Which side of an `if` is the fall-through is clang's choice, so where that
decides the first error the prediction lists every possibility (see verify()).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.cases.audit import encode_untrusted
from harness.gen.ast import (
    DENY,
    EPERM,
    IOCTL_CMD,
    LOOPBACK_NETIF,
    End,
    Exit,
    KptrStore,
    Log,
    Program,
    Setup,
    Start,
)

ECONNREFUSED = 111
EFAULT = 14
# The trigger's errno when the hook allows: connect() finds nothing listening on the port; the ioctl
# trigger's FIONREAD has arg 0, so the kernel's put_user() of the byte count faults.
ALLOWED_ERRNO = {"socket_connect": ECONNREFUSED, "file_ioctl": EFAULT}

# The first kernel line known to name a kfunc argument by its register (R1) where 6.12 names it by position
# (arg#0 / arg0): the renderer writes __msg_before/__msg_since at this version for messages that differ.
LINE_SPLIT = "7.3"


@dataclass(frozen=True)
class VMsg:
    """A verifier (or libbpf) message as each kernel line words it: `old` before LINE_SPLIT, `new` from it. `log`
    says whose log prints it: "verifier" (__msg) or "libbpf" (__libbpf_msg, a message from before the load)."""

    old: str
    new: str
    log: str = "verifier"

    @classmethod
    def same(cls, text: str, log: str = "verifier") -> VMsg:
        return cls(text, text, log)

    @property
    def varies(self) -> bool:
        return self.old != self.new

    def on(self, release: str) -> str:
        """The words kernel `release` prints."""
        from harness.cases.model import kernel_version

        version = kernel_version(release) or (0,)
        split = tuple(int(x) for x in LINE_SPLIT.split("."))
        return self.new if version >= split else self.old


# Spec rule -> the verifier's message (substring) on each line, as the spec and cases/verifier/ record them.
MSG_UNRELEASED = VMsg.same("Unreleased reference")
# a context used after its end: 6.12 words both mistakes alike, 7.3 per kfunc (end: release; a logger: the type)
MSG_RELEASED = VMsg("arg#0 pointer type STRUCT bpf_audit_context must point to scalar, or struct with scalar",
                    "release kfunc bpf_audit_log_end expects referenced PTR_TO_BTF_ID passed to R1")
MSG_RELEASED_USE = VMsg(MSG_RELEASED.old, "R1 is scalar expected STRUCT bpf_audit_context")
# 7.3's series flags the loggers whose struct arguments must be kernel objects (KF_OBJ_ARGS, patch 0002): its check
# comes first, so an ended context passed to one of them is refused in its words
OBJ_ARGS_LOGGERS = frozenset({"net_sockaddr"})
MSG_RELEASED_OBJ = VMsg(MSG_RELEASED.old, "R1 must be a kernel object STRUCT bpf_audit_context, not program memory")
MSG_MAYBE_NULL = VMsg("Possibly NULL pointer passed to trusted arg0", "Possibly NULL pointer passed to trusted R1")
MSG_KPTR_BTF = VMsg.same("Error loading .BTF into kernel", "libbpf")  # libbpf, before the load
MSG_KPTR = VMsg.same("map 'm' has to have BTF in order to use bpf_kptr_xchg")
MSG_CONST_STACK = VMsg("arg#1 doesn't point to a const string", "R2 doesn't point to a const string")
MSG_CONST_WRITABLE = VMsg.same("does not point to a readonly map")

# Every field name a BPF_LSM_ACCESS record can carry: a predicted record lacks all the others.
RECORD_FIELDS = ("prog-id", "pid", "comm", "cause", "capability", "path", "dev", "ino", "ioctlcmd", "name", "opid",
                 "ocomm", "laddr", "lport", "faddr", "fport", "saddr", "src", "daddr", "dest", "netif")
TMPFS_DEV = "tmpfs"  # sb->s_id of a tmpfs superblock


class Unspecified(ValueError):
    """A program whose outcome the spec leaves open: the model makes no prediction for it."""

LOST_BASE = 100  # state keys from here on: references whose variable was overwritten by a new start

# Context states along one verifier path.
UNSET, MAYBE_NULL, OPEN, RELEASED = "unset", "maybe_null", "open", "released"


@dataclass(frozen=True)
class Rejection:
    rule: int
    messages: tuple[VMsg, ...]  # substrings, in the order they appear (libbpf's log, then the verifier's)
    reason: str  # which operation, on which path
    # other (rule, message) the verifier reports instead when clang lays the branches out differently
    alternatives: tuple[tuple[int, VMsg], ...] = ()

    @property
    def rules(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys((self.rule,) + tuple(r for r, _ in self.alternatives)))


@dataclass(frozen=True)
class FieldSpec:
    """A predicted field: value is the decoded value (None: only present), may use ${prog_id} etc.;
    raw is the exact on-the-wire text when the model knows it."""

    name: str
    value: str | None = None
    raw: str | None = None


@dataclass(frozen=True)
class RecordSpec:
    fields: tuple[FieldSpec, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


@dataclass(frozen=True)
class Run:
    """An accepted program's run on its trigger: records in emission order, the hook's return, trigger errno."""

    records: tuple[RecordSpec, ...]
    verdict: int
    errno: int


@dataclass(frozen=True)
class Prediction:
    rejection: Rejection | None = None
    run: Run | None = None

    @property
    def accepted(self) -> bool:
        return self.rejection is None

    def summary(self) -> str:
        if self.rejection is not None:
            r = self.rejection
            alt = "".join(f", or rule {rule} {msg.old!r} (block layout)" for rule, msg in r.alternatives)
            return f"rejected (rule {r.rule}: {r.reason}) with {' / '.join(repr(m.old) for m in r.messages)}{alt}"
        assert self.run is not None
        recs = "; ".join(" ".join(rec.names) for rec in self.run.records) or "no record"
        verdict = "-EPERM" if self.run.verdict else "0"
        return f"accepted; hook returns {verdict}, trigger errno {self.run.errno}; records: {recs}"


class _Reject(Exception):
    def __init__(self, rule: int, message: VMsg, reason: str) -> None:
        super().__init__(reason)
        self.rule, self.message, self.reason = rule, message, reason


# --- verifier ---------------------------------------------------------------------------------------------------


def _use(states: dict[int, str], ctx: int, what: str, release: bool = False, obj_args: bool = False) -> None:
    """A kfunc takes ac<ctx> as arg0 (KF_TRUSTED_ARGS loggers and KF_RELEASE end alike; `obj_args`: a KF_OBJ_ARGS
    logger on 7.3)."""
    st = states.get(ctx, UNSET)
    if st == MAYBE_NULL:
        raise _Reject(3, MSG_MAYBE_NULL, f"{what} on ac{ctx} before a NULL check")
    if st == RELEASED:
        msg = MSG_RELEASED if release else MSG_RELEASED_OBJ if obj_args else MSG_RELEASED_USE
        raise _Reject(2, msg, f"{what} on ac{ctx} after its end")
    if st != OPEN:
        raise ValueError(f"{what} on ac{ctx}, which the program never started (generator bug)")


def _end(states: dict[int, str], ctx: int, what: str) -> None:
    _use(states, ctx, what, release=True)
    states[ctx] = RELEASED


def _exit_check(states: dict[int, str], where: str) -> None:
    leaked = [c for c, st in sorted(states.items()) if st in (OPEN, MAYBE_NULL)]
    if leaked:
        names = ", ".join(f"ac{c}" if c < LOST_BASE else "an overwritten context" for c in leaked)
        raise _Reject(1, MSG_UNRELEASED, f"{names} not ended on {where}")


def null_path_cleanup(states: dict[int, str], ctx: int) -> tuple[tuple[int, bool], ...]:
    """What the `if (!ac<ctx>)` branch ends before returning: (other ctx, needs its own NULL check)."""
    return tuple((c, st == MAYBE_NULL) for c, st in sorted(states.items())
                 if c != ctx and c < LOST_BASE and st in (OPEN, MAYBE_NULL))


def static_states(prog: Program) -> list[dict[int, str]]:
    """The context states on the main path before each operation (the renderer's view, too)."""
    states: dict[int, str] = {}
    out = []
    for op in prog.ops:
        out.append(dict(states))
        try:
            _step_main(states, op, 0)
        except _Reject:
            states = dict(states)  # the verifier stops here; the renderer still renders the rest
            if isinstance(op, End):
                states[op.ctx] = RELEASED
            elif isinstance(op, Start):
                states[op.ctx] = OPEN if op.null_check else MAYBE_NULL
    out.append(dict(states))
    return out


def _overwrite(states: dict[int, str], ctx: int) -> None:
    """ac<ctx> = ...: if it held a reference, that reference is lost for good (it can never be ended)."""
    if states.get(ctx, UNSET) in (OPEN, MAYBE_NULL):
        states[LOST_BASE + sum(c >= LOST_BASE for c in states)] = states[ctx]


def _step_main(states: dict[int, str], op, i: int) -> None:
    where = f"op {i + 1}"
    if isinstance(op, Start):
        _overwrite(states, op.ctx)
        states[op.ctx] = OPEN if op.null_check else MAYBE_NULL
    elif isinstance(op, Log):
        _use(states, op.ctx, f"{where} bpf_audit_log_{op.logger}", obj_args=op.logger in OBJ_ARGS_LOGGERS)
        if op.logger == "cause" and op.bad == "stack":
            raise _Reject(7, MSG_CONST_STACK, f"{where}: cause string on the stack")
        if op.logger == "cause" and op.bad == "writable":
            raise _Reject(7, MSG_CONST_WRITABLE, f"{where}: cause string in a writable global")
    elif isinstance(op, End):
        _end(states, op.ctx, f"{where} bpf_audit_log_end")
    elif isinstance(op, KptrStore):
        raise _Reject(4, MSG_KPTR, f"{where}: bpf_kptr_xchg of ac{op.ctx} into a map (the map has no BTF)")
    elif isinstance(op, Exit):
        pass  # the main path does not take the branch
    else:
        raise TypeError(op)


def _side_path(states: dict[int, str], op, i: int) -> None:
    """The path through op i's branch, to its return."""
    states = dict(states)
    where = f"op {i + 1}"
    if isinstance(op, Start) and op.null_check:
        _overwrite(states, op.ctx)
        states[op.ctx] = UNSET  # NULL: the acquired reference is dropped with it
        for c, check in null_path_cleanup(states, op.ctx):
            if not check:
                _end(states, c, f"{where} NULL branch end")
            else:
                states[c] = RELEASED  # `if (ac) end(ac)`: released on one side, NULL (no reference) on the other
        _exit_check(states, f"{where}'s NULL branch")
    elif isinstance(op, Exit):
        for c in op.ends:
            _end(states, c, f"{where} exit branch end")
        _exit_check(states, f"the exit branch of {where}")


def _events(prog: Program) -> list[tuple[str, _Reject | None]]:
    """The main path as the verifier walks it, layout aside: ("branch", the error on that branch's side path
    or None) at each conditional, ("error", e) where the main path itself fails (the walk stops there)."""
    states: dict[int, str] = {}
    out: list[tuple[str, _Reject | None]] = []
    for i, op in enumerate(prog.ops):
        if (isinstance(op, Start) and op.null_check) or isinstance(op, Exit):
            try:
                _side_path(dict(states), op, i)
                out.append(("branch", None))
            except _Reject as r:
                out.append(("branch", r))
        try:
            _step_main(states, op, i)
        except _Reject as r:
            out.append(("error", r))
            return out
    try:
        _exit_check(states, "the main path's return")
    except _Reject as r:
        out.append(("error", r))
    return out


def _first_error(events: list[tuple[str, _Reject | None]], inline: tuple[bool, ...]) -> _Reject | None:
    """The first error for one layout. inline[k]: the k-th branch with an erroring side path is the
    fall-through (walked right away) rather than the jump target (pushed, walked after the main path,
    last pushed first). Side paths without errors cannot change the answer, so they are left out."""
    pushed: list[_Reject] = []
    k = 0
    for kind, err in events:
        if err is None:
            continue
        if kind == "error":
            return err
        if inline[k]:
            return err
        pushed.append(err)
        k += 1
    return pushed[-1] if pushed else None


def verify(prog: Program) -> Rejection | None:
    """The verifier's verdict. Which side of an `if` clang lays out as the fall-through is the compiler's
    choice (__builtin_expect does not pin it), and the verifier walks the fall-through first: when the first
    error depends on that, the rejection lists the other possible (rule, message) pairs as alternatives."""
    prefix: tuple[VMsg, ...] = (MSG_KPTR_BTF,) if prog.uses_kptr else ()
    events = _events(prog)
    n = sum(kind == "branch" and err is not None for kind, err in events)
    found: list[_Reject] = []
    for bits in range(2 ** n):  # bits 0: every branch the jump target, the main path first
        r = _first_error(events, tuple(bool(bits >> k & 1) for k in range(n)))
        if r is None:
            return None  # no error on any path: every layout accepts
        if all((r.rule, r.message) != (f.rule, f.message) for f in found):
            found.append(r)
    first = found[0]
    return Rejection(first.rule, prefix + (first.message,), first.reason,
                     tuple((f.rule, f.message) for f in found[1:]))


# --- run time ---------------------------------------------------------------------------------------------------


@dataclass
class _Ctx:
    claimed: set[str] = field(default_factory=set)  # kinds logged (rule 12)
    failed: set[str] = field(default_factory=set)  # kinds of calls that failed on their arguments (rule 14)
    fields: list[FieldSpec] = field(default_factory=list)


def _leading() -> list[FieldSpec]:
    return [FieldSpec("prog-id", "${prog_id}"), FieldSpec("pid", "${pid}"), FieldSpec("comm", "${comm}")]


def _file_fields(setup: Setup) -> list[FieldSpec]:
    return [FieldSpec("path", setup.path, encode_untrusted(setup.path.encode())), FieldSpec("dev", TMPFS_DEV),
            FieldSpec("ino")]


def _net_fields(op: Log, prog: Program, setup: Setup) -> list[FieldSpec]:
    """What the network loggers print (lsm_audit leaves out every part that is zero), then netif= when the
    index names a device (rule 14: one that names none adds nothing and is no error)."""
    out: list[FieldSpec] = []
    if op.logger == "net_sock":
        if prog.hook == "socket_connect":  # bound, not yet connected: the zero foreign address and port are left out
            out += [FieldSpec("laddr", "127.0.0.1"), FieldSpec("lport", str(setup.bind_port))]
        # socket_bind: not bound yet, every part is zero
    else:
        port = str(setup.port)
        if op.side in ("src", "both"):
            out += [FieldSpec("saddr", "127.0.0.1"), FieldSpec("src", port)]
        if op.side in ("dst", "both", None):
            out += [FieldSpec("daddr", "127.0.0.1"), FieldSpec("dest", port)]
    if op.arg == LOOPBACK_NETIF:
        out.append(FieldSpec("netif", "lo"))
    return out


def _log(ctx: _Ctx, op: Log, prog: Program, setup: Setup) -> int:
    """Apply one logger call to a context; returns what the kfunc returns."""
    kind = op.kind
    if op.fails:  # rule 14: both NULL, or addrlen too short for the family
        if kind not in ctx.claimed:
            ctx.failed.add(kind)
        return -22
    if kind in ctx.failed:
        raise Unspecified(f"bpf_audit_log_{op.logger} after a call of its kind ({kind}) failed on its arguments: "
                          "the spec does not say whether that call used up the kind")
    if kind in ctx.claimed:
        return -22  # -EINVAL (rule 12)
    ctx.claimed.add(kind)
    add = ctx.fields.extend
    if op.logger == "cause":
        assert isinstance(op.arg, str)
        add([FieldSpec("cause", op.arg, encode_untrusted(op.arg.encode()))])
    elif op.logger == "cap":
        add([FieldSpec("capability", str(op.arg))])  # the number as given (rule 14)
    elif op.logger in ("path", "file"):
        add(_file_fields(setup))
    elif op.logger == "ioctl_op":
        cmd = IOCTL_CMD if op.arg is None else op.arg
        assert isinstance(cmd, int)
        add(_file_fields(setup) + [FieldSpec("ioctlcmd", f"0x{cmd & 0xFFFF:x}")])
    elif op.logger in ("dentry", "inode"):
        name = setup.dir_name if op.arg == "dir" else setup.file
        add([FieldSpec("name", name, encode_untrusted(name.encode())), FieldSpec("dev", TMPFS_DEV), FieldSpec("ino")])
    elif op.logger == "task":
        if op.arg == "current":
            add([FieldSpec("opid", "${pid}"), FieldSpec("ocomm", "${comm}")])
        else:
            add([FieldSpec("opid", "${target_pid}"),
                 FieldSpec("ocomm", setup.target_comm, encode_untrusted(setup.target_comm.encode()))])
    elif op.logger in ("net_sock", "net_sockaddr"):
        add(_net_fields(op, prog, setup))
    else:
        raise ValueError(op.logger)
    return 0


def run(prog: Program) -> Run:
    """The run of an accepted program on its trigger (audit enabled, so every start succeeds)."""
    setup = prog.setup
    ctxs: dict[int, _Ctx] = {}
    records: list[RecordSpec] = []

    def end(c: int) -> None:
        records.append(RecordSpec(tuple(_leading() + ctxs.pop(c).fields)))

    verdict = prog.ret
    for op in prog.ops:
        if isinstance(op, Start):
            ctxs[op.ctx] = _Ctx()
        elif isinstance(op, Log):
            _log(ctxs[op.ctx], op, prog, setup)
        elif isinstance(op, End):
            end(op.ctx)
        elif isinstance(op, Exit) and op.taken:
            for c in op.ends:
                end(c)
            verdict = op.ret
            break
    if verdict == DENY:
        errno = EPERM
    else:
        errno = ALLOWED_ERRNO.get(prog.hook, 0)
    return Run(tuple(records), verdict, errno)


def predict(prog: Program) -> Prediction:
    rejection = verify(prog)
    if rejection is not None:
        return Prediction(rejection=rejection)
    return Prediction(run=run(prog))


def field_sequence_mismatch(run: Run, records) -> str | None:
    """Compare the BPF_LSM_ACCESS records a run produced (harness.cases.audit.Record, in arrival order) with the
    prediction: the same number, in the same order, each with exactly the predicted field names in order
    (stricter than the case annotations, which cannot rule out a field the model has never heard of)."""
    got = [r.field_names() for r in records if r.is_type("BPF_LSM_ACCESS")]
    want = [rec.names for rec in run.records]
    if got == want:
        return None
    show = "\n".join(f"  {' '.join(names)}" for names in got) or "  (none)"
    expected = "\n".join(f"  {' '.join(names)}" for names in want) or "  (none)"
    return f"BPF_LSM_ACCESS field names, record by record, expected:\n{expected}\ngot:\n{show}"
