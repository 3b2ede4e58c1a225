# SPDX-License-Identifier: GPL-2.0
"""The data a case file describes: its programs, their triggers and expected records, as frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Annotation:
    """One annotation as written: name, decoded arguments, line."""

    name: str
    args: tuple[str, ...]
    line: int


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
        for key in ("order", "leading", "once"):
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
    msgs: tuple[str, ...] = ()
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
