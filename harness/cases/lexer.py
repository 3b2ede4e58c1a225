# SPDX-License-Identifier: GPL-2.0
"""A C lexer for case files: tokens with line numbers, decoded string literals, matched brackets."""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.errors import CaseError

_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_RE = re.compile(r"[0-9][0-9A-Za-z_.]*")


@dataclass(frozen=True)
class Tok:
    kind: str  # "id", "str", "num", "chr", "p"
    text: str
    line: int
    value: str = ""  # decoded string literal


_SIMPLE_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "0": "\0",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "?": "?",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
}


def _decode_c_string(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < len(body) else ""
        if nxt == "x":
            m = re.match(r"[0-9A-Fa-f]+", body[i + 2 :])
            if m:
                out.append(chr(int(m.group(0), 16) & 0xFF))
                i += 2 + m.end()
                continue
        if nxt in "01234567" and nxt:
            m = re.match(r"[0-7]{1,3}", body[i + 1 :])
            assert m
            out.append(chr(int(m.group(0), 8) & 0xFF))
            i += 1 + m.end()
            continue
        out.append(_SIMPLE_ESCAPES.get(nxt, nxt))
        i += 2
    return "".join(out)


def _skip_block_comment(text: str, i: int, line: int, path: str) -> tuple[int, int]:
    """Past the /* ... */ that starts at i: the index after it and the line number there."""
    end = text.find("*/", i + 2)
    if end < 0:
        raise CaseError(f"{path}:{line}: comment '/*' never closes. Close it with '*/'.")
    return end + 2, line + text.count("\n", i, end)


def _skip_preprocessor_line(text: str, i: int, line: int, path: str) -> tuple[int, int]:
    """Past a preprocessor line, with backslash continuations; comments in it are skipped along.

    The index of the newline that ends it (or the end of text) and the line number there."""
    n = len(text)
    while i < n and text[i] != "\n":
        if text.startswith("\\\n", i):
            line += 1
            i += 2
            continue
        if text.startswith("/*", i):
            i, line = _skip_block_comment(text, i, line, path)
            continue
        i += 1
    return i, line


def _quoted(text: str, i: int, line: int, path: str) -> tuple[Tok, int, int]:
    """The string or character literal that opens at i: its token, the index after it and the line number there."""
    c, n = text[i], len(text)
    start_line = line
    j = i + 1
    while j < n and text[j] != c:
        if text[j] == "\\" and j + 1 < n:
            if text[j + 1] == "\n":
                line += 1
            j += 2
            continue
        if text[j] == "\n":
            break
        j += 1
    if j >= n or text[j] != c:
        what = "string literal" if c == '"' else "character literal"
        raise CaseError(
            f"{path}:{start_line}: unbalanced quotes: the {what} starting with {c} on this line never "
            f"closes. Close it on the same line (write \\{c} for a literal {c} inside it)."
        )
    body = text[i + 1 : j].replace("\\\n", "")
    if c == '"':
        tok = Tok("str", text[i : j + 1], start_line, _decode_c_string(body))
    else:
        tok = Tok("chr", text[i : j + 1], start_line)
    return tok, j + 1, line


def _skip_blank(text: str, i: int, line: int, path: str) -> tuple[int, int] | None:
    """Past the whitespace, line continuation or comment at i (not a newline): index and line there; None if none."""
    c = text[i]
    if c in " \t\r\f\v":
        return i + 1, line
    if c == "\\" and text.startswith("\\\n", i):
        return i + 2, line + 1
    if text.startswith("//", i):
        end = text.find("\n", i)
        return (len(text) if end < 0 else end), line
    if text.startswith("/*", i):
        return _skip_block_comment(text, i, line, path)
    return None


def tokenize(text: str, path: str) -> list[Tok]:
    toks: list[Tok] = []
    i, n, line = 0, len(text), 1
    at_line_start = True
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
            at_line_start = True
            continue
        skipped = _skip_blank(text, i, line, path)
        if skipped is not None:
            i, line = skipped
            continue
        if c == "#" and at_line_start:
            i, line = _skip_preprocessor_line(text, i, line, path)
            continue
        at_line_start = False
        if c == '"' or c == "'":
            tok, i, line = _quoted(text, i, line, path)
            toks.append(tok)
            continue
        m = _IDENT_RE.match(text, i) or _NUMBER_RE.match(text, i)
        if m:
            toks.append(Tok("id" if m.re is _IDENT_RE else "num", m.group(0), line))
            i = m.end()
            continue
        toks.append(Tok("p", c, line))
        i += 1
    return toks


PAIRS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {v: k for k, v in PAIRS.items()}


def match_brackets(toks: list[Tok], path: str) -> dict[int, int]:
    """Map each opening bracket's index to its closing one; CaseError on any imbalance."""
    stack: list[int] = []
    match: dict[int, int] = {}
    for idx, t in enumerate(toks):
        if t.kind != "p":
            continue
        if t.text in PAIRS:
            stack.append(idx)
        elif t.text in _CLOSERS:
            if not stack:
                raise CaseError(
                    f"{path}:{t.line}: unbalanced parentheses: '{t.text}' closes nothing. "
                    f"Remove it or add the matching '{_CLOSERS[t.text]}'."
                )
            opener = toks[stack[-1]]
            if PAIRS[opener.text] != t.text:
                raise CaseError(
                    f"{path}:{t.line}: unbalanced parentheses: '{t.text}' here, but the innermost open bracket is "
                    f"'{opener.text}' from line {opener.line}. Close that one first with '{PAIRS[opener.text]}'."
                )
            match[stack.pop()] = idx
    if stack:
        opener = toks[stack[-1]]
        raise CaseError(
            f"{path}:{opener.line}: unbalanced parentheses: '{opener.text}' opened on this line never closes. "
            f"Add the matching '{PAIRS[opener.text]}'."
        )
    return match
