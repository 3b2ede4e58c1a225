# SPDX-License-Identifier: GPL-2.0
"""Pure: read a case file's annotations (see cases/harness.h) from its C source into frozen dataclasses."""

from __future__ import annotations

import difflib
import errno as _errno
import ipaddress
import re
import signal as _signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import CaseError

SPEC_RULES = range(1, 19)

_Err = Callable[[int, str], CaseError]  # (line, message) -> the error to raise

FEATURES: dict[str, str] = {
    "bpf_audit": "the bpf_audit kfuncs (bpf_audit_log_start in vmlinux BTF)",
    "bpf_lsm": "BPF LSM active (bpf in the kernel's lsm= list)",
    "btf_type_tag": "a compiler that emits btf_type_tag (__kptr members)",
    "task_kfuncs": "bpf_task_acquire/bpf_task_release in vmlinux BTF (6.2+; not in Debian's 6.1)",
}

CAPABILITIES = (
    "chown dac_override dac_read_search fowner fsetid kill setgid setuid setpcap linux_immutable "
    "net_bind_service net_broadcast net_admin net_raw ipc_lock ipc_owner sys_module sys_rawio sys_chroot "
    "sys_ptrace sys_pacct sys_admin sys_boot sys_nice sys_resource sys_time sys_tty_config mknod lease "
    "audit_write audit_control setfcap mac_override mac_admin syslog wake_alarm block_suspend audit_read "
    "perfmon bpf checkpoint_restore"
).split()

# action -> (required keys, optional keys). The guest agent implements these.
TRIGGER_ACTIONS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "open": (frozenset({"path"}), frozenset({"comm", "flags", "thread"})),
    "read": (frozenset({"path"}), frozenset({"comm"})),
    "mprotect": (frozenset(), frozenset({"comm", "prot"})),
    "connect": (
        frozenset({"family"}),
        frozenset({"comm", "addr", "port", "path", "type", "bind_addr", "bind_port"}),
    ),
    "ioctl": (frozenset({"path", "cmd"}), frozenset({"comm"})),
    "kill": (frozenset({"sig"}), frozenset({"comm", "target_comm"})),
    "unlink": (frozenset({"path"}), frozenset({"comm"})),
    "sethostname": (frozenset(), frozenset({"comm", "name"})),
    "shell": (frozenset({"cmd"}), frozenset()),
}

PLACEHOLDERS = ("prog_id", "pid", "comm", "target_pid")
RECORD_KEYWORDS = ("count", "order", "leading", "once", "same_event")
TASK_COMM_LEN = 16
MAX_NAME_LEN = 31  # harness_dentry_name_is() compares up to 31 bytes

_FIELD_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
_TYPE_RE = re.compile(r"^(?:AUDIT_)?([A-Z][A-Z0-9_]*)$")
_PLACEHOLDER_RE = re.compile(r"\$\{([^}]*)\}")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_RE = re.compile(r"[0-9][0-9A-Za-z_.]*")
_INT_TYPE_RE = re.compile(r"^__(?:u|s|be|le)(?:8|16|32|64)$")
_QUALIFIERS = frozenset(
    "__attribute__ __always_inline __noinline __weak __hidden __used __inline __inline__ __extension__ "
    "__restrict __restrict__ __volatile__ __const __signed__ __naked __int128".split()
)


# --- the data -------------------------------------------------------------------------------------


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


# --- matching helpers (pure) ----------------------------------------------------------------------


def _split_regex(text: str) -> list[tuple[bool, str]]:
    """Split on {{regex}}: [(is_regex, part), ...]. Raises ValueError on an unclosed {{."""
    parts: list[tuple[bool, str]] = []
    pos = 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            parts.append((False, text[pos:]))
            return parts
        end = text.find("}}", start + 2)
        if end < 0:
            raise ValueError(f"'{{{{' at offset {start} has no closing '}}}}'")
        parts.append((False, text[pos:start]))
        parts.append((True, text[start + 2 : end]))
        pos = end + 2


def expand(value: str, variables: Mapping[str, str]) -> str:
    """Substitute ${name} placeholders (KeyError for a missing variable)."""
    return _PLACEHOLDER_RE.sub(lambda m: variables[m.group(1)], value)


def value_regex(value: str, variables: Mapping[str, str]) -> re.Pattern[str]:
    """An expected field value as a regex to fullmatch: literal, {{regex}} parts, ${var} substituted."""
    pieces = []
    for is_re, part in _split_regex(value):
        pieces.append(part if is_re else re.escape(expand(part, variables)))
    return re.compile("".join(pieces), re.DOTALL)


def value_matches(expected: str, actual: str, variables: Mapping[str, str]) -> bool:
    return value_regex(expected, variables).fullmatch(actual) is not None


# --- tokenizer ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tok:
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


def _tokenize(text: str, path: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n, line = 0, len(text), 1
    at_line_start = True
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
            at_line_start = True
            continue
        if c in " \t\r\f\v":
            i += 1
            continue
        if c == "\\" and text.startswith("\\\n", i):
            line += 1
            i += 2
            continue
        if text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise CaseError(f"{path}:{line}: comment '/*' never closes. Close it with '*/'.")
            line += text.count("\n", i, end)
            i = end + 2
            continue
        if c == "#" and at_line_start:
            # a preprocessor line, with backslash continuations; comments in it are skipped along
            while i < n and text[i] != "\n":
                if text.startswith("\\\n", i):
                    line += 1
                    i += 2
                    continue
                if text.startswith("/*", i):
                    end = text.find("*/", i + 2)
                    if end < 0:
                        raise CaseError(f"{path}:{line}: comment '/*' never closes. Close it with '*/'.")
                    line += text.count("\n", i, end)
                    i = end + 2
                    continue
                i += 1
            continue
        at_line_start = False
        if c == '"' or c == "'":
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
                toks.append(_Tok("str", text[i : j + 1], start_line, _decode_c_string(body)))
            else:
                toks.append(_Tok("chr", text[i : j + 1], start_line))
            i = j + 1
            continue
        m = _IDENT_RE.match(text, i)
        if m:
            toks.append(_Tok("id", m.group(0), line))
            i = m.end()
            continue
        m = _NUMBER_RE.match(text, i)
        if m:
            toks.append(_Tok("num", m.group(0), line))
            i = m.end()
            continue
        toks.append(_Tok("p", c, line))
        i += 1
    return toks


_PAIRS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {v: k for k, v in _PAIRS.items()}


def _match_brackets(toks: list[_Tok], path: str) -> dict[int, int]:
    """Map each opening bracket's index to its closing one; CaseError on any imbalance."""
    stack: list[int] = []
    match: dict[int, int] = {}
    for idx, t in enumerate(toks):
        if t.kind != "p":
            continue
        if t.text in _PAIRS:
            stack.append(idx)
        elif t.text in _CLOSERS:
            if not stack:
                raise CaseError(
                    f"{path}:{t.line}: unbalanced parentheses: '{t.text}' closes nothing. "
                    f"Remove it or add the matching '{_CLOSERS[t.text]}'."
                )
            opener = toks[stack[-1]]
            if _PAIRS[opener.text] != t.text:
                raise CaseError(
                    f"{path}:{t.line}: unbalanced parentheses: '{t.text}' here, but the innermost open bracket is "
                    f"'{opener.text}' from line {opener.line}. Close that one first with '{_PAIRS[opener.text]}'."
                )
            match[stack.pop()] = idx
    if stack:
        opener = toks[stack[-1]]
        raise CaseError(
            f"{path}:{opener.line}: unbalanced parentheses: '{opener.text}' opened on this line never closes. "
            f"Add the matching '{_PAIRS[opener.text]}'."
        )
    return match


# --- annotation table -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    kind: str  # "flag", "str" (exactly one string), "strs" (one or more strings), "int"
    repeatable: bool
    example: str


ANNOTATIONS: dict[str, _Spec] = {
    "__description": _Spec("str", False, '__description("what this case proves")'),
    "__success": _Spec("flag", False, "__success"),
    "__failure": _Spec("flag", False, '__failure __msg("verifier message")'),
    "__msg": _Spec("str", True, '__msg("Unreleased reference")'),
    "__rule": _Spec("int", True, "__rule(1)"),
    "__decided": _Spec("flag", False, "__rule(11) __decided"),
    "__needs": _Spec("strs", True, '__needs("bpf_audit")'),
    "__drop_caps": _Spec("strs", True, '__drop_caps("sys_boot")'),
    "__trigger": _Spec("strs", False, '__trigger("open", "path=/tmp/bah/x", "comm=bah_x")'),
    "__expect_record": _Spec("strs", True, '__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=x")'),
    "__expect_no_record": _Spec("strs", True, '__expect_no_record("BPF_LSM_ACCESS", "prog-id=${prog_id}")'),
    "__expect_errno": _Spec("int", False, "__expect_errno(1)   /* or __expect_errno(EPERM) */"),
    "__audit_disabled": _Spec("flag", False, "__audit_disabled"),
}

_BPF_MISC_ONLY = (
    "__retval __retval_unpriv __success_unpriv __failure_unpriv __msg_unpriv __xlated __xlated_unpriv __jited "
    "__jited_unpriv __log_level __flag __auxiliary __auxiliary_unpriv __btf_path __arch __regex __caps_unpriv"
).split()


def _known_list() -> str:
    return ", ".join(ANNOTATIONS)


# --- the parser -----------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, path: str) -> None:
        self.path = path
        self.toks = _tokenize(text, path)
        self.match = _match_brackets(self.toks, path)
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

    def group_args(self, open_idx: int) -> list[list[_Tok]]:
        """Top-level comma-separated token lists inside the group opened at open_idx."""
        close = self.match[open_idx]
        args: list[list[_Tok]] = []
        cur: list[_Tok] = []
        j = open_idx + 1
        while j < close:
            t = self.toks[j]
            if t.kind == "p" and t.text in _PAIRS:
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
        return Annotation(tok.text, tuple(values), tok.line), after

    def _int_arg(self, tok: _Tok, arg: list[_Tok], spec: _Spec) -> str:
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

    def unknown(self, tok: _Tok) -> CaseError:
        if tok.text in _BPF_MISC_ONLY:
            return self.err(
                tok.line,
                f"{tok.text} is a bpf_misc.h annotation this harness does not support. Known annotations: "
                f"{_known_list()} (documented in cases/harness.h).",
            )
        close = difflib.get_close_matches(tok.text, list(ANNOTATIONS), n=1)
        hint = f"Did you mean {close[0]}? " if close else ""
        return self.err(
            tok.line,
            f"unknown annotation {tok.text}. {hint}Known annotations: {_known_list()} (documented in cases/harness.h).",
        )

    def parse(self) -> list[tuple[str, str, int, list[Annotation], list[_Tok]]]:
        """[(name, section, line, annotations, body tokens)] for every SEC function; raises on misplacement."""
        programs: list[tuple[str, str, int, list[Annotation], list[_Tok]]] = []
        for start, end, body in self.chunks():
            anns: list[Annotation] = []
            section: str | None = None
            section_line = 0
            groups: list[int] = []  # plain paren groups at chunk level (parameter lists)
            last_group_at_ann: list[tuple[int, Annotation]] = []
            has_context = any(
                t.kind == "id" and (t.text in ANNOTATIONS or t.text == "SEC") for t in self.toks[start:end]
            )
            i = start
            while i < end:
                t = self.toks[i]
                if t.kind == "id" and t.text in ANNOTATIONS:
                    ann, i = self.annotation(i)
                    anns.append(ann)
                    last_group_at_ann.append((len(groups), ann))
                    continue
                if t.kind == "id" and t.text == "SEC" and i + 1 < end and self.toks[i + 1].text == "(":
                    args = self.group_args(i + 1)
                    if len(args) != 1 or len(args[0]) < 1 or any(a.kind != "str" for a in args[0]):
                        raise self.err(t.line, 'SEC() takes one string literal, e.g. SEC("lsm/file_open").')
                    if section is not None:
                        raise self.err(t.line, f"second SEC(...) for one declaration (first on line {section_line}).")
                    section = "".join(a.value for a in args[0])
                    section_line = t.line
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
                        groups.append(i)
                    i = self.match[i] + 1
                    continue
                i += 1

            if body is None:
                if anns:
                    last = self.toks[end - 1].line if end > start else anns[0].line
                    raise self.err(
                        anns[0].line,
                        f'{anns[0].name} is not followed by a SEC("...") function definition (it annotates the '
                        f"declaration ending on line {last}). Put annotations right before the program they "
                        'describe, between SEC("...") and the function.',
                    )
                continue
            if not groups:
                continue
            params = groups[-1]
            for n_groups, ann in last_group_at_ann:
                if n_groups == len(groups):
                    raise self.err(
                        ann.line,
                        f"{ann.name} comes after the function's parameter list. Put annotations before the function "
                        'name, after SEC("...").',
                    )
            name_tok = self.toks[params - 1] if params > start else None
            if name_tok is None or name_tok.kind != "id":
                continue
            name, line = name_tok.text, name_tok.line
            if re.fullmatch(r"BPF_[A-Z0-9_]+", name):  # BPF_PROG(name, ...), BPF_KPROBE(name, ...)
                first = next((x for x in self.toks[params + 1 : self.match[params]] if x.kind == "id"), None)
                if first is None:
                    continue
                name, line = first.text, first.line
            if section is None:
                if anns:
                    raise self.err(
                        anns[0].line,
                        f'{anns[0].name} annotates {name}(), which has no SEC("..."). Only programs are cases: '
                        f'add SEC("...") before {name} or drop the annotations.',
                    )
                continue
            body_toks = self.toks[body + 1 : self.match[body]]
            programs.append((name, section, line, anns, body_toks))
        return programs


# --- validation into CaseProgram ------------------------------------------------------------------


def _check_regex(err: _Err, line: int, text: str, what: str) -> None:
    try:
        parts = _split_regex(text)
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
            '"BPF", "SYSCALL" or "1425".',
        )
    return m.group(1)


def _field_list(err: _Err, line: int, key: str, value: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in value.split(","))
    if not value or any(not _FIELD_RE.match(n) for n in names):
        raise err(line, f'"{key}={value}" needs a comma-separated list of field names, e.g. "{key}=prog-id,pid,comm".')
    return names


def _check_placeholders(err: _Err, line: int, text: str, trigger: Trigger | None) -> None:
    for name in _PLACEHOLDER_RE.findall(text):
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
    if "${" in _PLACEHOLDER_RE.sub("", text):
        raise err(line, f"unclosed placeholder in {text!r}: write ${{name}}.")


def _parse_record(err: _Err, ann: Annotation, trigger: Trigger | None, negative: bool) -> RecordExpectation:
    line = ann.line
    rtype = _parse_type(err, line, ann.args[0])
    checks: list[FieldCheck] = []
    kw: dict[str, object] = {}
    seen: dict[str, str] = {}
    for arg in ann.args[1:]:
        if arg.startswith("!"):
            name, op, value = arg[1:], "absent", None
        elif arg.startswith("raw:"):
            if "=" not in arg:
                raise err(line, f'"{arg}" needs a value: write "raw:field=text".')
            name, value = arg[4:].split("=", 1)
            op = "raw"
        elif "=" in arg:
            name, value = arg.split("=", 1)
            op = "eq"
            if name in RECORD_KEYWORDS:
                if negative and name in ("count", "same_event"):
                    raise err(line, f'"{arg}" is meaningless in {ann.name}; it only fits __expect_record.')
                if name in kw:
                    raise err(line, f'"{name}=" given twice in {ann.name}. Keep one.')
                if name == "count":
                    if not value.isdigit():
                        raise err(line, f'"{arg}": count needs a non-negative integer, e.g. "count=1".')
                    if int(value) == 0:
                        raise err(
                            line, f'"{arg}": to expect no such record write __expect_no_record("{ann.args[0]}", ...).'
                        )
                    kw["count"] = int(value)
                elif name == "same_event":
                    kw["same_event"] = _parse_type(err, line, value)
                else:
                    kw[name] = _field_list(err, line, name, value)
                continue
        else:
            name, op, value = arg, "present", None
        if not _FIELD_RE.match(name):
            raise err(
                line,
                f'{arg!r} in {ann.name} is not a field check. Write "field=value", "field", "!field", '
                '"raw:field=text" or one of count=, order=, leading=, once=, same_event=.',
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


def _parse_trigger(err: _Err, ann: Annotation) -> Trigger:
    line = ann.line
    action = ann.args[0]
    if action not in TRIGGER_ACTIONS:
        close = difflib.get_close_matches(action, list(TRIGGER_ACTIONS), n=1)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        raise err(line, f"unknown trigger action {action!r}. {hint}Known: {', '.join(TRIGGER_ACTIONS)}.")
    required, optional = TRIGGER_ACTIONS[action]
    args: list[tuple[str, str]] = []
    for arg in ann.args[1:]:
        if "=" not in arg:
            raise err(line, f'trigger argument {arg!r} is not key=value. Write e.g. "path=/tmp/bah/x".')
        key, value = arg.split("=", 1)
        if key not in required | optional:
            if key == "comm" and action == "shell":
                raise err(
                    line,
                    "comm= does not apply to shell triggers: the command's comm is its executable's "
                    "name. Use a built-in action, or filter on that name.",
                )
            allowed = ", ".join(sorted(required | optional))
            raise err(line, f"trigger {action!r} has no key {key!r}. Allowed: {allowed}.")
        if any(k == key for k, _ in args):
            raise err(line, f"trigger key {key!r} given twice. Keep one.")
        args.append((key, value))
    trig = Trigger(action, tuple(args), line)
    missing = sorted(required - {k for k, _ in args})
    if missing:
        needed = ", ".join(f'"{k}=..."' for k in missing)
        raise err(line, f'trigger "{action}" needs {needed}, e.g. __trigger("{action}", {needed}).')
    _validate_trigger_values(err, trig)
    return trig


def _validate_trigger_values(err: _Err, trig: Trigger) -> None:
    line, d = trig.line, trig.as_dict()
    for key in ("comm", "target_comm"):
        if key in d:
            size = len(d[key].encode())
            if not d[key] or size >= TASK_COMM_LEN:
                raise err(
                    line,
                    f"{key}={d[key]!r} must be 1-{TASK_COMM_LEN - 1} bytes (TASK_COMM_LEN); the kernel "
                    "would truncate it and the program's filter would not match.",
                )
    if "path" in d and trig.action != "connect":
        if not d["path"].startswith("/"):
            raise err(line, f"path={d['path']!r} must be absolute, e.g. path=/tmp/bah/x.")
        if len(d["path"].rsplit("/", 1)[1].encode()) > MAX_NAME_LEN:
            raise err(
                line,
                f"the last component of path={d['path']!r} is longer than {MAX_NAME_LEN} bytes "
                "(harness_dentry_name_is compares at most that).",
            )
    if trig.action == "open" and d.get("flags", "r") not in ("r", "w", "rw"):
        raise err(line, f"flags={d['flags']!r}: write flags=r, flags=w or flags=rw.")
    if trig.action == "open" and d.get("thread", "0") not in ("0", "1"):
        raise err(line, f"thread={d['thread']!r}: write thread=1 (open from a second thread) or leave it out.")
    if trig.action == "mprotect" and d.get("prot", "r") not in ("none", "r", "rw", "rx", "rwx"):
        raise err(line, f"prot={d['prot']!r}: write none, r, rw, rx or rwx.")
    if trig.action == "ioctl" and not re.fullmatch(r"0[xX][0-9A-Fa-f]+|[0-9]+", d["cmd"]):
        raise err(line, f"cmd={d['cmd']!r} is not an integer; write e.g. cmd=0x541b (FIONREAD).")
    if trig.action == "kill":
        sig = d["sig"]
        if not (sig.isdigit() or (sig.startswith("SIG") and sig in _signal.Signals.__members__)):
            raise err(line, f"sig={sig!r}: write a number (0 probes) or a name such as SIGUSR1.")
    if trig.action == "connect":
        _validate_connect(err, line, d)


def _validate_connect(err: _Err, line: int, d: dict[str, str]) -> None:
    fam = d["family"]
    if fam not in ("inet", "inet6", "unix"):
        raise err(line, f"family={fam!r}: write family=inet, family=inet6 or family=unix.")
    if d.get("type", "stream") not in ("stream", "dgram"):
        raise err(line, f"type={d['type']!r}: write type=stream or type=dgram.")
    if fam == "unix":
        if "path" not in d or "addr" in d or "port" in d:
            raise err(line, "family=unix takes path=/tmp/bah/sock (and no addr=/port=).")
        if not d["path"] or len(d["path"].encode()) > 107:
            raise err(line, f"path={d['path']!r}: a unix socket path is 1-107 bytes.")
        return
    if "addr" not in d or "port" not in d or "path" in d:
        raise err(line, f"family={fam} takes addr= and port= (and no path=).")
    version = 4 if fam == "inet" else 6
    for key in ("addr", "bind_addr"):
        if key in d:
            try:
                ok = ipaddress.ip_address(d[key]).version == version
            except ValueError:
                ok = False
            if not ok:
                raise err(line, f"{key}={d[key]!r} is not an IPv{version} address (family={fam}).")
    for key in ("port", "bind_port"):
        if key in d and not (d[key].isdigit() and 0 < int(d[key]) < 65536):
            raise err(line, f"{key}={d[key]!r}: write a port number 1-65535.")
    if ("bind_addr" in d) != ("bind_port" in d):
        raise err(line, "bind_addr= and bind_port= go together.")


def _build_program(
    path: str, name: str, section: str, line: int, anns: list[Annotation], body: list[_Tok]
) -> CaseProgram:
    def err(at: int, message: str) -> CaseError:
        return CaseError(f"{path}:{at}: {message}")

    by: dict[str, list[Annotation]] = {}
    for a in anns:
        spec = ANNOTATIONS[a.name]
        if a.name in by and not spec.repeatable:
            raise err(a.line, f"{a.name} given twice for {name} (first on line {by[a.name][0].line}). Keep one.")
        by.setdefault(a.name, []).append(a)

    def one(key: str) -> Annotation | None:
        return by.get(key, [None])[0]

    where = f"program {name} (line {line})"
    desc = one("__description")
    if desc is None:
        raise err(line, f'{where} has no __description. Add __description("what this case proves").')
    success, failure = one("__success"), one("__failure")
    if success and failure:
        raise err(
            max(success.line, failure.line),
            f"{where} has both __success and __failure. Keep the one the "
            'kernel must do: __failure __msg("...") for a rejection, __success for its accepted twin.',
        )
    if not success and not failure:
        raise err(line, f"{where} says neither __success nor __failure. Add one.")
    expect = "success" if success else "failure"
    msgs = tuple(a.args[0] for a in by.get("__msg", []))
    for a in by.get("__msg", []):
        _check_regex(err, a.line, a.args[0], "__msg")
        if not a.args[0]:
            raise err(a.line, '__msg("") matches anything. Write the message the verifier must print.')
    if expect == "success" and msgs:
        raise err(
            by["__msg"][0].line,
            f"__msg on {where}, a __success case: messages are only checked when the "
            "load fails. Drop __msg, or make it __failure.",
        )
    if expect == "failure" and not msgs:
        raise err(
            failure.line,
            f"{where} is __failure without __msg: a rejection must name the message that "  # type: ignore[union-attr]
            'proves the rule, e.g. __failure __msg("Unreleased reference").',
        )
    if expect == "failure":
        for key in ("__trigger", "__expect_record", "__expect_no_record", "__expect_errno", "__audit_disabled"):
            if key in by:
                raise err(
                    by[key][0].line,
                    f"{key} on {where}, a __failure case: a program that does not load "
                    "runs nothing. Drop it, or put it on the accepted twin.",
                )

    rules: list[int] = []
    for a in by.get("__rule", []):
        n = int(a.args[0])
        if n not in SPEC_RULES:
            raise err(a.line, f"__rule({n}): the spec has rules {SPEC_RULES.start}-{SPEC_RULES.stop - 1}.")
        if n in rules:
            raise err(a.line, f"__rule({n}) given twice. Keep one.")
        rules.append(n)
    decided = one("__decided")
    if decided and not rules:
        raise err(decided.line, "__decided needs the rule it refers to: __rule(N) __decided.")

    needs: list[str] = []
    for a in by.get("__needs", []):
        for feat in a.args:
            if feat not in FEATURES:
                raise err(a.line, f"__needs({feat!r}): unknown feature. Known: {', '.join(FEATURES)}.")
            if feat not in needs:
                needs.append(feat)
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

    body_ids = {t.text for t in body if t.kind == "id"}
    if any(i.startswith("bpf_audit_") or i == "harness_audit_start" for i in body_ids) and "bpf_audit" not in needs:
        raise err(
            line,
            f'{where} calls bpf_audit kfuncs but lacks __needs("bpf_audit"); without it the case would '
            'fail instead of skipping on kernels without the series. Add __needs("bpf_audit").',
        )
    if "bpf_kptr_xchg" in body_ids and "btf_type_tag" not in needs:
        raise err(
            line,
            f'{where} uses bpf_kptr_xchg: add __needs("btf_type_tag") so it is skipped with a '
            "compiler that drops __kptr (clang 14).",
        )
    if {"bpf_task_acquire", "bpf_task_release"} & body_ids and "task_kfuncs" not in needs:
        raise err(
            line,
            f'{where} calls bpf_task_acquire/bpf_task_release: add __needs("task_kfuncs") so it is skipped on '
            "kernels without them (6.1) instead of failing to load.",
        )

    trig_ann = one("__trigger")
    trigger = _parse_trigger(err, trig_ann) if trig_ann else None
    errno_ann = one("__expect_errno")
    if errno_ann and trigger is None:
        raise err(errno_ann.line, "__expect_errno needs a __trigger whose errno it checks.")
    disabled = one("__audit_disabled")
    if disabled and trigger is None:
        raise err(disabled.line, "__audit_disabled needs a __trigger to run while audit is off.")

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

    return CaseProgram(
        path=path,
        name=name,
        section=section,
        line=line,
        description=desc.args[0],
        expect=expect,
        msgs=msgs,
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
    programs = tuple(_build_program(p, *item) for item in found)
    return CaseFile(Path(path), programs)


def parse_case_file(path: Path) -> CaseFile:
    """Read and parse one .bpf.c case file."""
    return parse_case_text(Path(path).read_text(encoding="utf-8", errors="surrogateescape"), path)
