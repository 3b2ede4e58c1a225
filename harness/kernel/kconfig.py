# SPDX-License-Identifier: GPL-2.0
"""Kconfig fragments as data: parse, merge (conflicts are errors), and check what stuck.

An option may carry the kernel lines it applies to, after it on the same line: `CONFIG_X=y  # kernel <7.3`,
`# CONFIG_Y is not set  # kernel >=6.6, <7.3`. Each clause is an operator (<, <=, >, >=, ==) and a kernel line
(major.minor: Kconfig symbols change with releases, not with stable updates); the clauses all hold. An option
without one applies to every kernel. One option may appear more than once with different values only where
their ranges do not overlap."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError

_SET_RE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET_RE = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set\s*$")
_UNSET_WHEN_RE = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set\s+#(.*)$")
_WHEN_RE = re.compile(r"^\s*kernel\s+(\S.*?)\s*$")
_CLAUSE_RE = re.compile(r"^(<=|>=|==|<|>)\s*(\d+)\.(\d+)$")
_LINE_RE = re.compile(r"^(\d+)\.(\d+)")
WHEN_SYNTAX = ("'# kernel <7.3', '# kernel >=7.3' or '# kernel >=6.6, <7.3' (operators < <= > >= ==, "
               "kernel lines as major.minor)")

Line = tuple[int, int]


def kernel_line(version: str) -> Line | None:
    """(major, minor) of a kernel version ('7.3.4', '6.12.0-rc1', '7.3'); None when it is not one."""
    m = _LINE_RE.match(version.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


@dataclass(frozen=True)
class KernelRange:
    """The kernel lines an option applies to: every clause (operator, line) holds."""

    clauses: tuple[tuple[str, Line], ...]

    @classmethod
    def parse(cls, text: str, where: str) -> KernelRange:
        m = _WHEN_RE.match(text)
        if not m:
            raise ConfigError(f"{where}: only a kernel version condition may follow an option on its line: "
                              f"{WHEN_SYNTAX}; got '#{text}'. Put other comments on a line of their own.",
                              usage=True)
        clauses = []
        for part in m.group(1).split(","):
            c = _CLAUSE_RE.match(part.strip())
            if not c:
                raise ConfigError(f"{where}: {part.strip()!r} is not a kernel version clause: {WHEN_SYNTAX}",
                                  usage=True)
            clauses.append((c.group(1), (int(c.group(2)), int(c.group(3)))))
        rng = cls(tuple(clauses))
        if rng.empty():
            raise ConfigError(f"{where}: the condition '{rng}' holds for no kernel", usage=True)
        return rng

    def __str__(self) -> str:
        return "kernel " + ", ".join(f"{op}{a}.{b}" for op, (a, b) in self.clauses)

    def contains(self, line: Line) -> bool:
        ops = {"<": line.__lt__, "<=": line.__le__, ">": line.__gt__, ">=": line.__ge__, "==": line.__eq__}
        return all(ops[op](v) for op, v in self.clauses)

    def bounds(self) -> tuple[tuple[Line, bool] | None, tuple[Line, bool] | None]:
        """(lower, upper) bounds, each (line, inclusive) or None (unbounded)."""
        lo: tuple[Line, bool] | None = None
        hi: tuple[Line, bool] | None = None
        for op, v in self.clauses:
            if op in (">", ">=", "=="):
                cand = (v, op != ">")
                if lo is None or cand[0] > lo[0] or (cand[0] == lo[0] and not cand[1]):
                    lo = cand
            if op in ("<", "<=", "=="):
                cand = (v, op != "<")
                if hi is None or cand[0] < hi[0] or (cand[0] == hi[0] and not cand[1]):
                    hi = cand
        return lo, hi

    def empty(self) -> bool:
        lo, hi = self.bounds()
        if lo is None or hi is None:
            return False
        return lo[0] > hi[0] or (lo[0] == hi[0] and not (lo[1] and hi[1]))

    def overlaps(self, other: KernelRange | None) -> bool:
        """Whether some kernel line is in both (None: every line). Lines are treated as dense: between 6.12 and
        6.13 there is room, as there is between any two releases that have not happened yet."""
        if other is None:
            return True
        return not KernelRange(self.clauses + other.clauses).empty()


@dataclass(frozen=True)
class Setting:
    """One requested option: `value` is the text after '=', or 'n' for '# ... is not set'; `when` the kernel
    lines it applies to (None: all)."""

    name: str
    value: str
    source: str
    line: int
    when: KernelRange | None = None

    def render(self) -> str:
        if self.value == "n":
            return f"# {self.name} is not set"
        return f"{self.name}={self.value}"

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"

    def applies_to(self, line: Line | None) -> bool:
        """Whether the option is requested for a kernel of `line` (None: unknown, only unconditional options)."""
        if self.when is None:
            return True
        return line is not None and self.when.contains(line)

    def overlaps(self, other: Setting) -> bool:
        return self.when.overlaps(other.when) if self.when is not None else True

    def describe(self) -> str:
        """The request with where it comes from: 'CONFIG_X=y in f.config:3 (kernel <7.3)'."""
        return f"{self.render()} in {self.where}" + (f" ({self.when})" if self.when else "")


@dataclass(frozen=True)
class Fragment:
    path: str
    settings: tuple[Setting, ...]
    overrides: bool = False  # a variant fragment (kernel-config/variants/): its values win over the base's


@dataclass(frozen=True)
class MergedConfig:
    """The union of all fragments, in first-seen order; each option set exactly once."""

    settings: tuple[Setting, ...]
    # The developer's own .config (--kernel-config FILE), if any: the base the fragments are applied onto instead
    # of allnoconfig. Its content counts wherever the merged config does (cache key, build slot), by its hash.
    base: str = ""

    def render(self, *, annotate: bool = False) -> str:
        lines = []
        if self.base:
            lines.append(f"# onto a base .config, sha256 {hashlib.sha256(self.base.encode()).hexdigest()}")
        for s in self.settings:
            when = f" ({s.when})" if s.when else ""
            lines.append(s.render() + (f"  # from {s.where}{when}" if annotate and s.value != "n" else ""))
        if annotate:
            # A '# X is not set' line cannot carry a trailing comment; annotate above it.
            out = lines[:1] if self.base else []
            for s, line in zip(self.settings, lines[1:] if self.base else lines, strict=True):
                if s.value == "n":
                    out.append(f"# ({s.where}{f', {s.when}' if s.when else ''})")
                out.append(line)
            lines = out
        return "\n".join(lines) + "\n"

    def as_dict(self) -> dict[str, Setting]:
        return {s.name: s for s in self.settings}


def _normalize(value: str) -> str:
    value = value.strip()
    if value.startswith('"'):
        return value
    return value.lower() if value.lower() in {"y", "n", "m"} else value


def _split_condition(value: str) -> tuple[str, str | None]:
    """A set line's value and the text after its '#' (None: no comment). A quoted string may hold '#'."""
    value = value.strip()
    if value.startswith('"'):
        m = re.match(r'"(?:[^"\\]|\\.)*"', value)
        if m:
            rest = value[m.end():].strip()
            if rest.startswith("#"):
                return m.group(0), rest[1:]
            return (m.group(0), None) if not rest else (value, None)
    head, sep, tail = value.partition("#")
    return (head.strip(), tail) if sep else (value, None)


def parse_fragment(text: str, source: str) -> Fragment:
    """Parse one fragment. Unknown syntax is a ConfigError naming file and line."""
    settings: list[Setting] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        where = f"{source}:{lineno}"
        m = _UNSET_RE.match(line)
        mw = _UNSET_WHEN_RE.match(line) if not m else None
        if m:
            setting = Setting(m.group(1), "n", source, lineno)
        elif mw:
            setting = Setting(mw.group(1), "n", source, lineno, KernelRange.parse(mw.group(2), where))
        elif line.startswith("#"):
            continue
        else:
            m = _SET_RE.match(line)
            if not m:
                raise ConfigError(
                    f"{where}: not a Kconfig line: {raw!r}. "
                    "Use CONFIG_FOO=y|m|n|\"string\"|number or '# CONFIG_FOO is not set', optionally followed by "
                    f"a kernel version condition: {WHEN_SYNTAX}.", usage=True
                )
            value, condition = _split_condition(m.group(2))
            when = KernelRange.parse(condition, where) if condition is not None else None
            setting = Setting(m.group(1), _normalize(value), source, lineno, when)
        same = [prev for prev in settings if prev.name == setting.name and prev.overlaps(setting)]
        clash = next((prev for prev in same if prev.value != setting.value), None)
        if clash is not None:
            raise ConfigError(
                f"{setting.name} is set twice in {source} for the same kernels: {clash.render()} at line "
                f"{clash.line}{_for(clash)} and {setting.render()} at line {lineno}{_for(setting)}. Keep one, or give "
                f"them kernel ranges that do not overlap ({WHEN_SYNTAX}).", usage=True
            )
        if not any(prev.when == setting.when for prev in same):  # an exact repeat adds nothing
            settings.append(setting)
    return Fragment(source, tuple(settings))


def _for(s: Setting) -> str:
    return f" ({s.when})" if s.when else ""


VARIANTS = "variants"


def load_fragments(config_dir: Path, extra: tuple[Path, ...] = ()) -> list[Fragment]:
    """Every `*.config` in config_dir in name order, then any extra fragment files. An extra fragment of a
    `variants/` directory (what a matrix target adds) overrides the base fragments' values; any other
    disagreement is an error."""
    paths = sorted(config_dir.glob("*.config")) + list(extra)
    if not paths:
        raise ConfigError(f"no *.config fragments in {config_dir}: nothing says how to configure the kernel.",
                          usage=True)
    frags = []
    for p in paths:
        try:
            text = p.read_text()
        except OSError as e:
            raise ConfigError(f"cannot read config fragment {p}: {e.strerror}", usage=True) from e
        frag = parse_fragment(text, str(p))
        if p in extra and Path(p).parent.name == VARIANTS:
            frag = Fragment(frag.path, frag.settings, overrides=True)
        frags.append(frag)
    return frags


def check_conflicts(fragments: list[Fragment]) -> None:
    """Two fragments giving one option different values for some kernel line is an error naming both: checked for
    every kernel at once, before anyone knows which one will be built."""
    seen: dict[str, list[Setting]] = {}
    for frag in fragments:
        for s in frag.settings:
            for prev in seen.get(s.name, []):
                if frag.overrides:
                    break  # a variant changes the base on purpose (the render marks it)
                if prev.value != s.value and prev.overlaps(s) and prev.source != s.source:
                    raise ConfigError(
                        f"conflicting values for {s.name}: {prev.describe()} but {s.describe()}. Make the "
                        f"fragments agree, drop one, or give them kernel ranges that do not overlap.", usage=True
                    )
            seen.setdefault(s.name, []).append(s)


def select(fragments: list[Fragment], kernel: str | None) -> list[Fragment]:
    """The fragments with only the options that apply to a kernel of version `kernel` ('7.3.4'). None or an
    unknown version keeps only unconditional options: an error when a conditional one would be dropped."""
    line = kernel_line(kernel or "")
    if line is None and any(s.when for f in fragments for s in f.settings):
        conditional = next(s for f in fragments for s in f.settings if s.when)
        raise ConfigError(f"the kernel version is not known ({kernel!r}), and {conditional.describe()} depends on "
                          "it: the fragments can only be merged for a known kernel.")
    return [Fragment(f.path, tuple(s for s in f.settings if s.applies_to(line)), f.overrides) for f in fragments]


def merge(fragments: list[Fragment], kernel: str | None = None) -> MergedConfig:
    """Union of fragments for a kernel of version `kernel` (its options with a range that excludes it are left
    out). Two fragments giving one option different values is an error naming both."""
    check_conflicts(fragments)
    merged: dict[str, Setting] = {}
    for frag in select(fragments, kernel):
        for s in frag.settings:
            prev = merged.get(s.name)
            if prev is None or (frag.overrides and prev.value != s.value):
                merged[s.name] = s
            elif prev.value != s.value:
                raise ConfigError(
                    f"conflicting values for {s.name}: {prev.describe()} but {s.describe()}. Make the fragments "
                    "agree, or drop one.", usage=True
                )
    return MergedConfig(tuple(merged.values()))


def parse_dotconfig(text: str) -> dict[str, str]:
    """A final .config as {name: value}; options that are 'not set' map to 'n'."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        m = _UNSET_RE.match(line)
        if m:
            values[m.group(1)] = "n"
            continue
        m = _SET_RE.match(line)
        if m:
            values[m.group(1)] = _normalize(m.group(2))
    return values


@dataclass(frozen=True)
class Mismatch:
    setting: Setting
    actual: str  # 'n' when absent from .config

    def describe(self) -> str:
        actual = "not set" if self.actual == "n" else self.actual
        return f"{self.setting.name}: asked {self.setting.describe()}, got {actual}"


def find_mismatches(merged: MergedConfig, final: dict[str, str]) -> list[Mismatch]:
    """Every requested option whose final value differs (absent counts as 'n')."""
    out = []
    for s in merged.settings:
        actual = final.get(s.name, "n")
        if actual != s.value:
            out.append(Mismatch(s, actual))
    return out


def verify(merged: MergedConfig, final_text: str, config_path: str = ".config", kernel: str = "") -> None:
    """Raise ConfigError listing each requested option that did not stick after olddefconfig (with the fragment
    and line that asked for it, and the kernel version it was asked of)."""
    mismatches = find_mismatches(merged, parse_dotconfig(final_text))
    if mismatches:
        lines = "\n".join("  " + m.describe() for m in mismatches)
        of = f" of Linux {kernel}" if kernel else ""
        raise ConfigError(
            f"{len(mismatches)} requested option(s) did not stick in {config_path}{of} "
            "(usually a dependency that is off, or a symbol this kernel does not have):\n"
            f"{lines}\nAdd the missing dependency to a fragment, drop the option, or limit it to the kernels that "
            f"have it ({WHEN_SYNTAX} after the option). `make menuconfig` then '/' shows an option's dependencies."
        )
