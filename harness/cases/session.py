# SPDX-License-Identifier: GPL-2.0
"""The runner's per-machine state: the guest agent, the objects pushed to it, the audit registration and rules."""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path

from harness.errors import GuestCommandError, LostVMError
from harness.machine.messages import msg
from harness.machine.ssh import AgentSession, R

# Case files live on a plain tmpfs: virtme-ng's /tmp is an overlayfs, and opening a file there runs the
# file_open hook twice (ovl_open opens the real upper file through do_dentry_open again), so a case that
# expects one record per open would see two.
CASE_FS = "/tmp/bah"
# Any loaded rule makes audit contexts non-dummy, so a record logged inside a syscall gets its SYSCALL
# record at exit (kernel/auditsc.c: __audit_syscall_exit skips dummy contexts). vhangup never fires here.
AUDIT_RULE = ["auditctl", "-a", "always,exit", "-F", "arch=b64", "-S", "vhangup", "-k", "bpf-audit-harness"]


class AgentLink:
    """The agent this machine's state belongs to: replaced agents are refused (their programs and audit registration
    went with them), the case tmpfs is mounted once, and handles are unloaded once."""

    def __init__(self, machine) -> None:
        self.machine = machine
        self.pid: int | None = None
        self._agent: AgentSession | None = None
        self._unloaded: set[int] = set()

    @property
    def agent(self) -> AgentSession:
        agent = self.machine.guest.agent()
        if self.pid is None:
            self.pid = agent.pid
        elif agent.pid != self.pid:  # the guest started a new agent: this state is not its state
            raise LostVMError(f"the guest agent (pid {self.pid}) was replaced by a new one (pid {agent.pid}): "
                              "its audit registration and loaded programs went with it, so this VM is replaced")
        self._agent = agent
        if not agent.prepared:  # once per agent, whichever session reaches it first
            agent.prepared = True
            # Cases name fixed paths under CASE_FS: never mount over a link or a directory someone else made.
            self.shell(f"if [ -L {CASE_FS} ] || {{ [ -e {CASE_FS} ] && [ \"$(stat -c %u {CASE_FS})\" != 0 ]; }}; "
                       f"then echo '{CASE_FS} is a link or not owned by root: not mounting on it' >&2; exit 1; fi; "
                       f"mkdir -p {CASE_FS} && {{ mountpoint -q {CASE_FS} || "
                       f"mount -t tmpfs -o mode=1777 bpf-audit-harness {CASE_FS}; }}")
        return agent

    def interrupted(self) -> bool:
        """A request to the agent was interrupted (Ctrl-C, SIGTERM): clean-up requests would only wait behind
        it; the machine is discarded instead."""
        return self._agent is not None and self._agent.interrupted

    def shell(self, cmd: str, timeout: float = 30) -> msg.TriggerReply:
        """`cmd` run by the agent (the guest's own limit: 10 s); a failed request or a non-zero exit raises."""
        res = self.agent.call(msg.Trigger(shell=cmd), timeout=timeout)
        if isinstance(res, msg.Failure) or res.rc != 0:
            raise GuestCommandError(f"guest shell command failed: {cmd}: {res.to_dict()}")
        return res

    def unload(self, handle: int) -> None:
        """Unload once; later calls for the same handle do nothing."""
        if self.interrupted():
            return
        if handle not in self._unloaded:
            self._unloaded.add(handle)
            self.agent.call(msg.Unload(handle=handle), timeout=60)


class ObjectFiles:
    """BPF objects (and the selftests' kernel modules) pushed into the guest's private directory, once each (by
    content)."""

    def __init__(self, link: AgentLink) -> None:
        self.link = link
        self.pushed: dict[str, str] = {}

    def push(self, obj: Path, *, bpf: bool = True) -> str:
        """The guest path of `obj`; a BPF object (`bpf`) is checked first: a clear error here, not libbpf's in the
        guest. A kernel module (bpf=False) is the kernel's to check."""
        digest = hashlib.sha256(obj.read_bytes()).hexdigest()[:16]
        if digest not in self.pushed:
            from harness.cases.compile import check_object

            if bpf:
                check_object(obj)
            guest = self.link.machine.guest
            cases_dir = f"{guest.private_dir()}/cases"  # made per session, 0700: nobody swaps them
            remote = f"{cases_dir}/{digest}-{obj.name}"
            self.link.shell(f"mkdir -p {shlex.quote(cases_dir)}")
            guest.put(obj, remote)
            self.pushed[digest] = remote
        return self.pushed[digest]


class AuditSetup:
    """The agent as the guest's audit daemon with the harness's one rule; the machine's own rules put back after."""

    def __init__(self, link: AgentLink) -> None:
        self.link = link
        self.ready = False
        self.saved_rules: str | None = None  # the machine's own rules (a --target's), put back by close()

    def ensure(self) -> None:
        if self.ready:
            return
        res = self.link.agent.call(msg.AuditOpen(enable=True, backlog_limit=8192))
        if isinstance(res, msg.Failure):
            raise GuestCommandError(f"cannot become the guest's audit daemon: {res.error}")
        if self.saved_rules is None:  # the machine's rules before ours (a --target keeps its own)
            self.saved_rules = self.link.shell("auditctl -l").stdout or ""
        self.link.shell(shlex.join(["auditctl", "-D"]) + " >/dev/null; " + shlex.join(AUDIT_RULE))
        self.ready = True

    def close(self) -> None:
        """Put the machine's own audit rules back (they were replaced by the harness's one rule). A guest the
        harness booted had none: nothing to do (and its agent may still be busy with an interrupted case)."""
        saved, self.saved_rules = self.saved_rules, None
        rules = [line for line in (saved or "").splitlines()
                 if line.startswith("-") and "bpf-audit-harness" not in line]
        if not rules:
            return
        script = "auditctl -D >/dev/null" + "".join(f"; auditctl {line}" for line in rules)
        try:
            self.link.shell(script, timeout=60)
        except (GuestCommandError, LostVMError):
            pass  # a lost machine has no rules left to restore


class GuestSession:
    """Per-machine state the runner keeps, one piece per job: the agent link (calls, shell, unloads), the pushed
    objects, the audit registration, and the active LSMs (read once)."""

    def __init__(self, machine) -> None:
        self.machine = machine
        self.link = AgentLink(machine)
        self.files = ObjectFiles(self.link)
        self.audit = AuditSetup(self.link)
        self._lsms: tuple[str, ...] | None = None
        self.modules: set[Path] = set()  # kernel modules the selftests runner loaded into this guest (bpf_testmod)

    @property
    def agent(self) -> AgentSession:
        return self.link.agent

    def lsms(self) -> tuple[str, ...]:
        if self._lsms is None:
            res = self.agent.call(msg.Trigger(shell="cat /sys/kernel/security/lsm"), timeout=10)
            out = "" if isinstance(res, msg.Failure) else res.stdout or ""
            self._lsms = tuple(x for x in out.strip().split(",") if x)
        return self._lsms

    def close(self) -> None:
        self.audit.close()


def call(session: GuestSession, req: msg.Request[R], timeout: float = 120) -> R | msg.Failure:
    """A typed agent request; a dead channel means the machine may be lost (the caller decides)."""
    return session.agent.call(req, timeout=timeout)
