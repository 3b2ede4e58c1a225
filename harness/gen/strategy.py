# SPDX-License-Identifier: GPL-2.0
"""Hypothesis strategies for generated programs: mostly well-formed, with deliberate mistakes mixed in."""

from __future__ import annotations

from hypothesis import strategies as st

from harness.gen.ast import (
    ALLOW,
    BAD_NETIF,
    CAP_LAST_CAP,
    CONST_IOCTL_CMDS,
    DENY,
    HOOKS,
    INODE_SOURCES,
    LOOPBACK_NETIF,
    SLEEPABLE_HOOKS,
    SOCKADDR_SIDES,
    TASK_SOURCES,
    End,
    Exit,
    KptrStore,
    Log,
    Program,
    Start,
    drop_unspecified,
)

# Plain causes come first: hypothesis shrinks a sampled_from towards the front.
CAUSES = ("denied", "allowed", "again", "has space", 'a"quote', "x")
# bpf_audit_log_cap logs any number as given (rule 14): numbers that name no capability are as good.
CAPS = (21, 0, 1, 12, CAP_LAST_CAP, CAP_LAST_CAP + 1, 4242, -1)
MAX_OPS = 10


def _log_arg(draw, hook: str, logger: str, mistakes: bool) -> tuple[int | str | None, str | None]:
    """(arg, bad) for one logger call; bad arguments only when the program may carry mistakes."""
    if logger == "cause":
        text = draw(st.sampled_from(CAUSES))
        bad = draw(st.sampled_from((None, None, None, "stack", "writable"))) if mistakes else None
        return text, bad
    if logger == "cap":
        return draw(st.sampled_from(CAPS)), None
    if logger == "ioctl_op":
        if hook == "file_ioctl" and draw(st.booleans()):
            return None, None  # the hook's own cmd
        return draw(st.sampled_from(CONST_IOCTL_CMDS)), None
    if logger == "inode":
        return draw(st.sampled_from(INODE_SOURCES[hook])), None
    if logger == "task":
        return draw(st.sampled_from(TASK_SOURCES)), None
    if logger in ("net_sock", "net_sockaddr"):
        netif = draw(st.sampled_from((0, LOOPBACK_NETIF, BAD_NETIF)))
        bad = draw(st.sampled_from((None, None, None, "short", "null"))) if logger == "net_sockaddr" else None
        return netif, bad
    return None, None


def _log(draw, ctx: int, hook: str, logger: str, mistakes: bool) -> Log:
    arg, bad = _log_arg(draw, hook, logger, mistakes)
    side = draw(st.sampled_from(SOCKADDR_SIDES)) if logger == "net_sockaddr" and bad != "null" else None
    return Log(ctx, logger, arg, bad, side)


# A careful program loads and runs; each mistake breaks one spec rule; "careless" draws freely.
MISTAKES = ("none", "none", "none", "none", "none", "none", "unchecked", "double_end", "use_after_end", "skip_end",
            "missing_end", "kptr", "cause_nonconst", "careless")


def _live_at(ops: list) -> list[list[int]]:
    """For a careful op list: the open contexts before each position 0..len(ops)."""
    live: list[int] = []
    out = []
    for op in ops:
        out.append(list(live))
        if isinstance(op, Start):
            live.append(op.ctx)
        elif isinstance(op, End) and op.ctx in live:
            live.remove(op.ctx)
    out.append(list(live))
    return out


def _inject(draw, ops: list, mistake: str, hook: str) -> list:
    """Put one mistake into a careful op list (which always has at least one started and ended context)."""
    live = _live_at(ops)
    starts = [i for i, op in enumerate(ops) if isinstance(op, Start)]
    ends = [i for i, op in enumerate(ops) if isinstance(op, End)]
    where = [i for i in range(len(ops) + 1) if live[i]]  # positions with an open context
    if mistake == "unchecked":
        i = draw(st.sampled_from(starts))
        return ops[:i] + [Start(ops[i].ctx, False)] + ops[i + 1:]
    if mistake in ("double_end", "use_after_end"):
        i = draw(st.sampled_from(ends))
        c = ops[i].ctx
        extra = End(c) if mistake == "double_end" else _log(draw, c, hook, draw(st.sampled_from(HOOKS[hook])), False)
        return ops[:i + 1] + [extra] + ops[i + 1:]
    if mistake == "missing_end":
        i = draw(st.sampled_from(ends))
        return ops[:i] + ops[i + 1:]
    i = draw(st.sampled_from(where))
    c = draw(st.sampled_from(live[i]))
    op: Exit | KptrStore | Log
    if mistake == "skip_end":
        kept = tuple(x for x in live[i] if x != c)
        op = Exit(kept, draw(st.sampled_from((ALLOW, DENY))), draw(st.booleans()))
    elif mistake == "kptr":
        op = KptrStore(c)
    else:
        op = Log(c, "cause", draw(st.sampled_from(CAUSES)), draw(st.sampled_from(("stack", "writable"))))
    return ops[:i] + [op] + ops[i:]


@st.composite
def programs(draw, hooks: tuple[str, ...] | None = None, max_ops: int = MAX_OPS) -> Program:
    """A Program: a careful one (every context checked and ended on every path: it loads and runs), the same
    with one deliberate mistake (a missing NULL check, a second end, a use after end, an exit branch that
    skips an end, a missing end, bpf_kptr_xchg into a map, a non-constant cause), or a careless one drawn
    freely. Shrinking moves towards fewer operations and the front of each list (plain causes, valid caps)."""
    mistake = draw(st.sampled_from(MISTAKES))
    if mistake == "careless":
        return draw(_careless(hooks, max_ops))
    prog = draw(_careless(hooks, max_ops, careful=True))
    ops = list(prog.ops)
    if mistake == "none":
        return prog
    if not any(isinstance(op, End) for op in ops):
        ops = [Start(0)] + ops + [End(0)]  # one context to make the mistake with
    return Program(prog.hook, drop_unspecified(_inject(draw, ops, mistake, prog.hook)), prog.ret, prog.sleepable)


def _kinds(ops: list, startable: list[int], live: list[int], used: list[int], mistakes: bool) -> list[str]:
    """The operations _careless may draw next (repeats weigh a kind), given the contexts' states so far."""
    kinds = []
    if live:
        kinds += ["log", "log", "log", "end"]
    if any(isinstance(op, Log) and op.ctx in live for op in ops):
        kinds.append("again")
    if startable:
        kinds.append("start")
    if live or (mistakes and used):
        kinds.append("exit")
    if mistakes and used:
        kinds += ["bad_log", "bad_end", "kptr"]
    return kinds


@st.composite
def _careless(draw, hooks: tuple[str, ...] | None, max_ops: int, careful: bool = False) -> Program:
    hook = draw(st.sampled_from(hooks or tuple(HOOKS)))
    sleepable = hook in SLEEPABLE_HOOKS and draw(st.integers(0, 3)) == 0
    loggers = HOOKS[hook]
    mistakes = not careful
    nctx = draw(st.integers(0, 2))
    ops: list = []
    state: dict[int, str] = {}  # ctx -> "open" | "maybe_null" | "released" (the careful generator's view)
    exits = 0
    n = draw(st.integers(0, max_ops))
    for _ in range(n):
        startable = [c for c in range(nctx) if state.get(c) in (None, "released")]
        live = [c for c in range(nctx) if state.get(c) == "open"]
        used = [c for c in range(nctx) if c in state]  # any started context, whatever its state
        kinds = _kinds(ops, startable, live, used, mistakes)
        if not kinds:
            break
        kind = draw(st.sampled_from(kinds))
        if kind == "start":
            c = draw(st.sampled_from(startable))
            check = True if not mistakes else draw(st.sampled_from((True, True, False)))
            ops.append(Start(c, check))
            state[c] = "open" if check else "maybe_null"
        elif kind in ("log", "bad_log"):
            c = draw(st.sampled_from(live if kind == "log" else used))
            ops.append(_log(draw, c, hook, draw(st.sampled_from(loggers)), mistakes))
        elif kind == "again":  # the same logger once more: -EINVAL (rule 12), nothing logged
            prev = draw(st.sampled_from([op for op in ops if isinstance(op, Log) and op.ctx in live]))
            ops.append(_log(draw, prev.ctx, hook, prev.logger, mistakes))
        elif kind in ("end", "bad_end"):
            c = draw(st.sampled_from(live if kind == "end" else used))
            ops.append(End(c))
            state[c] = "released"
        elif kind == "exit":
            if mistakes:
                ends = tuple(draw(st.lists(st.sampled_from(used), unique=True, max_size=2)))
            else:
                ends = tuple(live)
            ops.append(Exit(ends, draw(st.sampled_from((ALLOW, DENY))), draw(st.booleans())))
            exits += 1
            if ops[-1].taken and not mistakes:
                break  # a taken exit ends the run; later operations would never run
        elif kind == "kptr":
            c = draw(st.sampled_from(used))
            ops.append(KptrStore(c))
    # a careful program ends what it opened; a careless one may forget
    for c in range(nctx):
        if state.get(c) == "open" and (not mistakes or draw(st.booleans())):
            ops.append(End(c))
    return Program(hook, drop_unspecified(ops), draw(st.sampled_from((ALLOW, DENY))), sleepable)


def _every_logger(hook: str) -> Program:
    """Every kind the hook can feed, once, with good arguments (a cause that needs hex encoding); of two loggers
    that share a kind (rule 12) one: file on file_ioctl, path on file_open, dentry on inode_unlink, net_sock
    on socket_connect, net_sockaddr's source on socket_bind. Sleepable where the hook allows it, but for
    socket_connect (both kinds of program run)."""
    skip = {"file_open": "file", "file_ioctl": "path", "inode_unlink": "inode", "socket_connect": "net_sockaddr",
            "socket_bind": "net_sock"}
    ops: list = [Start(0)]
    for logger in HOOKS[hook]:
        if logger == skip.get(hook):
            continue
        if logger == "cause":
            ops.append(Log(0, "cause", "has space"))
        elif logger == "cap":
            ops.append(Log(0, "cap", 21))
        elif logger == "ioctl_op":
            ops.append(Log(0, "ioctl_op", None if hook == "file_ioctl" else CONST_IOCTL_CMDS[1]))
        elif logger == "inode":
            ops.append(Log(0, "inode", INODE_SOURCES[hook][-1]))
        elif logger == "task":
            ops.append(Log(0, "task", "target"))
        elif logger == "net_sock":
            ops.append(Log(0, logger, LOOPBACK_NETIF))
        elif logger == "net_sockaddr":
            ops.append(Log(0, logger, LOOPBACK_NETIF, side="src"))
        else:
            ops.append(Log(0, logger))
    return Program(hook, tuple(ops + [End(0)]), DENY, hook in SLEEPABLE_HOOKS and hook != "socket_connect")


# Run first in every profile (hypothesis @example): each of the ten loggers on its hook (sleepable where the
# hook allows it, rule 19), two contexts with a taken exit branch, a plain cause, one address on each side of
# net_sockaddr after both (rule 20), so that even a short derandomized run sees every field once.
EXPLICIT: tuple[Program, ...] = tuple(_every_logger(h) for h in HOOKS) + (
    Program("file_open", (Start(0), Log(0, "cause", "denied"), End(0))),
    Program("file_open", (Start(0), Log(0, "cap", 4242), Log(0, "file"), Log(0, "path"), Start(1),
                          Log(1, "cause", 'a"quote'), Exit((0, 1), DENY, taken=True), End(1), End(0)), ALLOW),
    Program("socket_connect", (Start(0), Log(0, "net_sockaddr", 0, side="both"), End(0), Start(0),
                               Log(0, "net_sockaddr", BAD_NETIF, side="dst"), End(0), Start(0),
                               Log(0, "net_sockaddr", LOOPBACK_NETIF, side="src"), End(0))),
    Program("socket_bind", (Start(0), Log(0, "net_sockaddr", 0, "null"), Log(0, "cause", "x"),
                            Log(0, "net_sockaddr", 0, "short", "dst"), End(0), Start(1), Log(1, "net_sock", 1),
                            End(1))),
)
