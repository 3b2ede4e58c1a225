# SPDX-License-Identifier: GPL-2.0
"""test_loader's expected-message patterns: verbatim text with {{POSIX ERE}} parts, matched in order on a log."""

from __future__ import annotations

import re
from dataclasses import dataclass

# compile_regex() builds the regex in a 256-byte buffer and stops when fewer than 3 bytes are left: a pattern
# whose escaped form does not fit is an error ("Regexp too long").
REGEX_BUF = 256
_ERE_SPECIAL = ".[]\\()*+?{}|^$"  # what compile_regex escapes in the verbatim parts
_POSIX_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "space": " \\t\\n\\r\\f\\v", "blank": " \\t", "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "print": " -~", "graph": "!-~", "cntrl": "\\x00-\\x1f\\x7f", "xdigit": "0-9A-Fa-f", "word": "a-zA-Z0-9_",
}
# GNU regex escapes outside brackets; any other escaped character stands for itself.
_GNU_ESCAPES = {"w": r"\w", "W": r"\W", "s": r"\s", "S": r"\S", "b": r"\b", "B": r"\B", "<": r"\b(?=\w)",
                ">": r"\b(?<=\w)", "`": r"\A", "'": r"\Z"}


class PatternError(ValueError):
    """A pattern test_loader itself refuses: too long, an open "{{", or a regex regcomp() rejects."""


@dataclass(frozen=True)
class Pattern:
    """One __msg/__xlated/__jited pattern. `text` is as written; a pattern with "{{" is a regex (`regex` its
    Python translation, `alternation` whether it may match different lengths POSIX would pick longest of),
    otherwise a plain substring. `on_next_line`: __xlated/__jited lines must follow the previous match's line."""

    text: str
    regex: re.Pattern[str] | None = None
    alternation: bool = False
    on_next_line: bool = False

    @property
    def is_regex(self) -> bool:
        return self.regex is not None

    def find(self, log: str, pos: int) -> tuple[int, int] | None:
        """(start, end) of the first match in log[pos:], as strstr()/regexec() on that suffix find it."""
        if self.regex is None:
            at = log.find(self.text, pos)
            return None if at < 0 else (at, at + len(self.text))
        # regexec() gets the suffix as its whole string: "^", "\b" and "\A" see its first character as the
        # start of the string even mid-line, which a search from `pos` in the full log would not.
        rest = log[pos:] if pos else log
        m = self.regex.search(rest)
        if m is None:
            return None
        start, end = m.span()
        if self.alternation:  # POSIX: of the matches at the leftmost start, the longest (within the line)
            line_end = rest.find("\n", end)
            line_end = len(rest) if line_end < 0 else line_end
            for cand in range(line_end, end, -1):
                if self.regex.fullmatch(rest, start, cand):
                    end = cand
                    break
        return start + pos, end + pos


def compile_pattern(text: str, *, on_next_line: bool = False) -> Pattern:
    """A pattern as __push_msg() takes it: a regex when it contains "{{", else a substring."""
    if "{{" not in text:
        return Pattern(text, on_next_line=on_next_line)
    parts = split_pattern(text)
    pieces, alternation = [], False
    for verbatim, piece in parts:
        if verbatim:
            pieces.append(re.escape(piece))
        else:
            translated, alt = translate_ere(piece)
            pieces.append(translated)
            alternation |= alt
    source = "".join(pieces)
    try:
        regex = re.compile(source, re.MULTILINE)
    except re.error as e:
        raise PatternError(f"Regexp compilation error in {text!r}: {e}") from None
    return Pattern(text, regex, alternation, on_next_line)


def split_pattern(text: str) -> list[tuple[bool, str]]:
    """compile_regex()'s scan: [(verbatim?, text)], with its limits (PatternError when the escaped form would not
    fit its buffer, or a "{{" is never closed)."""
    parts: list[tuple[bool, str]] = []
    cur: list[str] = []
    in_regex, used, i = False, 0, 0
    while i < len(text) and used < REGEX_BUF - 2:
        if not in_regex and text.startswith("{{", i):
            parts.append((True, "".join(cur)))
            cur, in_regex, i = [], True, i + 2
            continue
        if in_regex and text.startswith("}}", i):
            parts.append((False, "".join(cur)))
            cur, in_regex, i = [], False, i + 2
            continue
        used += 2 if not in_regex and text[i] in _ERE_SPECIAL else 1
        cur.append(text[i])
        i += 1
    if i < len(text):
        raise PatternError(f"Regexp too long: {text!r}")
    if in_regex:
        raise PatternError(f"Regexp has open '{{{{' but no closing '}}}}': {text!r}")
    parts.append((True, "".join(cur)))
    return [(v, p) for v, p in parts if p or not v]


def translate_ere(ere: str) -> tuple[str, bool]:
    """A POSIX extended regex (glibc, REG_EXTENDED | REG_NEWLINE) as a Python regex for re.MULTILINE: '.' and a
    negated bracket never match a newline, a backslash inside brackets is literal, [:class:] names expand,
    GNU's \\w \\s \\b \\< \\> work and any other escaped character is itself. Returns (regex, has alternation)."""
    out: list[str] = []
    i, n, alternation = 0, len(ere), False
    while i < n:
        ch = ere[i]
        if ch == "\\":
            if i + 1 >= n:
                raise PatternError(f"Regexp ends with a backslash: {ere!r}")
            nxt = ere[i + 1]
            if nxt in _GNU_ESCAPES:
                out.append(_GNU_ESCAPES[nxt])
            elif nxt.isdigit() and nxt != "0":
                out.append("\\" + nxt)  # a back-reference
            else:
                out.append(re.escape(nxt))
            i += 2
        elif ch == "[":
            cls, i = _bracket(ere, i)
            out.append(cls)
        elif ch == "|":
            alternation = True
            out.append("|")
            i += 1
        elif ch == "{":
            close = ere.find("}", i)
            body = ere[i + 1:close] if close > 0 else ""
            if close < 0 or not re.fullmatch(r"\d+(,\d*)?", body):
                raise PatternError(f"Regexp has an invalid interval at {ere[i:]!r}: {ere!r}")
            out.append(ere[i:close + 1])
            i = close + 1
        elif ch == "}":
            out.append(re.escape(ch))
            i += 1
        elif ch in "().*+?^$":
            out.append(ch)
            i += 1
        else:
            out.append(re.escape(ch))
            i += 1
    return "".join(out), alternation


def _bracket(ere: str, start: int) -> tuple[str, int]:
    """A bracket expression starting at ere[start] == "[": its Python class and the index after it."""
    i, n = start + 1, len(ere)
    negate = i < n and ere[i] == "^"
    if negate:
        i += 1
    items: list[str] = []
    first = True
    while i < n and (first or ere[i] != "]"):
        first = False
        if ere.startswith("[:", i):
            close = ere.find(":]", i + 2)
            name = ere[i + 2:close] if close > 0 else ""
            if name not in _POSIX_CLASSES:
                raise PatternError(f"Regexp has an unknown character class [:{name}:]: {ere!r}")
            items.append(_POSIX_CLASSES[name])
            i = close + 2
        elif ere.startswith("[=", i) or ere.startswith("[.", i):
            close = ere.find(ere[i + 1] + "]", i + 2)
            if close < 0:
                raise PatternError(f"Regexp has an unterminated [{ere[i + 1]} in a bracket: {ere!r}")
            items.append(re.escape(ere[i + 2:close]))
            i = close + 2
        elif ere[i] == "-" and items and i + 1 < n and ere[i + 1] != "]":
            items.append("-")
            i += 1
        else:
            items.append(_class_char(ere[i]))
            i += 1
    if i >= n:
        raise PatternError(f"Regexp has an unterminated bracket expression: {ere!r}")
    body = "".join(items)
    if negate:
        return f"[^{body}\\n]", i + 1  # REG_NEWLINE: a non-matching list never matches a newline
    return f"[{body}]", i + 1


def _class_char(ch: str) -> str:
    return "\\" + ch if ch in "\\]^-[" else ch


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
            status = "MATCHED   " if j < self.index else ("WRONG LINE" if self.wrong_line else "EXPECTED  ")
            lines.append(f"{status} {' REGEX' if p.is_regex else 'SUBSTR'}: {p.text!r}")
        if self.wrong_line:
            lines.append(f"expecting match at line {self.expected_line}, actual match is at line {self.actual_line}")
        return "\n".join(lines)


def match_in_order(log: str, patterns: tuple[Pattern, ...] | list[Pattern]) -> MatchFailure | None:
    """validate_msgs(): each pattern is searched from where the previous match ended; a pattern marked
    on_next_line must match on the line right after the previous match's line. None when all match."""
    pos, prev_line, line, counted = 0, -1, 0, 0
    for i, pat in enumerate(patterns):
        found = pat.find(log, pos)
        if found is None:
            return MatchFailure(i, pat)
        start, end = found
        line += log.count("\n", counted, start)
        counted = start
        if pat.on_next_line and prev_line >= 0 and prev_line + 1 != line:
            return MatchFailure(i, pat, True, prev_line + 1, line)
        prev_line, pos = line, end
    return None
