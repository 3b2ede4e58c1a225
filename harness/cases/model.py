# SPDX-License-Identifier: GPL-2.0
"""The data a case file describes: its programs, their triggers and expected records, as frozen dataclasses."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Annotation:
    """One annotation as written: name, decoded arguments, line."""

    name: str
    args: tuple[str, ...]
    line: int


def kernel_version(release: str) -> tuple[int, ...] | None:
    """The numeric version at the start of a kernel release ("6.12.118-amd64" -> (6, 12, 118)), or None."""
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release.strip())
    if not m:
        return None
    return tuple(int(g) for g in m.groups() if g is not None)


def format_version(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


@dataclass(frozen=True)
class Message:
    """One expected message: __msg (every kernel), __msg_since("V", ...) (kernels >= V) or __msg_before("V", ...)
    (kernels < V), matched in the verifier's log; __libbpf_msg in libbpf's own log. Versions compare numerically,
    component by component: 7.0 <= 7.0.1."""

    text: str
    since: tuple[int, ...] | None = None
    before: tuple[int, ...] | None = None
    line: int = 0
    log: str = "verifier"  # which log it is matched in: "verifier", or "libbpf" for __libbpf_msg

    @property
    def conditional(self) -> bool:
        return self.since is not None or self.before is not None

    def applies(self, version: tuple[int, ...] | None) -> bool:
        if not self.conditional:
            return True
        if version is None:
            return False
        if self.since is not None and version < self.since:
            return False
        if self.before is not None and version >= self.before:
            return False
        return True

    def describe(self) -> str:
        where = " in libbpf's log" if self.log == "libbpf" else ""
        if self.since is not None:
            return f"{self.text!r}{where} (kernels >= {format_version(self.since)})"
        if self.before is not None:
            return f"{self.text!r}{where} (kernels < {format_version(self.before)})"
        return repr(self.text) + where


@dataclass(frozen=True)
class Trigger:
    action: str
    args: tuple[tuple[str, str], ...]
    line: int

    def get(self, key: str, default: str | None = None) -> str | None:
        for k, v in self.args:
            if k == key:
                return v
        return default

    @property
    def comm(self) -> str | None:
        return self.get("comm")

    def as_dict(self) -> dict[str, str]:
        return dict(self.args)


@dataclass(frozen=True)
class FieldCheck:
    """op: "eq" (decoded value matches), "raw" (on-the-wire text matches), "present", "absent"."""

    name: str
    op: str
    value: str | None = None


@dataclass(frozen=True)
class RecordExpectation:
    """One __expect_record / __expect_no_record. `type` is a name without AUDIT_ or a number."""

    type: str | int
    checks: tuple[FieldCheck, ...]
    line: int
    count: int | None = None
    order: tuple[str, ...] = ()
    leading: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()  # the record's field names, exactly and in order (nothing before, between, after)
    once: tuple[str, ...] = ()
    same_event: str | int | None = None

    def describe(self) -> str:
        parts = [str(self.type)]
        for c in self.checks:
            if c.op == "eq":
                parts.append(f"{c.name}={c.value}")
            elif c.op == "raw":
                parts.append(f"raw:{c.name}={c.value}")
            elif c.op == "present":
                parts.append(c.name)
            else:
                parts.append(f"!{c.name}")
        if self.count is not None:
            parts.append(f"count={self.count}")
        for key in ("order", "leading", "fields", "once"):
            if getattr(self, key):
                parts.append(f"{key}={','.join(getattr(self, key))}")
        if self.same_event is not None:
            parts.append(f"same_event={self.same_event}")
        return " ".join(parts)


@dataclass(frozen=True)
class CaseProgram:
    path: str
    name: str
    section: str
    line: int
    description: str
    expect: str  # "success" | "failure"
    messages: tuple[Message, ...] = ()  # in the order written: __msg, __msg_since, __msg_before
    rules: tuple[int, ...] = ()
    decided: bool = False
    needs: tuple[str, ...] = ()
    drop_caps: tuple[str, ...] = ()
    trigger: Trigger | None = None
    expect_records: tuple[RecordExpectation, ...] = ()
    expect_no_records: tuple[RecordExpectation, ...] = ()
    expect_errno: int | None = None
    audit_disabled: bool = False
    annotations: tuple[Annotation, ...] = field(default=(), compare=False, repr=False)

    @property
    def msgs(self) -> tuple[str, ...]:
        """The messages every kernel must print (the unconditional __msg ones)."""
        return tuple(m.text for m in self.messages if not m.conditional)

    def messages_for(self, release: str) -> tuple[Message, ...]:
        """The messages expected from the kernel `release` (e.g. "7.3.4"), in the order written. A conditional
        message is never expected from a kernel whose version cannot be read."""
        version = kernel_version(release)
        return tuple(m for m in self.messages if m.applies(version))

    def msgs_for(self, release: str) -> tuple[str, ...]:
        return tuple(m.text for m in self.messages_for(release))

    @property
    def load_only(self) -> bool:
        """True when the case is decided by the load alone (rejections and accepted twins)."""
        return self.expect == "failure" or not (
            self.trigger or self.expect_records or self.expect_no_records or self.expect_errno is not None
        )

    @property
    def prog_kind(self) -> str:
        """The section's program kind: "lsm", "fentry", "tp_btf", "kprobe", ..."""
        return self.section.split("/", 1)[0]

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class CaseFile:
    path: Path
    programs: tuple[CaseProgram, ...]

    def program(self, name: str) -> CaseProgram:
        for p in self.programs:
            if p.name == name:
                return p
        raise KeyError(name)
