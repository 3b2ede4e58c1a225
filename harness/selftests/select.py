# SPDX-License-Identifier: GPL-2.0
"""test_progs' own test selection (-t/-a/-b/-d, test/subtest, @file, the tree's DENYLIST) for the RUN_TESTS set."""

from __future__ import annotations

import platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import UsageError
from harness.selftests.discover import SELFTESTS


def glob_match(text: str, pattern: str) -> bool:
    """test_progs' glob_match(): '*' matches any run of characters; nothing else is special."""
    while text and pattern and pattern[0] != "*":
        if text[0] != pattern[0]:
            return False
        text, pattern = text[1:], pattern[1:]
    if pattern.startswith("*"):
        pattern = pattern.lstrip("*")
        if not pattern:
            return True
        return any(glob_match(text[i:], pattern) for i in range(len(text)))
    return not text and not pattern


@dataclass(frozen=True)
class Filter:
    """One entry of a list: a test pattern and, after a '/', subtest patterns (none: the whole test)."""

    test: str
    subtests: tuple[str, ...] = ()


def _entry(spec: str, glob: bool) -> Filter:
    """insert_test(): -t/-b wrap each part in '*...*' (a substring), -a/-d take it as a glob."""
    test, _, sub = spec.partition("/")
    wrap = (lambda s: s) if glob else (lambda s: f"*{s}*")
    return Filter(wrap(test), (wrap(sub),) if _ else ())


def read_list_file(path: Path) -> list[str]:
    """parse_test_list_file(): a spec per line, blanks trimmed, '#' starts a comment, empty lines ignored."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as e:
        raise UsageError(f"Failed to open '{path}': {e.strerror}") from e
    out = []
    for line in text.splitlines():
        spec = line.split("#", 1)[0].strip()
        if spec:
            out.append(spec)
    return out


def parse_list(value: str, glob: bool, *, base: Path | None = None) -> list[Filter]:
    """One -t/-a/-b/-d value: "@FILE" (a list file, relative to `base` first when it has one there) or comma
    separated specs."""
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        if not path.is_absolute() and base is not None and (base / path).is_file():
            path = base / path
        return [_entry(s, glob) for s in read_list_file(path)]
    return [_entry(s, glob) for s in value.split(",") if s]


def _merge(filters: Iterable[Filter]) -> list[Filter]:
    """do_insert_test(): entries of one test pattern share one filter, their subtest patterns joined."""
    merged: dict[str, list[str]] = {}
    whole: set[str] = set()
    for f in filters:
        merged.setdefault(f.test, [])
        if f.subtests:
            merged[f.test] += list(f.subtests)
        else:
            whole.add(f.test)
    return [Filter(t, () if t in whole else tuple(s)) for t, s in merged.items()]


@dataclass
class Selector:
    """test_progs' test_selector: a whitelist (-t, -a) and a blacklist (-b, -d)."""

    whitelist: list[Filter] = field(default_factory=list)
    blacklist: list[Filter] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # what was read, for the report

    def __post_init__(self) -> None:
        self.whitelist, self.blacklist = _merge(self.whitelist), _merge(self.blacklist)

    def should_run(self, test: str) -> bool:
        """should_run(): a blacklisted whole test is out; a whitelisted one in; no whitelist: every test."""
        if any(glob_match(test, f.test) and not f.subtests for f in self.blacklist):
            return False
        if any(glob_match(test, f.test) for f in self.whitelist):
            return True
        return not self.whitelist

    def should_run_subtest(self, test: str, name: str, desc: str | None = None) -> bool:
        """should_run_subtest(): a subtest matched by name or description (7.x keeps both) in the blacklist is out,
        in the whitelist in; with no whitelist every subtest runs."""
        if _matches(self.blacklist, test, name, desc):
            return False
        if _matches(self.whitelist, test, name, desc):
            return True
        return not self.whitelist


def _match_one(filters: Sequence[Filter], test: str, sub: str) -> bool:
    for f in filters:
        if glob_match(test, f.test):
            if not f.subtests or any(glob_match(sub, s) for s in f.subtests):
                return True
    return False


def _matches(filters: Sequence[Filter], test: str, name: str, desc: str | None) -> bool:
    if _match_one(filters, test, name):
        return True
    return bool(desc) and desc != name and _match_one(filters, test, desc or "")


def denylists(tree: Path, arch: str | None = None) -> list[Path]:
    """The tree's own DENYLIST and DENYLIST.<arch> (what vmtest.sh and BPF CI pass as -d @...)."""
    base = Path(tree) / SELFTESTS
    arch = arch or platform.machine()
    return [p for p in (base / "DENYLIST", base / f"DENYLIST.{arch}") if p.is_file()]


def allowlists(tree: Path, arch: str | None = None) -> list[Path]:
    base = Path(tree) / SELFTESTS
    arch = arch or platform.machine()
    return [p for p in (base / "ALLOWLIST", base / f"ALLOWLIST.{arch}") if p.is_file()]


def build_selector(tree: Path, *, t: Sequence[str] = (), a: Sequence[str] = (), b: Sequence[str] = (),
                   d: Sequence[str] = (), use_lists: bool = True) -> Selector:
    """The selector of a run: the -t/-a/-b/-d values (an @FILE relative to the tree's selftests directory when
    there is such a file there), and unless `use_lists` is off the tree's DENYLIST (-d) and ALLOWLIST (-a) files."""
    base = Path(tree) / SELFTESTS
    white: list[Filter] = []
    black: list[Filter] = []
    sources: list[str] = []
    for values, glob, into in ((t, False, white), (a, True, white), (b, False, black), (d, True, black)):
        for v in values:
            into += parse_list(v, glob, base=base)
    if use_lists:
        for p in denylists(tree):
            black += [_entry(s, True) for s in read_list_file(p)]
            sources.append(f"-d @{p}")
        for p in allowlists(tree):
            white += [_entry(s, True) for s in read_list_file(p)]
            sources.append(f"-a @{p}")
    return Selector(white, black, sources)
