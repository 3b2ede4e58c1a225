# SPDX-License-Identifier: GPL-2.0
"""test_loader's expected-message patterns: verbatim text with {{POSIX ERE}} parts, matched on a log as
validate_msgs() matches them (positives in order, negatives in the span between them), by libc's own regex engine
(regcomp/regexec through ctypes, as test_loader calls them)."""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from dataclasses import dataclass, field

# compile_regex() builds the regex in a 256-byte buffer and stops when fewer than 3 bytes are left: a pattern
# whose escaped form does not fit is an error ("Regexp too long").
REGEX_BUF = 256
_ERE_SPECIAL = ".[]\\()*+?{}|^$"  # what compile_regex escapes in the verbatim parts
# <regex.h> (glibc): cflags, and regex_t's size on LP64 (64 bytes; room for more is given).
REG_EXTENDED, REG_NEWLINE = 1, 4
REG_NOMATCH = 1
_REGEX_T_ROOM = 256


class PatternError(ValueError):
    """A pattern test_loader itself refuses: too long, an open "{{", or a regex regcomp() rejects."""


class _RegMatch(ctypes.Structure):
    _fields_ = [("rm_so", ctypes.c_int), ("rm_eo", ctypes.c_int)]  # glibc's regoff_t is int


_libc: ctypes.CDLL | None = None
_libc_lock = threading.Lock()


def libc() -> ctypes.CDLL:
    """The C library whose regcomp()/regexec() test_progs links (glibc here)."""
    global _libc
    with _libc_lock:
        if _libc is None:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            lib.regcomp.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
            lib.regcomp.restype = ctypes.c_int
            lib.regexec.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                    ctypes.POINTER(_RegMatch), ctypes.c_int]
            lib.regexec.restype = ctypes.c_int
            lib.regerror.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
            lib.regerror.restype = ctypes.c_size_t
            lib.regfree.argtypes = [ctypes.c_void_p]
            lib.regfree.restype = None
            _libc = lib
        return _libc


class PosixRegex:
    """A regex_t compiled by regcomp(pattern, REG_EXTENDED | REG_NEWLINE), freed with the object."""

    def __init__(self, source: bytes) -> None:
        self._lib = libc()
        self._buf = ctypes.create_string_buffer(_REGEX_T_ROOM)
        err = self._lib.regcomp(self._buf, source, REG_EXTENDED | REG_NEWLINE)
        self._ok = err == 0
        if err:
            msg = ctypes.create_string_buffer(256)
            self._lib.regerror(err, self._buf, msg, len(msg))
            raise PatternError(msg.value.decode(errors="replace"))

    def search(self, text: bytes) -> tuple[int, int] | None:
        """regexec() on `text` as its whole string: (rm_so, rm_eo) of the leftmost-longest match, or None."""
        m = _RegMatch()
        err = self._lib.regexec(self._buf, text, 1, ctypes.byref(m), 0)
        if err == REG_NOMATCH:
            return None
        if err:
            raise PatternError(f"regexec failed ({err})")
        return m.rm_so, m.rm_eo

    def __del__(self) -> None:
        if getattr(self, "_ok", False):
            self._lib.regfree(self._buf)


@dataclass(frozen=True)
class Pattern:
    """One __msg/__not_msg/__xlated/__jited/__stderr/__stdout pattern. `text` is as written; a pattern with "{{" is
    a regex (`regex`: the compiled buffer compile_regex() builds), otherwise a substring. `on_next_line`: it must
    match on the line after the previous match's (the disassembly and stream tags); `negative`: it must not match
    (__not_msg)."""

    text: str
    regex: PosixRegex | None = field(default=None, compare=False, repr=False)
    source: bytes = b""  # what regcomp() got
    on_next_line: bool = False
    negative: bool = False

    @property
    def is_regex(self) -> bool:
        return self.regex is not None

    def find(self, log: bytes, pos: int) -> tuple[int, int] | None:
        """(start, end) of the first match in log[pos:], as strstr()/regexec() on that suffix find it."""
        if self.regex is None:
            at = log.find(self.text.encode(), pos)
            return None if at < 0 else (at, at + len(self.text.encode()))
        found = self.regex.search(log[pos:] if pos else log)
        return None if found is None else (found[0] + pos, found[1] + pos)


def compile_pattern(text: str, *, on_next_line: bool = False, negative: bool = False) -> Pattern:
    """A pattern as __push_msg() takes it: a regex when it contains "{{", else a substring."""
    if "{{" not in text:
        return Pattern(text, on_next_line=on_next_line, negative=negative)
    source = regex_source(text)
    try:
        regex = PosixRegex(source)
    except PatternError as e:
        raise PatternError(f"Regexp compilation error in '{source.decode(errors='replace')}': '{e}'") from None
    return Pattern(text, regex, source, on_next_line, negative)


def regex_source(text: str) -> bytes:
    """compile_regex()'s buffer: the verbatim parts escaped, the {{...}} parts as they are, with its limits
    (PatternError when it would not fit its 256 bytes, or a "{{" is never closed)."""
    raw = text.encode()
    out = bytearray()
    in_regex, i = False, 0
    while i < len(raw) and len(out) < REGEX_BUF - 2:
        if not in_regex and raw.startswith(b"{{", i):
            in_regex, i = True, i + 2
            continue
        if in_regex and raw.startswith(b"}}", i):
            in_regex, i = False, i + 2
            continue
        if not in_regex and chr(raw[i]) in _ERE_SPECIAL:
            out.append(ord("\\"))
        out.append(raw[i])
        i += 1
    if i < len(raw):
        raise PatternError(f"Regexp too long: '{text}'")
    if in_regex:
        raise PatternError(f"Regexp has open '{{{{' but no closing '}}}}': '{text}'")
    return bytes(out)


@dataclass(frozen=True)
class MatchFailure:
    """Why a list of patterns did not match: the index of the first pattern that failed, and how."""

    index: int
    pattern: Pattern
    wrong_line: bool = False
    expected_line: int = -1
    actual_line: int = -1

    def describe(self, patterns: tuple[Pattern, ...] | list[Pattern]) -> str:
        lines = []
        for j, p in enumerate(patterns[:self.index + 1]):
            if j < self.index:
                status = "MATCHED   "
            elif self.wrong_line:
                status = "WRONG LINE"
            else:
                status = "UNEXPECTED" if p.negative else "EXPECTED  "
            lines.append(f"{status} {' REGEX' if p.is_regex else 'SUBSTR'}: '{p.text}'")
        if self.wrong_line:
            lines.append(f"expecting match at line {self.expected_line}, actual match is at line {self.actual_line}")
        return "\n".join(lines)


def match_in_order(log: str | bytes, patterns: tuple[Pattern, ...] | list[Pattern]) -> MatchFailure | None:
    """validate_msgs(): each positive pattern is searched from where the previous positive match ended (a miss
    does not move on); a pattern marked on_next_line must match on the line right after the previous positive
    match's line. A run of negative patterns between two positive ones is searched in the span from the first's
    end to the second's start (with the first negative pattern of the run, for each of them: test_loader's
    match_negative_msgs() does so). None when everything holds, else the first pattern that does not."""
    text = log.encode("utf-8", "surrogateescape") if isinstance(log, str) else log
    n = len(patterns)
    starts: list[int | None] = [None] * n
    ends: list[int | None] = [None] * n
    lines = [0] * n
    pos, prev, line = 0, 0, 0
    for i, pat in enumerate(patterns):  # match_positive_msgs()
        if pat.negative:
            continue
        found = pat.find(text, pos)
        if found is not None:
            line += text.count(b"\n", prev, found[0])
            starts[i], ends[i], lines[i] = found[0], found[1], line
            prev, pos = found[0], found[1]
    span_start, i = 0, 0
    while i < n:  # match_negative_msgs()
        if not patterns[i].negative:
            end = ends[i]
            span_start = end if end is not None else span_start
            i += 1
            continue
        nxt = next((k for k in range(i + 1, n) if not patterns[k].negative), n)
        span_end = len(text) if nxt == n else starts[nxt]
        for j in range(i, nxt):
            found = patterns[i].find(text, span_start)
            if found is not None and span_end is not None and found[1] <= span_end:
                starts[j], ends[j] = found
        i = nxt
    prev_line: int | None = None
    for i, pat in enumerate(patterns):
        no_match = not pat.negative and starts[i] is None
        wrong = (not pat.negative and pat.on_next_line and prev_line is not None and starts[i] is not None
                 and prev_line + 1 != lines[i])
        if no_match or wrong or (pat.negative and starts[i] is not None):
            return MatchFailure(i, pat, wrong, (prev_line or 0) + 1, lines[i])
        if not pat.negative:
            prev_line = lines[i]
    return None
