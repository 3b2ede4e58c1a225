# SPDX-License-Identifier: GPL-2.0
"""One audit capture window: the records from a mark to a barrier record, and what may be missing from it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from harness.machine.messages import msg
from harness.machine.ssh import AgentSession

UNLOAD_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class Capture:
    """The records of one window (from its mark to its barrier record), and what may be missing. The barrier is a
    record known to be emitted after everything the window is about: a case's program's op=UNLOAD, or a
    scenario capture's own user message."""

    records: list[dict]
    barrier_seen: bool
    lost: int | None  # the kernel's `lost` counter rose by this much in the window (None: it was not given)
    overruns: int  # the agent's netlink socket overflowed this often in the window (records never read)
    dropped_before: int | None  # the agent's buffer no longer held records from the window's start
    barrier: str = "the program's op=UNLOAD record"

    def problem(self) -> str | None:
        """Why the window cannot be trusted, or None."""
        why = []
        if self.lost is None:
            why.append("the kernel's audit `lost` counter was not given, so losses cannot be ruled out")
        elif self.lost:
            why.append(f"the kernel lost {self.lost} audit record(s) (its `lost` counter rose: the backlog or rate "
                       "limit was hit)")
        if self.overruns:
            why.append(f"the agent's audit socket overran {self.overruns} time(s) (records dropped unread)")
        if self.dropped_before is not None:
            why.append(f"the agent's buffer had dropped the window's first records (it starts at seq "
                       f"{self.dropped_before})")
        if not self.barrier_seen:
            why.append(f"{self.barrier} did not arrive within {UNLOAD_WAIT_SECONDS:g}s (later records may still "
                       "have been in flight)")
        return "; ".join(why) or None


def rise(before: int | None, after: int | None) -> int | None:
    """How much a counter of the kernel's or the agent's (audit `lost`, socket overruns) rose over a window: None
    when either end is unknown (never taken as 0), never negative (a counter reset by an audit_set counts as 0)."""
    if before is None or after is None:
        return None
    return max(after - before, 0)


def read_window(agent: AgentSession, start: msg.AuditMarkReply, needle: str, *, timeout: float = UNLOAD_WAIT_SECONDS,
                barrier: str = "the program's op=UNLOAD record") -> Capture:
    """Records since the mark `start` (an audit_mark reply), read until one holds `needle` (the window's barrier)
    or `timeout` passes, with the loss counters over the same window: the one reading of an audit window that
    cases and scenario captures share."""
    deadline = time.monotonic() + timeout
    records: list[dict] = []
    since = start.mark
    dropped = None
    while True:
        res = agent.must(msg.AuditRead(since=since, wait=0.3))
        records.extend(res.records)
        since = res.mark
        if res.dropped_before is not None and dropped is None:
            dropped = res.dropped_before
        seen = any(needle in r["text"] for r in records)
        if seen or time.monotonic() > deadline:
            return Capture(records, seen, rise(start.lost, res.status.lost), res.overruns - start.overruns, dropped,
                           barrier)
