# SPDX-License-Identifier: GPL-2.0
"""harness.selftests.elf and .spec on a small object compiled here from a scratch C file with known decl tags:
libbpf's program list (and its order, checked against bpftool's skeleton), externs, maps, struct_ops, and the
specs test_loader would read from the object's BTF."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.btf import FUNC
from harness.cases.compile import CLANG_CANDIDATES, find_clang
from harness.selftests.discover import Skeleton
from harness.selftests.elf import BpfObject, ElfError
from harness.selftests.spec import PRIV, UNPRIV, spec_for
from harness.selftests.suite import load_file

needs_clang = pytest.mark.skipif(not any(shutil.which(c) for c in CLANG_CANDIDATES), reason="no clang-16..19")

SCRATCH = r"""
/* A scratch object: tags spelt out by hand, the way bpf_misc.h's macros would write them. */
#define SEC(name) __attribute__((section(name), used))
#define TAG(text) __attribute__((btf_decl_tag(text)))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

struct {
	__uint(type, 1);
	__uint(max_entries, 4);
	__uint(map_flags, 64);
	__type(key, int);
	__type(value, long);
} seeded SEC(".maps");

struct {
	__uint(type, 2);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, long);
} arr SEC(".maps");

extern int scratch_kfunc(int x) __attribute__((section(".ksyms")));
extern int scratch_weak_kfunc(int x) __attribute__((section(".ksyms"), weak));

__attribute__((noinline)) int helper(int x)
{
	return x * 3;
}

SEC("tc")
TAG("comment:test_description=second in the file, first in tc")
TAG("comment:test_expect_success")
TAG("comment:test_retval=0xabcdef12")
int tc_b(void *ctx)
{
	return 0;
}

SEC("tc")
TAG("comment:test_expect_failure")
TAG("comment:test_expect_msg=0=R1 {{[a-z]+}}")
TAG("comment:test_expect_msg=1=R1 {{[a-z]+}}")
TAG("comment:test_expect_failure_unpriv")
TAG("comment:test_expect_msg_unpriv=2=only unpriv")
TAG("comment:test_prog_flags=BPF_F_ANY_ALIGNMENT")
TAG("comment:test_prog_flags=!BPF_F_TEST_RND_HI32")
TAG("comment:test_log_level=2")
int tc_a(void *ctx)
{
	return helper(1) + scratch_kfunc(2) + scratch_weak_kfunc(3);
}

SEC("?socket")
TAG("comment:test_auxiliary")
int aux(void *ctx)
{
	return 1;
}

SEC("socket")
int untagged(void *ctx)
{
	return 2;
}

struct scratch_ops {
	int (*test_1)(void);
};

SEC("struct_ops/test_1")
TAG("comment:test_arch=ARM64")
int ops_prog(void)
{
	return 0;
}

SEC(".struct_ops")
struct scratch_ops my_ops = {
	.test_1 = (void *)ops_prog,
};

char _license[] SEC("license") = "GPL";
"""


def _compile(src_text: str, out: Path) -> Path:
    src = out.with_suffix(".c")
    src.write_text(src_text)
    argv = [find_clang(), "-g", "-O2", "--target=bpf", "-mcpu=v3", "-c", str(src), "-o", str(out)]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> BpfObject:
    return BpfObject.read(_compile(SCRATCH, tmp_path_factory.mktemp("scratch") / "scratch.o"))


@needs_clang
def test_programs_are_the_non_text_functions_in_libbpf_order(scratch: BpfObject) -> None:
    progs = scratch.programs
    assert [p.name for p in progs] == ["tc_b", "tc_a", "aux", "untagged", "ops_prog"]
    assert [p.section for p in progs] == ["tc", "tc", "?socket", "socket", "struct_ops/test_1"]
    assert not progs[2].autoload and progs[2].sec_name == "socket" and progs[3].autoload
    assert progs[4].is_struct_ops and progs[4].attach_target == "test_1" and not progs[0].is_struct_ops
    assert progs[0].offset < progs[1].offset  # one section, by offset: tc_b comes first in the source
    assert "helper" not in {p.name for p in progs}  # a .text function is a subprogram


@needs_clang
def test_program_order_is_bpftools_skeleton_order(scratch: BpfObject) -> None:
    bpftool = shutil.which("bpftool") or shutil.which("bpftool", path="/usr/sbin:/sbin")
    if bpftool is None:
        pytest.skip("no bpftool")
    skel = subprocess.run([bpftool, "gen", "skeleton", str(scratch.path), "name", "scratch"], capture_output=True,
                          text=True, check=False)
    assert skel.returncode == 0, skel.stderr
    block = skel.stdout.split("struct {", 2)[2].split("} progs;")[0]  # maps come first, then programs
    names = [line.split("*")[1].rstrip(";").strip() for line in block.splitlines() if "struct bpf_program" in line]
    assert names == [p.name for p in scratch.programs]


@needs_clang
def test_externs_maps_and_struct_ops(scratch: BpfObject) -> None:
    externs = {e.name: e for e in scratch.externs()}
    assert externs["scratch_kfunc"].kind == "func" and not externs["scratch_kfunc"].weak
    assert externs["scratch_weak_kfunc"].weak and externs["scratch_weak_kfunc"].section == ".ksyms"
    assert [(m.name, m.type, m.flags) for m in scratch.maps()] == [("seeded", 1, 64), ("arr", 2, 0)]
    assert scratch.struct_ops_maps() == [("my_ops", "scratch_ops")]


@needs_clang
def test_an_object_with_struct_ops_maps_attaches_them_before_a_test_run(scratch: BpfObject) -> None:
    """test_loader attaches an object's struct_ops maps only before a test run (was: a __retval of any program of
    such an object was a skip); an unprivileged subtest does not create them (not unpriv-capable), so it attaches
    none."""
    fs = load_file(Skeleton("scratch", None, "run_tests", "prog_tests/scratch.c:1", "test_scratch"), scratch.path)
    assert [s.prog_name for s in fs.specs] == ["tc_b", "tc_a", "aux", "untagged", "ops_prog"]
    assert all(s.unsupported == () and s.exec_unsupported == () for s in fs.specs)
    assert fs.struct_ops_maps == ("my_ops",)
    subs = {(s.prog_name, s.mode): s for s in fs.subtests()}
    assert subs[("tc_b", PRIV)].struct_ops_maps == ("my_ops",)
    unpriv = [s for s in subs.values() if s.mode == UNPRIV]
    assert unpriv and all(s.struct_ops_maps == () and "my_ops" in s.no_autocreate_maps for s in unpriv)


@needs_clang
def test_specs_from_the_objects_btf(scratch: BpfObject) -> None:
    b = scratch.btf
    specs = {p.name: spec_for(b, p.name, section=p.section) for p in scratch.programs}
    tc_b = specs["tc_b"]
    assert tc_b.description == "second in the file, first in tc" and tc_b.modes == (PRIV,)
    assert tc_b.priv.retval == 0xABCDEF12 - (1 << 32)  # test_loader's int
    tc_a = specs["tc_a"]
    assert tc_a.modes == (PRIV, UNPRIV) and tc_a.priv.expect_failure and tc_a.unpriv.expect_failure
    assert [p.text for p in tc_a.priv.msgs] == ["R1 {{[a-z]+}}", "R1 {{[a-z]+}}"]  # the counter keeps both
    assert [p.text for p in tc_a.unpriv.msgs] == ["only unpriv"]
    assert tc_a.unpriv.name == "tc_a @unpriv" and tc_a.log_level == 2
    assert tc_a.prog_flags(default=0b10000100) == 0b10000010  # RND_HI32 cleared, ANY_ALIGNMENT set
    assert specs["aux"].auxiliary and specs["aux"].subtests == ()
    untagged = specs["untagged"]
    assert untagged.modes == (PRIV,) and not untagged.priv.expect_failure and not untagged.priv.msgs
    assert specs["ops_prog"].arches == ("aarch64",) and not specs["ops_prog"].runs_on("x86_64")
    assert spec_for(b, "helper").valid  # a .text FUNC has BTF too; it is simply not a program
    assert not spec_for(b, "no_such_prog").valid and not spec_for(None, "x").valid
    assert b.find("tc_a", FUNC) is not None


@needs_clang
def test_a_static_program_is_refused_as_libbpf_refuses_it(tmp_path: Path) -> None:
    obj = _compile('__attribute__((section("xdp"), used)) static int lonely(void *ctx) { return 2; }\n'
                   'char _license[] __attribute__((section("license"), used)) = "GPL";\n', tmp_path / "static.o")
    with pytest.raises(ElfError, match="'lonely' is static and not supported"):
        _ = BpfObject.read(obj).programs


def test_not_a_bpf_object_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ElfError, match="not an ELF file"):
        BpfObject(b"hello world" * 10)
    head = bytearray(b"\x7fELF" + bytes(60))
    head[4], head[5] = 2, 1
    head[18:20] = (62).to_bytes(2, "little")  # x86-64
    with pytest.raises(ElfError, match="machine 62, not BPF"):
        BpfObject(bytes(head))
    head[4] = 1
    with pytest.raises(ElfError, match="not ELF64 little-endian"):
        BpfObject(bytes(head))


@needs_clang
def test_a_file_test_progs_runs_only_with_bpf_testmod_runs_where_the_guest_loads_it(scratch: BpfObject) -> None:
    """A RUN_TESTS call under `if (env.has_testmod)`: unsupported on a kernel without the module (a Testmod is
    given: what it would provide), run on one whose guests load bpf_testmod.ko (no Testmod), where test_progs'
    env.has_testmod is true. (Was: skipped on both: 20 subtests of the 7.3 testmod kernel.)"""
    from harness.selftests.testmod import Testmod

    skel = Skeleton("scratch", None, "run_tests", "prog_tests/iters.c:306", "test_iters", guards=("env.has_testmod",))
    without = load_file(skel, scratch.path, Testmod(frozenset(), frozenset(), frozenset(), frozenset()))
    assert without.specs and all([r.feature for r in s.unsupported] == ["bpf_testmod"] for s in without.specs)
    assert "env.has_testmod, prog_tests/iters.c:306" in without.specs[0].unsupported[0].detail
    loaded = load_file(skel, scratch.path, None)
    assert loaded.specs and all(s.unsupported == () for s in loaded.specs)
