# SPDX-License-Identifier: GPL-2.0
"""Audit under load (spec rule 18): fire a hook thousands of times; every record is received or counted as lost."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass

from harness.cases.session import AUDIT_RULE, GuestSession
from harness.cases.window import rise
from harness.errors import GuestCommandError
from harness.machine.messages import msg

FLOOD_PATH = "/tmp/bah/load"  # cases/audit/load.bpf.c's load_flood logs opens of this file by comm bah_load
FLOOD_COMM = "bah_load"


@dataclass(frozen=True)
class FloodResult:
    expected: int  # hook calls that should each have produced one record
    received: int  # BPF_LSM_ACCESS records of the program the agent got
    lost: int  # the kernel's `lost` counter delta over the flood
    overruns: int  # ENOBUFS on the agent's socket during the flood (records the kernel sent and we dropped)
    backlog_limit: int
    trigger_seconds: float  # guest time for the whole loop of opens
    drain_seconds: float  # host time from the start of the loop until every record was accounted for

    @property
    def accounted(self) -> bool:
        return self.received + self.lost == self.expected and self.overruns == 0

    @property
    def records_per_second(self) -> float:
        return self.received / self.drain_seconds if self.drain_seconds > 0 else 0.0

    @property
    def hook_calls_per_second(self) -> float:
        return self.expected / self.trigger_seconds if self.trigger_seconds > 0 else 0.0

    def describe(self) -> str:
        return (f"{self.expected} hook calls at backlog_limit={self.backlog_limit}: {self.received} records received "
                f"+ {self.lost} lost (kernel counter) = {self.received + self.lost}, {self.overruns} overruns; "
                f"loop {self.trigger_seconds:.2f}s ({self.hook_calls_per_second:.0f} calls/s), all accounted after "
                f"{self.drain_seconds:.2f}s ({self.records_per_second:.0f} records/s)")


def flood_command(count: int, path: str = FLOOD_PATH, comm: str = FLOOD_COMM) -> str:
    """A guest shell loop that renames itself to `comm` and opens `path` `count` times (all in one dash process:
    `:` and `[` are builtins, the redirections open the file in the shell itself). The file is created
    before the rename, so exactly `count` opens are made under `comm`."""
    p = shlex.quote(path)
    return (f": > {p}; printf %s {shlex.quote(comm)} > /proc/self/comm; i=0; "
            f"while [ $i -lt {int(count)} ]; do : < {p}; i=$((i+1)); done")


def flood(session: GuestSession, record_type: int, prog_id: int, count: int, *, backlog_limit: int = 8192,
          drain_timeout: float = 120.0) -> FloodResult:
    """Run `count` opens with load_flood attached (as `prog_id`) and count its records against `lost`.

    Audit rules are removed for the flood, so each open makes exactly one record (no SYSCALL/PATH/EOE records
    that could be lost too and blur the sum); the harness's rule and the backlog limit are put back afterwards."""
    session.audit.ensure()
    agent = session.agent
    session.link.shell("auditctl -D >/dev/null")
    before = agent.must(msg.AuditStatusRequest())
    agent.must(msg.AuditSet(backlog_limit=backlog_limit))
    try:
        mark = agent.must(msg.AuditMark()).mark
        overruns0 = agent.must(msg.AuditRead(since=mark, wait=0)).overruns
        t0 = time.monotonic()
        trig = agent.call(msg.Trigger(timeout=600, shell=flood_command(count)), timeout=660)
        if isinstance(trig, msg.Failure) or trig.rc != 0:
            raise RuntimeError(f"flood loop failed: {trig.to_dict()}")
        needle = f"prog-id={prog_id} "
        received = 0
        since = mark
        deadline = time.monotonic() + drain_timeout
        while True:
            res = agent.must(msg.AuditRead(since=since, wait=0.2, types=[record_type]))
            since = res.mark
            received += sum(1 for r in res.records if needle in r["text"])
            lost = rise(before.lost, res.status.lost)
            if lost is None:
                raise GuestCommandError("the guest's audit status has no `lost` counter: a flood cannot be accounted")
            if received + lost >= count or time.monotonic() > deadline:
                break
        drained = time.monotonic() - t0
        return FloodResult(count, received, lost, res.overruns - overruns0, backlog_limit,
                           trig.elapsed or 0.0, drained)
    finally:
        agent.must(msg.AuditSet(backlog_limit=before.backlog_limit or 8192))
        session.link.shell(shlex.join(AUDIT_RULE) + " >/dev/null")
