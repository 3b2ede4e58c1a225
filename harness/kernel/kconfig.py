# SPDX-License-Identifier: GPL-2.0
"""Kconfig fragments as data: parse, merge (conflicts are errors), and check what stuck."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError

_SET_RE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET_RE = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set\s*$")


@dataclass(frozen=True)
class Setting:
    """One requested option: `value` is the text after '=', or 'n' for '# ... is not set'."""

    name: str
    value: str
    source: str
    line: int

    def render(self) -> str:
        if self.value == "n":
            return f"# {self.name} is not set"
        return f"{self.name}={self.value}"

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"


@dataclass(frozen=True)
class Fragment:
    path: str
    settings: tuple[Setting, ...]


@dataclass(frozen=True)
class MergedConfig:
    """The union of all fragments, in first-seen order; each option set exactly once."""

    settings: tuple[Setting, ...]

    def render(self, *, annotate: bool = False) -> str:
        lines = []
        for s in self.settings:
            lines.append(s.render() + (f"  # from {s.where}" if annotate and s.value != "n" else ""))
        if annotate:
            # A '# X is not set' line cannot carry a trailing comment; annotate above it.
            out = []
            for s, line in zip(self.settings, lines, strict=True):
                if s.value == "n":
                    out.append(f"# ({s.where})")
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


def parse_fragment(text: str, source: str) -> Fragment:
    """Parse one fragment. Unknown syntax is a ConfigError naming file and line."""
    settings: list[Setting] = []
    seen: dict[str, Setting] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        m = _UNSET_RE.match(line)
        if m:
            setting = Setting(m.group(1), "n", source, lineno)
        elif line.startswith("#"):
            continue
        else:
            m = _SET_RE.match(line)
            if not m:
                raise ConfigError(
                    f"{source}:{lineno}: not a Kconfig line: {raw!r}. "
                    "Use CONFIG_FOO=y|m|n|\"string\"|number or '# CONFIG_FOO is not set'.", usage=True
                )
            setting = Setting(m.group(1), _normalize(m.group(2)), source, lineno)
        if setting.name in seen and seen[setting.name].value != setting.value:
            prev = seen[setting.name]
            raise ConfigError(
                f"{setting.name} is set twice in {source}: {prev.render()} at line {prev.line} "
                f"and {setting.render()} at line {lineno}. Keep one.", usage=True
            )
        if setting.name not in seen:
            seen[setting.name] = setting
            settings.append(setting)
    return Fragment(source, tuple(settings))


def load_fragments(config_dir: Path, extra: tuple[Path, ...] = ()) -> list[Fragment]:
    """Every `*.config` in config_dir in name order, then any extra fragment files."""
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
        frags.append(parse_fragment(text, str(p)))
    return frags


def merge(fragments: list[Fragment]) -> MergedConfig:
    """Union of fragments. Two fragments giving one option different values is an error naming both."""
    merged: dict[str, Setting] = {}
    for frag in fragments:
        for s in frag.settings:
            prev = merged.get(s.name)
            if prev is None:
                merged[s.name] = s
            elif prev.value != s.value:
                raise ConfigError(
                    f"conflicting values for {s.name}: {prev.render()} in {prev.where} "
                    f"but {s.render()} in {s.where}. Make the fragments agree, or drop one.", usage=True
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
        return f"{self.setting.name}: asked {self.setting.render()} in {self.setting.where}, got {actual}"


def find_mismatches(merged: MergedConfig, final: dict[str, str]) -> list[Mismatch]:
    """Every requested option whose final value differs (absent counts as 'n')."""
    out = []
    for s in merged.settings:
        actual = final.get(s.name, "n")
        if actual != s.value:
            out.append(Mismatch(s, actual))
    return out


def verify(merged: MergedConfig, final_text: str, config_path: str = ".config") -> None:
    """Raise ConfigError listing each requested option that did not stick after olddefconfig."""
    mismatches = find_mismatches(merged, parse_dotconfig(final_text))
    if mismatches:
        lines = "\n".join("  " + m.describe() for m in mismatches)
        raise ConfigError(
            f"{len(mismatches)} requested option(s) did not stick in {config_path} "
            "(usually a dependency that is off, or a symbol this kernel does not have):\n"
            f"{lines}\nAdd the missing dependency to a fragment, or drop the option. "
            "`make menuconfig` then '/' shows an option's dependencies."
        )
