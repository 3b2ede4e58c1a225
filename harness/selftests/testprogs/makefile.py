# SPDX-License-Identifier: GPL-2.0
"""What the tree's selftests Makefile says about building test_progs, read in one make expansion."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from harness.selftests import makevars
from harness.selftests.discover import SELFTESTS
from harness.selftests.recipe import TEST_PROGS_MARKER, make_exprs, make_tokens
from harness.selftests.testprogs.plan import MakefileFacts

# The user-space side, as DEFINE_TEST_RUNNER uses it for test_progs.
USER_EXPRS = {"CC": "$(CC)", "CFLAGS": "$(CFLAGS)", "LDLIBS": "$(LDLIBS)", "LDFLAGS": "$(LDFLAGS)",
              "LSKELS": "$(LSKELS) $(LSKELS_EXTRA)", "LSKELS_SIGNED": "$(LSKELS_SIGNED)",
              "LINKED_SKELS": "$(LINKED_SKELS)",
              # SKEL_BLACKLIST holds `$$(LSKELS)` (expanded once more where the runner is defined): expand it twice
              "SKEL_BLACKLIST": "$(eval BAH_SKEL_BLACKLIST := $(SKEL_BLACKLIST))$(BAH_SKEL_BLACKLIST)"}


@dataclass(frozen=True)
class TestProgsMakefile:
    """test_progs as the Makefile builds it: the user-space compiler and flags (OUTPUT-relative paths as
    `output`, the scratch directory make ran with: the caller maps them to its build directory), the runner's
    extra sources and tools/lib sources, each source's own CFLAGS, the skeleton facts, and the BPF side's raw
    values for harness.selftests.recipe.recipe_from_make."""

    __test__ = False

    cc: str
    cflags: tuple[str, ...]
    ldlibs: tuple[str, ...]
    ldflags: tuple[str, ...]
    extra_sources: tuple[str, ...]  # TRUNNER_EXTRA_SOURCES: .c files (the runner's helpers) and .h files
    lib_sources: tuple[str, ...]  # TRUNNER_LIB_SOURCES (7.x): tools/lib/<name>.c
    source_cflags: dict[str, str]  # <name>.c -> $(<name>.c-CFLAGS)
    facts: MakefileFacts
    bpf_values: dict[str, str]
    bpf_per_file: dict[str, str]
    output: str
    notes: tuple[str, ...] = field(default=())
    # headers TRUNNER_EXTRA_SOURCES names through a variable that the Makefile generates (7.3's $(VERIFY_SIG_HDR)):
    # variable -> its value
    generated: dict[str, str] = field(default_factory=dict)


class NoTestProgsRunner(makevars.MakeEvalError):
    """The Makefile does not define the test_progs runner the way 6.x and 7.x do."""


def read(tree: Path, clang: str, vmlinux: Path | None = None) -> TestProgsMakefile:
    """Expand what building test_progs needs from `tree`'s selftests Makefile, with make itself."""
    tree = Path(tree)
    text = (tree / SELFTESTS / "Makefile").read_text(errors="replace")
    bpf = make_exprs(text)
    extra = makevars.before(text, TEST_PROGS_MARKER, "TRUNNER_EXTRA_SOURCES")
    if bpf is None or extra is None:
        raise NoTestProgsRunner(f"{tree / SELFTESTS / 'Makefile'} defines no test_progs runner "
                                f"(no TRUNNER_BPF_CFLAGS/TRUNNER_EXTRA_SOURCES before {TEST_PROGS_MARKER})")
    lib = makevars.before(text, TEST_PROGS_MARKER, "TRUNNER_LIB_SOURCES") or ""
    named = list(dict.fromkeys(re.findall(r"\$\((\w+)\)", extra)))
    exprs = {**USER_EXPRS, **bpf, "EXTRA_SOURCES": extra, "LIB_SOURCES": lib,
             **{f"VAR_{v}": f"$({v})" for v in named}}
    lists = {"SOURCE_CFLAGS": (f"$(filter %.c,{extra} {lib})", "$(%-CFLAGS)"),
             "PROGS_CFLAGS": ("$(wildcard progs/*.c)", "$(%-CFLAGS)"),
             "LINKED_DEPS": ("$(LINKED_SKELS)", "$(%-deps)")}
    make_vars = {"CLANG": clang}
    if vmlinux is not None:
        make_vars["VMLINUX_BTF"] = str(vmlinux)  # else the Makefile stops: "Cannot find a vmlinux for VMLINUX_BTF"
    values = makevars.evaluate(tree, exprs, make_vars=make_vars, lists=lists)
    linked = {k: tuple(v.split()) for k, v in makevars.per_item(values["LINKED_DEPS"]).items()}
    facts = MakefileFacts(lskels=tuple(s.removesuffix(".c") for s in values["LSKELS"].split()),
                          signed_lskels=tuple(s.removesuffix(".c") for s in values["LSKELS_SIGNED"].split()),
                          linked=linked, blacklist=tuple(values["SKEL_BLACKLIST"].split()))
    sources = make_tokens(values["EXTRA_SOURCES"])
    notes: list[str] = []
    cflags = tuple(make_tokens(values["CFLAGS"]))
    return TestProgsMakefile(
        cc=values["CC"].strip() or "cc", cflags=cflags, ldlibs=tuple(make_tokens(values["LDLIBS"])),
        ldflags=tuple(make_tokens(values["LDFLAGS"])), extra_sources=tuple(sources),
        lib_sources=tuple(make_tokens(values["LIB_SOURCES"])),
        source_cflags=makevars.per_item(values["SOURCE_CFLAGS"]), facts=facts,
        bpf_values={k: values[k] for k in (*bpf, "__output__")},
        bpf_per_file=makevars.per_item(values["PROGS_CFLAGS"]), output=values["__output__"], notes=tuple(notes),
        generated={v: values[f"VAR_{v}"].strip() for v in named
                   if values[f"VAR_{v}"].strip().endswith(".h") and len(values[f"VAR_{v}"].split()) == 1
                   and not (tree / SELFTESTS / values[f"VAR_{v}"].strip()).is_file()})
