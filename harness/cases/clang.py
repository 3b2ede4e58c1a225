# SPDX-License-Identifier: GPL-2.0
"""Which clang compiles BPF programs: --clang, $CLANG, or one found on PATH; refused when too old or tagless."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from harness.errors import MissingToolError, UsageError
from harness.tools import require, version_line

# The environment variable the kernel's own selftests Makefile reads (`CLANG ?= clang`); --clang sets it for the
# run, so xdist workers, inner pytest runs and every compile site see the same compiler.
CLANG_ENV = "CLANG"
# clang 14 drops btf_type_tag on struct members (a `__kptr` map value becomes a plain pointer); 15 keeps it but is
# not what anybody here tested; 16 to 19 were checked (docs/decisions.md). Newer ones are taken as they come.
MIN_MAJOR = 16
PREFERRED = "clang-19"  # the tested one, taken first when nothing is named
# A `__kptr` field in a map's value type, as the cases declare one. Checked: clang 14 keeps the tag on a global's
# own member but drops it here (the value struct is reached through the map definition's pointer), clang 19 keeps it.
TYPE_TAG_PROBE = """\
struct task_struct { int pid; };
struct value { struct task_struct __attribute__((btf_type_tag("kptr"))) *t; };
struct { int (*type)[2]; struct value *value; } probe_map __attribute__((section(".maps")));
"""
_VERSION = re.compile(r"clang version (\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Clang:
    """A BPF compiler that passed the checks: its path, version and where the choice came from."""

    path: str
    version: str  # "19.1.7"
    origin: str  # "--clang", "$CLANG", "found on PATH"
    banner: str  # its own first --version line

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def describe(self) -> str:
        return f"{self.path} (clang {self.version}; {self.origin})"


def parse_version(banner: str) -> str | None:
    """'19.1.7' from a `clang --version` first line (Debian's, Ubuntu's, upstream's, Apple's), None if not clang."""
    m = _VERSION.search(banner)
    if m is None:
        return None
    return ".".join(g for g in m.groups() if g is not None)


def candidates() -> list[str]:
    """What is tried when nothing is named: clang-19, then every other clang-N on PATH (newest first), then plain
    clang. Versions below MIN_MAJOR are refused by the checks, not here."""
    numbered: set[int] = set()
    for d in os.environ.get("PATH", "").split(os.pathsep):
        try:
            names = os.listdir(d or ".")
        except OSError:
            continue
        for name in names:
            m = re.fullmatch(r"clang-(\d+)", name)
            if m:
                numbered.add(int(m.group(1)))
    ordered = [PREFERRED] + [f"clang-{n}" for n in sorted(numbered, reverse=True) if f"clang-{n}" != PREFERRED]
    return [*ordered, "clang"]


def select(explicit: str | None = None) -> Clang:
    """The compiler a run uses: `explicit` (--clang), else $CLANG, else the first suitable one of candidates().
    A named compiler that fails a check is a UsageError (exit 2) saying why; none found is a MissingToolError."""
    if explicit:
        return _checked(explicit, "--clang")
    named = os.environ.get(CLANG_ENV, "").strip()
    if _USED and _USED[-1].path == named:
        return _USED[-1]  # this process's --clang (use() put it in $CLANG): said as given
    if named:
        return _checked(named, f"${CLANG_ENV}")
    return _found_on_path(os.environ.get("PATH", ""))


@lru_cache(maxsize=4)
def _found_on_path(path_env: str) -> Clang:
    """The search, once per PATH (every compile asks; a failure is not cached, and ends the run anyway)."""
    refused: list[str] = []
    for name in candidates():
        path = shutil.which(name)
        if path is None:
            continue
        try:
            return _checked(path, "found on PATH")
        except UsageError as e:
            refused.append(str(e))
    why = ("; ".join(refused) + ". ") if refused else ""
    raise MissingToolError(
        f"no usable clang for BPF programs: {why}A clang >= {MIN_MAJOR} that keeps btf_type_tag is needed. Install "
        f"one (apt-get install {PREFERRED}, or `make deps`), or name yours with --clang PATH or {CLANG_ENV}=PATH.")


def _checked(name: str, origin: str) -> Clang:
    return _check(name, origin, os.environ.get("PATH", ""))


@lru_cache(maxsize=16)
def _check(name: str, origin: str, path_env: str) -> Clang:
    """Resolve `name` (a path, or a command on PATH), read its version, and compile the type-tag probe with it."""
    path = name if os.sep in name else shutil.which(name)
    if path is None or not os.access(path, os.X_OK) or os.path.isdir(path):
        raise UsageError(f"{origin} {name}: no such executable" + ("" if os.sep in name else " on PATH") + ".")
    path = os.path.abspath(path)
    banner = version_line(path, "--version")
    version = parse_version(banner)
    if version is None:
        raise UsageError(f"{origin} {name}: {path} does not say it is clang (its --version: {banner or 'nothing'!r}).")
    if int(version.split(".")[0]) < MIN_MAJOR:
        raise UsageError(
            f"{origin} {name}: {path} is clang {version}; BPF programs here need clang >= {MIN_MAJOR} (clang 14 "
            "silently drops btf_type_tag, so a `__kptr` map value loses its kptr-ness and the verifier rejects valid "
            f"programs). Install {PREFERRED} (or newer) and pass it with --clang.")
    tags, detail = emits_type_tags(path)
    if not tags:
        raise UsageError(
            f"{origin} {name}: {path} (clang {version}) does not keep btf_type_tag on struct members ({detail}), so "
            f"`__kptr` fields would compile to plain pointers. Use a clang that does ({PREFERRED} does).")
    return Clang(path, version, origin, banner)


@lru_cache(maxsize=8)
def emits_type_tags(clang: str) -> tuple[bool, str]:
    """Whether this compiler keeps btf_type_tag on struct members (clang 14 silently drops it), and what it did:
    compiles a two-line probe for BPF and looks for TYPE_TAG 'kptr' in the object's BTF (harness.btf)."""
    from harness.btf import BTFError, read_file

    found = require(clang)
    with tempfile.TemporaryDirectory(prefix="bah-typetag-") as tmp:
        probe_c, probe_o = Path(tmp) / "probe.c", Path(tmp) / "probe.o"
        probe_c.write_text(TYPE_TAG_PROBE)
        argv = [found[clang], "-g", "-O2", "-target", "bpf", "-c", str(probe_c), "-o", str(probe_o)]
        try:
            built = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        except subprocess.TimeoutExpired:
            return False, "the probe did not compile within 120 s"
        if built.returncode != 0 or not probe_o.is_file():
            return False, f"it cannot compile the probe for -target bpf: {built.stderr.strip()[-300:]}"
        try:
            tagged = read_file(probe_o).has_type_tag("kptr")
        except BTFError as e:
            return False, f"its BTF cannot be read: {e}"
        if not tagged:
            return False, "the probe's map value has no TYPE_TAG 'kptr' in its BTF"
        return True, "the probe's BTF has TYPE_TAG 'kptr'"


def use(explicit: str) -> Clang:
    """--clang PATH: check it and name it in $CLANG for this process and its children (xdist workers, inner pytest
    runs, the selftests' make)."""
    chosen = select(explicit)
    os.environ[CLANG_ENV] = chosen.path
    _USED.append(chosen)
    return chosen


_USED: list[Clang] = []  # what use() chose in this process
