# SPDX-License-Identifier: GPL-2.0
"""Pure parsing of Linux audit records (netlink payloads, auditd log lines, console lines) and event grouping.

No I/O and no exceptions on odd input: a record that cannot be parsed is kept with ``ok=False`` and a
``problem`` that says why.

Three input forms are understood:

* the netlink payload the guest agent returns: ``{"type": 1334, "text": "audit(1700000000.123:45): prog-id=7 op=LOAD"}``
  (see :func:`parse_netlink`);
* an auditd log line: ``type=BPF msg=audit(1700000000.123:45): prog-id=7 op=LOAD``, optionally with a
  ``node=...`` prefix, ``type=UNKNOWN[1425]`` for types auditd does not know, and auditd's ENRICHED
  interpretations after a ``\\x1d`` (kept apart in :attr:`Record.enriched`);
* a kernel console / dmesg line: ``[   12.3] audit: type=1334 audit(1700000000.123:45): prog-id=7 op=LOAD``
  (what kauditd prints when no audit daemon listens).

Type numbers and names come from the kernel's own ``include/uapi/linux/audit.h`` text, handed in by the
caller (:func:`parse_audit_h`), so the number of a type such as ``AUDIT_BPF_LSM_ACCESS`` is never written
into this module. Names are printed without the ``AUDIT_`` prefix, as auditd does (``BPF``, ``SYSCALL``).

Values are kept raw (``comm="cat"``, ``comm=612062``). :meth:`Record.decoded` undoes the audit
subsystem's encoding of untrusted strings (kernel/audit.c ``audit_log_n_untrustedstring``): a quoted
value is the text inside the quotes; an unquoted, even-length, uppercase hex value of a field that the
kernel logs as an untrusted string (:data:`UNTRUSTED_FIELDS`) is the hex-decoded bytes; ``(null)`` is
None. :meth:`Record.decoded` returns ``str`` decoded as UTF-8 with ``surrogateescape`` (so
``value.encode("utf-8", "surrogateescape")`` gives back the exact bytes);
:meth:`Record.decoded_bytes` returns the bytes themselves.

Fields inside a single-quoted ``msg='...'`` (records that userspace sends through the kernel, e.g.
USER_START) are flattened into the record's fields in order, the way auparse presents them; the ``msg``
field itself is not kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "UNTRUSTED_FIELDS",
    "Event",
    "Record",
    "decode_value",
    "encode_untrusted",
    "group_events",
    "is_untrusted_field",
    "parse_any",
    "parse_audit_h",
    "parse_line",
    "parse_log",
    "parse_netlink",
    "parse_records",
    "type_number",
]

#: Fields the kernel logs with audit_log_untrustedstring()/audit_log_n_untrustedstring()/audit_log_d_path()
#: (kernel/audit.c, kernel/auditsc.c, security/lsm_audit.c in 6.12), plus ``cause`` which the
#: bpf_audit contract logs the same way. EXECVE arguments ``a0``, ``a1[0]``... are matched separately.
UNTRUSTED_FIELDS: frozenset[str] = frozenset(
    {
        "comm",
        "ocomm",
        "exe",
        "name",
        "path",
        "cwd",
        "cause",
        "proctitle",
        "cmd",
        "key",
        "key_desc",
        "kmod",
        "dev",
        "data",
        "old",
        "new",
        "watch",
        "root_dir",
    }
)

_EXECVE_ARG = re.compile(r"a\d+(?:\[\d+\])?\Z")
_HEX = re.compile(r"(?:[0-9A-F]{2})+\Z")
_STAMP = re.compile(r"audit\((\d+)(?:\.(\d+))?:(\d+)\):?[ \t]?")
_TYPE = re.compile(r"(?:^|\s)type=(\S+)")
_UNKNOWN_TYPE = re.compile(r"UNKNOWN\[(\d+)\]\Z")
_CONSOLE_PREFIX = re.compile(r"^(?:<\d{1,2}>)?(?:\[\s*\d+\.\d+\])?(?: ?\[\s*[TC]\d+\])?\s*")
_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+AUDIT_([A-Za-z0-9_]+)[ \t]+(\d+)[uUlL]*[ \t]*$", re.M)
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_ENRICH_SEP = "\x1d"


def is_untrusted_field(name: str) -> bool:
    """Whether the kernel logs field ``name`` as an untrusted string (quoted, or hex when it must be)."""
    return name in UNTRUSTED_FIELDS or bool(_EXECVE_ARG.match(name))


def encode_untrusted(data: bytes) -> str:
    """Encode ``data`` exactly as 6.12's audit_log_n_untrustedstring() does.

    audit_string_contains_control(): any byte ``'"'``, ``< 0x21`` or ``> 0x7e`` means uppercase hex
    without quotes (audit_log_n_hex); otherwise the bytes inside double quotes (audit_log_n_string).
    """
    data = bytes(data)
    if any(b == 0x22 or b < 0x21 or b > 0x7E for b in data):
        return data.hex().upper()
    return '"' + data.decode("ascii") + '"'


def decode_value(name: str, value: str | None) -> bytes | None:
    """Decode one raw field value (see the module doc). Returns None for ``(null)`` or a missing value."""
    if value is None or value == "(null)":
        return None
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1].encode("utf-8", "surrogateescape")
    if is_untrusted_field(name) and _HEX.match(value):
        return bytes.fromhex(value)
    return value.encode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class Record:
    """One audit record. ``fields`` keeps names and raw values in the order the kernel printed them."""

    type: int  # -1 when the number cannot be known (auditd printed a name the audit.h table lacks)
    type_name: str | None  # without AUDIT_, e.g. "BPF"; None when the table lacks the number
    timestamp: float | None  # seconds since the epoch from audit(SECONDS.MILLIS:SERIAL)
    serial: int | None
    fields: tuple[tuple[str, str], ...]
    raw: str
    ok: bool = True
    problem: str | None = None
    enriched: tuple[tuple[str, str], ...] = ()  # auditd ENRICHED interpretations (after \x1d), if any
    stamp: str | None = None  # "SECONDS.MILLIS:SERIAL" exactly as printed

    def get(self, name: str, default: str | None = None) -> str | None:
        """Raw value of the first field called ``name`` (``default`` when absent)."""
        for key, value in self.fields:
            if key == name:
                return value
        return default

    def get_all(self, name: str) -> tuple[str, ...]:
        """Raw values of every field called ``name``, in order (a repeated field shows up twice)."""
        return tuple(value for key, value in self.fields if key == name)

    def has(self, name: str) -> bool:
        return any(key == name for key, _ in self.fields)

    def field_names(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.fields)

    def decoded_bytes(self, name: str) -> bytes | None:
        """The first ``name`` field decoded to bytes; None if absent or ``(null)``."""
        return decode_value(name, self.get(name))

    def decoded(self, name: str) -> str | None:
        """Like :meth:`decoded_bytes` but as ``str`` (UTF-8, ``surrogateescape`` for other bytes)."""
        data = self.decoded_bytes(name)
        return None if data is None else data.decode("utf-8", "surrogateescape")

    def as_dict(self) -> dict[str, str]:
        """Fields as a dict (first occurrence wins)."""
        out: dict[str, str] = {}
        for key, value in self.fields:
            out.setdefault(key, value)
        return out

    def is_type(self, wanted: int | str) -> bool:
        """Whether this record is of type ``wanted`` (a number, or a name with or without ``AUDIT_``)."""
        if isinstance(wanted, int):
            return self.type == wanted
        name = wanted[6:] if wanted.startswith("AUDIT_") else wanted
        if self.type_name is not None and self.type_name == name:
            return True
        return name.isdigit() and int(name) == self.type


@dataclass(frozen=True)
class Event:
    """Records that share one audit(TIMESTAMP:SERIAL) stamp, in input order."""

    timestamp: float | None
    serial: int | None
    records: tuple[Record, ...]

    def types(self) -> tuple[str, ...]:
        """Type names (or numbers as text when unnamed) of the records, in order."""
        return tuple(r.type_name if r.type_name is not None else str(r.type) for r in self.records)

    def of_type(self, wanted: int | str) -> tuple[Record, ...]:
        return tuple(r for r in self.records if r.is_type(wanted))

    def first(self, wanted: int | str) -> Record | None:
        for r in self.records:
            if r.is_type(wanted):
                return r
        return None


def parse_audit_h(text: str | bytes) -> dict[int, str]:
    """Record-type numbers -> names (``AUDIT_`` stripped) from the text of ``include/uapi/linux/audit.h``.

    Takes ``#define AUDIT_XXX nnnn`` lines (decimal, outside comments) whose value is a message type
    (1000-2999); range markers (``AUDIT_FIRST_*``/``AUDIT_LAST_*``) are skipped; when two names share a
    number the first one wins. Field, filter and flag constants (below 1000 or in hex) are not types.
    """
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", errors="replace")
    if not isinstance(text, str):
        return {}
    text = _COMMENT.sub(" ", text)
    table: dict[int, str] = {}
    for m in _DEFINE.finditer(text):
        name, number = m.group(1), int(m.group(2))
        if name.startswith(("FIRST_", "LAST_")) or not 1000 <= number <= 2999:
            continue
        table.setdefault(number, name)
    return table


def type_number(types: Mapping[int, str] | None, name: str) -> int | None:
    """The number of type ``name`` (with or without ``AUDIT_``) in a :func:`parse_audit_h` table."""
    if name.startswith("AUDIT_"):
        name = name[6:]
    for number, known in (types or {}).items():
        if known == name:
            return number
    return None


def _split_fields(body: str, fields: list[tuple[str, str]]) -> str | None:
    """Tokenize ``name=value`` pairs of ``body`` into ``fields``; return a problem or None."""
    i, n = 0, len(body)
    problem: str | None = None
    while i < n:
        while i < n and body[i] in " \t":
            i += 1
        if i >= n:
            break
        j = i
        while j < n and body[j] not in "= \t":
            j += 1
        if j >= n or body[j] != "=" or j == i:
            # a bare word (e.g. SELinux "avc:  denied  { read }"): not a field
            while j < n and body[j] not in " \t":
                j += 1
            i = j
            continue
        name = body[i:j]
        k = j + 1
        if k < n and body[k] == '"':
            end = body.find('"', k + 1)
            if end < 0:
                fields.append((name, body[k:]))
                return problem or f"unterminated quoted value of field {name!r}"
            fields.append((name, body[k : end + 1]))
            i = end + 1
        elif k < n and body[k] == "'":
            end = body.rfind("'")
            if end <= k:
                fields.append((name, body[k:]))
                return problem or f"unterminated single-quoted value of field {name!r}"
            inner = body[k + 1 : end]
            sub = _split_fields(inner, fields)
            problem = problem or sub
            i = end + 1
        else:
            end = k
            while end < n and body[end] not in " \t":
                end += 1
            fields.append((name, body[k:end]))
            i = end
    return problem


def _resolve_type(token: str | int | None, types: Mapping[int, str] | None) -> tuple[int, str | None, str | None]:
    """(number, name, problem) for a type given as a number, a name, or auditd's UNKNOWN[n]."""
    table = types or {}
    if token is None:
        return -1, None, "no record type"
    if isinstance(token, bool):
        return -1, None, f"bad record type {token!r}"
    if isinstance(token, int):
        return token, table.get(token), None
    text = str(token).strip()
    if text.isdigit():
        number = int(text)
        return number, table.get(number), None
    m = _UNKNOWN_TYPE.match(text)
    if m:
        number = int(m.group(1))
        return number, table.get(number), None
    if not text:
        return -1, None, "empty record type"
    if text.startswith("AUDIT_"):
        text = text[6:]
    found = type_number(table, text)
    return (found if found is not None else -1), text, None


def _build(
    raw: str,
    type_token: str | int | None,
    text: str,
    types: Mapping[int, str] | None,
    lead_fields: list[tuple[str, str]] | None = None,
) -> Record:
    number, name, problem = _resolve_type(type_token, types)
    enriched_text = ""
    if _ENRICH_SEP in text:
        text, enriched_text = text.split(_ENRICH_SEP, 1)
    fields: list[tuple[str, str]] = list(lead_fields or [])
    m = _STAMP.search(text)
    timestamp: float | None = None
    serial: int | None = None
    stamp: str | None = None
    if m is None:
        problem = problem or "no audit(SECONDS.MILLIS:SERIAL) stamp"
        body = text
    else:
        secs, millis, ser = m.group(1), m.group(2), m.group(3)
        try:
            timestamp = float(f"{secs}.{millis}" if millis else secs)
            serial = int(ser)
        except (ValueError, OverflowError):
            problem = problem or "unreadable audit() stamp"
        stamp = f"{secs}.{millis}:{ser}" if millis else f"{secs}:{ser}"
        body = text[m.end() :]
    sub = _split_fields(body.rstrip("\r\n"), fields)
    problem = problem or sub
    enriched: list[tuple[str, str]] = []
    if enriched_text:
        _split_fields(enriched_text.rstrip("\r\n"), enriched)
    return Record(
        type=number,
        type_name=name,
        timestamp=timestamp,
        serial=serial,
        fields=tuple(fields),
        raw=raw,
        ok=problem is None,
        problem=problem,
        enriched=tuple(enriched),
        stamp=stamp,
    )


def _bad(raw: Any, problem: str) -> Record:
    text = raw if isinstance(raw, str) else repr(raw)
    return Record(type=-1, type_name=None, timestamp=None, serial=None, fields=(), raw=text, ok=False, problem=problem)


def parse_netlink(type_: int | str | None, text: str | bytes | None, types: Mapping[int, str] | None = None) -> Record:
    """A record from the netlink form: the message type and the payload ``audit(...): fields``."""
    try:
        if isinstance(text, bytes | bytearray):
            text = bytes(text).rstrip(b"\x00").decode("utf-8", "surrogateescape")
        if not isinstance(text, str):
            return _bad(text, "record text is not a string")
        raw = text.rstrip("\x00\r\n")
        return _build(raw, type_, raw.replace("\x00", ""), types)
    except Exception as exc:  # noqa: BLE001 - never raise on odd input
        return _bad(text, f"unparseable record: {exc!r}")


def parse_line(line: str | bytes, types: Mapping[int, str] | None = None) -> Record:
    """A record from an auditd log line (``type=NAME msg=audit(...): ...``) or a console line
    (``[ ts] audit: type=NNNN audit(...): ...``); the form is detected."""
    try:
        if isinstance(line, bytes | bytearray):
            line = bytes(line).decode("utf-8", "surrogateescape")
        if not isinstance(line, str):
            return _bad(line, "record line is not a string")
        raw = line.rstrip("\r\n").replace("\x00", "")
        text = _CONSOLE_PREFIX.sub("", raw, count=1)
        if text.startswith("audit: "):
            text = text[len("audit: ") :]
        m = _STAMP.search(text)
        head = text[: m.start()] if m else text.split(_ENRICH_SEP, 1)[0]
        tm = _TYPE.search(head)
        type_token = tm.group(1) if tm else None
        lead: list[tuple[str, str]] = []
        if m is not None:
            # anything before type= / msg= other than those (e.g. auditd's node=) is kept as leading fields
            prefix_fields: list[tuple[str, str]] = []
            _split_fields(head, prefix_fields)
            lead = [(k, v) for k, v in prefix_fields if k not in ("type", "msg")]
        return _build(raw, type_token, text, types, lead)
    except Exception as exc:  # noqa: BLE001 - never raise on odd input
        return _bad(line, f"unparseable record: {exc!r}")


def parse_any(item: Any, types: Mapping[int, str] | None = None) -> Record:
    """A record from a netlink dict ``{"type": n, "text": "..."}``, a ``(type, text)`` pair, or a log line."""
    try:
        if isinstance(item, Mapping):
            if "text" not in item:
                return _bad(repr(dict(item)), "netlink record without 'text'")
            return parse_netlink(item.get("type"), item.get("text"), types)
        if isinstance(item, tuple | list) and len(item) == 2:
            return parse_netlink(item[0], item[1], types)
        if isinstance(item, bytearray):
            item = bytes(item)
        if isinstance(item, str | bytes):
            return parse_line(item, types)
        return _bad(item, f"not an audit record: {type(item).__name__}")
    except Exception as exc:  # noqa: BLE001 - never raise on odd input
        return _bad(item, f"unparseable record: {exc!r}")


def parse_records(items: Iterable[Any], types: Mapping[int, str] | None = None) -> list[Record]:
    """:func:`parse_any` over a sequence (e.g. the agent's JSON list of raw records)."""
    try:
        return [parse_any(item, types) for item in items]
    except Exception as exc:  # noqa: BLE001 - a broken iterator: keep what we can say
        return [_bad(items, f"unreadable record list: {exc!r}")]


_LOG_CANDIDATE = re.compile(r"audit\(\d|^(?:node=\S+ )?type=\S+ |^audit: type=")


def parse_log(text: str | bytes | None, types: Mapping[int, str] | None = None) -> list[Record]:
    """Records in an auditd log or a console/dmesg log; other lines (non-audit kernel messages,
    ``kauditd_printk_skb: N callbacks suppressed``) are skipped."""
    if text is None:
        return []
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", "surrogateescape")
    if not isinstance(text, str):
        return [_bad(text, "log is not text")]
    out: list[Record] = []
    for line in text.split("\n"):
        line = line.rstrip("\r").replace("\x00", "")
        body = _CONSOLE_PREFIX.sub("", line, count=1)
        if _LOG_CANDIDATE.search(body):
            out.append(parse_line(line, types))
    return out


def group_events(records: Iterable[Record]) -> list[Event]:
    """Group records by (timestamp, serial), events in order of their first record.

    A record without a stamp forms an event of its own.
    """
    order: list[tuple[Any, ...]] = []
    groups: dict[tuple[Any, ...], list[Record]] = {}
    for idx, rec in enumerate(records):
        if rec.serial is None:
            key: tuple[Any, ...] = ("lone", idx)
        else:
            key = ("event", rec.timestamp, rec.serial)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(rec)
    out: list[Event] = []
    for key in order:
        recs = groups[key]
        out.append(Event(timestamp=recs[0].timestamp, serial=recs[0].serial, records=tuple(recs)))
    return out

