# SPDX-License-Identifier: GPL-2.0
"""harness.selftests.testprogs.plan on a toy prog_tests/progs tree: which tests a name means, tests.h as the Makefile
writes it, the skeletons and BPF objects a test needs (libbpf, light, linked, through a local header, opened by
name), and the files a failed link asks for."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.selftests.testprogs.plan import (
    PROG_TESTS,
    PROGS,
    MakefileFacts,
    Skel,
    defined_tests,
    defining_files,
    generated_tests_h,
    make_plan,
    read_test_file,
    select,
    skel_for,
    undefined_symbols,
)

LSM = """\
#include <test_progs.h>
#include "lsm.skel.h"
#include "lsm_tailcall.skel.h"
#include "my_helpers.h"

int stack_mprotect(void) { return 0; }
static void helper(void) {}
void test_test_lsm(void)
{
	if (test__start_subtest("lsm_basic"))
		helper();
}
"""

MANY = """\
#include <test_progs.h>
#include "fentry_test.lskel.h"
#include "linked_funcs.skel.h"
#include "test_subskeleton_lib.subskel.h"
extern int stack_mprotect(void);
void test_alpha(void) { bpf_object__open_file("./test_attach_probe.bpf.o", NULL); }
void serial_test_beta(void)
{
	char *gone = "missing_prog.bpf.o";
}
 void test_indented(void) {}
static void test_static(void) {}
void test_with_args(int x) {}
"""

HELPERS_H = '#include "btf_dump_helper.skel.h"\n'
FACTS = MakefileFacts(lskels=("fentry_test",), signed_lskels=("atomics",),
                      linked={"linked_funcs.skel.h": ("linked_funcs1.bpf.o", "linked_funcs2.bpf.o"),
                              "test_subskeleton_lib.skel.h": ("test_subskeleton_lib2.bpf.o",
                                                              "test_subskeleton_lib.bpf.o")},
                      blacklist=("btf__%", "test_pinning_invalid.c"))


def toy(root: Path) -> Path:
    tree = root / "linux"
    (tree / PROG_TESTS).mkdir(parents=True)
    (tree / PROGS).mkdir(parents=True)
    (tree / PROG_TESTS / "test_lsm.c").write_text(LSM)
    (tree / PROG_TESTS / "many.c").write_text(MANY)
    (tree / PROG_TESTS / "empty.c").write_text("static int x;\n")
    (tree / PROG_TESTS / "my_helpers.h").write_text(HELPERS_H)
    for stem in ("lsm", "lsm_tailcall", "fentry_test", "linked_funcs1", "linked_funcs2", "test_subskeleton_lib",
                 "test_subskeleton_lib2", "test_attach_probe", "btf_dump_helper"):
        (tree / PROGS / f"{stem}.c").write_text("/* bpf */\n")
    return tree


def test_the_makefiles_tests_header_rule() -> None:
    assert defined_tests(MANY) == ["alpha", "beta"]  # not indented, not static, (void) or ()
    assert defined_tests("void test_x()\n{\n}\nvoid serial_test_y(void) {}\n") == ["x", "y"]
    assert generated_tests_h(["b", "a", "b"]) == "/* Generated header, do not edit */\nDEFINE_TEST(a)\nDEFINE_TEST(b)\n"


def test_a_name_is_a_file_a_test_or_a_subtest(tmp_path: Path) -> None:
    tree = toy(tmp_path)
    sel = select(tree, ["many"])
    assert [f.path.name for f in sel.files] == ["many.c"] and sel.selectors == ("alpha", "beta")
    sel = select(tree, ["beta", "test_lsm/lsm_basic"])  # a test of many.c; a subtest of test_lsm.c's test
    assert [f.path.name for f in sel.files] == ["many.c", "test_lsm.c"]
    assert sel.selectors == ("beta", "test_lsm/lsm_basic") and sel.tests == ("alpha", "beta", "test_lsm")
    with pytest.raises(UsageError, match="not a prog_tests file or test of .*: nope, gone/x"):
        select(tree, ["nope", "alpha", "gone/x"])
    with pytest.raises(UsageError, match="defines no test"):
        select(tree, ["empty"])
    with pytest.raises(UsageError, match="a prog_tests file or test name"):
        select(tree, ["../etc/passwd"])
    with pytest.raises(UsageError, match="not a kernel tree"):
        select(tmp_path / "nowhere", ["x"])


def test_skeletons_as_the_makefile_builds_them() -> None:
    assert skel_for("lsm", "skel", FACTS) == Skel("lsm.skel.h", "skel", "lsm", ("lsm",))
    assert skel_for("lsm", "subskel", FACTS) == Skel("lsm.skel.h", "skel", "lsm", ("lsm",))  # made with skel.h
    assert skel_for("fentry_test", "lskel", FACTS) == Skel("fentry_test.lskel.h", "lskel", "fentry_test_lskel",
                                                           ("fentry_test",))
    assert skel_for("atomics", "lskel", FACTS).kind == "signed-lskel"
    assert skel_for("linked_funcs", "skel", FACTS) == Skel("linked_funcs.skel.h", "linked", "linked_funcs",
                                                           ("linked_funcs1", "linked_funcs2"))
    assert "SKEL_BLACKLIST" in skel_for("btf__core", "skel", FACTS)
    assert "not in the Makefile's LSKELS" in skel_for("lsm", "lskel", FACTS)


def test_a_plan_follows_includes_local_headers_and_objects_opened_by_name(tmp_path: Path) -> None:
    tree = toy(tmp_path)
    files = [read_test_file(tree / PROG_TESTS / "test_lsm.c"), read_test_file(tree / PROG_TESTS / "many.c")]
    plan = make_plan(tree, files, FACTS)
    assert [s.header for s in plan.skeletons] == ["lsm.skel.h", "lsm_tailcall.skel.h", "btf_dump_helper.skel.h",
                                                   "fentry_test.lskel.h", "linked_funcs.skel.h",
                                                   "test_subskeleton_lib.skel.h"]
    assert plan.runtime_objects == ("test_attach_probe",)  # missing_prog.bpf.o has no progs/missing_prog.c
    assert plan.objects == ("lsm", "lsm_tailcall", "btf_dump_helper", "fentry_test", "linked_funcs1",
                            "linked_funcs2", "test_subskeleton_lib2", "test_subskeleton_lib", "test_attach_probe")
    assert plan.tests == ("test_lsm", "alpha", "beta") and plan.problems == ()
    (tree / PROGS / "lsm_tailcall.c").unlink()
    assert make_plan(tree, files, FACTS).problems == ("progs/lsm_tailcall.c does not exist (a skeleton needs it)",)


def test_a_failed_link_names_what_another_test_file_defines(tmp_path: Path) -> None:
    tree = toy(tmp_path)
    log = ("/usr/bin/ld: obj/many.test.o: in function `test_alpha':\n"
           "many.c:(.text+0x12): undefined reference to `stack_mprotect'\n"
           "/usr/bin/ld: many.c:(.text+0x40): undefined reference to `stack_mprotect'\n"
           "/usr/bin/ld: undefined reference to `nobody_defines_me'\n")
    missing = undefined_symbols(log)
    assert missing == ["stack_mprotect", "nobody_defines_me"]
    found = defining_files(tree, missing, exclude=[tree / PROG_TESTS / "many.c"])
    assert found == {"stack_mprotect": tree / PROG_TESTS / "test_lsm.c"}  # many.c's `extern int ...` is no definition
    assert defining_files(tree, ["helper"]) == {}  # static


def test_angle_bracket_skeletons_and_btf_path_objects(tmp_path: Path) -> None:
    """6.12's preempt_lock.c includes <preempt_lock.skel.h> (was: not built, the test never ran); a program's
    __btf_path("btf__x.bpf.o") is an object test_progs opens when that test runs (was: not built, ENOENT)."""
    from harness.selftests.testprogs.plan import _BTF_PATH, _SKEL_INCLUDE

    assert _SKEL_INCLUDE.findall("#include <preempt_lock.skel.h>\n") == [("preempt_lock", "skel")]
    assert _BTF_PATH.findall('__btf_path("btf__core_reloc_bitfields.bpf.o")') == ["btf__core_reloc_bitfields"]
