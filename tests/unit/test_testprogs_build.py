# SPDX-License-Identifier: GPL-2.0
"""harness.selftests.testprogs.build without building: the cache key follows what a test_progs build reads (the same
in any copy of a tree; another when a selftests source, a tools header, vmlinux.h, the toolchain or the harness's
shim changes; not when an in-tree build's leftovers or the rest of the kernel change), a published entry is a hit,
and a miss is refused where builds are forbidden."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.errors import RefusedError
from harness.selftests.testprogs.build import SHIM_SOURCE, build_test_progs
from harness.selftests.testprogs.entry import BINARY, Toolchain, _sha, build_key, tree_digest
from harness.selftests.testprogs.plan import PROG_TESTS, select
from harness.settings import CacheLayout

BPF = Path("tools/testing/selftests/bpf")


def toy(root: Path) -> Path:
    tree = root / "linux"
    for rel, text in ((BPF / "Makefile", "all:\n"), (BPF / "test_progs.c", "int main(void) { return 0; }\n"),
                      (BPF / "test_progs.h", "/* h */\n"), (BPF / "prog_tests/foo.c", "void test_foo(void) {}\n"),
                      (BPF / "progs/foo.c", "/* bpf */\n"), (Path("tools/lib/bpf/libbpf.c"), "int x;\n"),
                      (Path("tools/include/uapi/linux/bpf.h"), "/* uapi */\n"),
                      (Path("tools/testing/selftests/lib.mk"), "# lib\n"), (Path("kernel/bpf/verifier.c"), "v\n")):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(text)
    return tree


def test_the_tree_digest_is_the_content_of_what_a_build_reads(tmp_path: Path) -> None:
    a = toy(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    base = tree_digest(a)
    assert tree_digest(b) == base  # content, not place
    (b / "kernel/bpf/verifier.c").write_text("changed\n")  # the kernel itself: the kernel's key covers it
    for leftover in ("prog_tests/tests.h", "foo.skel.h", "foo.bpf.o", "tools/include/vmlinux.h", "test_progs",
                     "no_alu32/x.h", "feature/test-llvm.c"):  # what an in-tree `make` leaves in selftests/bpf
        (b / BPF / leftover).parent.mkdir(parents=True, exist_ok=True)
        (b / BPF / leftover).write_text("built\n")
    assert tree_digest(b) == base
    for rel in (BPF / "progs/foo.c", BPF / "test_progs.h", Path("tools/lib/bpf/libbpf.c"),
                Path("tools/include/uapi/linux/bpf.h"), BPF / "Makefile", Path("tools/testing/selftests/lib.mk")):
        c = tmp_path / f"c-{rel.name}"
        shutil.copytree(a, c)
        (c / rel).write_text("edited\n")
        assert tree_digest(c) != base, rel


def test_the_key_covers_the_files_the_kernel_the_toolchain_and_the_shim() -> None:
    key = build_key("tree", ["a.c", "b.c"], "vmlinux", ["gcc 12"], "shim")
    assert build_key("tree", ["b.c", "a.c", "a.c"], "vmlinux", ["gcc 12"], "shim") == key
    for other in (build_key("tree2", ["a.c", "b.c"], "vmlinux", ["gcc 12"], "shim"),
                  build_key("tree", ["a.c"], "vmlinux", ["gcc 12"], "shim"),
                  build_key("tree", ["a.c", "b.c"], "vmlinux2", ["gcc 12"], "shim"),
                  build_key("tree", ["a.c", "b.c"], "vmlinux", ["gcc 13"], "shim"),
                  build_key("tree", ["a.c", "b.c"], "vmlinux", ["gcc 12"], "shim2")):
        assert other != key


def test_a_published_build_is_a_hit_and_a_miss_is_refused_here(tmp_path: Path) -> None:
    tree = toy(tmp_path)
    layout = CacheLayout(tmp_path / "cache")
    vmlinux_h = tmp_path / "vmlinux.h"
    vmlinux_h.write_text("/* kernel types */\n")
    tc = Toolchain(clang=shutil.which("clang-19") or "clang")
    selection = select(tree, ["foo"])
    with pytest.raises(RefusedError):  # tests/unit forbids builds (BPF_AUDIT_HARNESS_FORBID)
        build_test_progs(tree, selection, vmlinux_h, layout, toolchain=tc)
    key = build_key(tree_digest(tree.resolve()), ["foo.c"], _sha(vmlinux_h), tc.versions(), _sha(SHIM_SOURCE))
    entry = layout.test_progs / key
    entry.mkdir(parents=True)
    (entry / BINARY).write_bytes(b"\x7fELF")
    (entry / "foo.bpf.o").write_bytes(b"\x7fELF")
    (entry / "meta.json").write_text(json.dumps({"key": key, "files": ["foo.c"], "tests": ["foo"],
                                                 "objects": ["foo"]}))
    built = build_test_progs(tree, selection, vmlinux_h, layout, toolchain=tc)
    assert built.cached and built.entry == entry and built.tests == ["foo"]
    assert [p.name for p in built.files] == [BINARY, "foo.bpf.o"]  # what a run pushes (the shim when built)
    (entry / "meta.json").write_text(json.dumps({"key": "another"}))  # a damaged entry is a miss
    with pytest.raises(RefusedError):
        build_test_progs(tree, selection, vmlinux_h, layout, toolchain=tc)
    assert (tree / BPF / PROG_TESTS.name / "foo.c").is_file()
