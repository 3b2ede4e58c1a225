# SPDX-License-Identifier: GPL-2.0
"""Upstream's compile recipe for the test_progs BPF objects, read from the tree's selftests Makefile."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from harness.cases.compile import file_digest
from harness.errors import HarnessError, UsageError
from harness.kernel.cache import update_with_files
from harness.selftests.discover import SELFTESTS
from harness.settings import CacheLayout
from harness.tools import version_line

# Bump when the recipe changes in a way its inputs (Makefile, headers, flags) do not show.
# 3: test_kmods/ headers in the key; 2: vmlinux.h from its own directory in the cache (any --vmlinux-h name works)
RECIPE_VERSION = 3
SRCARCH = "x86"  # the arch test_progs runs on here (x86_64 guests)
HELPER_DEFS = "bpf_helper_defs.h"
BPF_H = Path("tools/include/uapi/linux/bpf.h")
BPF_DOC = Path("scripts/bpf_doc.py")
# What the Makefile says when it cannot be read (6.12's values), so a tree with another layout still compiles.
FALLBACK_CFLAGS = ("-g", "-Wall", "-Werror", "-D__TARGET_ARCH_$(SRCARCH)", "$(MENDIAN)", "-I$(INCLUDE_DIR)",
                   "-I$(CURDIR)", "-I$(APIDIR)", "-I$(abspath $(OUTPUT)/../usr/include)",
                   "-Wno-compare-distinct-pointer-types", "$(CLANG_CFLAGS)", "-DENABLE_ATOMICS_TESTS")
FALLBACK_RULE = ("$3", "-O2", "--target=bpf", "-c", "$1", "-mcpu=v3", "-o", "$2")
# Header directories whose content every object's cache key covers (what its #includes can reach).
HEADER_DIRS = (SELFTESTS, SELFTESTS / "progs", SELFTESTS / "bpf_testmod", SELFTESTS / "test_kmods",
               Path("tools/lib/bpf"))
HEADER_TREES = (Path("tools/include"),)

_ASSIGN = re.compile(r"^(?:override\s+)?([A-Za-z_][\w.\-/]*)\s*(:=|\?=|\+=|=)\s*(.*)$")
_PER_FILE = re.compile(r"^(progs/[\w.\-]+\.c)-(?:([\w]+)-)?CFLAGS\s*:?=\s*(.*)$")
_TARGET_SPECIFIC = re.compile(r"^(\$\(OUTPUT\)/[\w.\-]+):\s*BPF_CFLAGS\s*\+=\s*(.*)$")


@dataclass(frozen=True)
class Recipe:
    """How to compile progs/<name>.c as test_progs' Makefile does: `argv(src, obj)`. `honoured` and `skipped`
    say which of the Makefile's settings are applied and which are not (and why); `key` covers every input an
    object depends on besides its own source (headers, bpf_helper_defs.h, vmlinux.h, compiler, flags)."""

    tree: Path
    clang: str
    vmlinux_h: Path
    include_dir: Path  # the generated bpf_helper_defs.h
    cflags: tuple[str, ...]
    rule: tuple[str, ...]  # the build rule's arguments: "$3" (the flags), "$1" (source), "$2" (object)
    per_file: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    honoured: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    key: str = ""

    @property
    def selftests(self) -> Path:
        return self.tree / SELFTESTS

    def flags_for(self, src: Path) -> tuple[str, ...]:
        return self.cflags + self.per_file.get(f"progs/{Path(src).name}", ())

    def argv(self, src: Path, obj: Path) -> list[str]:
        """`$(CLANG) $3 -O2 --target=bpf -c $1 -mcpu=v3 -o $2` with this file's flags."""
        out = [self.clang]
        for tok in self.rule:
            out += list(self.flags_for(src)) if tok == "$3" else [str(src) if tok == "$1" else str(obj)
                                                                   if tok == "$2" else tok]
        return out

    def object_key(self, src: Path, source_bytes: bytes) -> str:
        h = hashlib.sha256(self.key.encode())
        h.update(b"\0flags\0" + "\0".join(self._abstract(f) for f in self.flags_for(src)).encode())
        h.update(b"\0source\0" + hashlib.sha256(source_bytes).digest())
        return h.hexdigest()

    def _abstract(self, flag: str) -> str:
        """A flag with this machine's paths named by role, so the key follows content, not where it lives."""
        for path, role in ((self.include_dir, "<gen>"), (self.vmlinux_h.parent, "<vmlinux>"),
                           (self.tree, "<tree>")):
            flag = flag.replace(str(path), role)
        return flag


class _Makefile:
    """The few Makefile assignments the recipe needs, with continuation lines joined."""

    def __init__(self, text: str) -> None:
        self.lines: list[str] = []
        buf = ""
        for raw in text.splitlines():
            if raw.endswith("\\"):
                buf += raw[:-1] + " "
                continue
            self.lines.append(buf + raw)
            buf = ""
        self.values: dict[str, str] = {}
        for line in self.lines:
            m = _ASSIGN.match(line)
            if m and not line.startswith("\t") and m.group(1) not in self.values:
                self.values[m.group(1)] = m.group(3).strip()

    def before(self, marker: str, name: str) -> str | None:
        """The last assignment to `name` before the line containing `marker` (TRUNNER_* for a runner)."""
        value = None
        for line in self.lines:
            if marker in line:
                return value
            m = _ASSIGN.match(line)
            if m and m.group(1) == name:
                value = m.group(3).strip()
        return None

    def define(self, name: str) -> list[str]:
        body: list[str] = []
        inside = False
        for line in self.lines:
            if line.strip() == f"define {name}":
                inside = True
            elif inside and line.strip() == "endef":
                return body
            elif inside:
                body.append(line)
        return []


def build_recipe(tree: Path, vmlinux_h: Path, layout: CacheLayout, clang: str) -> Recipe:
    """The recipe for `tree`'s test_progs objects against `vmlinux_h` (the kernel's own), generating
    bpf_helper_defs.h into the cache first."""
    tree = Path(tree).resolve()
    base = tree / SELFTESTS
    try:
        mk = _Makefile((base / "Makefile").read_text(errors="replace"))
    except OSError as e:
        raise UsageError(f"{base / 'Makefile'} cannot be read ({e.strerror}): not a tree with the BPF selftests") from e
    include_dir = helper_defs_dir(tree, layout)
    vmlinux_h = vmlinux_h_copy(vmlinux_h, layout)
    honoured: list[str] = []
    skipped: list[str] = []
    marker = "$(eval $(call DEFINE_TEST_RUNNER,test_progs))"
    trunner = mk.before(marker, "TRUNNER_BPF_CFLAGS")
    rule_name = mk.before(marker, "TRUNNER_BPF_BUILD_RULE") or "CLANG_BPF_BUILD_RULE"
    rule = _rule(mk.define(rule_name.strip()))
    if trunner is None or "BPF_CFLAGS" not in mk.values or rule is None:
        skipped.append("the Makefile's TRUNNER_BPF_CFLAGS/BPF_CFLAGS/build rule for test_progs were not found: "
                       "6.12's recipe is used instead")
        tokens, rule = list(FALLBACK_CFLAGS), FALLBACK_RULE
    else:
        tokens = make_tokens(trunner)
    roles = {"gen": include_dir, "vmlinux": vmlinux_h.parent}
    cflags = _expand(tokens, mk, base, clang, roles, honoured, skipped)
    honoured.append(f"{rule_name} (the test_progs flavor): {' '.join(t for t in rule if not t.startswith('$'))}")
    skipped.append("the no_alu32 (-mcpu=v2), cpuv4 (-mcpu=v4) and bpf_gcc flavors: only test_progs' own objects")
    per_file: dict[str, tuple[str, ...]] = {}
    for line in mk.lines:
        m = _PER_FILE.match(line)
        if m and m.group(2) is None:
            per_file[m.group(1)] = tuple(m.group(3).split())
            honoured.append(f"{m.group(1)}-CFLAGS: {m.group(3).strip()}")
        elif m:
            skipped.append(f"{m.group(1)}-{m.group(2)}-CFLAGS: {m.group(3).strip()} (the {m.group(2)} flavor only)")
        t = _TARGET_SPECIFIC.match(line)
        if t:
            skipped.append(f"{t.group(1)}: BPF_CFLAGS += {t.group(2).strip()} (a target-specific setting for that "
                           "object, not a test_progs .bpf.o)")
    skipped.append("CFLAGS, GENFLAGS (-DHAVE_GENHDR) and LLVM_CFLAGS: user-space flags, not BPF_CFLAGS")
    recipe = Recipe(tree, clang, vmlinux_h, include_dir, tuple(cflags), tuple(rule), per_file, tuple(honoured),
                    tuple(skipped))
    beyond = beyond_reader(recipe.rule, recipe.cflags)
    if beyond:
        return _by_make(recipe, beyond, layout)
    return Recipe(**{**recipe.__dict__, "key": _recipe_key(recipe)})


def beyond_reader(rule: tuple[str, ...], cflags: tuple[str, ...]) -> list[str]:
    """What this reader left unexpanded in the rule or the flags (7.x's `$(BPF_TARGET_ENDIAN)`, a permissive
    build's `$(if $(PERMISSIVE),|| ...)` tail, a `#` comment after a continuation): words clang must not get."""
    odd = [t for t in rule if t not in ("$1", "$2", "$3") and ("$(" in t or t in ("||", "&&", ";") or
                                                                t.startswith(("(", "'", '"')) or "printf" in t)]
    odd += [t for t in cflags if "$(" in t or t.startswith("#")]
    return odd


def _by_make(recipe: Recipe, beyond: list[str], layout: CacheLayout) -> Recipe:
    """The recipe as make itself expands the Makefile (harness.selftests.makevars), for a Makefile this reader
    does not follow; the reader's own result, with what it could not read said, when make cannot read it."""
    from harness.selftests.makevars import MakeEvalError, evaluate, per_item

    text = (recipe.tree / SELFTESTS / "Makefile").read_text(errors="replace")
    exprs = make_exprs(text)
    try:
        if exprs is None:
            raise MakeEvalError("no TRUNNER_BPF_CFLAGS before the test_progs runner")
        # VMLINUX_BTF: the Makefile stops without one; none of the expanded values uses it
        values = evaluate(recipe.tree, exprs, make_vars={"CLANG": recipe.clang, "VMLINUX_BTF": str(recipe.vmlinux_h)},
                          lists={"PROGS_CFLAGS": ("$(wildcard progs/*.c)", "$(%-CFLAGS)")})
        made = recipe_from_make(recipe.tree, recipe.vmlinux_h, layout, recipe.clang, values,
                                per_item(values["PROGS_CFLAGS"]))
    except (MakeEvalError, HarnessError) as e:
        skipped = (*recipe.skipped, f"the Makefile has what this reader does not expand ({' '.join(beyond[:6])}), "
                                    f"and make could not expand it either: {str(e).splitlines()[0]}")
        kept = Recipe(**{**recipe.__dict__, "skipped": skipped})
        return Recipe(**{**kept.__dict__, "key": _recipe_key(kept)})
    note = f"make's own expansion of the Makefile (this reader leaves {' '.join(beyond[:6])} unexpanded)"
    return Recipe(**{**made.__dict__, "honoured": (note, *made.honoured)})


def _rule(body: list[str]) -> tuple[str, ...] | None:
    """The build rule's clang invocation: `$(Q)$(CLANG) $3 -O2 --target=bpf -c $1 -mcpu=v3 -o $2`."""
    for line in body:
        toks = line.split()
        for i, tok in enumerate(toks):
            if tok.endswith("$(CLANG)"):
                rest = tuple(toks[i + 1:])
                return rest if {"$1", "$2", "$3"} <= set(rest) else None
    return None


def _expand(tokens: list[str], mk: _Makefile, base: Path, clang: str, roles: dict[str, Path],
            honoured: list[str], skipped: list[str]) -> list[str]:
    """Expand TRUNNER_BPF_CFLAGS's make variables into clang flags, noting what each one became."""
    tree = base.parent.parent.parent.parent
    simple = {"SRCARCH": SRCARCH, "MENDIAN": "-mlittle-endian", "CURDIR": str(base), "OUTPUT": str(base),
              "TOOLSDIR": str(tree / "tools"), "TOOLSINCDIR": str(tree / "tools/include"),
              "APIDIR": str(tree / "tools/include/uapi"), "LIBDIR": str(tree / "tools/lib")}
    out: list[str] = []
    for tok in tokens:
        name = _var(tok)
        if name in ("BPF_CFLAGS", "CLANG_CFLAGS") and tok == f"$({name})":
            if name == "BPF_CFLAGS":
                flags = _expand(make_tokens(mk.values["BPF_CFLAGS"]), mk, base, clang, roles, honoured, skipped)
                shown = " ".join(flags)
                for path, role in ((roles["gen"], "<generated>"), (roles["vmlinux"], "<kernel's vmlinux.h dir>"),
                                   (tree, "<tree>")):
                    shown = shown.replace(str(path), role)
                honoured.append("BPF_CFLAGS: " + shown)
            else:
                flags = sys_includes(clang)
                honoured.append("CLANG_CFLAGS: clang's own system include directories as -idirafter "
                                "(get_sys_includes): " + " ".join(flags[1::2]))
            out += flags
        elif tok == "-I$(INCLUDE_DIR)":
            # INCLUDE_DIR holds the generated and installed headers: bpf_helper_defs.h, vmlinux.h, and
            # libbpf's headers as <bpf/...> (here from the tree's tools/lib).
            out += [f"-I{roles['gen']}", f"-I{roles['vmlinux']}", f"-I{tree / 'tools/lib'}"]
        elif tok.startswith("-I$(abspath"):
            path = (base / "../usr/include").resolve()
            if path.is_dir():
                out.append(f"-I{path}")
            else:
                skipped.append(f"{tok} ({path}: the kernel headers `make headers_install` puts there are not "
                               "installed; clang's system includes, linux-libc-dev's, stand in)")
        elif "$(" in tok:
            value = _subst(tok, simple)
            if value is None:
                skipped.append(f"{tok} (a make expression this recipe does not evaluate)")
            elif value:
                out.append(value)
        else:
            out.append(tok)
            if tok == "-DENABLE_ATOMICS_TESTS":
                honoured.append("-DENABLE_ATOMICS_TESTS (test_progs' TRUNNER_BPF_CFLAGS)")
    return out


def make_tokens(text: str) -> list[str]:
    """A make value split on blanks outside $(...): `-I$(abspath $(OUTPUT)/x)` stays one word."""
    out, cur, depth = [], "", 0
    for ch in text:
        if ch.isspace() and depth == 0:
            if cur:
                out.append(cur)
            cur = ""
            continue
        depth += 1 if ch == "(" else -1 if ch == ")" and depth else 0
        cur += ch
    if cur:
        out.append(cur)
    return out


def _var(tok: str) -> str | None:
    m = re.fullmatch(r"\$\((\w+)\)", tok)
    return m.group(1) if m else None


def _subst(tok: str, values: dict[str, str]) -> str | None:
    missing = False

    def one(m: re.Match[str]) -> str:
        nonlocal missing
        if m.group(1) in values:
            return values[m.group(1)]
        missing = True
        return ""

    out = re.sub(r"\$\((\w+)\)", one, tok)
    return None if missing or "$(" in out else out


@cache
def sys_includes(clang: str) -> list[str]:
    """get_sys_includes: clang's default include search list (as the host target sees it) as -idirafter."""
    try:
        out = subprocess.run([clang, "-v", "-E", "-"], input="", capture_output=True, text=True, timeout=60,
                             check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    flags, inside = [], False
    for line in out.stderr.splitlines():
        if line.startswith("#include <...> search starts here:"):
            inside = True
        elif line.startswith("End of search list."):
            break
        elif inside and line.startswith(" /"):
            flags += ["-idirafter", line.strip()]
    return flags


def helper_defs_dir(tree: Path, layout: CacheLayout) -> Path:
    """A directory holding bpf_helper_defs.h generated as libbpf's Makefile does (scripts/bpf_doc.py --header
    --file tools/include/uapi/linux/bpf.h), cached by the content of those two files."""
    bpf_h, bpf_doc = tree / BPF_H, tree / BPF_DOC
    try:
        digest = hashlib.sha256(bpf_h.read_bytes() + b"\0" + bpf_doc.read_bytes()).hexdigest()[:16]
    except OSError as e:
        raise UsageError(f"{tree} lacks {BPF_H} or {BPF_DOC} ({e.strerror}): bpf_helper_defs.h cannot be "
                           "generated") from e
    out_dir = layout.generated / f"bpf-helper-defs-{digest}"
    target = out_dir / HELPER_DEFS
    if target.is_file() and target.stat().st_size > 0:
        return out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, str(bpf_doc), "--header", "--file", str(bpf_h)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False, cwd=tree)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise HarnessError(f"generating {HELPER_DEFS} failed ({' '.join(argv)}): {proc.stderr.strip()[-500:]}")
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".tmp-", suffix=".h")
    with os.fdopen(fd, "w") as fh:
        fh.write(proc.stdout)
    os.replace(tmp, target)
    return out_dir


def vmlinux_h_copy(vmlinux_h: Path, layout: CacheLayout) -> Path:
    """`vmlinux_h` as a file named vmlinux.h alone in a directory of the cache, keyed by its content: the
    objects include "vmlinux.h" by that name (a --vmlinux-h FILE may be named otherwise), and nothing else in
    the directory of a kernel artifact (its audit.h) can shadow a header the selftests include."""
    digest = file_digest(vmlinux_h)[:16]
    out_dir = layout.generated / f"vmlinux-{digest}"
    target = out_dir / "vmlinux.h"
    if target.is_file() and file_digest(target)[:16] == digest:
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".tmp-", suffix=".h")
    with os.fdopen(fd, "wb") as fh, open(vmlinux_h, "rb") as src:
        shutil.copyfileobj(src, fh)
    os.replace(tmp, target)
    return target


def _recipe_key(recipe: Recipe) -> str:
    h = hashlib.sha256(b"selftests-recipe:%d" % RECIPE_VERSION)
    for part in (
        " ".join(recipe._abstract(f) for f in (*recipe.cflags, *recipe.rule)),
        headers_digest(recipe.tree),
        file_digest(recipe.include_dir / HELPER_DEFS),
        file_digest(recipe.vmlinux_h),
        version_line(recipe.clang, "--version"),
    ):
        h.update(hashlib.sha256(part.encode()).digest())
    return h.hexdigest()


def headers_digest(tree: Path) -> str:
    """sha256 over every header the objects can include from the tree (path and content)."""
    h = hashlib.sha256()
    paths: list[Path] = []
    for rel in HEADER_DIRS:
        paths += sorted((tree / rel).glob("*.h"))
    for rel in HEADER_TREES:
        paths += sorted((tree / rel).rglob("*.h"))
    update_with_files(h, tree, paths)
    return h.hexdigest()


# -- the same recipe, expanded by make itself ---------------------------------------------------------------------
# The Python reader above knows 6.12's Makefile. make itself expands any version's: 7.x's `$(BPF_TARGET_ENDIAN)`,
# `$(if $(PERMISSIVE),|| ...)` tails and new flags. What it cannot know is which TRUNNER_BPF_CFLAGS and build rule
# were in force when `DEFINE_TEST_RUNNER,test_progs` was evaluated (later flavors assign them again): those two
# texts are taken from before that line and handed to make to expand.
TEST_PROGS_MARKER = "$(eval $(call DEFINE_TEST_RUNNER,test_progs))"
SRC_TOKEN, OBJ_TOKEN, FLAGS_TOKEN = "@BAH_SRC@", "@BAH_OBJ@", "@BAH_FLAGS@"


def make_exprs(makefile_text: str) -> dict[str, str] | None:
    """The make expressions whose expansion gives test_progs' BPF recipe (None: the Makefile does not define the
    test_progs runner as 6.x/7.x do)."""
    from harness.selftests.makevars import before

    flags = before(makefile_text, TEST_PROGS_MARKER, "TRUNNER_BPF_CFLAGS")
    rule = before(makefile_text, TEST_PROGS_MARKER, "TRUNNER_BPF_BUILD_RULE") or "CLANG_BPF_BUILD_RULE"
    if flags is None:
        return None
    return {"BPF_FLAGS": flags, "BPF_RULE": f"$(call {rule.strip()},{SRC_TOKEN},{OBJ_TOKEN},{FLAGS_TOKEN},test_progs)",
            "BPF_RULE_NAME": rule.strip()}


def rule_tokens(expanded: str) -> tuple[str, ...] | None:
    """The compiler invocation of an expanded build rule, as "$3" (flags) / "$1" (source) / "$2" (object) and
    literal words, without the compiler itself; None if no line runs a compiler on the source."""
    import shlex

    for line in expanded.splitlines():
        if SRC_TOKEN not in line or OBJ_TOKEN not in line or "printf" in line.split(SRC_TOKEN)[0]:
            continue
        text = line.strip().lstrip("@").strip()
        try:
            words = shlex.split(text)
        except ValueError:
            continue
        if not words or words[0] in ("printf", "echo"):
            continue
        out = []
        for w in words[1:]:
            if w in ("||", "&&", ";") or w.startswith(("(", ";")):
                break  # a permissive build's fallback after the compile: not the compile's
            out.append({FLAGS_TOKEN: "$3", SRC_TOKEN: "$1", OBJ_TOKEN: "$2"}.get(w, w))
        if {"$1", "$2", "$3"} <= set(out):
            return tuple(out)
    return None


def recipe_from_make(tree: Path, vmlinux_h: Path, layout: CacheLayout, clang: str, values: Mapping[str, str],
                     per_file: Mapping[str, str]) -> Recipe:
    """A Recipe from make's expansion (`values` holds BPF_FLAGS, BPF_RULE, BPF_RULE_NAME and __output__, the
    scratch OUTPUT make ran with; `per_file` progs/<name>.c -> its own CFLAGS). The OUTPUT-relative include
    directories become the harness's: INCLUDE_DIR (vmlinux.h, bpf_helper_defs.h, libbpf's headers) the generated
    directories and the tree's tools/lib; `$(OUTPUT)/../usr/include` the tree's, when `make headers_install` made
    it."""
    tree = Path(tree).resolve()
    include_dir = helper_defs_dir(tree, layout)
    vmlinux_h = vmlinux_h_copy(vmlinux_h, layout)
    out = values["__output__"]
    rule = rule_tokens(values["BPF_RULE"])
    if rule is None:
        raise HarnessError(f"make's expansion of {values.get('BPF_RULE_NAME')} runs no compiler on the source:\n"
                           f"{values['BPF_RULE']}")
    honoured = [f"{values.get('BPF_RULE_NAME')} (the test_progs flavor, as make expands it): "
                f"{' '.join(t for t in rule if not t.startswith('$'))}"]
    skipped: list[str] = []
    cflags: list[str] = []
    usr = (tree / SELFTESTS / "../usr/include").resolve()
    for tok in make_tokens(values["BPF_FLAGS"]):
        if tok == f"-I{out}/tools/include":
            cflags += [f"-I{include_dir}", f"-I{vmlinux_h.parent}", f"-I{tree / 'tools/lib'}"]
        elif tok.startswith("-I") and tok[2:].startswith(str(Path(out).parent)):
            if usr.is_dir():
                cflags.append(f"-I{usr}")
            else:
                skipped.append(f"{tok.replace(str(Path(out).parent), '$(OUTPUT)/..')} (the kernel headers "
                               "`make headers_install` puts there are not installed; clang's system includes stand in)")
        else:
            cflags.append(tok)
    shown = " ".join(cflags)
    for path, role in ((include_dir, "<generated>"), (vmlinux_h.parent, "<kernel's vmlinux.h dir>"), (tree, "<tree>")):
        shown = shown.replace(str(path), role)
    honoured.append("TRUNNER_BPF_CFLAGS (make's expansion): " + shown)
    files: dict[str, tuple[str, ...]] = {}
    for name, flags in per_file.items():
        if flags.strip():
            files[name] = tuple(make_tokens(flags))
            honoured.append(f"{name}-CFLAGS: {flags.strip()}")
    recipe = Recipe(tree, clang, vmlinux_h, include_dir, tuple(cflags), rule, files, tuple(honoured), tuple(skipped))
    return Recipe(**{**recipe.__dict__, "key": _recipe_key(recipe)})
