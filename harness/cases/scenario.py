# SPDX-License-Identifier: GPL-2.0
"""Building blocks for scenario tests in plain Python: load/attach case programs, capture and query records."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness.cases import audit
from harness.cases import compile as bpfobj
from harness.cases.run import KernelUnderTest
from harness.cases.session import GuestSession
from harness.cases.window import UNLOAD_WAIT_SECONDS, read_window
from harness.errors import GuestCommandError
from harness.machine.messages import msg

FIELD_ALIASES = {"prog_id": "prog-id"}


@dataclass
class Program:
    name: str
    id: int
    handle: int
    link: int | None = None


class BPF:
    """`bpf` fixture: compile a case file against the kernel under test, load one program, attach it."""

    def __init__(self, session: GuestSession, kut: KernelUnderTest, objects: Path) -> None:
        self.session = session
        self.kut = kut
        self.objects = objects
        self.loaded: list[Program] = []

    def load(self, case: str | Path, program: str) -> Program:
        """Load `program` from a case source (.bpf.c, compiled here) or from a ready BPF object (.o)."""
        if str(case).endswith(".o"):
            obj = Path(case)
            bpfobj.check_object(obj)
        else:
            compiled = bpfobj.compile_case(Path(case), self.kut.vmlinux_h, self.objects)
            if not compiled.ok or compiled.obj is None:
                raise GuestCommandError(f"{case} does not compile:\n{compiled.stderr}")
            obj = compiled.obj
        remote = self.session.files.push(obj)
        res = self.session.agent.call(msg.Load(path=remote, programs=[program]))
        if isinstance(res, msg.Failure) or not res.loaded or res.handle is None:
            why = res.describe() if isinstance(res, msg.Failure) else f"errno {res.errno}):\n{res.verifier_log[-2000:]}"
            raise GuestCommandError(f"{program} was rejected ({why}")
        prog = Program(program, next(p["id"] for p in res.programs if p["name"] == program), res.handle)
        self.loaded.append(prog)
        return prog

    def attach(self, prog: Program) -> Program:
        res = self.session.agent.call(msg.Attach(handle=prog.handle, program=prog.name))
        if isinstance(res, msg.Failure):
            raise GuestCommandError(f"attach {prog.name} failed: {res.error}")
        prog.link = res.link
        return prog

    def load_and_attach(self, case: str | Path, program: str) -> Program:
        return self.attach(self.load(case, program))

    def close(self) -> None:
        for prog in self.loaded:
            self.session.link.unload(prog.handle)
        self.loaded.clear()


@dataclass
class Records:
    """Records captured in one `audit.capture()` block (filled when the block exits)."""

    types: dict[int, str]
    items: list[audit.Record] = field(default_factory=list)

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def all(self, type: str | int | None = None, **fields: str | int) -> list[audit.Record]:
        """Records of `type` whose decoded fields equal the given ones (prog_id= means prog-id=)."""
        out = []
        for rec in self.items:
            if type is not None and not rec.is_type(type if isinstance(type, int) else str(type)):
                continue
            if all(rec.decoded(FIELD_ALIASES.get(k, k)) == str(v) for k, v in fields.items()):
                out.append(rec)
        return out

    def one(self, type: str | int | None = None, **fields: str | int) -> audit.Record:
        found = self.all(type, **fields)
        if len(found) != 1:
            shown = "\n".join(f"  {r.type} {r.raw}" for r in self.items[-30:])
            raise AssertionError(f"expected exactly one {type} record with {fields}, found {len(found)}; "
                                 f"captured:\n{shown}")
        return found[0]

    def events(self) -> list[audit.Event]:
        return audit.group_events(self.items)


BARRIER_TYPE = 1199  # AUDIT_LAST_USER_MSG


class AuditCaptureIncomplete(AssertionError):
    """Records were lost inside an `audit.capture()` block."""


class AuditCapture:
    """`audit` fixture: the guest agent is the audit daemon; capture() collects what arrives inside the block."""

    def __init__(self, session: GuestSession, kut: KernelUnderTest) -> None:
        self.session = session
        self.kut = kut

    @contextmanager
    def capture(self, wait: float = UNLOAD_WAIT_SECONDS) -> Iterator[Records]:
        """Records that arrive inside the block. At its end the agent sends a user message of its own through the
        kernel's audit queue, behind every record the block caused, and the capture reads until that barrier
        arrives (at most `wait` seconds), as a case reads until its program's op=UNLOAD. A window whose barrier
        never came, or in which records were lost (the kernel's `lost` counter, socket overruns, a buffer that
        dropped its start), raises AuditCaptureIncomplete: a test must not pass on what had not arrived yet."""
        self.session.audit.ensure()
        agent = self.session.agent
        start = agent.must(msg.AuditMark())
        recs = Records(self.kut.audit_types)
        yield recs
        token = f"bah-capture-barrier {uuid.uuid4().hex[:16]}"
        # 1199, the last user-message type: no tool sends it. (The kernel emits no record for AUDIT_USER, 1005, sent
        # by the process registered as the audit daemon: seen on 6.12.)
        agent.must(msg.AuditUser(text=token, type=BARRIER_TYPE))
        window = read_window(agent, start, token, timeout=wait,
                             barrier="the capture's barrier record (a user message sent at the block's end)")
        records = [r for r in window.records if token not in r["text"]]
        recs.items.extend(audit.parse_records(records, self.kut.audit_types))
        problem = window.problem()
        if problem:
            raise AuditCaptureIncomplete(f"audit capture incomplete, not a verdict: {problem}")

    def status(self) -> msg.AuditStatusReply:
        return self.session.agent.must(msg.AuditStatusRequest())
