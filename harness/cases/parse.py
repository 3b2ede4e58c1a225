# SPDX-License-Identifier: GPL-2.0
"""Parse a case file: find its SEC programs and their annotations in the C source, validate each into a CaseFile."""

from __future__ import annotations

import difflib
import errno as _errno
import re
from dataclasses import dataclass, field
from pathlib import Path

from harness.cases.annotations import ANNOTATIONS, BPF_MISC_ONLY, Spec, known_list
from harness.cases.lexer import PAIRS, Tok, match_brackets, tokenize
from harness.cases.model import Annotation, CaseFile
from harness.cases.validate import build_program
from harness.errors import CaseError

_INT_TYPE_RE = re.compile(r"^__(?:u|s|be|le)(?:8|16|32|64)$")
_QUALIFIERS = frozenset(
    "__attribute__ __always_inline __noinline __weak __hidden __used __inline __inline__ __extension__ "
    "__restrict __restrict__ __volatile__ __const __signed__ __naked __int128".split()
)


_Program = tuple[str, str, int, list[Annotation], list[Tok]]


@dataclass
class _Scan:
    """What one chunk holds at its top level."""

    anns: list[Annotation] = field(default_factory=list)
    section: str | None = None
    section_line: int = 0
    groups: list[int] = field(default_factory=list)  # plain paren groups at chunk level (parameter lists)
    last_group_at_ann: list[tuple[int, Annotation]] = field(default_factory=list)  # (len(groups) then, annotation)


class _Parser:
    def __init__(self, text: str, path: str) -> None:
        self.path = path
        self.toks = tokenize(text, path)
        self.match = match_brackets(self.toks, path)
        self.rmatch = {v: k for k, v in self.match.items()}

    def err(self, line: int, message: str) -> CaseError:
        return CaseError(f"{self.path}:{line}: {message}")

    # chunks: top-level declarations (ending in ';') and function definitions (ending in a body)
    def chunks(self) -> list[tuple[int, int, int | None]]:
        """[(start, end_exclusive_of_prefix, body_open_index or None)]."""
        out: list[tuple[int, int, int | None]] = []
        toks, i, start = self.toks, 0, 0
        while i < len(toks):
            t = toks[i]
            if t.kind == "p" and t.text == ";":
                out.append((start, i, None))
                i += 1
                start = i
                continue
            if t.kind == "p" and t.text == "{":
                close = self.match[i]
                if self._is_function_body(i, start):
                    out.append((start, i, i))
                    i = close + 1
                    start = i
                    continue
                i = close + 1
                continue
            if t.kind == "p" and t.text in "([":
                i = self.match[i] + 1
                continue
            i += 1
        if start < len(toks):
            out.append((start, len(toks), None))
        return out

    def _is_function_body(self, brace: int, start: int) -> bool:
        """Is the '{' at `brace` a function body, i.e. preceded by a parameter list (possibly followed by
        attributes or misplaced annotations)?"""
        j = brace - 1
        while j >= start:
            t = self.toks[j]
            if t.kind == "p" and t.text == ")":
                opener = self.rmatch[j]
                before = self.toks[opener - 1] if opener - 1 >= start else None
                if (
                    before is not None
                    and before.kind == "id"
                    and (before.text in ANNOTATIONS or before.text == "__attribute__")
                ):
                    j = opener - 2
                    continue
                return True
            if t.kind == "id" and (t.text in ANNOTATIONS or t.text in _QUALIFIERS):
                j -= 1
                continue
            return False
        return False

    def group_args(self, open_idx: int) -> list[list[Tok]]:
        """Top-level comma-separated token lists inside the group opened at open_idx."""
        close = self.match[open_idx]
        args: list[list[Tok]] = []
        cur: list[Tok] = []
        j = open_idx + 1
        while j < close:
            t = self.toks[j]
            if t.kind == "p" and t.text in PAIRS:
                end = self.match[j]
                cur.extend(self.toks[j : end + 1])
                j = end + 1
                continue
            if t.kind == "p" and t.text == ",":
                args.append(cur)
                cur = []
            else:
                cur.append(t)
            j += 1
        if cur or args:
            args.append(cur)
        return args

    def annotation(self, idx: int) -> tuple[Annotation, int]:
        """Parse the annotation whose name is at idx; returns it and the index after it."""
        tok = self.toks[idx]
        spec = ANNOTATIONS[tok.text]
        nxt = self.toks[idx + 1] if idx + 1 < len(self.toks) else None
        has_group = nxt is not None and nxt.kind == "p" and nxt.text == "("
        if spec.kind == "flag":
            if has_group:
                raise self.err(tok.line, f"{tok.text} takes no arguments. Write it alone: {spec.example}")
            return Annotation(tok.text, (), tok.line), idx + 1
        if not has_group:
            raise self.err(tok.line, f"{tok.text} needs an argument list. Write e.g. {spec.example}")
        raw_args = self.group_args(idx + 1)
        after = self.match[idx + 1] + 1
        if not raw_args or raw_args == [[]]:
            raise self.err(tok.line, f"{tok.text}() has no argument. Write e.g. {spec.example}")
        values: list[str] = []
        for pos, arg in enumerate(raw_args, 1):
            if not arg:
                raise self.err(
                    tok.line, f"argument {pos} of {tok.text} is empty (stray comma?). Write e.g. {spec.example}"
                )
            if spec.kind == "int":
                values.append(self._int_arg(tok, arg, spec))
                continue
            if any(a.kind != "str" for a in arg):
                shown = " ".join(a.text for a in arg)
                raise self.err(
                    arg[0].line,
                    f"argument {pos} of {tok.text} is `{shown}`, not a string literal. Annotations are read from the "
                    f"source text without the preprocessor, so write the text itself in quotes, e.g. {spec.example}",
                )
            values.append("".join(a.value for a in arg))
        if spec.kind in ("str", "int") and len(values) != 1:
            raise self.err(tok.line, f"{tok.text} takes exactly one argument, got {len(values)}. Write {spec.example}")
        if spec.kind == "version_str" and len(values) != 2:
            raise self.err(
                tok.line,
                f"{tok.text} takes a kernel version and a message, got {len(values)} argument(s). Write {spec.example}",
            )
        return Annotation(tok.text, tuple(values), tok.line), after

    def _int_arg(self, tok: Tok, arg: list[Tok], spec: Spec) -> str:
        text = "".join(a.text for a in arg)
        if tok.text == "__expect_errno" and len(arg) == 1 and arg[0].kind == "id":
            code = getattr(_errno, arg[0].text, None)
            if arg[0].text.startswith("E") and isinstance(code, int):
                return str(code)
            raise self.err(tok.line, f"__expect_errno({text}): unknown errno name. Write a number or e.g. EPERM.")
        if len(arg) == 1 and arg[0].kind == "num" and re.fullmatch(r"[0-9]+", arg[0].text):
            return arg[0].text
        if len(arg) == 2 and arg[0].text == "-" and tok.text == "__expect_errno":
            raise self.err(
                tok.line,
                f"__expect_errno({text}): errno values are positive (a hook's -EPERM is errno 1). "
                f"Write __expect_errno({arg[1].text}).",
            )
        hint = f"{tok.text}({arg[0].value})" if arg[0].kind == "str" else spec.example
        raise self.err(tok.line, f"{tok.text}({text}) needs a plain decimal integer. Write {hint}")

    def unknown(self, tok: Tok) -> CaseError:
        if tok.text in BPF_MISC_ONLY:
            return self.err(
                tok.line,
                f"{tok.text} is a bpf_misc.h annotation this harness does not support. Known annotations: "
                f"{known_list()} (documented in cases/harness.h).",
            )
        close = difflib.get_close_matches(tok.text, list(ANNOTATIONS), n=1)
        hint = f"Did you mean {close[0]}? " if close else ""
        return self.err(
            tok.line,
            f"unknown annotation {tok.text}. {hint}Known annotations: {known_list()} (documented in cases/harness.h).",
        )

    def parse(self) -> list[_Program]:
        """[(name, section, line, annotations, body tokens)] for every SEC function; raises on misplacement."""
        programs: list[_Program] = []
        for start, end, body in self.chunks():
            scan = self._scan(start, end, body)
            if body is None:
                self._check_declaration(start, end, scan)
                continue
            program = self._program(start, body, scan)
            if program is not None:
                programs.append(program)
        return programs

    def _scan(self, start: int, end: int, body: int | None) -> _Scan:
        """Walk one chunk's top level: its annotations, its SEC(...) and its paren groups."""
        scan = _Scan()
        has_context = any(t.kind == "id" and (t.text in ANNOTATIONS or t.text == "SEC") for t in self.toks[start:end])
        i = start
        while i < end:
            t = self.toks[i]
            if t.kind == "id" and t.text in ANNOTATIONS:
                ann, i = self.annotation(i)
                scan.anns.append(ann)
                scan.last_group_at_ann.append((len(scan.groups), ann))
                continue
            if t.kind == "id" and t.text == "SEC" and i + 1 < end and self.toks[i + 1].text == "(":
                self._section(t, i + 1, scan)
                i = self.match[i + 1] + 1
                continue
            if t.kind == "id" and t.text == "__attribute__" and i + 1 < end and self.toks[i + 1].text == "(":
                i = self.match[i + 1] + 1
                continue
            if (
                has_context
                and body is not None
                and t.kind == "id"
                and t.text.startswith("__")
                and t.text not in _QUALIFIERS
                and not _INT_TYPE_RE.match(t.text)
            ):
                raise self.unknown(t)
            if t.kind == "p" and t.text in "([":
                if t.text == "(":
                    scan.groups.append(i)
                i = self.match[i] + 1
                continue
            i += 1
        return scan

    def _section(self, t: Tok, open_idx: int, scan: _Scan) -> None:
        """Record the SEC(...) at `t` whose argument list opens at open_idx."""
        args = self.group_args(open_idx)
        if len(args) != 1 or len(args[0]) < 1 or any(a.kind != "str" for a in args[0]):
            raise self.err(t.line, 'SEC() takes one string literal, e.g. SEC("lsm/file_open").')
        if scan.section is not None:
            raise self.err(t.line, f"second SEC(...) for one declaration (first on line {scan.section_line}).")
        scan.section = "".join(a.value for a in args[0])
        scan.section_line = t.line

    def _check_declaration(self, start: int, end: int, scan: _Scan) -> None:
        """A declaration (no body) must carry no annotations."""
        anns = scan.anns
        if anns:
            last = self.toks[end - 1].line if end > start else anns[0].line
            raise self.err(
                anns[0].line,
                f'{anns[0].name} is not followed by a SEC("...") function definition (it annotates the '
                f"declaration ending on line {last}). Put annotations right before the program they "
                'describe, between SEC("...") and the function.',
            )

    def _program(self, start: int, body: int, scan: _Scan) -> _Program | None:
        """The SEC program a function definition chunk defines, or None when it is no program."""
        groups, anns = scan.groups, scan.anns
        if not groups:
            return None
        params = groups[-1]
        for n_groups, ann in scan.last_group_at_ann:
            if n_groups == len(groups):
                raise self.err(
                    ann.line,
                    f"{ann.name} comes after the function's parameter list. Put annotations before the function "
                    'name, after SEC("...").',
                )
        name_tok = self.toks[params - 1] if params > start else None
        if name_tok is None or name_tok.kind != "id":
            return None
        name, line = name_tok.text, name_tok.line
        if re.fullmatch(r"BPF_[A-Z0-9_]+", name):  # BPF_PROG(name, ...), BPF_KPROBE(name, ...)
            first = next((x for x in self.toks[params + 1 : self.match[params]] if x.kind == "id"), None)
            if first is None:
                return None
            name, line = first.text, first.line
        if scan.section is None:
            if anns:
                raise self.err(
                    anns[0].line,
                    f'{anns[0].name} annotates {name}(), which has no SEC("..."). Only programs are cases: '
                    f'add SEC("...") before {name} or drop the annotations.',
                )
            return None
        body_toks = self.toks[body + 1 : self.match[body]]
        return (name, scan.section, line, anns, body_toks)


def parse_case_text(text: str, path: str | Path) -> CaseFile:
    """Parse a case file's source text. Raises CaseError (file:line, what is wrong, what to write)."""
    p = str(path)
    found = _Parser(text, p).parse()
    if not found:
        raise CaseError(
            f'{p}:1: no SEC("...") program found. A case file holds annotated BPF programs (see cases/harness.h).'
        )
    bare = [(name, line) for name, _, line, anns, _ in found if not anns]
    if bare:
        listed = ", ".join(f"{n} (line {ln})" for n, ln in bare)
        if len(bare) == len(found):
            raise CaseError(
                f"{p}:{bare[0][1]}: no program in this file is annotated. Every program is a case: "
                f"add __description, __success or __failure (and more, see cases/harness.h) to {listed}."
            )
        raise CaseError(
            f"{p}:{bare[0][1]}: program(s) without annotations in a file with annotated ones: {listed}. "
            "Every program is one case: annotate it, or move it out of cases/."
        )
    programs = tuple(build_program(p, *item) for item in found)
    return CaseFile(Path(path), programs)


def parse_case_file(path: Path) -> CaseFile:
    """Read and parse one .bpf.c case file."""
    return parse_case_text(Path(path).read_text(encoding="utf-8", errors="surrogateescape"), path)
