# SPDX-License-Identifier: GPL-2.0
"""Pure scan of kernel console text for BUG/Oops/WARNING/panic/KASAN/UBSAN/lockup/stall/hung-task reports.

No I/O: callers hand in the text (``str`` or ``bytes``). Nothing here raises on odd input: CRLF, NUL
bytes, ANSI escapes, a report that starts mid-line after partial user output, a log cut off in the
middle of a report, and interleaved ``harness-agent:`` kmsg lines are all handled.

A *finding* is one kernel report. It starts at a head line (``WARNING: CPU: ...``, ``BUG: ...``,
``Kernel panic - not syncing: ...``) and its excerpt runs to the end of that report: an
``---[ end trace ... ]---`` / ``---[ end Kernel panic ... ]---`` marker, the ``=====`` rule closing a
KASAN/UBSAN report, a ``</TASK>`` that closes the last stack dump (other kinds) and is not followed by
more of the report (registers, module list, markers), the next report's head, or
``max_lines`` lines, whichever comes first. Line numbers are 1-based and count ``\\n``-separated lines
of the text as given (what ``grep -n`` prints).

Merging: the x86 die() header (``Oops: 0000 [#1] ...``, ``invalid opcode: 0000 [#1] ...``) printed
right after a ``BUG: ...`` or ``kernel BUG at ...`` line belongs to the same report. A ``BUG:`` report
that carries such a header (a NULL dereference, a bad page fault) has kind ``"oops"``; ``kernel BUG at``
(the ``BUG()`` macro) keeps kind ``"bug"``. A panic that follows an oops is a separate ``"panic"`` finding.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "KINDS",
    "Finding",
    "agent_lines",
    "find_panic",
    "guest_panicked",
    "last_agent_line",
    "message_of",
    "scan",
    "summarize",
]

KINDS = (
    "bug",
    "oops",
    "warning",
    "panic",
    "kasan",
    "ubsan",
    "rcu_stall",
    "hung_task",
    "soft_lockup",
    "hard_lockup",
)

DEFAULT_MAX_LINES = 100
AGENT_PREFIX = "harness-agent:"


@dataclass(frozen=True)
class Finding:
    """One kernel report found in console text."""

    kind: str  # one of KINDS
    line_no: int  # 1-based line number of the head line
    first_line: str  # the head line without console timestamp / log level prefix
    excerpt: str  # the report's lines as printed (timestamps kept), head line first


# Heads, most specific first: the first pattern that matches a message decides its kind.
_HEADS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("kasan", re.compile(r"BUG: KASAN: ")),
    ("soft_lockup", re.compile(r"(?:watchdog: )?BUG: soft lockup\b")),
    ("hard_lockup", re.compile(r"(?:(?:NMI )?watchdog: )?(?:CPU\d+: )?Watchdog detected hard LOCKUP\b")),
    ("rcu_stall", re.compile(r"(?:rcu: )?INFO: \S+ (?:self-detected stall|detected (?:expedited )?stalls?)\b")),
    ("hung_task", re.compile(r"INFO: task .+ blocked for more than \d+ seconds")),
    ("ubsan", re.compile(r"UBSAN: ")),
    ("panic", re.compile(r"Kernel panic - not syncing")),
    ("bug", re.compile(r"(?:kernel BUG at |BUG: )")),
    ("warning", re.compile(r"WARNING: ")),
    # die() headers: "Oops: 0000 [#1] ...", 6.1's "invalid opcode: 0000 [#1] ...", arm64's "Internal error: ..."
    ("oops", re.compile(r"(?:Oops\b|Internal error: |\S.*?: [0-9a-f]{4} \[#\d+\])")),
)

# die() header alone (used to merge it into a preceding BUG report).
_DIE_HEADER = re.compile(r"(?:Oops\b|Internal error: |\S.*?: [0-9a-f]{4} \[#\d+\])")

_END_MARKER = re.compile(r"---\[ end (?:trace|Kernel panic)")
_RULE = re.compile(r"={20,}\s*$")
_TASK_END = re.compile(r"\s*</TASK>\s*$")

# Lines that continue a report after a stack dump's </TASK> (registers, module list, markers ...).
_CONTINUATION = re.compile(
    r"(?:\s|<|---\[|Modules linked in|RIP:|Code:|RSP:|RAX:|RDX:|RBP:|R\d+:|FS:|CS:|CR2:|DR\d:|PKRU:|"
    r"Kernel Offset:|CPU: |Hardware name:|Call Trace:|note: |Sending NMI|NMI backtrace|Dumping ftrace|"
    r"task:|Fixing recursive fault|\?\s|irq event stamp:|hardirqs |softirqs |Unloaded tainted|---\[ end)"
)

_LEVEL = re.compile(r"<\d{1,2}>")
_TIMESTAMP = re.compile(r"\[\s*\d+\.\d+\]")
_CALLER = re.compile(r" ?\[\s*[TC]\d+\]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def _to_text(text: str | bytes | bytearray | None) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes | bytearray):
        return bytes(text).decode("utf-8", errors="replace")
    if not isinstance(text, str):
        return str(text)
    return text


def _clean(line: str) -> str:
    line = line.replace("\x00", "").replace("\r", "")
    if "\x1b" in line:
        line = _ANSI.sub("", line)
    return line


def _split(line: str) -> tuple[str, bool]:
    """(message, whether the line carries a console timestamp) for one cleaned console line."""
    rest = line
    m = _LEVEL.match(rest)
    if m:
        rest = rest[m.end() :]
    m = _TIMESTAMP.match(rest)
    if not m:
        m = _TIMESTAMP.search(rest)
    if not m:
        return rest, False
    rest = rest[m.end() :]
    c = _CALLER.match(rest)
    if c:
        rest = rest[c.end() :]
    if rest.startswith(" "):
        rest = rest[1:]
    return rest, True


def message_of(line: str) -> str:
    """The kernel message in one console line: log level, timestamp and caller id removed.

    A timestamp that appears mid-line (a kernel line printed after partial user output on the same
    console) starts the message. Lines without a timestamp are returned as they are.
    """
    return _split(_clean(line))[0]


def _head_kind(msg: str) -> str | None:
    for kind, pattern in _HEADS:
        if pattern.match(msg):
            return kind
    return None


def _compile_allowlist(allowlist: Iterable[str | re.Pattern[str]] | None) -> list[re.Pattern[str]]:
    out: list[re.Pattern[str]] = []
    for item in allowlist or ():
        if isinstance(item, re.Pattern):
            out.append(item)
            continue
        try:
            out.append(re.compile(str(item)))
        except re.error:
            out.append(re.compile(re.escape(str(item))))
    return out


def _report_end(msgs: Sequence[str], kinds: Sequence[str | None], start: int, max_lines: int) -> tuple[int, str]:
    """Index one past the report that starts at ``start``, and its final kind."""
    kind = kinds[start] or "bug"
    limit = min(len(msgs), start + max(1, max_lines))
    i = start + 1
    merged_oops = False
    head_msg = msgs[start]
    while i < limit:
        msg = msgs[i]
        if _END_MARKER.match(msg):
            return i + 1, _final_kind(kind, head_msg, merged_oops)
        if kind in ("kasan", "ubsan") and _RULE.match(msg):
            return i + 1, kind
        if kinds[i] is not None:
            if kind == "bug" and not merged_oops and _DIE_HEADER.match(msg):
                merged_oops = True
                i += 1
                continue
            return i, _final_kind(kind, head_msg, merged_oops)
        if _TASK_END.match(msg) and kind not in ("kasan", "ubsan"):
            nxt = i + 1
            if nxt >= len(msgs) or not _CONTINUATION.match(msgs[nxt]):
                return nxt, _final_kind(kind, head_msg, merged_oops)
        i += 1
    return limit, _final_kind(kind, head_msg, merged_oops)


def _final_kind(kind: str, head_msg: str, merged_oops: bool) -> str:
    if kind == "bug" and merged_oops and not head_msg.startswith("kernel BUG at"):
        return "oops"
    return kind


def scan(
    text: str | bytes | None,
    allowlist: Iterable[str | re.Pattern[str]] | None = None,
    *,
    max_lines: int = DEFAULT_MAX_LINES,
    require_timestamp: bool | None = None,
) -> tuple[Finding, ...]:
    """Find kernel reports in console ``text``.

    ``allowlist``: regexes (strings or compiled) searched in each finding's ``first_line``; a finding
    that matches any of them is dropped (known noise). An invalid regex string is used as a literal.
    ``max_lines`` caps each excerpt.
    ``require_timestamp``: only lines with a console timestamp can start a report, so that a guest
    program printing ``WARNING: ...`` on the same console is not taken for the kernel. The default
    (None) decides from the text: required when at least half of its non-empty lines are timestamped.
    """
    lines = [_clean(line) for line in _to_text(text).split("\n")]
    split = [_split(line) for line in lines]
    msgs = [msg for msg, _ in split]
    if require_timestamp is None:
        non_empty = [stamped for (msg, stamped), line in zip(split, lines, strict=True) if line.strip()]
        require_timestamp = bool(non_empty) and 2 * sum(non_empty) >= len(non_empty)
    kinds = [_head_kind(msg) if (stamped or not require_timestamp) else None for msg, stamped in split]
    allow = _compile_allowlist(allowlist)
    findings: list[Finding] = []
    i = 0
    n = len(lines)
    while i < n:
        if kinds[i] is None:
            i += 1
            continue
        end, final = _report_end(msgs, kinds, i, max_lines)
        first = msgs[i].rstrip()
        if not any(p.search(first) for p in allow):
            excerpt = "\n".join(line.rstrip() for line in lines[i:end]).rstrip("\n")
            findings.append(Finding(kind=final, line_no=i + 1, first_line=first, excerpt=excerpt))
        i = max(end, i + 1)
    return tuple(findings)


def find_panic(text: str | bytes | None, *, max_lines: int = DEFAULT_MAX_LINES) -> Finding | None:
    """The first ``Kernel panic - not syncing`` report in ``text`` (no allowlist applies), or None."""
    for finding in scan(text, max_lines=max_lines):
        if finding.kind == "panic":
            return finding
    return None


def guest_panicked(text: str | bytes | None) -> bool:
    """Whether the console shows the guest panicked (a panic head or its ``---[ end Kernel panic`` marker)."""
    for line in _to_text(text).split("\n"):
        msg = message_of(line)
        if msg.startswith("Kernel panic - not syncing") or msg.startswith("---[ end Kernel panic"):
            return True
    return False


def agent_lines(text: str | bytes | None) -> tuple[tuple[int, str], ...]:
    """``(line_no, message)`` of every ``harness-agent:`` line (the guest agent's kmsg log), in order."""
    out: list[tuple[int, str]] = []
    for idx, line in enumerate(_to_text(text).split("\n")):
        msg = message_of(line)
        pos = msg.find(AGENT_PREFIX)
        if pos >= 0:
            out.append((idx + 1, msg[pos:].rstrip()))
    return tuple(out)


def last_agent_line(text: str | bytes | None, before: int | None = None) -> str | None:
    """The last ``harness-agent:`` message before line ``before`` (1-based; default: anywhere), or None.

    With ``before=find_panic(text).line_no`` this names what the agent was doing when the guest died.
    """
    last: str | None = None
    for line_no, msg in agent_lines(text):
        if before is not None and line_no >= before:
            break
        last = msg
    return last


def summarize(findings: Iterable[Finding]) -> str:
    """One header line with counts per kind, then one line per finding (line number, kind, first line)."""
    items = list(findings)
    if not items:
        return "no kernel reports found"
    counts = Counter(f.kind for f in items)
    order = [k for k in KINDS if k in counts] + sorted(k for k in counts if k not in KINDS)
    parts = ", ".join(f"{counts[k]} {k}" for k in order)
    noun = "report" if len(items) == 1 else "reports"
    out = [f"{len(items)} kernel {noun}: {parts}"]
    for f in items:
        out.append(f"  line {f.line_no}: [{f.kind}] {f.first_line}")
    return "\n".join(out)
