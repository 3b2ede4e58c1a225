# SPDX-License-Identifier: GPL-2.0
"""Pure matching of expected messages (``__msg("...")``, in order, ``{{regex}}`` parts) in BPF verifier logs.

No I/O, no exceptions on odd logs. The matching rules are the kernel selftests' (tools/testing/selftests/
bpf/test_loader.c): expectations are searched one after another, each from where the previous one's
match ended; text outside ``{{ }}`` is literal, text inside is a regular expression (Python ``re``
syntax, which covers the POSIX extended syntax selftests use). A match may span lines.

The verifier log may be accompanied by libbpf's own log lines (the guest agent hands both back;
``bpftool -d`` prints libbpf's log with the verifier log embedded between ``-- BEGIN PROG LOAD LOG --``
and ``-- END PROG LOAD LOG --``). libbpf's lines come first in the searched text because libbpf logs
object preparation (BTF load, map creation) before it loads a program.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "ExpectationError",
    "MatchResult",
    "MessageMatch",
    "compile_expectation",
    "last_error",
    "match_messages",
    "split_libbpf_log",
]

CONTEXT_LINES = 20
_MIN_PARTIAL = 4


class ExpectationError(ValueError):
    """An expectation that cannot be compiled (unterminated ``{{``, invalid regex)."""


def compile_expectation(text: str) -> re.Pattern[str]:
    """Compile one expectation: literal text with ``{{regex}}`` parts. Raises :class:`ExpectationError`."""
    if not isinstance(text, str):
        raise ExpectationError(f"expectation is not a string: {text!r}")
    parts: list[str] = []
    pos = 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            parts.append(re.escape(text[pos:]))
            break
        end = text.find("}}", start + 2)
        if end < 0:
            raise ExpectationError(f"unterminated '{{{{' in expectation {text!r}")
        parts.append(re.escape(text[pos:start]))
        regex = text[start + 2 : end]
        try:
            re.compile(regex)
        except re.error as exc:
            raise ExpectationError(f"invalid regex {regex!r} in expectation {text!r}: {exc}") from None
        parts.append(f"(?:{regex})")
        pos = end + 2
    try:
        return re.compile("".join(parts))
    except re.error as exc:  # pragma: no cover - parts were checked one by one
        raise ExpectationError(f"invalid expectation {text!r}: {exc}") from None


def _first_literal(text: str) -> str:
    start = text.find("{{")
    return text if start < 0 else text[:start]


@dataclass(frozen=True)
class MessageMatch:
    """Where one expectation matched."""

    index: int  # 0-based position in the expectation list
    expectation: str
    line_no: int  # 1-based line of the searched text where the match starts
    text: str  # the matched text


@dataclass(frozen=True)
class MatchResult:
    """Outcome of :func:`match_messages`. True when every expectation matched in order."""

    ok: bool
    expectations: tuple[str, ...]
    matches: tuple[MessageMatch, ...]
    failed_index: int | None = None
    failed: str | None = None
    reason: str | None = None
    context: tuple[str, ...] = ()
    context_start: int = 1  # 1-based line number of context[0]
    log: str = field(default="", repr=False)  # the searched text (libbpf lines + verifier log)

    def __bool__(self) -> bool:
        return self.ok

    def explain(self) -> str:
        """A readable report for a failing test: what was expected, what matched, and nearby log lines."""
        n = len(self.expectations)
        if self.ok:
            return f"all {n} expected message(s) found in order"
        idx = self.failed_index if self.failed_index is not None else 0
        out = [f"expected message {idx + 1} of {n} not found: {self.failed!r}"]
        if self.reason:
            out.append(f"  {self.reason}")
        if self.matches:
            out.append("  matched before it:")
            for m in self.matches:
                out.append(f"    {m.index + 1}. {m.expectation!r} at line {m.line_no}")
        if self.context:
            last = self.context_start + len(self.context) - 1
            out.append(f"  log lines {self.context_start}-{last}:")
            width = len(str(last))
            for offset, line in enumerate(self.context):
                out.append(f"    {self.context_start + offset:>{width}}| {line}")
        elif not self.log.strip():
            out.append("  (the log is empty)")
        last_err = last_error(self.log)
        if last_err:
            out.append(f"  verifier's last error: {last_err}")
        return "\n".join(out)


def _to_text(value: str | bytes | Iterable[str] | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value
    try:
        return "\n".join(str(x).rstrip("\n") for x in value)
    except TypeError:
        return str(value)


def _normalize(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, max(0, pos)) + 1


def _window(lines: list[str], center: int, size: int = CONTEXT_LINES) -> tuple[tuple[str, ...], int]:
    """``size`` lines around 1-based line ``center``: (lines, first line number)."""
    if not lines:
        return (), 1
    half = size // 2
    start = max(1, center - half)
    end = min(len(lines), start + size - 1)
    start = max(1, end - size + 1)
    return tuple(lines[start - 1 : end]), start


def _tail(lines: list[str], size: int = CONTEXT_LINES) -> tuple[tuple[str, ...], int]:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    start = max(1, len(lines) - size + 1)
    return tuple(lines[start - 1 :]), start


def _best_partial(text: str, needle: str, pos: int) -> int | None:
    """Position of the longest prefix (at least _MIN_PARTIAL chars) of ``needle`` found in ``text[pos:]``."""
    best: int | None = None
    lo, hi = _MIN_PARTIAL, len(needle)
    # prefix presence is monotonic: if a prefix of length k is found, so is every shorter one
    while lo <= hi:
        mid = (lo + hi) // 2
        found = text.find(needle[:mid], pos)
        if found >= 0:
            best = found
            lo = mid + 1
        else:
            hi = mid - 1
    return best


def match_messages(
    log: str | bytes | Iterable[str] | None,
    expected: Sequence[str],
    *,
    context_lines: int = CONTEXT_LINES,
) -> MatchResult:
    """Check that every string of ``expected`` occurs in one log (the verifier's, or libbpf's for
    ``__libbpf_msg``), in order (selftests' ``__msg`` rules). The two logs are never searched together: a
    message libbpf printed before the verifier ran proves nothing about the verifier."""
    text = _normalize(_to_text(log))
    if isinstance(expected, str):
        expected = [expected]
    exps = tuple(str(e) for e in (expected or ()))
    lines = text.split("\n")
    matches: list[MessageMatch] = []
    pos = 0
    for idx, exp in enumerate(exps):
        try:
            pattern = compile_expectation(_normalize(exp))
        except ExpectationError as exc:
            ctx, start = _tail(lines, context_lines)
            return MatchResult(False, exps, tuple(matches), idx, exp, str(exc), ctx, start, text)
        m = pattern.search(text, pos)
        if m is not None:
            matches.append(MessageMatch(idx, exp, _line_of(text, m.start()), m.group(0)))
            pos = m.end()
            continue
        after = f"after line {_line_of(text, pos)}" if matches else "anywhere in the log"
        earlier = pattern.search(text) if matches else None
        if earlier is not None:
            line_no = _line_of(text, earlier.start())
            reason = (
                f"it occurs at line {line_no}, but not after message {len(matches)}'s match "
                f"at line {matches[-1].line_no} (messages must appear in order)"
            )
            ctx, start = _window(lines, line_no, context_lines)
        else:
            partial = _best_partial(text, _first_literal(_normalize(exp)), pos)
            if partial is not None:
                line_no = _line_of(text, partial)
                reason = f"not found {after}; closest partial match at line {line_no}"
                ctx, start = _window(lines, line_no, context_lines)
            else:
                reason = f"not found {after}"
                ctx, start = _tail(lines, context_lines)
        return MatchResult(False, exps, tuple(matches), idx, exp, reason, ctx, start, text)
    return MatchResult(True, exps, tuple(matches), log=text)


_BEGIN = re.compile(r"-- BEGIN PROG LOAD LOG --\s*$")
_END = re.compile(r"^(?:libbpf: )?-- END PROG LOAD LOG --\s*$")


def split_libbpf_log(text: str | bytes | Iterable[str] | None) -> tuple[str, str]:
    """Split libbpf output (e.g. ``bpftool -d prog load``) into (libbpf's own lines, the verifier log).

    The verifier log is what libbpf printed between ``-- BEGIN PROG LOAD LOG --`` and
    ``-- END PROG LOAD LOG --`` (several blocks are joined). A block cut off before its END line runs to
    the end of the text.
    """
    own: list[str] = []
    vlog: list[str] = []
    inside = False
    for line in _normalize(_to_text(text)).split("\n"):
        if inside:
            if _END.match(line):
                inside = False
            else:
                vlog.append(line)
            continue
        if _BEGIN.search(line):
            inside = True
            own.append(line)
            continue
        own.append(line)
    return "\n".join(own).strip("\n"), "\n".join(vlog).strip("\n")


# Lines of the verifier's instruction trace / state dumps, which are not error messages.
_TRACE = re.compile(
    r"^(?:\d+: |\d+:\s*$|; |from \d+ to \d+|R\d+(?:_\w+)?=|last_idx|mark_precise|frame\d|regs=|parent |"
    r"func#\d|Func#|Validating|\s|Live regs|Global function|propagating|caller:|callee:|"
    r"processed \d+ insns|verification time|stack depth|libbpf: |-- (?:BEGIN|END) PROG LOAD LOG --)"
)
_PROCESSED = re.compile(r"^processed \d+ insns")
_STATS = re.compile(r"^(?:verification time \d+|stack depth \d+|\s*$)")


def last_error(log: str | bytes | Iterable[str] | None, max_lines: int = 3) -> str:
    """The verifier's final error message: the non-trace lines just before ``processed N insns``
    (or before the end of the log), joined with newlines; "" when there is none.

    ``log`` is a verifier log, or libbpf output with one embedded (``-- BEGIN PROG LOAD LOG --``);
    libbpf output without one (the load failed before the verifier ran) gives "".
    """
    lines = [line.rstrip() for line in _normalize(_to_text(log)).split("\n")]
    if any(_BEGIN.search(line) for line in lines):
        lines = split_libbpf_log("\n".join(lines))[1].split("\n")
    elif any(line.startswith("libbpf: ") for line in lines):
        return ""  # libbpf output without a verifier log: the load failed before the verifier ran
    end = len(lines)
    for i in range(len(lines) - 1, -1, -1):
        if _PROCESSED.match(lines[i]):
            end = i
            break
    found: list[str] = []
    i = end - 1
    while i >= 0 and _STATS.match(lines[i]):
        i -= 1
    while i >= 0 and len(found) < max_lines:
        line = lines[i]
        if not line.strip() or _TRACE.match(line):
            break
        found.append(line)
        i -= 1
    return "\n".join(reversed(found))
