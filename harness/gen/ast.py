# SPDX-License-Identifier: GPL-2.0
"""Pure: the AST of a generated BPF LSM program: a hook, straight-line operations on 0..2 audit contexts, a verdict."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

EPERM = 1
ALLOW = 0
DENY = -EPERM

CAP_LAST_CAP = 40  # CAP_CHECKPOINT_RESTORE in 6.12: bpf_audit_log_cap logs any number as given (rule 14)
BAD_NETIF = 4242424  # no such interface index: no netif=, not an error (rule 14)
LOOPBACK_NETIF = 1  # "lo" is always ifindex 1 in a fresh network namespace

# hook -> the loggers a program on that hook can feed with trusted, correctly typed arguments.
HOOKS: dict[str, tuple[str, ...]] = {
    "file_open": ("cause", "cap", "path", "file", "ioctl_op", "inode"),
    "file_ioctl": ("cause", "cap", "path", "file", "ioctl_op", "inode"),
    "inode_unlink": ("cause", "cap", "dentry", "inode"),
    "task_kill": ("cause", "cap", "task"),
    "socket_connect": ("cause", "cap", "net_sock", "net_sockaddr"),
    "socket_bind": ("cause", "cap", "net_sock", "net_sockaddr"),
}
# Hooks a sleepable (lsm.s/) program may attach to (kernel/bpf/bpf_lsm.c: sleepable_lsm_hooks, 6.12 and 7.3).
SLEEPABLE_HOOKS = frozenset({"file_open", "file_ioctl", "inode_unlink", "socket_connect", "socket_bind"})
LOGGERS = ("cause", "cap", "path", "file", "ioctl_op", "dentry", "inode", "task", "net_sock", "net_sockaddr")
# The kind each logger logs (rule 12: a second call of a kind returns -EINVAL and logs nothing).
KINDS = {"cause": "cause", "cap": "cap", "path": "path", "file": "path", "ioctl_op": "ioctl_op", "dentry": "name",
         "inode": "name", "task": "task", "net_sock": "net", "net_sockaddr": "net"}
# net_sockaddr's addresses (Log.side): the hook's address as the source, the destination, or both.
SOCKADDR_SIDES = ("dst", "src", "both")

# Where a logger's object argument comes from, per hook (Log.arg for inode and task).
INODE_SOURCES = {"file_open": ("file",), "file_ioctl": ("file",), "inode_unlink": ("dentry", "dir")}
TASK_SOURCES = ("target", "current")
CAUSE_SOURCES = ("literal", "stack", "writable")  # only a literal is a constant string (rule 7)


@dataclass(frozen=True)
class Start:
    """ac<ctx> = bpf_audit_log_start(NULL); with null_check, `if (!ac) { release the others; return 0; }`."""

    ctx: int
    null_check: bool = True


@dataclass(frozen=True)
class Log:
    """One logger call on ac<ctx>. `arg` by logger:
    cause: the text; cap: the capability number (any int: logged as given); ioctl_op: the command (None: the
    hook's cmd); inode: "file" | "dentry" | "dir"; task: "target" | "current"; net_sock, net_sockaddr: the netif
    index. `side` (net_sockaddr): "dst" (NULL, address), "src" (address, NULL) or "both" (address, address).
    `bad`: cause: "stack" | "writable" (a non-constant string); net_sockaddr: "short" (addrlen 2) or "null"
    (both addresses NULL): -EINVAL, nothing logged."""

    ctx: int
    logger: str
    arg: int | str | None = None
    bad: str | None = None
    side: str | None = None

    @property
    def fails(self) -> bool:
        """Does the call fail on its arguments (rule 14: -EINVAL, nothing logged)? A non-constant cause is the
        verifier's business (rule 7), not a failed call."""
        return self.logger == "net_sockaddr" and self.bad in ("short", "null")

    @property
    def kind(self) -> str:
        return KINDS[self.logger]


@dataclass(frozen=True)
class End:
    """bpf_audit_log_end(ac<ctx>) (a second end, or an end of an unchecked context, is the program's mistake)."""

    ctx: int


@dataclass(frozen=True)
class Exit:
    """`if (prop_exit_<n>) { end `ends`; return ret; }` where the global prop_exit_<n> is `taken` at run time.
    The verifier cannot know the global's value and checks both paths: leaving a context out of `ends`
    is the branch that skips an end on one path."""

    ends: tuple[int, ...]
    ret: int = ALLOW
    taken: bool = False


@dataclass(frozen=True)
class KptrStore:
    """old = bpf_kptr_xchg(&slot->ac, ac<ctx>) into a map value `struct bpf_audit_context __kptr *` (rule 4)."""

    ctx: int


Op = Start | Log | End | Exit | KptrStore

CASE_DIR = "/tmp/bah/prop"  # on the runner's tmpfs; the directory's own name is what inode(dir) logs
IOCTL_CMD = 0x541B  # FIONREAD: what the file_ioctl trigger issues
CONST_IOCTL_CMDS = (0x541B, 0x5401, 0x8912)


@dataclass(frozen=True)
class Setup:
    """What a program's trigger is and what its filter matches: all derived from the program's digest,
    so that every generated program filters to its own trigger and no two collide in one guest."""

    name: str  # program (function) name
    comm: str  # the trigger's comm (<= 15 bytes)
    file: str  # last path component the file hooks filter on
    target_comm: str  # task_kill: the signalled task's comm
    port: int  # socket_connect: destination port; socket_bind: the port bound
    bind_port: int  # socket_connect: the socket is bound here first

    @property
    def dir_name(self) -> str:
        return CASE_DIR.rsplit("/", 1)[1]

    @property
    def path(self) -> str:
        return f"{CASE_DIR}/{self.file}"

    @classmethod
    def of(cls, prog: Program) -> Setup:
        d = prog.digest
        port = 20000 + int(d[:6], 16) % 20000 * 2
        return cls(name=f"prop_{d}", comm=f"bp_{d}", file=f"pf_{d}", target_comm=f"bt_{d}", port=port,
                   bind_port=port + 1)


@dataclass(frozen=True)
class Program:
    hook: str
    ops: tuple[Op, ...]
    ret: int = ALLOW
    sleepable: bool = False  # SEC("lsm.s/<hook>") (rule 19: the same records as from lsm/)

    def __post_init__(self) -> None:
        if self.hook not in HOOKS:
            raise ValueError(f"unknown hook {self.hook!r}; known: {', '.join(HOOKS)}")
        if self.ret not in (ALLOW, DENY):
            raise ValueError(f"ret must be 0 or -EPERM, not {self.ret}")
        if self.sleepable and self.hook not in SLEEPABLE_HOOKS:
            raise ValueError(f"{self.hook} is not a sleepable hook; sleepable: {', '.join(sorted(SLEEPABLE_HOOKS))}")

    @property
    def section(self) -> str:
        return f"lsm{'.s' if self.sleepable else ''}/{self.hook}"

    @property
    def contexts(self) -> tuple[int, ...]:
        return tuple(sorted({op.ctx for op in self.ops if isinstance(op, Start)}))

    @property
    def uses_kptr(self) -> bool:
        return any(isinstance(op, KptrStore) for op in self.ops)

    @property
    def digest(self) -> str:
        """Stable 10-hex-digit identity: names the program, its trigger's comm and its file."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:10]

    @property
    def setup(self) -> Setup:
        return Setup.of(self)

    def describe(self) -> str:
        """One line per operation, for reports."""
        lines = [f"hook {self.hook}" + (" (sleepable)" if self.sleepable else "")]
        lines += [f"  {op}" for op in self.ops]
        lines.append(f"  return {'-EPERM' if self.ret else 0}")
        return "\n".join(lines)


def drop_unspecified(ops: tuple[Op, ...] | list[Op]) -> tuple[Op, ...]:
    """`ops` without the logger calls whose outcome the spec leaves open: a call that would log a kind after a
    call of that kind failed on its arguments on the same context (did the failed call use the kind up? the
    spec does not say). Mirrors harness.gen.model, which refuses such a program."""
    claimed: dict[int, set[str]] = {}
    failed: dict[int, set[str]] = {}
    out: list[Op] = []
    for op in ops:
        if isinstance(op, Start):
            claimed[op.ctx], failed[op.ctx] = set(), set()
        elif isinstance(op, Log):
            done, bad = claimed.setdefault(op.ctx, set()), failed.setdefault(op.ctx, set())
            if op.fails:
                if op.kind not in done:
                    bad.add(op.kind)
            elif op.kind in bad:
                continue
            else:
                done.add(op.kind)
        out.append(op)
    return tuple(out)

