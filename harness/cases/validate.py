# SPDX-License-Identifier: GPL-2.0
"""Validate one program's parsed annotations and build its CaseProgram (file:line errors that say what to write)."""

from __future__ import annotations

import re
from collections.abc import Callable

from harness.cases.annotations import (
    ANNOTATIONS,
    CAPABILITIES,
    DECIDED_RULES,
    FEATURES,
    INO_ACTIONS,
    PLACEHOLDERS,
    RECORD_KEYWORDS,
    SPEC_RULES,
)
from harness.cases.lexer import Tok
from harness.cases.model import (
    Annotation,
    CaseProgram,
    FieldCheck,
    Message,
    RecordExpectation,
    Trigger,
    format_version,
)
from harness.cases.needs import NEEDS
from harness.cases.trigger_spec import _parse_trigger
from harness.cases.values import PLACEHOLDER_RE, split_regex
from harness.errors import CaseError

_Err = Callable[[int, str], CaseError]  # (line, message) -> the error to raise

_FIELD_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
_TYPE_RE = re.compile(r"^(?:AUDIT_)?([A-Z][A-Z0-9_]*)$")


def _check_regex(err: _Err, line: int, text: str, what: str) -> None:
    try:
        parts = split_regex(text)
    except ValueError as e:
        raise err(
            line, f'{what} {text!r}: {e}. Write {{{{regex}}}} with both braces, e.g. "id={{{{[0-9]+}}}}".'
        ) from None
    for is_re, part in parts:
        if is_re:
            try:
                re.compile(part)
            except re.error as e:
                raise err(line, f"{what} {text!r}: bad regular expression {{{{{part}}}}}: {e}.") from None


def _parse_type(err: _Err, line: int, text: str) -> str | int:
    if text.isdigit():
        return int(text)
    m = _TYPE_RE.match(text)
    if not m:
        raise err(
            line,
            f'record type {text!r} is neither a number nor an audit type name. Write e.g. "BPF_LSM_ACCESS", '
            '"BPF", "SYSCALL" or "1334".',
        )
    return m.group(1)


def _field_list(err: _Err, line: int, key: str, value: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in value.split(","))
    if not value or any(not _FIELD_RE.match(n) for n in names):
        raise err(line, f'"{key}={value}" needs a comma-separated list of field names, e.g. "{key}=prog-id,pid,comm".')
    return names


def _check_placeholders(err: _Err, line: int, text: str, trigger: Trigger | None) -> None:
    for name in PLACEHOLDER_RE.findall(text):
        if name not in PLACEHOLDERS:
            raise err(
                line,
                f"unknown placeholder ${{{name}}} in {text!r}. Known: "
                + ", ".join(f"${{{p}}}" for p in PLACEHOLDERS)
                + ".",
            )
        if name in ("pid", "comm") and (trigger is None or trigger.action == "shell"):
            raise err(line, f"${{{name}}} in {text!r} needs a built-in __trigger (not shell) whose process it names.")
        if name == "target_pid" and (trigger is None or trigger.action != "kill"):
            raise err(line, f'${{target_pid}} in {text!r} needs __trigger("kill", ...).')
        if name == "ino" and (trigger is None or trigger.action not in INO_ACTIONS):
            raise err(line, f"${{ino}} in {text!r} needs a __trigger that names the inode it used: "
                      f"{', '.join(sorted(INO_ACTIONS))}.")
    if "${" in PLACEHOLDER_RE.sub("", text):
        raise err(line, f"unclosed placeholder in {text!r}: write ${{name}}.")


def _record_keyword(err: _Err, ann: Annotation, arg: str, name: str, value: str, negative: bool, kw: dict) -> None:
    """Record one of RECORD_KEYWORDS (count=, same_event=, a field list) of a record annotation into kw."""
    line = ann.line
    if negative and name in ("count", "same_event"):
        raise err(line, f'"{arg}" is meaningless in {ann.name}; it only fits __expect_record.')
    if name in kw:
        raise err(line, f'"{name}=" given twice in {ann.name}. Keep one.')
    if name == "count":
        if not value.isdigit():
            raise err(line, f'"{arg}": count needs a non-negative integer, e.g. "count=1".')
        if int(value) == 0:
            raise err(line, f'"{arg}": to expect no such record write __expect_no_record("{ann.args[0]}", ...).')
        kw["count"] = int(value)
    elif name == "same_event":
        kw["same_event"] = _parse_type(err, line, value)
    else:
        kw[name] = _field_list(err, line, name, value)


def _split_check(err: _Err, line: int, arg: str) -> tuple[str, str, str | None]:
    """A record annotation's argument as (name, op, value): "!f" absent, "raw:f=v", "f=v" eq, "f" present."""
    if arg.startswith("!"):
        return arg[1:], "absent", None
    if arg.startswith("raw:"):
        if "=" not in arg:
            raise err(line, f'"{arg}" needs a value: write "raw:field=text".')
        name, value = arg[4:].split("=", 1)
        return name, "raw", value
    if "=" in arg:
        name, value = arg.split("=", 1)
        return name, "eq", value
    return arg, "present", None


def _parse_record(err: _Err, ann: Annotation, trigger: Trigger | None, negative: bool) -> RecordExpectation:
    line = ann.line
    rtype = _parse_type(err, line, ann.args[0])
    checks: list[FieldCheck] = []
    kw: dict[str, object] = {}
    seen: dict[str, str] = {}
    for arg in ann.args[1:]:
        name, op, value = _split_check(err, line, arg)
        if op == "eq" and name in RECORD_KEYWORDS:
            assert value is not None
            _record_keyword(err, ann, arg, name, value, negative, kw)
            continue
        if not _FIELD_RE.match(name):
            raise err(
                line,
                f'{arg!r} in {ann.name} is not a field check. Write "field=value", "field", "!field", '
                '"raw:field=text" or one of count=, order=, leading=, fields=, once=, same_event=.',
            )
        if negative and op == "absent":
            raise err(line, f'"{arg}" in {ann.name}: a record that must not exist has no absent fields; drop it.')
        if name in seen and (seen[name] == "absent") != (op == "absent"):
            raise err(line, f"field {name!r} is both required and forbidden in one {ann.name}. Keep one.")
        seen[name] = op
        if value is not None:
            _check_regex(err, line, value, f"value of {name}")
            _check_placeholders(err, line, value, trigger)
        checks.append(FieldCheck(name, op, value))
    return RecordExpectation(type=rtype, checks=tuple(checks), line=line, **kw)  # type: ignore[arg-type]


_MSG_ANNOTATIONS = ("__msg", "__msg_since", "__msg_before", "__libbpf_msg")
_VERSION_RE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")
_WORD_RE = re.compile(r"[A-Za-z0-9_]{3,}")
_REGEX_WORD_RE = re.compile(r"(?<![\\A-Za-z0-9_])[A-Za-z0-9_]{3,}")  # a word in {{...}}, not an escape like \w
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _called(body: list[Tok]) -> set[str]:
    """The names the program calls: the verifier's disassembly prints each of them on any load."""
    return {t.text for t, nxt in zip(body[:-1], body[1:], strict=True) if t.kind == "id" and nxt.text == "("}


def _vacuous(text: str, called: set[str]) -> str | None:
    """Why ``text`` would match a log that proves nothing, or None. The literal parts (outside {{...}}) must
    hold a word, and the whole must not be a name the disassembly prints."""
    parts = split_regex(text)
    literal = " ".join(part for is_re, part in parts if not is_re)
    regex_words = [w for is_re, part in parts if is_re for w in _REGEX_WORD_RE.findall(part)]
    if not text.strip():
        return "an empty or blank message matches anything"
    if not _WORD_RE.search(literal) and not regex_words:
        return ("it has no word of three or more letters, so it matches nearly any log (a {{.*}} or a lone "
                "register or punctuation mark proves nothing)")
    if _IDENT_RE.match(text.strip()) and text.strip() in called:
        return (f"{text.strip()} is a function the program calls, and the verifier's log prints every call it "
                "walks, so any load that reaches the call matches it")
    return None


def _messages(err: _Err, anns: list[Annotation], body: list[Tok]) -> tuple[Message, ...]:
    """Every __msg / __msg_since / __msg_before / __libbpf_msg in the order written."""
    out: list[Message] = []
    called = _called(body)
    for a in anns:
        if a.name not in _MSG_ANNOTATIONS:
            continue
        text = a.args[-1]
        _check_regex(err, a.line, text, a.name)
        why = _vacuous(text, called)
        if why:
            raise err(a.line, f"{a.name}({text!r}): {why}. Write the words the verifier must print, e.g. "
                      f"{ANNOTATIONS['__msg'].example}.")
        if a.name in ("__msg", "__libbpf_msg"):
            out.append(Message(text, line=a.line, log="libbpf" if a.name == "__libbpf_msg" else "verifier"))
            continue
        m = _VERSION_RE.match(a.args[0])
        if not m:
            raise err(
                a.line,
                f'{a.name}({a.args[0]!r}, ...): the first argument is a kernel version like "7.3" or "6.12.5" '
                f"(major.minor[.patch]). Write e.g. {ANNOTATIONS[a.name].example}",
            )
        version = tuple(int(g) for g in m.groups() if g is not None)
        if a.name == "__msg_since":
            out.append(Message(text, since=version, line=a.line))
        else:
            out.append(Message(text, before=version, line=a.line))
    return tuple(out)


def _check_message_coverage(err: _Err, where: str, messages: tuple[Message, ...]) -> None:
    """Every kernel version must expect at least one verifier message: a rejection that names none on some kernel
    would pass there on any load failure (libbpf's messages do not count: they do not show the verifier ran).
    The versions that matter are the boundaries the conditions name."""
    libbpf = [m for m in messages if m.log == "libbpf"]
    messages = tuple(m for m in messages if m.log == "verifier")
    if not messages:
        raise err(
            libbpf[0].line,
            f"{where} names only libbpf's messages: a rejection must also name the verifier's, e.g. "
            f"{ANNOTATIONS['__msg'].example}, so that a load that never reached the verifier does not pass.",
        )
    bounds = sorted({v for m in messages for v in (m.since, m.before) if v is not None})
    for point in [(0,), *bounds]:
        if not any(m.applies(point) for m in messages):
            upper = next((b for b in bounds if b > point), None)
            if point == (0,):
                span = f"kernels before {format_version(upper)}" if upper else "any kernel"
            elif upper is not None:
                span = f"kernels {format_version(point)} up to {format_version(upper)}"
            else:
                span = f"kernels {format_version(point)} and later"
            line = min(m.line for m in messages)
            raise err(
                line,
                f"{where} expects no message on {span}: give every kernel line its message, e.g. "
                '__msg_before("7.3", "<6.12 words>") __msg_since("7.3", "<7.3 words>"), or a plain __msg.',
            )


_Groups = dict[str, list[Annotation]]  # annotation name -> its uses, in order


def _group(err: _Err, name: str, anns: list[Annotation]) -> _Groups:
    """The annotations by name; a non-repeatable one given twice is an error."""
    by: _Groups = {}
    for a in anns:
        spec = ANNOTATIONS[a.name]
        if a.name in by and not spec.repeatable:
            raise err(a.line, f"{a.name} given twice for {name} (first on line {by[a.name][0].line}). Keep one.")
        by.setdefault(a.name, []).append(a)
    return by


def _one(by: _Groups, key: str) -> Annotation | None:
    return by.get(key, [None])[0]


def _expectation(
    err: _Err, where: str, line: int, by: _Groups, anns: list[Annotation], body: list[Tok]
) -> tuple[str, tuple[Message, ...]]:
    """__success or __failure, and the messages a failure must print (none for a success)."""
    success, failure = _one(by, "__success"), _one(by, "__failure")
    if success and failure:
        raise err(
            max(success.line, failure.line),
            f"{where} has both __success and __failure. Keep the one the "
            'kernel must do: __failure __msg("...") for a rejection, __success for its accepted twin.',
        )
    if not success and not failure:
        raise err(line, f"{where} says neither __success nor __failure. Add one.")
    expect = "success" if success else "failure"
    messages = _messages(err, anns, body)
    if expect == "success" and messages:
        first = min((a for a in anns if a.name in _MSG_ANNOTATIONS), key=lambda a: a.line)
        raise err(
            first.line,
            f"{first.name} on {where}, a __success case: messages are only checked when the "
            f"load fails. Drop {first.name}, or make it __failure.",
        )
    if expect == "failure" and not messages:
        raise err(
            failure.line,  # type: ignore[union-attr]
            f"{where} is __failure without __msg: a rejection must name the message that "
            'proves the rule, e.g. __failure __msg("Unreleased reference").',
        )
    if expect == "failure":
        _check_message_coverage(err, where, messages)
    if expect == "failure":
        for key in ("__trigger", "__expect_record", "__expect_no_record", "__expect_errno", "__audit_disabled"):
            if key in by:
                raise err(
                    by[key][0].line,
                    f"{key} on {where}, a __failure case: a program that does not load "
                    "runs nothing. Drop it, or put it on the accepted twin.",
                )
    return expect, messages


def _rules(err: _Err, where: str, by: _Groups) -> tuple[list[int], Annotation | None]:
    """The __rule numbers and the __decided annotation (which the spec's "decided here" rules need)."""
    rules: list[int] = []
    for a in by.get("__rule", []):
        n = int(a.args[0])
        if n not in SPEC_RULES:
            raise err(a.line, f"__rule({n}): the spec has rules {SPEC_RULES.start}-{SPEC_RULES.stop - 1}.")
        if n in rules:
            raise err(a.line, f"__rule({n}) given twice. Keep one.")
        rules.append(n)
    decided = _one(by, "__decided")
    if decided and not rules:
        raise err(decided.line, "__decided needs the rule it refers to: __rule(N) __decided.")
    decided_rules = sorted(set(rules) & DECIDED_RULES)
    if decided and not decided_rules:
        raise err(
            decided.line,
            f"__decided on {where}, whose rules ({', '.join(map(str, rules))}) the spec does not mark \"decided "
            f"here\" (those are {', '.join(map(str, sorted(DECIDED_RULES)))}). Drop __decided.",
        )
    if decided_rules and not decided:
        first_rule = next(a for a in by["__rule"] if int(a.args[0]) in DECIDED_RULES)
        raise err(
            first_rule.line,
            f"__rule({decided_rules[0]}) is a rule the spec \"decides here\": add __decided (and say \"decided "
            "here\" in the description), so a kernel that decides differently fails loudly.",
        )
    return rules, decided


def _needs(err: _Err, by: _Groups) -> list[str]:
    """The __needs features, known and without repeats."""
    needs: list[str] = []
    for a in by.get("__needs", []):
        for feat in a.args:
            if feat not in FEATURES:
                raise err(a.line, f"__needs({feat!r}): unknown feature. Known: {', '.join(FEATURES)}.")
            if feat not in needs:
                needs.append(feat)
    return needs


def _check_needs_said(err: _Err, where: str, line: int, needs: list[str], body: list[Tok]) -> None:
    """A feature the body uses must be declared with __needs."""
    body_ids = {t.text for t in body if t.kind == "id"}
    for need in NEEDS.values():
        if need.name not in needs and need.required_by(body_ids):
            raise err(line, f"{where} {need.unsaid}")


def _drop_caps(err: _Err, by: _Groups) -> list[str]:
    """The __drop_caps capabilities, lower case without CAP_."""
    caps: list[str] = []
    for a in by.get("__drop_caps", []):
        for cap in a.args:
            c = cap.lower().removeprefix("cap_")
            if c not in CAPABILITIES:
                raise err(
                    a.line,
                    f"__drop_caps({cap!r}): unknown capability. Write it lower case without CAP_, "
                    'e.g. __drop_caps("sys_boot").',
                )
            if cap != c:
                raise err(a.line, f'__drop_caps({cap!r}): write __drop_caps("{c}").')
            caps.append(c)
    return caps


def _records(
    err: _Err, by: _Groups, trigger: Trigger | None, disabled: Annotation | None
) -> tuple[tuple[RecordExpectation, ...], tuple[RecordExpectation, ...]]:
    """The __expect_record and __expect_no_record expectations, checked against each other and __audit_disabled."""
    records = tuple(_parse_record(err, a, trigger, False) for a in by.get("__expect_record", []))
    no_records = tuple(_parse_record(err, a, trigger, True) for a in by.get("__expect_no_record", []))
    types = {r.type for r in records}
    for r in records:
        if r.same_event is not None and (r.same_event not in types or r.same_event == r.type):
            raise err(
                r.line,
                f"same_event={r.same_event} must name another __expect_record type of this program "
                f"(have: {', '.join(str(t) for t in types)}).",
            )
    if disabled and records and any(r.type != "SYSCALL" for r in records):
        raise err(
            disabled.line,
            "__audit_disabled with __expect_record: audit is off, no record can appear. Use __expect_no_record.",
        )
    return records, no_records


def build_program(
    path: str, name: str, section: str, line: int, anns: list[Annotation], body: list[Tok]
) -> CaseProgram:
    def err(at: int, message: str) -> CaseError:
        return CaseError(f"{path}:{at}: {message}")

    by = _group(err, name, anns)
    where = f"program {name} (line {line})"
    desc = _one(by, "__description")
    if desc is None:
        raise err(line, f'{where} has no __description. Add __description("what this case proves").')
    expect, messages = _expectation(err, where, line, by, anns, body)
    rules, decided = _rules(err, where, by)
    needs = _needs(err, by)
    caps = _drop_caps(err, by)
    _check_needs_said(err, where, line, needs, body)

    trig_ann = _one(by, "__trigger")
    trigger = _parse_trigger(err, trig_ann) if trig_ann else None
    errno_ann = _one(by, "__expect_errno")
    if errno_ann and trigger is None:
        raise err(errno_ann.line, "__expect_errno needs a __trigger whose errno it checks.")
    disabled = _one(by, "__audit_disabled")
    if disabled and trigger is None:
        raise err(disabled.line, "__audit_disabled needs a __trigger to run while audit is off.")
    records, no_records = _records(err, by, trigger, disabled)

    return CaseProgram(
        path=path,
        name=name,
        section=section,
        line=line,
        description=desc.args[0],
        expect=expect,
        messages=messages,
        rules=tuple(rules),
        decided=decided is not None,
        needs=tuple(needs),
        drop_caps=tuple(caps),
        trigger=trigger,
        expect_records=records,
        expect_no_records=no_records,
        expect_errno=int(errno_ann.args[0]) if errno_ann else None,
        audit_disabled=disabled is not None,
        annotations=tuple(anns),
    )
