# SPDX-License-Identifier: GPL-2.0
"""The kernel console during a test: read to a barrier line at its end, and the reports (WARNING, BUG, Oops) found."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from harness.cases.session import GuestSession
from harness.errors import GuestCommandError, LostVMError
from harness.machine import console


@dataclass(frozen=True)
class ConsoleCheck:
    """What the kernel console showed during a test, read to a barrier at its end: the reports found, and why the
    console could not be read to the end (then no pass can be given)."""

    findings: tuple[console.Finding, ...] = ()
    unsure: str | None = None
    console_log: Path | None = None

    @property
    def first(self) -> str:
        f = self.findings[0]
        return f"kernel reported {f.kind} during the test: {f.first_line}"

    def details(self) -> str:
        return console.summarize(self.findings)


def console_start(machine) -> int | None:
    """Where a test's console text starts (None: the machine has no console the harness reads, e.g. --target)."""
    return len(machine.console_text()) if hasattr(machine, "console_text") else None


def check_console(session: GuestSession, start: int | None, write=None) -> ConsoleCheck:
    """The console since `start`, after a barrier line written to /dev/kmsg reached it: what a case, a scenario
    test and a selftest subtest are all judged on besides their own verdict. `write(line)` writes the barrier
    (default: a shell command through the session's agent)."""
    if start is None:
        return ConsoleCheck()
    unsure = _console_barrier(session, start, write=write)
    found = tuple(console.scan(session.machine.console_text()[start:]))
    return ConsoleCheck(found, unsure, getattr(session.machine, "console_log", None))


def _console_barrier(session: GuestSession, start: int, timeout: float = 15.0, write=None) -> str | None:
    """Wait until the console has caught up with the guest: a kernel report printed during the case may still be
    in the serial line's buffers when the case ends (seen under load), and must not leak into the next case.
    Returns why the console could not be trusted to be complete (None: it is)."""
    token = f"bah-console-barrier {uuid.uuid4().hex[:12]}"
    try:
        if write is not None:
            write(f"<3>{token}")
        else:
            session.link.shell(f"echo '<3>{token}' > /dev/kmsg", timeout=10)
    except (GuestCommandError, LostVMError) as e:
        return f"the barrier line could not be written to /dev/kmsg: {e}"
    deadline = time.monotonic() + timeout
    while token not in session.machine.console_text()[start:]:
        if time.monotonic() >= deadline:
            return f"the barrier line written to /dev/kmsg did not reach the console within {timeout:g}s"
        time.sleep(0.05)
    return None
