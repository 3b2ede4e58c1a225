# SPDX-License-Identifier: GPL-2.0
"""Pure: which prog_tests files, tests, skeletons and BPF objects a test_progs trimmed to named tests needs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import UsageError
from harness.selftests.discover import SELFTESTS

PROG_TESTS = SELFTESTS / "prog_tests"
PROGS = SELFTESTS / "progs"
TESTS_H = "prog_tests/tests.h"
# The Makefile's TEST-HDR rule: sed -n -E 's/^void (serial_)?test_([a-zA-Z0-9_]+)\((void)?\).*/DEFINE_TEST(\2)/p'
_TEST_FUNC = re.compile(r"^void (serial_)?test_([a-zA-Z0-9_]+)\((void)?\).*$", re.M)
# "x.skel.h" or <x.skel.h> (preempt_lock.c); a progs source's __btf_path("x.bpf.o") is opened when its test runs
_SKEL_INCLUDE = re.compile(r'^\s*#\s*include\s+["<]([\w\-]+)\.(skel|lskel|subskel)\.h[">]', re.M)
_BTF_PATH = re.compile(r'__btf(?:_func)?_path\(\s*"([\w\-]+)\.bpf\.o"\s*\)')
_LOCAL_INCLUDE = re.compile(r'^\s*#\s*include\s+"([\w\-./]+\.h)"', re.M)
# A BPF object test code opens by its file name at run time (test_progs runs in the directory that holds them).
_OBJECT_NAME = re.compile(r'"(?:[^"\n]*/)?([\w\-]+)\.bpf\.o"')
_UNDEFINED = re.compile(r"undefined reference to [`']([\w.$]+)'")
_NAME = re.compile(r"^[A-Za-z0-9_]+(?:/.+)?$")


@dataclass(frozen=True)
class MakefileFacts:
    """What the selftests Makefile says about skeletons (make's own expansion, harness.selftests.makevars)."""

    lskels: tuple[str, ...] = ()  # progs/*.c whose light skeleton (<name>.lskel.h) is built: LSKELS, LSKELS_EXTRA
    signed_lskels: tuple[str, ...] = ()  # LSKELS_SIGNED (7.x): signed light skeletons
    linked: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # <name>.skel.h -> its -deps objects
    blacklist: tuple[str, ...] = ()  # SKEL_BLACKLIST patterns (% a wildcard): no <name>.skel.h for these

    def blacklisted(self, source: str) -> bool:
        return any(_make_match(p, source) for p in self.blacklist)


def _make_match(pattern: str, word: str) -> bool:
    if "%" not in pattern:
        return pattern == word
    head, _, tail = pattern.partition("%")
    return word.startswith(head) and word.endswith(tail) and len(word) >= len(head) + len(tail)


@dataclass(frozen=True)
class Skel:
    """One generated skeleton header a test includes: `header` (lsm.skel.h), from which BPF objects (stems of
    progs/<stem>.c) and how (`kind`: skel, lskel, signed-lskel, linked), named `name` in the header."""

    header: str
    kind: str
    name: str
    objects: tuple[str, ...]


@dataclass(frozen=True)
class TestFile:
    """A prog_tests/<stem>.c file and the tests it defines (DEFINE_TEST names, serial ones too)."""

    path: Path
    tests: tuple[str, ...]

    @property
    def stem(self) -> str:
        return self.path.name.removesuffix(".c")


@dataclass(frozen=True)
class Selection:
    """What the user named, resolved in a tree: the files to build and the test_progs selectors to run (`-a`,
    exact names: NAME or NAME/SUBTEST)."""

    files: tuple[TestFile, ...]
    selectors: tuple[str, ...]

    @property
    def tests(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for f in self.files for t in f.tests))


@dataclass(frozen=True)
class Plan:
    """A build: the test files (named ones and those they link against), tests.h's tests, skeletons, and the BPF
    objects to compile (skeleton sources and objects the tests open by name), with problems found on the way."""

    files: tuple[TestFile, ...]
    tests: tuple[str, ...]
    skeletons: tuple[Skel, ...]
    objects: tuple[str, ...]
    runtime_objects: tuple[str, ...]
    problems: tuple[str, ...] = ()


def defined_tests(source: str) -> list[str]:
    """The test names a prog_tests file defines, as the Makefile's tests.h rule finds them."""
    return [m.group(2) for m in _TEST_FUNC.finditer(source)]


def generated_tests_h(tests: Iterable[str]) -> str:
    """tests.h for `tests`, as the Makefile writes it (sorted; its `sort` runs in the C locale here)."""
    return "/* Generated header, do not edit */\n" + "".join(f"DEFINE_TEST({t})\n" for t in sorted(set(tests)))


def read_test_file(path: Path) -> TestFile:
    return TestFile(Path(path), tuple(defined_tests(Path(path).read_text(errors="replace"))))


def select(tree: Path, names: Sequence[str]) -> Selection:
    """Resolve NAMEs: a prog_tests/NAME.c file (every test it defines), else a test NAME defined in some prog_tests
    file (that test only); NAME/SUBTEST selects one subtest of test NAME. Unknown names are a UsageError."""
    base = Path(tree) / PROG_TESTS
    if not base.is_dir():
        raise UsageError(f"{base} does not exist: not a kernel tree with the BPF selftests")
    files: dict[Path, TestFile] = {}
    selectors: list[str] = []
    index: dict[str, TestFile] | None = None
    unknown: list[str] = []
    for name in names:
        if not _NAME.match(name):
            raise UsageError(f"--test-progs {name!r}: a prog_tests file or test name (letters, digits, _), "
                             "optionally /SUBTEST")
        test, _, sub = name.partition("/")
        path = base / f"{test}.c"
        if not sub and path.is_file():
            tf = read_test_file(path)
            if not tf.tests:
                raise UsageError(f"{path} defines no test (no `void test_NAME(void)` or `serial_test_NAME`)")
            files.setdefault(path, tf)
            selectors += [t for t in tf.tests if t not in selectors]
            continue
        if index is None:
            index = {t: tf for tf in map(read_test_file, sorted(base.glob("*.c"))) for t in tf.tests}
        found = index.get(test)
        if found is None:
            unknown.append(name)
            continue
        files.setdefault(found.path, found)
        selectors.append(name)
    if unknown:
        raise UsageError(f"not a prog_tests file or test of {base}: {', '.join(unknown)} (a file "
                         "prog_tests/NAME.c, or a test defined as `void test_NAME(void)` in one)")
    return Selection(tuple(files.values()), tuple(dict.fromkeys(selectors)))


def skeletons_of(source: str) -> list[tuple[str, str]]:
    """(stem, kind) of every `#include "<stem>.{skel,lskel,subskel}.h"` in a source text."""
    return [(m.group(1), m.group(2)) for m in _SKEL_INCLUDE.finditer(source)]


def runtime_objects_of(source: str) -> list[str]:
    """Stems of the "<stem>.bpf.o" files a source names (it opens them at run time)."""
    return list(dict.fromkeys(_OBJECT_NAME.findall(source)))


def local_headers(source: str) -> list[str]:
    return _LOCAL_INCLUDE.findall(source)


def skel_for(stem: str, kind: str, facts: MakefileFacts) -> Skel | str:
    """The skeleton an include names, or why the Makefile builds none."""
    if kind == "lskel":
        if stem in facts.signed_lskels:
            return Skel(f"{stem}.lskel.h", "signed-lskel", f"{stem}_lskel", (stem,))
        if stem in facts.lskels:
            return Skel(f"{stem}.lskel.h", "lskel", f"{stem}_lskel", (stem,))
        return f"{stem}.lskel.h: {stem}.c is not in the Makefile's LSKELS/LSKELS_EXTRA"
    header = f"{stem}.skel.h"  # a subskel.h is written beside its skel.h
    if header in facts.linked:
        deps = tuple(d.removesuffix(".bpf.o") for d in facts.linked[header])
        return Skel(header, "linked", stem, deps)
    if facts.blacklisted(f"{stem}.c"):
        return f"{header}: the Makefile builds no skeleton for {stem}.c (SKEL_BLACKLIST)"
    return Skel(header, "skel", stem, (stem,))


def make_plan(tree: Path, files: Sequence[TestFile], facts: MakefileFacts) -> Plan:
    """The skeletons and objects `files` need: their skeleton includes (also through local headers of
    prog_tests/ and the selftests directory), and the objects they open by name. A skeleton whose BPF source is
    missing, or that the Makefile does not build, is a problem (its test file will not compile)."""
    tree = Path(tree)
    skels: dict[str, Skel] = {}
    runtime: list[str] = []
    problems: list[str] = []
    for tf in files:
        for text in _with_local_headers(tree, tf.path):
            for stem, kind in skeletons_of(text):
                found = skel_for(stem, kind, facts)
                if isinstance(found, str):
                    problems.append(f"{tf.path.name}: {found}")
                else:
                    skels.setdefault(found.header, found)
            runtime += runtime_objects_of(text)
    objects: list[str] = []
    for skel in skels.values():
        objects += skel.objects
    progs = tree / PROGS
    for stem in list(dict.fromkeys(objects)):  # a test_loader program's __btf_path file, opened at run time
        try:
            runtime += _BTF_PATH.findall((progs / f"{stem}.c").read_text(errors="replace"))
        except OSError:
            pass
    for stem in list(dict.fromkeys(objects)):
        if not (progs / f"{stem}.c").is_file():
            problems.append(f"progs/{stem}.c does not exist (a skeleton needs it)")
    runtime = [s for s in dict.fromkeys(runtime) if (progs / f"{s}.c").is_file()]
    tests = tuple(dict.fromkeys(t for f in files for t in f.tests))
    return Plan(tuple(files), tests, tuple(skels.values()), tuple(dict.fromkeys([*objects, *runtime])),
                tuple(runtime), tuple(problems))


def _with_local_headers(tree: Path, path: Path, depth: int = 3) -> list[str]:
    """The text of `path` and of the local headers it includes (from prog_tests/ or the selftests directory),
    recursively, each once."""
    seen: set[Path] = set()
    texts: list[str] = []
    todo = [(Path(path), 0)]
    while todo:
        current, level = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            text = current.read_text(errors="replace")
        except OSError:
            continue
        texts.append(text)
        if level >= depth:
            continue
        for rel in local_headers(text):
            for base in (current.parent, tree / PROG_TESTS, tree / SELFTESTS):
                candidate = (base / rel).resolve()
                if candidate.is_file() and candidate.suffix == ".h":
                    todo.append((candidate, level + 1))
                    break
    return texts


def undefined_symbols(link_log: str) -> list[str]:
    """The symbols a failed link names as undefined (GNU ld's messages)."""
    return list(dict.fromkeys(_UNDEFINED.findall(link_log)))


def defining_files(tree: Path, symbols: Iterable[str], exclude: Iterable[Path] = ()) -> dict[str, Path]:
    """For each symbol, a prog_tests/*.c file (other than `exclude`) that defines it as a non-static function or
    variable: a test that calls a function another test file defines (iters.c calls test_lsm.c's
    stack_mprotect()) links that file too."""
    wanted = set(symbols)
    found: dict[str, Path] = {}
    skip = {Path(p).resolve() for p in exclude}
    for path in sorted((Path(tree) / PROG_TESTS).glob("*.c")):
        if path.resolve() in skip or not wanted - set(found):
            continue
        text = path.read_text(errors="replace")
        for sym in wanted - set(found):
            if re.search(rf"^(?!static\b|extern\b)[A-Za-z_][\w \t\*]*\b{re.escape(sym)}\s*(\(|=|;|\[)", text, re.M):
                found[sym] = path
    return found
