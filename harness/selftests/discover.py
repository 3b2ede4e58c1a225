# SPDX-License-Identifier: GPL-2.0
"""Which selftest programs test_progs runs through test_loader: RUN_TESTS(...) and verifier.c's RUN(...) skeletons."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import UsageError

SELFTESTS = Path("tools/testing/selftests/bpf")
VERIFIER_C = "verifier.c"
# The groups: how test_progs runs a skeleton's subtests around test_loader__run_subtests().
RUN_TESTS_GROUP = "run_tests"  # RUN_TESTS(skel) in any prog_tests/*.c: test_loader as is
VERIFIER_GROUP = "verifier"  # RUN(skel) / run_tests_aux(...) in prog_tests/verifier.c

_CALL_RUN_TESTS = re.compile(r"\bRUN_TESTS\s*\(\s*(\w+)\s*\)")
_CALL_RUN = re.compile(r"\bRUN\s*\(\s*(\w+)\s*\)")
_CALL_AUX = re.compile(r"\brun_tests_aux\s*\(\s*\"(\w+)\"\s*,\s*\w+\s*,\s*(\w+)\s*\)")
_FUNC_START = re.compile(r"^(?:static\s+|noinline\s+|__maybe_unused\s+)*(?:void|int)\s+\**(\w+)\s*\(")
_GUARD = re.compile(r"\benv\.(has_\w+)")
_NEGATED_GUARD = re.compile(r"!\s*env\.(has_\w+)")
_CAP_CALL = re.compile(r"\bcap_(enable|disable)_effective\s*\(")
_CAP_NAME = re.compile(r"\bCAP_[A-Z_]+\b")
_STRING = re.compile(r"\"((?:[^\"\\]|\\.)*)\"")


@dataclass(frozen=True)
class Caps:
    """Capabilities test_progs changes in its effective set around a skeleton's subtests (test_progs runs as
    root: `enable` only restores what a caller may have dropped, `disable` is what differs from root)."""

    enable: tuple[str, ...] = ()
    disable: tuple[str, ...] = ()
    where: tuple[str, ...] = ()  # file:line of each call, for the report

    def then(self, other: Caps) -> Caps:
        """These changes followed by `other`'s (a later disable wins over an earlier enable, and so on)."""
        enable = [c for c in self.enable if c not in other.disable] + [c for c in other.enable if c not in self.enable]
        disable = [c for c in self.disable if c not in other.enable] + [
            c for c in other.disable if c not in self.disable]
        return Caps(tuple(enable), tuple(disable), self.where + other.where)


@dataclass(frozen=True)
class Skeleton:
    """One skeleton test_progs runs through test_loader, and how it runs it."""

    name: str
    source: Path | None  # progs/<name>.c in the tree, None when there is no such file
    group: str  # RUN_TESTS_GROUP | VERIFIER_GROUP
    where: str  # prog_tests/<file>.c:<line> of the RUN_TESTS/RUN/run_tests_aux call
    function: str  # the prog_tests function the call is in (test_<name> is the test; serial_test_* run alone)
    caps: Caps = field(default_factory=Caps)
    guards: tuple[str, ...] = ()  # conditions test_progs checks first, e.g. "env.has_testmod"
    pre_execution: str | None = None  # verifier.c's callback run before BPF_PROG_TEST_RUN (fills maps)
    pre_execution_maps: tuple[str, ...] = ()  # the maps that callback writes
    test_function: str = ""  # the test test_progs runs it in: `function`, or the test that calls that helper

    @property
    def test(self) -> str:
        """The test_progs test that runs it (its name without test_/serial_test_ is what -t and the results say)."""
        return self.test_function or self.function

    @property
    def serial(self) -> bool:
        return self.function.startswith("serial_test_")

    @property
    def file_name(self) -> str:
        return f"{self.name}.c"


@dataclass(frozen=True)
class Discovery:
    tree: Path
    skeletons: tuple[Skeleton, ...]

    @property
    def missing(self) -> list[Skeleton]:
        """Skeletons named by a RUN_TESTS/RUN call that have no progs/<name>.c."""
        return [s for s in self.skeletons if s.source is None]

    def by_name(self) -> dict[str, Skeleton]:
        return {s.name: s for s in self.skeletons}


def strip_comments(text: str) -> str:
    """C comments blanked out (newlines kept, so line numbers stay), strings left alone."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class _Function:
    name: str
    start: int  # offset of its first line in the text
    end: int  # offset where the next function starts
    static: bool = False


def _functions(text: str) -> list[_Function]:
    """Top-level function definitions, by the column-0 line that starts each (the kernel's coding style)."""
    starts: list[tuple[str, int, bool]] = []
    offset = 0
    for line in text.splitlines(keepends=True):
        m = _FUNC_START.match(line)
        if m and not line.rstrip().endswith(");"):  # a prototype ends so; a one-line definition with "}"
            starts.append((m.group(1), offset, line.lstrip().startswith("static")))
        offset += len(line)
    return [_Function(name, off, starts[i + 1][1] if i + 1 < len(starts) else len(text), static)
            for i, (name, off, static) in enumerate(starts)]


def _is_test(f: _Function) -> bool:
    return not f.static and f.name.startswith(("test_", "serial_test_"))


def test_of(text: str, funcs: list[_Function], func: _Function | None) -> str:
    """The test function test_progs runs `func` in: itself when it is one (a non-static test_*/serial_test_*), else
    the first test of the file that calls it, directly or through other helpers (exceptions.c's static
    test_exceptions_failure() runs in test_exceptions)."""
    if func is None or _is_test(func):
        return func.name if func else ""
    seen, todo = {func.name}, [func.name]
    while todo:
        callee = todo.pop(0)
        call = re.compile(rf"\b{re.escape(callee)}\s*\(")
        for f in funcs:
            if f.name in seen or not call.search(text, f.start, f.end):
                continue
            if _is_test(f):
                return f.name
            seen.add(f.name)
            todo.append(f.name)
    return func.name


def _enclosing(funcs: list[_Function], offset: int) -> _Function | None:
    return next((f for f in funcs if f.start <= offset < f.end), None)


def _first_arg(text: str, open_paren: int) -> str:
    depth, i = 0, open_paren
    while i < len(text):
        ch = text[i]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth == 0:
                return text[open_paren + 1:i]
        elif ch == "," and depth == 1:
            return text[open_paren + 1:i]
        i += 1
    return text[open_paren + 1:]


def caps_in(text: str, start: int, end: int, rel: str) -> Caps:
    """The cap_enable_effective/cap_disable_effective calls in text[start:end] with a mask spelt out of CAP_*
    names (a call restoring a saved mask, `cap_enable_effective(old_caps, NULL)`, names none and is skipped)."""
    caps = Caps()
    for m in _CAP_CALL.finditer(text, start, end):
        names = tuple(_CAP_NAME.findall(_first_arg(text, m.end() - 1)))
        if not names:
            continue
        where = (f"{rel}:{text.count(chr(10), 0, m.start()) + 1}",)
        caps = caps.then(Caps(names, (), where) if m.group(1) == "enable" else Caps((), names, where))
    return caps


def guards_at(text: str, start: int, offset: int) -> tuple[str, ...]:
    """The env.has_* conditions test_progs checks before reaching `offset` in the function starting at `start`:
    an `if (env.has_x)` block (or brace-less statement) around the call, or an earlier
    `if (!env.has_x) { ...; return; }` that leaves the function without x."""
    found: list[str] = []
    stack: list[tuple[int, int]] = []  # (offset of "{", offset where its controlling statement starts)
    stmt = start
    i = start
    while i < offset:
        ch = text[i]
        if ch == "{":
            stack.append((i, stmt))
            stmt = i + 1
        elif ch == "}":
            if stack:
                brace, ctl = stack.pop()
                control, body = text[ctl:brace], text[brace:i]
                if stack and "return" in body:  # a block inside the function that leaves it
                    found += [f"env.{g}" for g in _NEGATED_GUARD.findall(control)]
            stmt = i + 1
        elif ch == ";":
            stmt = i + 1
        i += 1
    for brace, ctl in stack[1:]:  # stack[0] is the function's own body
        found += [f"env.{g}" for g in _GUARD.findall(text[ctl:brace]) if f"!env.{g}" not in text[ctl:brace]]
    found += [f"env.{g}" for g in _GUARD.findall(text[stmt:offset])]  # if (env.has_x) CALL; without braces
    return tuple(dict.fromkeys(found))


def discover(tree: Path) -> Discovery:
    """The RUN_TESTS set of a kernel tree: every RUN_TESTS(x) in prog_tests/*.c and every RUN(x) and
    run_tests_aux("x", ...) in prog_tests/verifier.c, mapped to progs/x.c, in file and line order, each name
    once (the first call wins)."""
    base = Path(tree) / SELFTESTS
    prog_tests = base / "prog_tests"
    if not prog_tests.is_dir():
        raise UsageError(f"{tree} has no {SELFTESTS}/prog_tests: not a kernel tree with the BPF selftests "
                           "(--kernel-src names the tree)")
    found: dict[str, Skeleton] = {}

    def add(name: str, group: str, rel: str, text: str, offset: int, funcs: list[_Function],
            caps: Caps = Caps(), pre: str | None = None, pre_maps: tuple[str, ...] = ()) -> None:
        if name in found:
            return
        func = _enclosing(funcs, offset)
        guards = guards_at(text, func.start, offset) if func else ()
        if func:
            caps = caps_in(text, func.start, offset, rel).then(caps)
        src = base / "progs" / f"{name}.c"
        found[name] = Skeleton(name, src if src.is_file() else None, group,
                               f"{rel}:{text.count(chr(10), 0, offset) + 1}", func.name if func else "",
                               caps, guards, pre, pre_maps, test_of(text, funcs, func))

    for path in sorted(prog_tests.glob("*.c")):
        rel = f"prog_tests/{path.name}"
        text = strip_comments(path.read_text(errors="replace"))
        funcs = _functions(text)
        if path.name == VERIFIER_C:
            _verifier(text, rel, funcs, add)
            continue
        for m in _CALL_RUN_TESTS.finditer(text):
            if not text[:m.start()].rstrip().endswith("#define"):
                add(m.group(1), RUN_TESTS_GROUP, rel, text, m.start(), funcs)
    return Discovery(Path(tree), tuple(found.values()))


def _verifier(text: str, rel: str, funcs: list[_Function], add) -> None:
    """verifier.c: RUN(skel) is run_tests_aux(#skel, ..., NULL); run_tests_aux drops capabilities around
    test_loader (read from its body), and a direct run_tests_aux call names a pre-execution callback."""
    aux = next((f for f in funcs if f.name == "run_tests_aux"), None)
    group_caps = caps_in(text, aux.start, aux.end, rel) if aux else Caps()
    group_caps = Caps((), group_caps.disable, group_caps.where)  # it restores what it dropped (old_caps)
    calls: list[tuple[int, str, str | None]] = []
    for m in _CALL_RUN.finditer(text):
        line_start = text.rfind("\n", 0, m.start()) + 1
        if text[line_start:m.start()].strip().startswith("#define") or m.group(1) == "skel":
            continue
        calls.append((m.start(), m.group(1), None))
    for m in _CALL_AUX.finditer(text):
        cb = m.group(2)
        calls.append((m.start(), m.group(1), None if cb == "NULL" else cb))
    for m in _CALL_RUN_TESTS.finditer(text):  # 7.x: plain RUN_TESTS(x) in verifier.c too, no capability drop
        if not text[:m.start()].rstrip().endswith("#define"):
            calls.append((m.start(), m.group(1), RUN_TESTS_GROUP))
    for offset, name, cb in sorted(calls):
        func = _enclosing(funcs, offset)
        if func is not None and func.name == "run_tests_aux":
            continue
        if cb == RUN_TESTS_GROUP:
            add(name, RUN_TESTS_GROUP, rel, text, offset, funcs)
            continue
        maps: tuple[str, ...] = ()
        if cb:
            maps = _callback_maps(text, funcs, cb)
        add(name, VERIFIER_GROUP, rel, text, offset, funcs, group_caps, cb, maps)


def _callback_maps(text: str, funcs: list[_Function], cb: str) -> tuple[str, ...]:
    """The map names (string literals) a pre-execution callback passes on, e.g. init_test_val_map(obj,
    "map_array_ro")."""
    func = next((f for f in funcs if f.name == cb), None)
    if func is None:
        return ()
    return tuple(_STRING.findall(text, func.start, func.end))
