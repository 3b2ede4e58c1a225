# SPDX-License-Identifier: GPL-2.0
"""What bpf_testmod.ko provides (read from the tree's bpf_testmod/ sources) and which programs need it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.selftests.discover import SELFTESTS
from harness.selftests.elf import BpfObject, Program

TESTMOD_DIR = SELFTESTS / "bpf_testmod"  # 6.x
TEST_KMODS_DIR = SELFTESTS / "test_kmods"  # 7.x: bpf_testmod.c and the other test modules moved here
_KFUNC = re.compile(r"\bBTF_ID_FLAGS\s*\(\s*func\s*,\s*(\w+)")
_STRUCT_OPS = re.compile(r"\bregister_bpf_struct_ops\s*\([^,]+,\s*(\w+)\s*\)")
_TRACE = re.compile(r"^\s*(TRACE_EVENT|DECLARE_TRACE\w*|BPF_TESTMOD_DECLARE_TRACE)\s*\(\s*(\w+)\s*,", re.M)
# 7.x (6.16's "tracepoint: Have DECLARE_TRACE() have _tp suffix"): a bare tracepoint is named <name>_tp, so its
# BPF attach target (btf_trace_<name>_tp) is too; TRACE_EVENT and DECLARE_TRACE_EVENT* keep the name.
TRACEPOINT_H = Path("include/linux/tracepoint.h")
_TP_SUFFIX = re.compile(r"#define\s+DECLARE_TRACE\s*\(\s*name\s*,[^)]*\)\s*\\\s*"
                        r"__DECLARE_TRACE\s*\(\s*name\s*##\s*_tp\b")
_FUNC_DEF = re.compile(r"^(?:[A-Za-z_][\w \t\*]*?[\s\*])?([A-Za-z_]\w*)\s*\([^;{}]*\)\s*\{", re.M)


@dataclass(frozen=True)
class Testmod:
    """Names only bpf_testmod.ko gives the kernel: its kfuncs (BTF_ID_FLAGS), its struct_ops types
    (register_bpf_struct_ops), its tracepoints and its functions (attach targets of fentry/tp_btf/...)."""

    __test__ = False  # not a pytest test class, despite the name

    kfuncs: frozenset[str]
    struct_ops: frozenset[str]
    tracepoints: frozenset[str]
    functions: frozenset[str]

    @classmethod
    def from_tree(cls, tree: Path) -> Testmod:
        """From the tree's bpf_testmod/ (6.x) or test_kmods/ (7.x: every test module's source there)."""
        base = Path(tree) / TESTMOD_DIR
        if not (base / "bpf_testmod.c").is_file() and (Path(tree) / TEST_KMODS_DIR).is_dir():
            base = Path(tree) / TEST_KMODS_DIR
        c_text = "\n".join(_read(p) for p in sorted(base.glob("*.c")))
        events = _without_macros(_read(base / "bpf_testmod-events.h"))
        suffix = "_tp" if _TP_SUFFIX.search(_read(Path(tree) / TRACEPOINT_H)) else ""
        # Functions only by a name that says so: bpf_testmod.c also defines names vmlinux has (it shadows
        # bpf_fentry_shadow_test on purpose), and attaching to those needs no module.
        return cls(frozenset(_KFUNC.findall(c_text)), frozenset(_STRUCT_OPS.findall(c_text)),
                   frozenset(_tracepoint(macro, name, suffix) for macro, name in _TRACE.findall(events)),
                   frozenset(n for n in _FUNC_DEF.findall(c_text) if "testmod" in n))

    def object_needs(self, obj: BpfObject) -> list[str]:
        """Why every program of `obj` needs bpf_testmod: libbpf resolves every extern kfunc and creates every
        struct_ops map when it loads the object, whichever programs are autoloaded (a missing weak kfunc
        resolves to a call the verifier refuses)."""
        reasons = [f"kfunc {e.name}" for e in obj.externs() if e.kind == "func" and e.name in self.kfuncs]
        reasons += [f"struct_ops map {m} of {t}" for m, t in obj.struct_ops_maps() if t in self.struct_ops]
        return reasons

    def program_needs(self, prog: Program) -> list[str]:
        """Why one program needs bpf_testmod: its attach target (a tracepoint or function of the module)."""
        target = prog.attach_target
        kind = prog.sec_name.split("/", 1)[0]
        if target in self.tracepoints and kind.startswith(("tp_btf", "raw_tp", "raw_tracepoint", "tp", "tracepoint")):
            return [f"attach target tracepoint {target}"]
        if target in self.functions or target in self.kfuncs:
            return [f"attach target {target}()"]
        return []


def _tracepoint(macro: str, name: str, suffix: str) -> str:
    """The tracepoint a bpf_testmod-events.h declaration makes: `suffix` ("_tp" where the tree's DECLARE_TRACE adds
    it) on a bare one (DECLARE_TRACE, _CONDITION, _SYSCALL, _WRITABLE, BPF_TESTMOD_DECLARE_TRACE), not on an event."""
    bare = macro != "TRACE_EVENT" and not macro.startswith("DECLARE_TRACE_EVENT")
    return name + suffix if bare else name


def _without_macros(text: str) -> str:
    """The text without #define lines and their continuations (a macro's parameters are no tracepoints)."""
    out, in_macro = [], False
    for line in text.splitlines():
        if in_macro or line.lstrip().startswith("#define"):
            in_macro = line.rstrip().endswith("\\")
            continue
        out.append(line)
    return "\n".join(out)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
