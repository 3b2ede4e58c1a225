# SPDX-License-Identifier: GPL-2.0
"""harness.selftests.makevars and what reads through it: make itself expands a selftests Makefile (a toy one written
like 7.3's, then Debian's 6.12), the test_progs runner's settings as they were where it is defined, and the BPF
recipe of a Makefile the Python reader cannot follow."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.selftests import makevars
from harness.selftests.recipe import build_recipe, make_exprs, recipe_from_make, rule_tokens
from harness.selftests.testprogs import makefile as tp_makefile
from harness.settings import CacheLayout

BPF = Path("tools/testing/selftests/bpf")
needs_clang = pytest.mark.skipif(not shutil.which("clang-19"), reason="clang-19 not installed")

# Written the way 7.3's Makefile is: endianness as a make variable, a permissive tail handed to the shell, a
# trailing `#` comment in BPF_CFLAGS, `$$(LSKELS)` expanded a second time, flavors that assign TRUNNER_* again.
MAKEFILE_7X = """\
CLANG ?= clang
SRCARCH := x86
CURDIR := $(abspath .)
INCLUDE_DIR := $(OUTPUT)/tools/include
IS_LITTLE_ENDIAN := yes
BPF_TARGET_ENDIAN := $(if $(IS_LITTLE_ENDIAN),--target=bpfel,--target=bpfeb)
PERMISSIVE := $(filter 0,$(BPF_STRICT_BUILD))
CFLAGS += -g -O0 -I$(CURDIR) -I$(INCLUDE_DIR) -I$(OUTPUT)
LDLIBS += -lelf -lz
BPF_CFLAGS = -g -Wall -D__TARGET_ARCH_$(SRCARCH) -I$(INCLUDE_DIR) -I$(CURDIR) \\
	-I$(abspath $(OUTPUT)/../usr/include) \\
	-std=gnu11 \\
	#
ifeq ($(VMLINUX_BTF),)
$(error Cannot find a vmlinux for VMLINUX_BTF)
endif
progs/odd.c-CFLAGS := -fno-inline
jit_disasm_helpers.c-CFLAGS = $(LLVM_CFLAGS)
define CLANG_BPF_BUILD_RULE
	$(call msg,CLNG-BPF,$4,$2)
	$(Q)$(CLANG) $3 -O2 $(BPF_TARGET_ENDIAN) -c $1 -mcpu=v3 -o $2 $(if $(PERMISSIVE),|| \\
		($(RM) $2; printf '  %-12s %s\\n' 'SKIP-BPF' '$(notdir $2)' 1>&2))
endef
LSKELS := fexit_sleep.c
LSKELS_SIGNED := atomics.c
SKEL_BLACKLIST := btf__%
SKEL_BLACKLIST += $$(LSKELS) $$(LSKELS_SIGNED)
LINKED_SKELS := linked_funcs.skel.h
linked_funcs.skel.h-deps := linked_funcs1.bpf.o linked_funcs2.bpf.o
VERIFY_SIG_HDR := verification_cert.h
TRUNNER_EXTRA_SOURCES := test_progs.c jit_disasm_helpers.c \\
	$(VERIFY_SIG_HDR)
TRUNNER_LIB_SOURCES := find_bit.c
TRUNNER_BPF_BUILD_RULE := CLANG_BPF_BUILD_RULE
TRUNNER_BPF_CFLAGS := $(BPF_CFLAGS) -DENABLE_ATOMICS_TESTS
$(eval $(call DEFINE_TEST_RUNNER,test_progs))

TRUNNER_EXTRA_SOURCES := test_maps.c
TRUNNER_BPF_CFLAGS := $(BPF_CFLAGS) -DNO_ALU32
$(eval $(call DEFINE_TEST_RUNNER,test_progs,no_alu32))
"""


def toy(root: Path) -> Path:
    tree = root / "linux"
    for rel, text in ((BPF / "Makefile", MAKEFILE_7X), (BPF / "progs/odd.c", "/* bpf */\n"),
                      (BPF / "progs/even.c", "/* bpf */\n"), (Path("scripts/bpf_doc.py"), "print('/* defs */')\n"),
                      (Path("tools/include/uapi/linux/bpf.h"), "/* uapi */\n")):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(text)
    return tree


def test_before_is_the_value_where_the_runner_is_defined() -> None:
    marker = "$(eval $(call DEFINE_TEST_RUNNER,test_progs))"
    assert makevars.before(MAKEFILE_7X, marker, "TRUNNER_EXTRA_SOURCES").split() == \
        ["test_progs.c", "jit_disasm_helpers.c", "$(VERIFY_SIG_HDR)"]
    assert makevars.before(MAKEFILE_7X, marker, "TRUNNER_BPF_CFLAGS") == "$(BPF_CFLAGS) -DENABLE_ATOMICS_TESTS"
    assert makevars.before("A := 1\nA += 2\nmark\nA := 3\n", "mark", "A") == "1 2"
    assert makevars.before("A := 1\n", "mark", "A") is None  # no marker: no runner defined


def test_make_expands_what_the_python_reader_cannot(tmp_path: Path) -> None:
    tree = toy(tmp_path)
    exprs = make_exprs(MAKEFILE_7X)
    assert exprs is not None
    values = makevars.evaluate(tree, exprs, make_vars={"CLANG": "clang-19", "VMLINUX_BTF": "/dev/null"},
                               lists={"PROGS": ("$(wildcard progs/*.c)", "$(%-CFLAGS)")})
    assert rule_tokens(values["BPF_RULE"]) == ("$3", "-O2", "--target=bpfel", "-c", "$1", "-mcpu=v3", "-o", "$2")
    out = values["__output__"]
    assert values["BPF_FLAGS"].split() == ["-g", "-Wall", "-D__TARGET_ARCH_x86", f"-I{out}/tools/include",
                                           f"-I{tree / BPF}", f"-I{Path(out).parent}/usr/include", "-std=gnu11",
                                           "-DENABLE_ATOMICS_TESTS"]
    assert makevars.per_item(values["PROGS"]) == {"progs/even.c": "", "progs/odd.c": "-fno-inline"}
    assert not (tree / BPF / "feature").exists() and sorted(p.name for p in (tree / BPF).iterdir()) == \
        ["Makefile", "progs"]  # make wrote nothing into the tree


def test_a_makefile_that_stops_is_an_error_naming_it(tmp_path: Path) -> None:
    tree = toy(tmp_path)
    with pytest.raises(makevars.MakeEvalError, match="Cannot find a vmlinux for VMLINUX_BTF"):
        makevars.evaluate(tree, {"X": "$(CFLAGS)"})
    with pytest.raises(makevars.MakeEvalError, match="not a tree with the BPF selftests"):
        makevars.evaluate(tmp_path / "nothing", {"X": "$(CFLAGS)"})


def test_the_test_progs_runner_as_make_defines_it(tmp_path: Path) -> None:
    tree = toy(tmp_path)
    mk = tp_makefile.read(tree, "clang-19", Path("/dev/null"))
    assert mk.extra_sources == ("test_progs.c", "jit_disasm_helpers.c", "verification_cert.h")  # not test_maps'
    assert mk.lib_sources == ("find_bit.c",) and mk.ldlibs == ("-lelf", "-lz")
    assert mk.cflags == ("-g", "-O0", f"-I{tree / BPF}", f"-I{mk.output}/tools/include", f"-I{mk.output}")
    assert mk.source_cflags == {"test_progs.c": "", "jit_disasm_helpers.c": "", "find_bit.c": ""}  # no LLVM
    assert mk.facts.lskels == ("fexit_sleep",) and mk.facts.signed_lskels == ("atomics",)
    assert mk.facts.blacklist == ("btf__%", "fexit_sleep.c", "atomics.c")  # $$(LSKELS) expanded twice
    assert mk.facts.linked == {"linked_funcs.skel.h": ("linked_funcs1.bpf.o", "linked_funcs2.bpf.o")}


@needs_clang
def test_build_recipe_hands_a_7x_makefile_to_make(tmp_path: Path) -> None:
    tree = toy(tmp_path)
    vmlinux_h = tmp_path / "vmlinux.h"
    vmlinux_h.write_text("/* types */\n")
    r = build_recipe(tree, vmlinux_h, CacheLayout(tmp_path / "cache"), "clang-19")
    argv = r.argv(tree / BPF / "progs/odd.c", Path("odd.bpf.o"))
    assert argv[-8:] == ["-fno-inline", "-O2", "--target=bpfel", "-c", str(tree / BPF / "progs/odd.c"), "-mcpu=v3",
                         "-o", "odd.bpf.o"]
    assert "#" not in argv and not any("$(" in a or "printf" in a for a in argv)
    assert f"-I{r.include_dir}" in argv and f"-I{r.vmlinux_h.parent}" in argv  # INCLUDE_DIR: the harness's
    assert r.honoured[0].startswith("make's own expansion of the Makefile (this reader leaves $(BPF_TARGET_ENDIAN)")


@needs_clang
def test_make_and_the_reader_agree_on_6_12(plain_source: Path, tmp_path: Path) -> None:
    vmlinux_h = tmp_path / "vmlinux.h"
    vmlinux_h.write_text("/* types */\n")
    layout = CacheLayout(tmp_path / "cache")
    clang = shutil.which("clang-19") or "clang-19"
    reader = build_recipe(plain_source, vmlinux_h, layout, clang)
    mk = tp_makefile.read(plain_source, clang, vmlinux_h)
    made = recipe_from_make(plain_source, vmlinux_h, layout, clang, mk.bpf_values, mk.bpf_per_file)
    assert (made.cflags, made.rule, made.key) == (reader.cflags, reader.rule, reader.key)  # one object cache
    assert made.per_file["progs/dynptr_fail.c"] == ("-fno-strict-aliasing",)
    assert "test_loader.c" in mk.extra_sources and mk.cc == "gcc"


GENERATED = """\
GEN_HDR := gen.h
SUB_HDR := sub/sub.h
BUILD_DIR := $(OUTPUT)/tools/build
$(BUILD_DIR)/key.der:
	mkdir -p $(BUILD_DIR) && printf 'key' > $@
$(GEN_HDR): $(BUILD_DIR)/key.der
	(echo "unsigned char cert[] = { 0x6b };"; echo "unsigned int cert_len = $$(wc -c < $<);") > $@
$(SUB_HDR):
	+$(MAKE) -C sub sub.h
"""


def test_a_generated_header_is_made_by_its_own_rule_outside_the_tree(tmp_path: Path) -> None:
    tree = tmp_path / "linux"
    (tree / BPF / "sub").mkdir(parents=True)
    (tree / BPF / "Makefile").write_text(GENERATED)
    (tree / BPF / "sub/Makefile").write_text("sub.h:\n\ttouch sub.h\n")
    work = tmp_path / "work"
    made = []
    assert makevars.make_file(tree, work / "gen.h", "GEN_HDR", output=work / "out",
                              log=lambda argv, proc: made.append(argv)) is None
    assert (work / "gen.h").read_text() == "unsigned char cert[] = { 0x6b };\nunsigned int cert_len = 3;\n"
    assert (work / "out/tools/build/key.der").is_file() and len(made) == 2  # a dry run, then the rule
    why = makevars.make_file(tree, work / "sub.h", "SUB_HDR", output=work / "out")
    assert why == "its rule runs a make of its own in the tree, which the harness does not run"
    assert sorted(p.name for p in (tree / BPF).rglob("*")) == ["Makefile", "Makefile", "sub"]  # nothing written there
