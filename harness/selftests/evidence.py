# SPDX-License-Identifier: GPL-2.0
"""What the kernel under test provably lacks: map types (its BTF enum, its config and its tree's bpf_types.h), ksyms."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

BPF_TYPES_H = Path("include/linux/bpf_types.h")
ENOENT, EINVAL, EOPNOTSUPP = 2, 22, 95
# libbpf's map-creation and ksym lines: 6.12 prints "Invalid argument(-22)", 7.x errstr() "-EINVAL".
_MAP_NOT_CREATED = re.compile(r"^libbpf: map '([^']+)': failed to create: (.+)$")
_KSYM_MISSING = re.compile(r"^libbpf: extern \((func|var) ksym\) '([^']+)': not found in kernel")
_ERRNO_NUM = re.compile(r"\((-?\d+)\)\s*$|^(-?\d+)$")
_ERRNO_NAMES = {"-EINVAL": EINVAL, "-ENOENT": ENOENT, "-EOPNOTSUPP": EOPNOTSUPP, "-ENOTSUPP": 524}
_ENUM = re.compile(r"\benum bpf_map_type\s*\{([^}]*)\}", re.S)
_ENUMERATOR = re.compile(r"\b(BPF_MAP_TYPE_\w+)\s*(?:=\s*(\d+))?")
_COND = re.compile(r"^\s*#\s*(ifdef|ifndef|if|elif|else|endif)\b(.*)$")
_MAP_ENTRY = re.compile(r"^\s*BPF_MAP_TYPE\(\s*(BPF_MAP_TYPE_\w+)\s*,")
_DEFINED = re.compile(r"(!?)\s*(?:defined\s*\(\s*(CONFIG_\w+)\s*\)|IS_ENABLED\s*\(\s*(CONFIG_\w+)\s*\))")


def errno_of(text: str) -> int | None:
    """The errno in libbpf's error text: "Invalid argument(-22)" (6.x), "-EINVAL" (7.x), "-22"."""
    text = text.strip()
    if text in _ERRNO_NAMES:
        return _ERRNO_NAMES[text]
    m = _ERRNO_NUM.search(text)
    if m:
        return abs(int(m.group(1) or m.group(2)))
    return None


def map_type_guards(bpf_types_h: str) -> dict[str, tuple[str, ...]]:
    """BPF_MAP_TYPE(name, ops) entries of include/linux/bpf_types.h -> the CONFIG_ options whose #ifdef / #if
    defined(...) blocks enclose them (all must be set for the kernel to register the type). An #else or a condition
    this reader cannot evaluate as such a conjunction leaves the entry out: no evidence, so no skip."""
    stack: list[tuple[str, ...] | None] = []  # per open block: the options it requires, None when unknown
    out: dict[str, tuple[str, ...]] = {}
    for line in bpf_types_h.splitlines():
        if m := _COND.match(line):
            kind, rest = m.group(1), m.group(2).split("/*")[0].strip()
            if kind == "ifdef":
                stack.append((rest,) if rest.startswith("CONFIG_") else None)
            elif kind == "ifndef":
                stack.append(None)
            elif kind == "if":
                stack.append(_conjunction(rest))
            elif kind in ("elif", "else"):
                if stack:
                    stack[-1] = None
            elif kind == "endif" and stack:
                stack.pop()
            continue
        if m := _MAP_ENTRY.match(line):
            if any(block is None for block in stack):
                continue
            out[m.group(1)] = tuple(opt for block in stack for opt in block)  # type: ignore[union-attr]
    return out


def _conjunction(expr: str) -> tuple[str, ...] | None:
    """`defined(CONFIG_A) && IS_ENABLED(CONFIG_B)` -> (CONFIG_A, CONFIG_B); anything else None."""
    parts = [p.strip() for p in expr.split("&&")]
    opts = []
    for part in parts:
        m = _DEFINED.fullmatch(part)
        if not m or m.group(1):
            return None
        opts.append(m.group(2) or m.group(3))
    return tuple(opts) if opts else None


def map_type_enum(vmlinux_h: str) -> dict[int, str]:
    """enum bpf_map_type of a vmlinux.h (a dump of the kernel's BTF): value -> name."""
    m = _ENUM.search(vmlinux_h)
    if not m:
        return {}
    out, value = {}, -1
    for name, explicit in _ENUMERATOR.findall(m.group(1)):
        value = int(explicit) if explicit else value + 1
        out[value] = name
    return out


def read_config(text: str) -> dict[str, str]:
    """A .config: CONFIG_X -> value ("y", "m", a string...); "# CONFIG_X is not set" and absent are both unset."""
    out = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            name, value = line.split("=", 1)
            out[name] = value
    return out


@dataclass(frozen=True)
class KernelEvidence:
    """What shows a kernel lacks something a selftest object needs. `map_types` is the kernel's own enum
    bpf_map_type (from its BTF), `config` its .config (None: not known), `guards` the tree's bpf_types.h,
    `btf_funcs`/`btf_vars` the FUNC and VAR names of its BTF (None: not known)."""

    release: str = ""
    map_types: Mapping[int, str] = field(default_factory=dict)
    config: Mapping[str, str] | None = None
    guards: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    btf_funcs: frozenset[str] | None = None
    btf_vars: frozenset[str] | None = None

    def map_type_missing(self, map_type: int, errno: int | None) -> str | None:
        """Why the kernel has no map type `map_type`, or None when nothing shows it: the kernel answers an unknown
        or unregistered type with EINVAL, so any other errno is never this."""
        if errno != EINVAL or not self.map_types:
            return None
        name = self.map_types.get(map_type)
        if name is None:
            return (f"map type {map_type} is not in this kernel's enum bpf_map_type (its BTF ends at "
                    f"{max(self.map_types)})")
        if self.config is None or name not in self.guards:
            return None
        unset = [opt for opt in self.guards[name] if self.config.get(opt) not in ("y", "m")]
        if not unset:
            return None
        return f"{name} is registered only with {' and '.join(self.guards[name])} (bpf_types.h), and this " \
               f"kernel's config has {', '.join(o + ' unset' for o in unset)}"

    def ksym_missing(self, name: str, kind: str) -> str | None:
        names = self.btf_funcs if kind == "func" else self.btf_vars
        if names is None or name in names:
            return None
        return f"{'kfunc' if kind == 'func' else 'ksym variable'} {name} is not in this kernel's BTF"

    def explain_load_failure(self, libbpf_log: Iterable[str], maps: Iterable[Mapping]) -> list[str] | None:
        """The kernel features whose absence made libbpf give up before any program reached the verifier, each
        shown by this evidence; None when libbpf said something else failed, or a failure this evidence does not
        explain (then the load is judged as test_loader judges it)."""
        by_name = {str(m.get("name")): m for m in maps}
        found: list[str] = []
        for line in libbpf_log:
            line = str(line).rstrip()
            if m := _MAP_NOT_CREATED.match(line):
                info = by_name.get(m.group(1))
                why = None if info is None else self.map_type_missing(int(info.get("type", -1)), errno_of(m.group(2)))
                if why is None:
                    return None
                found.append(f"map '{m.group(1)}': {why}")
            elif m := _KSYM_MISSING.match(line):
                why = self.ksym_missing(m.group(2), m.group(1))
                if why is None:
                    return None
                found.append(why)
        return list(dict.fromkeys(found)) or None


def btf_names(vmlinux: Path, memo_dir: Path | None = None) -> tuple[frozenset[str], frozenset[str]]:
    """The FUNC and VAR names of a vmlinux's BTF (bpftool's raw dump), memoized beside it."""
    memo = (memo_dir or vmlinux.parent) / "btf-names.json"
    try:
        data = json.loads(memo.read_text())
        return frozenset(data["funcs"]), frozenset(data["vars"])
    except (OSError, ValueError, KeyError):
        pass
    out = subprocess.run(["bpftool", "btf", "dump", "file", str(vmlinux)], capture_output=True, text=True,
                         check=True).stdout
    funcs = frozenset(re.findall(r"^\[\d+\] FUNC '([^']+)'", out, re.M))
    variables = frozenset(re.findall(r"^\[\d+\] VAR '([^']+)'", out, re.M))
    try:
        tmp = memo.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"funcs": sorted(funcs), "vars": sorted(variables)}))
        os.replace(tmp, memo)
    except OSError:
        pass
    return funcs, variables


def from_kernel(tree: Path, vmlinux_h: Path, vmlinux: Path | None = None, config: Path | None = None,
                release: str = "") -> KernelEvidence:
    """The evidence of a kernel built from `tree`: its vmlinux.h's enum, its .config, its BTF's names."""
    try:
        guards = map_type_guards((Path(tree) / BPF_TYPES_H).read_text(errors="replace"))
    except OSError:
        guards = {}
    try:
        enum = map_type_enum(Path(vmlinux_h).read_text(errors="replace"))
    except OSError:
        enum = {}
    cfg = None
    if config is not None:
        try:
            cfg = read_config(Path(config).read_text(errors="replace"))
        except OSError:
            cfg = None
    funcs = variables = None
    if vmlinux is not None and Path(vmlinux).is_file():
        try:
            funcs, variables = btf_names(Path(vmlinux))
        except (OSError, subprocess.CalledProcessError):
            funcs = variables = None
    return KernelEvidence(release, enum, cfg, guards, funcs, variables)


_KFUNC_REG = re.compile(r"BTF_ID_FLAGS\(func,\s*(\w+)")
_ENUM_BLOCK = re.compile(r"\benum\s+\w*\s*\{([^}]*)\}", re.S)
_ENUMERATOR_NAME = re.compile(r"^\s*([A-Z][A-Z0-9_]*)\s*(?:=[^,]*)?,?\s*(?:/\*.*)?$", re.M)


def tree_kfuncs(tree: Path) -> frozenset[str]:
    """The kfuncs a kernel tree registers (BTF_ID_FLAGS(func, X) in its C sources, tools/ left out)."""
    return _tree_kfuncs(Path(tree).resolve())


@functools.cache
def _tree_kfuncs(tree: Path) -> frozenset[str]:
    proc = subprocess.run(["grep", "-rhoE", "--include=*.c", "--exclude-dir=tools", "--exclude-dir=Documentation",
                           r"BTF_ID_FLAGS\(func, *[A-Za-z0-9_]+", "."], cwd=tree, capture_output=True, text=True,
                          timeout=300, check=False)
    return frozenset(_KFUNC_REG.findall(proc.stdout))


def uapi_enumerators(tree: Path) -> frozenset[str]:
    """The enumerators of the tree's include/uapi/linux/bpf.h."""
    try:
        text = (Path(tree) / "include/uapi/linux/bpf.h").read_text(errors="replace")
    except OSError:
        return frozenset()
    return frozenset(n for block in _ENUM_BLOCK.findall(text) for n in _ENUMERATOR_NAME.findall(block))
