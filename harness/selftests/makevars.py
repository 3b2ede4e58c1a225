# SPDX-License-Identifier: GPL-2.0
"""Values of a tree's selftests/bpf Makefile as make itself expands them (its own functions, includes and probes)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from harness.errors import HarnessError
from harness.selftests.discover import SELFTESTS

MAKE_TIMEOUT = 120
# What is passed on make's command line besides OUTPUT: no feature probes (the only one, llvm, turns on the JIT
# disassembler, which needs LLVM's static libraries linked into test_progs; see testprogs.build), and 7.3's switch
# for the same. Command-line values override the Makefile's own assignments.
QUIET = {"FEATURE_TESTS": "", "FEATURE_DISPLAY": "", "SKIP_LLVM": "1", "SKIP_DOCS": "1"}
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


class MakeEvalError(HarnessError):
    """make could not read the selftests Makefile (or one of the expressions asked for)."""

    stage = "build"


def before(text: str, marker: str, name: str) -> str | None:
    """The value of the last assignment to `name` before the line holding `marker` (continuations joined): what a
    TRUNNER_* variable is when `$(eval $(call DEFINE_TEST_RUNNER,test_progs))` reads it. Later flavors assign it
    again, so make's final value is not test_progs' own."""
    value = None
    buf = ""
    for raw in text.splitlines():
        if raw.endswith("\\"):
            buf += raw[:-1] + " "
            continue
        line, buf = buf + raw, ""
        if marker in line:
            return value
        m = re.match(rf"^(?:override\s+)?{re.escape(name)}\s*(?::=|\?=|=)\s*(.*)$", line)
        if m:
            value = m.group(1).strip()
        m = re.match(rf"^(?:override\s+)?{re.escape(name)}\s*\+=\s*(.*)$", line)
        if m and value is not None:
            value += " " + m.group(1).strip()
    return None


def evaluate(tree: Path, exprs: Mapping[str, str], *, make_vars: Mapping[str, str] | None = None,
             lists: Mapping[str, tuple[str, str]] | None = None, scratch: Path | None = None) -> dict[str, str]:
    """Expand each make expression of `exprs` (label -> text such as "$(CFLAGS)") after make has read the tree's
    tools/testing/selftests/bpf/Makefile, with `make_vars` on the command line. `lists` maps a label to (a list
    expression, a per-item expression with `%` for the item): one line "<item>\\t<value>" per item, e.g. each
    progs/*.c file's own CFLAGS. Returns label -> text. Runs `make -f Makefile -f <printer>` in the selftests
    directory with OUTPUT in a scratch directory (the Makefile's probes write there, never into the tree)."""
    tree = Path(tree)
    base = tree / SELFTESTS
    if not (base / "Makefile").is_file():
        raise MakeEvalError(f"{base / 'Makefile'} does not exist: not a tree with the BPF selftests", usage=True)
    own = scratch is None
    work = Path(tempfile.mkdtemp(prefix="bah-makevars-")) if scratch is None else Path(scratch)
    try:
        return _evaluate(base, work, exprs, dict(make_vars or {}), dict(lists or {}))
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


def _evaluate(base: Path, work: Path, exprs: Mapping[str, str], make_vars: dict[str, str],
              lists: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    vals = work / "vals"
    out = work / "out"
    vals.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for label, expr in {**exprs, **{k: v[0] for k, v in lists.items()}}.items():
        if not _LABEL.match(label):
            raise ValueError(f"bad label {label!r}")
        lines.append(f"BAH_EXPR_{label} = {expr}")
    lines.append("bah-print-values:")
    for label in exprs:
        lines.append(f"\t$(file >{vals / label},$(BAH_EXPR_{label}))")
    for label, (_items, per_item) in lists.items():
        lines.append(f"\t$(file >{vals / label},)")
        item_expr = per_item.replace("%", "$(bah_item)")
        lines.append(f"\t$(foreach bah_item,$(BAH_EXPR_{label}),$(file >>{vals / label},$(bah_item)\t{item_expr}))")
    lines.append("\t@:")
    printer = work / "print-values.mk"
    printer.write_text("\n".join(lines) + "\n")
    argv = ["make", "-C", str(base), "-s", "--no-print-directory", "-f", "Makefile", "-f", str(printer),
            f"OUTPUT={out}", *(f"{k}={v}" for k, v in {**QUIET, **make_vars}.items()), "bah-print-values"]
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "O", "V")}
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=MAKE_TIMEOUT, check=False, env=env,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise MakeEvalError(f"make did not read {base / 'Makefile'} within {MAKE_TIMEOUT} s") from e
    missing = [label for label in (*exprs, *lists) if not (vals / label).is_file()]
    if proc.returncode != 0 or missing:
        raise MakeEvalError(f"make could not read {base / 'Makefile'} (exit {proc.returncode}"
                            f"{', no value for ' + ', '.join(missing) if missing else ''}):\n"
                            f"{(proc.stderr or proc.stdout).strip()[-2000:]}\n$ {' '.join(argv)}")
    values = {label: (vals / label).read_text().removesuffix("\n") for label in (*exprs, *lists)}
    values["__output__"] = str(out)
    return values


SUB_MAKE = "bah-sub-make"  # what $(MAKE) becomes in a dry run: a recursive make is seen, never run


def make_file(tree: Path, target: Path, variable: str, *, output: Path, make_vars: Mapping[str, str] | None = None,
              log=None) -> str | None:
    """Have the Makefile's own rule make the file a variable names (e.g. 7.3's VERIFY_SIG_HDR, verification_cert.h)
    at `target` instead: the variable is set to `target` on the command line, so its rule writes there and not
    into the tree, with OUTPUT (where the rule's prerequisites go) at `output`. A rule that runs a recursive make
    (a sub-make of the tree writes into the tree) is not run. Returns None when made, else why not. `log(argv,
    proc)` sees each make run."""
    base = Path(tree) / SELFTESTS
    Path(output).mkdir(parents=True, exist_ok=True)
    argv = ["make", "-C", str(base), "--no-print-directory", f"OUTPUT={output}",
            *(f"{k}={v}" for k, v in {**QUIET, **(make_vars or {}), variable: str(target)}.items())]
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "O", "V")}
    # A dry run first, with $(MAKE) a command that does nothing: make runs recursive lines even with -n.
    dry = [*argv[:3], "-n", *argv[3:], f"MAKE=/bin/true {SUB_MAKE}", str(target)]
    try:
        proc = subprocess.run(dry, capture_output=True, text=True, timeout=MAKE_TIMEOUT, check=False, env=env,
                              stdin=subprocess.DEVNULL)
        if log is not None:
            log(dry, proc)
        if proc.returncode != 0:
            return f"make -n {target.name} failed: {(proc.stderr or proc.stdout).strip()[-300:]}"
        if SUB_MAKE in proc.stdout:
            return "its rule runs a make of its own in the tree, which the harness does not run"
        proc = subprocess.run([*argv, str(target)], capture_output=True, text=True, timeout=MAKE_TIMEOUT * 5,
                              check=False, env=env, stdin=subprocess.DEVNULL)
        if log is not None:
            log([*argv, str(target)], proc)
    except subprocess.TimeoutExpired:
        return f"make {target.name} did not finish"
    if proc.returncode != 0 or not Path(target).is_file():
        return f"make {target.name} failed: {(proc.stderr or proc.stdout).strip()[-300:]}"
    return None


def per_item(text: str) -> dict[str, str]:
    """A `lists` value as item -> value."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        item, _, value = line.partition("\t")
        if item:
            out[item] = value.strip()
    return out


def makefile_digest(tree: Path) -> str:
    """sha256 over the Makefiles make reads for the selftests (the Makefile, lib.mk and the tools build scripts)."""
    tree = Path(tree)
    h = hashlib.sha256()
    paths = [tree / SELFTESTS / "Makefile", tree / "tools/testing/selftests/lib.mk"]
    for rel in ("tools/build", "tools/scripts"):
        paths += sorted(p for p in (tree / rel).rglob("*") if p.is_file())
    for path in paths:
        try:
            h.update(str(path.relative_to(tree)).encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
        except OSError:
            continue
    return h.hexdigest()
