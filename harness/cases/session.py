# SPDX-License-Identifier: GPL-2.0
"""The runner's per-machine state: the guest agent, the objects pushed to it, the audit registration and rules."""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path

from harness.errors import GuestCommandError, LostVMError

# Case files live on a plain tmpfs: virtme-ng's /tmp is an overlayfs, and opening a file there runs the
# file_open hook twice (ovl_open opens the real upper file through do_dentry_open again), so a case that
# expects one record per open would see two.
CASE_FS = "/tmp/bah"
# Any loaded rule makes audit contexts non-dummy, so a record logged inside a syscall gets its SYSCALL
# record at exit (kernel/auditsc.c: __audit_syscall_exit skips dummy contexts). vhangup never fires here.
AUDIT_RULE = ["auditctl", "-a", "always,exit", "-F", "arch=b64", "-S", "vhangup", "-k", "bpf-audit-harness"]


class GuestSession:
    """Per-machine state the runner keeps: the agent, pushed objects, audit registration."""

    def __init__(self, machine) -> None:
        self.machine = machine
        self.pushed: dict[str, str] = {}
        self.audit_ready = False
        self.active_lsms: tuple[str, ...] | None = None
        self._unloaded: set[int] = set()
        self.agent_pid: int | None = None  # the agent this state belongs to
        self.saved_audit_rules: str | None = None  # the machine's own rules (a --target's), put back by close()

    def interrupted(self) -> bool:
        """A request to the agent was interrupted (Ctrl-C, SIGTERM): clean-up requests would only wait behind
        it; the machine is discarded instead."""
        agent = getattr(self.machine.guest, "_agent", None)
        return bool(agent is not None and agent.interrupted)

    def unload(self, handle: int) -> None:
        """Unload once; later calls for the same handle do nothing."""
        if self.interrupted():
            return
        if handle not in self._unloaded:
            self._unloaded.add(handle)
            self.agent.request("unload", handle=handle, timeout=60)

    @property
    def agent(self):
        agent = self.machine.guest.agent()
        if self.agent_pid is None:
            self.agent_pid = agent.pid
        elif agent.pid != self.agent_pid:  # the guest started a new agent: this state is not its state
            raise LostVMError(f"the guest agent (pid {self.agent_pid}) was replaced by a new one (pid {agent.pid}): "
                              "its audit registration and loaded programs went with it, so this VM is replaced")
        if not agent.prepared:
            agent.prepared = True
            # Cases name fixed paths under CASE_FS: never mount over a link or a directory someone else made.
            self.shell(f"if [ -L {CASE_FS} ] || {{ [ -e {CASE_FS} ] && [ \"$(stat -c %u {CASE_FS})\" != 0 ]; }}; "
                       f"then echo '{CASE_FS} is a link or not owned by root: not mounting on it' >&2; exit 1; fi; "
                       f"mkdir -p {CASE_FS} && {{ mountpoint -q {CASE_FS} || "
                       f"mount -t tmpfs -o mode=1777 bpf-audit-harness {CASE_FS}; }}")
        return agent

    def lsms(self) -> tuple[str, ...]:
        if self.active_lsms is None:
            res = self.agent.request("trigger", shell="cat /sys/kernel/security/lsm", timeout=10)
            self.active_lsms = tuple(x for x in res.get("stdout", "").strip().split(",") if x)
        return self.active_lsms

    def push(self, obj: Path) -> str:
        digest = hashlib.sha256(obj.read_bytes()).hexdigest()[:16]
        if digest not in self.pushed:
            from harness.cases.compile import check_object

            check_object(obj)  # a clear error here, not libbpf's in the guest
            cases_dir = f"{self.machine.guest.private_dir()}/cases"  # made per session, 0700: nobody swaps them
            remote = f"{cases_dir}/{digest}-{obj.name}"
            self.shell(f"mkdir -p {shlex.quote(cases_dir)}")
            self.machine.guest.put(obj, remote)
            self.pushed[digest] = remote
        return self.pushed[digest]

    def shell(self, cmd: str, timeout: float = 30) -> dict:
        res = self.agent.request("trigger", shell=cmd, timeout=timeout)
        if not res.get("ok") or res.get("rc") != 0:
            raise GuestCommandError(f"guest shell command failed: {cmd}: {res}")
        return res

    def ensure_audit(self) -> None:
        if self.audit_ready:
            return
        res = self.agent.request("audit_open", enable=True, backlog_limit=8192)
        if not res.get("ok"):
            raise GuestCommandError(f"cannot become the guest's audit daemon: {res.get('error')}")
        if self.saved_audit_rules is None:  # the machine's rules before ours (a --target keeps its own)
            self.saved_audit_rules = self.shell("auditctl -l").get("stdout", "")
        self.shell(shlex.join(["auditctl", "-D"]) + " >/dev/null; " + shlex.join(AUDIT_RULE))
        self.audit_ready = True

    def close(self) -> None:
        """Put the machine's own audit rules back (they were replaced by the harness's one rule). A guest the
        harness booted had none: nothing to do (and its agent may still be busy with an interrupted case)."""
        saved, self.saved_audit_rules = self.saved_audit_rules, None
        rules = [line for line in (saved or "").splitlines()
                 if line.startswith("-") and "bpf-audit-harness" not in line]
        if not rules:
            return
        script = "auditctl -D >/dev/null" + "".join(f"; auditctl {line}" for line in rules)
        try:
            self.shell(script, timeout=60)
        except (GuestCommandError, LostVMError):
            pass  # a lost machine has no rules left to restore


def _call(session: GuestSession, op: str, timeout: float = 120, **args) -> dict:
    """An agent request; a dead channel means the machine may be lost (the caller decides)."""
    return session.agent.request(op, timeout=timeout, **args)
