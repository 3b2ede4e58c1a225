# SPDX-License-Identifier: GPL-2.0
"""Pure: judge captured audit records against a case's __expect_record / __expect_no_record lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.cases.audit import Record
from harness.cases.model import FieldCheck, RecordExpectation
from harness.cases.values import value_matches

MAX_SHOWN = 8


@dataclass(frozen=True)
class Verdict:
    ok: bool
    problems: tuple[str, ...]
    matched: Mapping[str, tuple[Record, ...]]  # expectation type (as written) -> records that satisfied it


def _check_field(rec: Record, check: FieldCheck, variables: Mapping[str, str]) -> str | None:
    """None when `rec` passes `check`, else what was wrong."""
    if check.op == "present":
        return None if rec.has(check.name) else f"no field {check.name}"
    if check.op == "absent":
        return None if not rec.has(check.name) else f"field {check.name} present ({rec.get(check.name)})"
    if not rec.has(check.name):
        return f"no field {check.name}"
    actual = rec.get(check.name) if check.op == "raw" else rec.decoded(check.name)
    assert check.value is not None
    try:
        if value_matches(check.value, actual or "", variables):
            return None
    except KeyError as e:
        return f"{check.name}: unknown variable ${{{e.args[0]}}}"
    shown = rec.get(check.name)
    return f"{check.name}={shown} (wanted {'raw ' if check.op == 'raw' else ''}{check.value})"


def _structure(rec: Record, exp: RecordExpectation) -> list[str]:
    names = rec.field_names()
    problems = []
    if exp.fields and names != exp.fields:
        problems.append(f"fields {','.join(names)} (wanted exactly {','.join(exp.fields)})")
    if exp.leading and names[: len(exp.leading)] != exp.leading:
        problems.append(f"leading fields {','.join(names[:len(exp.leading)])} (wanted {','.join(exp.leading)})")
    if exp.order:
        missing = [n for n in exp.order if n not in names]
        if missing:
            problems.append(f"order: missing {','.join(missing)}")
        else:
            positions = [names.index(n) for n in exp.order]
            if positions != sorted(positions):
                got = ",".join(sorted(exp.order, key=names.index))
                problems.append(f"field order {got} (wanted {','.join(exp.order)})")
    for n in exp.once:
        if names.count(n) != 1:
            problems.append(f"{n} appears {names.count(n)} times (wanted once)")
    return problems


def record_problems(rec: Record, exp: RecordExpectation, variables: Mapping[str, str]) -> list[str]:
    """Everything wrong with `rec` for `exp` (empty: it satisfies every check)."""
    problems = [p for c in exp.checks if (p := _check_field(rec, c, variables))]
    return problems + _structure(rec, exp)


def _of_type(records: Sequence[Record], wanted: str | int) -> list[Record]:
    return [r for r in records if r.is_type(wanted if isinstance(wanted, int) else str(wanted))]


def _show(records: Sequence[Record], exp: RecordExpectation, variables: Mapping[str, str]) -> str:
    if not records:
        return "    (none)"
    lines = []
    for r in records[:MAX_SHOWN]:
        why = "; ".join(record_problems(r, exp, variables)) or "ok"
        lines.append(f"    {r.raw}\n      -> {why}")
    if len(records) > MAX_SHOWN:
        lines.append(f"    ... {len(records) - MAX_SHOWN} more")
    return "\n".join(lines)


def judge(
    records: Sequence[Record],
    expected: Sequence[RecordExpectation],
    unexpected: Sequence[RecordExpectation],
    variables: Mapping[str, str],
) -> Verdict:
    """Apply every expectation. same_event ones are judged after the ones they refer to."""
    problems: list[str] = []
    matched: dict[str, tuple[Record, ...]] = {}
    for exp in sorted(expected, key=lambda e: e.same_event is not None):
        candidates = _of_type(records, exp.type)
        passing = [r for r in candidates if not record_problems(r, exp, variables)]
        if exp.same_event is not None:
            partners = matched.get(str(exp.same_event), ())
            serials = {r.serial for r in partners if r.serial is not None}
            passing = [r for r in passing if r.serial in serials]
        matched[str(exp.type)] = matched.get(str(exp.type), ()) + tuple(passing)  # union per type
        want = f"exactly {exp.count}" if exp.count is not None else "at least one"
        ok = len(passing) == exp.count if exp.count is not None else bool(passing)
        if not ok:
            extra = f" sharing a serial with the {exp.same_event} record" if exp.same_event is not None else ""
            problems.append(
                f"expected {want} {exp.type} record{extra} with: {exp.describe()} (line {exp.line}); "
                f"{len(passing)} matched. {exp.type} records seen:\n{_show(candidates, exp, variables)}"
            )
    for exp in unexpected:
        offending = [r for r in _of_type(records, exp.type) if not record_problems(r, exp, variables)]
        if offending:
            shown = "\n".join(f"    {r.raw}" for r in offending[:MAX_SHOWN])
            problems.append(f"expected no {exp.type} record with: {exp.describe()} (line {exp.line}); got:\n{shown}")
    return Verdict(not problems, tuple(problems), matched)
