# SPDX-License-Identifier: GPL-2.0
"""A toy kernel tree laid out like tools/testing/selftests/bpf, for the tests of harness.selftests: prog_tests
calling RUN_TESTS/RUN the ways upstream does, progs that compile with no headers, a Makefile with the settings
the recipe reads, and a stand-in scripts/bpf_doc.py."""

from __future__ import annotations

from pathlib import Path

BPF = Path("tools/testing/selftests/bpf")
DIALECTS = Path(__file__).resolve().parent / "data" / "selftests-dialect"

PROG_TESTS_FOO = """\
// SPDX-License-Identifier: GPL-2.0
#include <test_progs.h>
/* RUN_TESTS(in_a_comment) is no call */
void test_foo(void)
{
	RUN_TESTS(foo_success);
	if (env.has_testmod)
		RUN_TESTS(foo_testmod);
	if (env.has_testmod) {
		RUN_TESTS(foo_block);
	}
	RUN_TESTS(foo_after);
	RUN_TESTS(foo_success);
}

void serial_test_bar(void)
{
	if (!env.has_testmod) {
		test__skip();
		return;
	}
	RUN_TESTS(bar_missing);
}
"""

PROG_TESTS_VERIFIER = """\
// SPDX-License-Identifier: GPL-2.0
#include <test_progs.h>

static void run_tests_aux(const char *skel_name, skel_elf_bytes_fn elf_bytes_factory, pre_execution_cb cb)
{
	__u64 old_caps;
	int err;

	err = cap_disable_effective(1ULL << CAP_SYS_ADMIN, &old_caps);
	test_loader__run_subtests(&tester, skel_name, elf_bytes_factory);
	err = cap_enable_effective(old_caps, NULL);
}

#define RUN(skel) run_tests_aux(#skel, skel##__elf_bytes, NULL)

void test_verifier_x(void)                 { RUN(verifier_x); }

void test_verifier_mtu(void)
{
	__u64 caps = 0;

	cap_enable_effective(1ULL << CAP_BPF | 1ULL << CAP_NET_ADMIN, &caps);
	cap_disable_effective(1ULL << CAP_SYS_ADMIN | 1ULL << CAP_PERFMON, NULL);
	RUN(verifier_mtu);
}

static int init_maps(struct bpf_object *obj)
{
	return init_test_val_map(obj, "map_one");
}

void test_verifier_arr(void)
{
	run_tests_aux("verifier_arr", verifier_arr__elf_bytes, init_maps);
}
"""

MAKEFILE = """\
# a toy selftests Makefile with the assignments harness.selftests.recipe reads
BPF_CFLAGS = -g -Wall -Werror -D__TARGET_ARCH_$(SRCARCH) $(MENDIAN) \\
	-I$(INCLUDE_DIR) -I$(CURDIR) -I$(APIDIR) \\
	-I$(abspath $(OUTPUT)/../usr/include) \\
	-Wno-compare-distinct-pointer-types
CLANG_CFLAGS = $(CLANG_SYS_INCLUDES)
progs/foo_success.c-CFLAGS := -fno-strict-aliasing
progs/foo_success.c-bpf_gcc-CFLAGS := -Wno-error
$(OUTPUT)/thing.o: BPF_CFLAGS += -fno-inline

define CLANG_BPF_BUILD_RULE
	$(call msg,CLNG-BPF,$4,$2)
	$(Q)$(CLANG) $3 -O2 --target=bpf -c $1 -mcpu=v3 -o $2
endef

TRUNNER_BPF_BUILD_RULE := CLANG_BPF_BUILD_RULE
TRUNNER_BPF_CFLAGS := $(BPF_CFLAGS) $(CLANG_CFLAGS) -DENABLE_ATOMICS_TESTS
$(eval $(call DEFINE_TEST_RUNNER,test_progs))

TRUNNER_BPF_CFLAGS := $(BPF_CFLAGS) $(CLANG_CFLAGS) -DNOT_FOR_TEST_PROGS
$(eval $(call DEFINE_TEST_RUNNER,test_progs,no_alu32))
"""

BPF_DOC = """\
#!/usr/bin/env python3
# a stand-in for scripts/bpf_doc.py: --header --file X prints a header naming X's size
import sys
print("/* generated from %d bytes */" % len(open(sys.argv[sys.argv.index("--file") + 1]).read()))
"""

PROG = """\
#define SEC(name) __attribute__((section(name), used))
#define TAG(text) __attribute__((btf_decl_tag(text)))
#include "vmlinux.h"
#include "bpf_helper_defs.h"

SEC("socket") TAG("comment:test_expect_success") TAG("comment:test_expect_success_unpriv")
int %(name)s_prog(void *ctx)
{
#ifndef ENABLE_ATOMICS_TESTS
#error test_progs objects get -DENABLE_ATOMICS_TESTS
#endif
	return 0;
}

SEC("socket") TAG("comment:test_expect_failure") TAG("comment:test_expect_msg=0=invalid")
int %(name)s_bad(void *ctx)
{
	return 1;
}

char _license[] SEC("license") = "GPL";
"""

SKELETONS = ("foo_success", "foo_testmod", "foo_block", "foo_after", "verifier_x", "verifier_mtu", "verifier_arr")


def make_tree(root: Path) -> Path:
    """The toy tree under root/linux (every skeleton but bar_missing has its progs/*.c)."""
    tree = root / "linux"
    for rel, text in ((BPF / "prog_tests/foo.c", PROG_TESTS_FOO), (BPF / "prog_tests/verifier.c", PROG_TESTS_VERIFIER),
                      (BPF / "Makefile", MAKEFILE), (Path("scripts/bpf_doc.py"), BPF_DOC),
                      (Path("tools/include/uapi/linux/bpf.h"), "/* uapi */\n"),
                      (BPF / "progs/bpf_misc.h", "/* misc */\n"), (Path("Makefile"), "VERSION = 6\nPATCHLEVEL = 12\n")):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(text)
    for name in SKELETONS:
        (tree / BPF / "progs" / f"{name}.c").write_text(PROG % {"name": name})
    dialect = DIALECTS / "6.12.118"  # the tree's own test_loader decides how tags are read: 6.12's here
    for name in ("test_loader.c", "unpriv_helpers.c"):
        (tree / BPF / name).write_text((dialect / name).read_text())
    return tree


def vmlinux_h(root: Path) -> Path:
    """A stand-in vmlinux.h (the toy programs need no kernel type)."""
    path = root / "toy-vmlinux.h"
    path.write_text("/* toy vmlinux.h */\ntypedef unsigned int __u32;\n")
    return path
