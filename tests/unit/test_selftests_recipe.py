# SPDX-License-Identifier: GPL-2.0
"""harness.selftests.recipe, .build and .listing: upstream's flags read from a selftests Makefile (a toy one,
then Debian's 6.12), bpf_helper_defs.h generated once per input, the content-addressed object cache, and a few
real selftest programs compiled and parsed against a vmlinux.h dumped from the host's BTF."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from selftests_tree import BPF, make_tree, vmlinux_h

from harness.cases.compile import CLANG_CANDIDATES, find_clang
from harness.errors import HarnessError
from harness.selftests.build import compile_all, compile_selftest
from harness.selftests.listing import run_list
from harness.selftests.recipe import HELPER_DEFS, build_recipe, helper_defs_dir, make_tokens
from harness.selftests.spec import PRIV, UNPRIV
from harness.settings import CacheLayout

needs_clang = pytest.mark.skipif(not any(shutil.which(c) for c in CLANG_CANDIDATES), reason="no clang-16..19")


def _recipe(tree: Path, root: Path):
    return build_recipe(tree, vmlinux_h(root), CacheLayout(root / "cache"), find_clang())


@needs_clang
def test_recipe_from_the_toy_makefile(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    r = _recipe(tree, tmp_path)
    src = tree / BPF / "progs/foo_success.c"
    argv = r.argv(src, Path("/out/foo.o"))
    tail = ["-fno-strict-aliasing", "-O2", "--target=bpf", "-c", str(src), "-mcpu=v3", "-o", "/out/foo.o"]
    assert argv[-len(tail):] == tail  # `$(CLANG) $3 -O2 --target=bpf -c $1 -mcpu=v3 -o $2`, $3 ending per file
    head = ["-g", "-Wall", "-Werror", "-D__TARGET_ARCH_x86", "-mlittle-endian", f"-I{r.include_dir}",
            f"-I{r.vmlinux_h.parent}", f"-I{tree / 'tools/lib'}", f"-I{tree / BPF}",
            f"-I{tree / 'tools/include/uapi'}", "-Wno-compare-distinct-pointer-types"]
    assert argv[1:1 + len(head)] == head
    assert "-DENABLE_ATOMICS_TESTS" in argv and "-DNOT_FOR_TEST_PROGS" not in argv  # test_progs' flavor only
    assert argv[argv.index("-Wno-compare-distinct-pointer-types") + 1] == "-idirafter"  # clang's sys includes
    assert r.vmlinux_h.name == "vmlinux.h" and r.vmlinux_h.read_text() == vmlinux_h(tmp_path).read_text()
    assert "-fno-strict-aliasing" not in r.argv(tree / BPF / "progs/foo_after.c", Path("x.o"))
    honoured, skipped = "\n".join(r.honoured), "\n".join(r.skipped)
    assert "progs/foo_success.c-CFLAGS: -fno-strict-aliasing" in honoured and "-DENABLE_ATOMICS_TESTS" in honoured
    assert "-I<generated> -I<kernel's vmlinux.h dir> -I<tree>/tools/lib" in honoured
    assert "progs/foo_success.c-bpf_gcc-CFLAGS: -Wno-error (the bpf_gcc flavor only)" in skipped
    assert "$(OUTPUT)/thing.o: BPF_CFLAGS += -fno-inline" in skipped and "make headers_install" in skipped


@needs_clang
def test_a_makefile_without_the_test_progs_runner_gets_the_6_12_recipe(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    (tree / BPF / "Makefile").write_text("# nothing here\n")
    r = _recipe(tree, tmp_path)
    argv = r.argv(tree / BPF / "progs/foo_after.c", Path("o.o"))
    assert {"-mcpu=v3", "-DENABLE_ATOMICS_TESTS", "-Werror", "-D__TARGET_ARCH_x86"} <= set(argv)
    assert "6.12's recipe is used instead" in r.skipped[0]


def test_make_tokens_keep_parenthesised_words() -> None:
    assert make_tokens("-g  -I$(abspath $(OUTPUT)/../usr/include)\t-Wall") == [
        "-g", "-I$(abspath $(OUTPUT)/../usr/include)", "-Wall"]


def test_helper_defs_generated_once_per_input(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    layout = CacheLayout(tmp_path / "cache")
    first = helper_defs_dir(tree, layout)
    out = first / HELPER_DEFS
    assert out.read_text() == "/* generated from 11 bytes */\n"  # bpf.h is "/* uapi */\n"
    stamp = out.stat().st_mtime_ns
    assert helper_defs_dir(tree, layout) == first and out.stat().st_mtime_ns == stamp  # a hit: not generated again
    (tree / "tools/include/uapi/linux/bpf.h").write_text("/* a new uapi */\n")
    second = helper_defs_dir(tree, layout)
    assert second != first and (second / HELPER_DEFS).read_text() == "/* generated from 17 bytes */\n"
    (tree / "scripts/bpf_doc.py").write_text("raise SystemExit('the generator broke')\n")  # an input too
    with pytest.raises(HarnessError, match="generating bpf_helper_defs.h failed .*the generator broke"):
        helper_defs_dir(tree, layout)


@needs_clang
def test_objects_are_cached_by_content(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    r = _recipe(tree, tmp_path)
    out = tmp_path / "objects"
    src = tree / BPF / "progs/foo_after.c"
    first = compile_selftest(src, r, out)
    assert first.ok and not first.cached and first.obj is not None, first.stderr
    assert compile_selftest(src, r, out).cached
    # the same tree elsewhere: the same key (paths do not count, content does)
    moved = make_tree(tmp_path / "elsewhere")
    r2 = build_recipe(moved, vmlinux_h(tmp_path), CacheLayout(tmp_path / "cache"), find_clang())
    assert compile_selftest(moved / BPF / "progs/foo_after.c", r2, out).obj == first.obj
    # a header the programs can include, or vmlinux.h, changes: a new object
    (tree / BPF / "progs/bpf_misc.h").write_text("/* misc, changed */\n")
    assert not compile_selftest(src, _recipe(tree, tmp_path), out).cached
    (tmp_path / "toy-vmlinux.h").write_text("/* another kernel */\n")
    r3 = build_recipe(tree, tmp_path / "toy-vmlinux.h", CacheLayout(tmp_path / "cache"), find_clang())
    assert not compile_selftest(src, r3, out).cached


@needs_clang
def test_compile_errors_come_back_and_progress_is_reported(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    (tree / BPF / "progs/foo_block.c").write_text("int broken(void) { return undeclared; }\n")
    seen = []
    results = compile_all([("foo_block", tree / BPF / "progs/foo_block.c"),
                           ("foo_after", tree / BPF / "progs/foo_after.c")], _recipe(tree, tmp_path),
                          tmp_path / "objects", jobs=2, progress=lambda d, t, n, res: seen.append((d, t, n, res.ok)))
    assert list(results) == ["foo_block", "foo_after"]
    assert not results["foo_block"].ok and "undeclared" in results["foo_block"].stderr
    assert results["foo_after"].ok and seen == [(1, 2, "foo_block", False), (2, 2, "foo_after", True)]


@needs_clang
def test_listing_the_toy_tree(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    listing = run_list(tree, vmlinux_h(tmp_path), CacheLayout(tmp_path / "cache"), jobs=2, progress=None)
    t = listing.totals()
    assert t["files"] == 8 and t["missing"] == ["bar_missing"] and t["compile_failed"] == []
    assert t["programs"] == 14 and t["priv"] == 14 and t["unpriv"] == 7
    assert t["unsupported_features"] == {"bpf_testmod": 6}  # foo_testmod and foo_block: guarded by has_testmod
    table = listing.table()
    assert "bar_missing" in table and "no progs/bar_missing.c (prog_tests/foo.c:22)" in table
    assert "subtests: 14 privileged + 7 unprivileged = 21" in table
    verifier_x = next(f for f in listing.files if f.name == "verifier_x")
    subs = verifier_x.subtests()
    assert [(s.name, s.mode) for s in subs] == [("verifier_x_prog", PRIV), ("verifier_x_prog @unpriv", UNPRIV),
                                                ("verifier_x_bad", PRIV)]
    assert subs[0].drop_caps == ("CAP_SYS_ADMIN",)
    assert subs[1].drop_caps == ("CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_PERFMON", "CAP_BPF")
    js = listing.to_json()
    assert js["totals"]["priv"] == 14 and js["recipe"]["argv"][-1] == "NAME.bpf.o"


@pytest.fixture(scope="module")
def host_vmlinux_h(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A vmlinux.h dumped from the host's BTF (tests/unit never asks for a built kernel)."""
    bpftool = shutil.which("bpftool") or shutil.which("bpftool", path="/usr/sbin:/sbin")
    if not bpftool or not Path("/sys/kernel/btf/vmlinux").is_file():
        pytest.skip("no bpftool or no host BTF to dump a vmlinux.h from")
    dump = subprocess.run([bpftool, "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"],
                          capture_output=True, text=True, check=False)
    if dump.returncode != 0:
        pytest.skip(f"bpftool could not dump the host BTF: {dump.stderr.strip()}")
    out = tmp_path_factory.mktemp("host-btf") / "host-vmlinux.h"  # not named vmlinux.h: the recipe copes
    out.write_text(dump.stdout)
    return out


REAL = ("verifier_and", "verifier_map_ptr_mixing", "verifier_bitfield_write", "verifier_mtu", "dynptr_fail",
        "test_tp_btf_nullable", "map_kptr_fail")


@needs_clang
def test_real_selftests_compile_and_parse(plain_source: Path, host_vmlinux_h: Path, tmp_path: Path) -> None:
    listing = run_list(plain_source, host_vmlinux_h, CacheLayout(tmp_path / "cache"), REAL, jobs=2, progress=None)
    assert [f.name for f in listing.files] == list(REAL) and not listing.failed, [f.error for f in listing.failed]
    files = {f.name: f for f in listing.files}
    rows = {f.name: listing.file_row(f) for f in listing.files}

    v_and = files["verifier_and"]
    first = v_and.specs[0]
    assert (rows["verifier_and"]["programs"], rows["verifier_and"]["priv"], rows["verifier_and"]["unpriv"]) == (3, 3, 3)
    assert first.description == "invalid and of negative number" and first.priv.expect_failure
    assert [p.text for p in first.priv.msgs] == ["R0 max value is outside of the allowed memory range"]
    assert first.unpriv.expect_failure and first.unpriv.msgs == first.priv.msgs
    assert first.prog_flags() & 2  # __flag(BPF_F_ANY_ALIGNMENT)

    mixing = files["verifier_map_ptr_mixing"]
    aux = [s.prog_name for s in mixing.specs if s.auxiliary]
    assert aux and all(a in sub.autoload for sub in mixing.subtests() if sub.mode == PRIV
                       for a in (s.prog_name for s in mixing.auxiliaries(PRIV)))

    bitfield = files["verifier_bitfield_write"]
    assert rows["verifier_bitfield_write"]["unsupported_features"] == {}  # __btf_path: its BTF object is built
    assert list(bitfield.btf_objects) == ["btf__core_reloc_bitfields.bpf.o"] and not bitfield.btf_errors
    assert files["verifier_mtu"].skeleton.caps.disable == ("CAP_SYS_ADMIN", "CAP_PERFMON")
    assert rows["test_tp_btf_nullable"]["unsupported"] == 2 and rows["map_kptr_fail"]["unsupported"] == 20
    assert "kfunc bpf_kfunc_call_test_acquire" in str(files["map_kptr_fail"].specs[0].unsupported[0])
    assert rows["dynptr_fail"]["unsupported"] == 0 and rows["dynptr_fail"]["programs"] == 74
    assert "-fno-strict-aliasing" in listing.compiled["dynptr_fail"].argv
    assert "-fno-strict-aliasing" not in listing.compiled["verifier_and"].argv
