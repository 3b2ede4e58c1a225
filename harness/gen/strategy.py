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
    TASK_SOURCES,
    End,
    Exit,
    KptrStore,
    Log,
    Program,
    Start,
)

# Plain causes come first: hypothesis shrinks a sampled_from towards the front.
CAUSES = ("denied", "allowed", "again", "has space", 'a"quote', "x")
VALID_CAPS = (21, 0, 1, 12, CAP_LAST_CAP)
BAD_CAPS = (CAP_LAST_CAP + 1, 4242, -1)
MAX_OPS = 10


def _log_arg(draw, hook: str, logger: str, mistakes: bool) -> tuple[int | str | None, str | None]:
    """(arg, bad) for one logger call; bad arguments only when the program may carry mistakes."""
    if logger == "cause":
        text = draw(st.sampled_from(CAUSES))
        bad = draw(st.sampled_from((None, None, None, "stack", "writable"))) if mistakes else None
        return text, bad
    if logger == "cap":
        return draw(st.sampled_from(VALID_CAPS + BAD_CAPS)), None
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
        bad = "short" if logger == "net_sockaddr" and draw(st.integers(0, 3)) == 0 else None
        return netif, bad
    return None, None


@st.composite
def programs(draw, hooks: tuple[str, ...] | None = None, max_ops: int = MAX_OPS) -> Program:
    """A Program. About half are drawn "careful" (every context checked and ended on every path: they load
    and run); the others may skip NULL checks, end twice, use after end, skip an end on a branch, store a
    context with bpf_kptr_xchg or pass a non-constant cause."""
    hook = draw(st.sampled_from(hooks or tuple(HOOKS)))
    loggers = HOOKS[hook]
    mistakes = draw(st.booleans())
    nctx = draw(st.integers(0, 2))
    ops: list = []
    state: dict[int, str] = {}  # ctx -> "open" | "maybe_null" | "released" (the careful generator's view)
    exits = 0
    n = draw(st.integers(0, max_ops))
    for _ in range(n):
        startable = [c for c in range(nctx) if state.get(c) in (None, "released")]
        live = [c for c in range(nctx) if state.get(c) == "open"]
        used = [c for c in range(nctx) if c in state]  # any started context, whatever its state
        kinds = []
        if live:
            kinds += ["log", "log", "log", "end"]
        if startable:
            kinds.append("start")
        if live or (mistakes and used):
            kinds.append("exit")
        if mistakes and used:
            kinds += ["bad_log", "bad_end", "kptr"]
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
            logger = draw(st.sampled_from(loggers))
            arg, bad = _log_arg(draw, hook, logger, mistakes)
            ops.append(Log(c, logger, arg, bad))
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
    return Program(hook, tuple(ops), draw(st.sampled_from((ALLOW, DENY))))
