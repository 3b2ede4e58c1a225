# SPDX-License-Identifier: GPL-2.0
"""harness.kernel.libbpf without building: the cache key follows the content of what the build reads (the same in
any copy of a tree, another one when a source changes), and a build is refused where builds are forbidden."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.errors import BuildError, RefusedError
from harness.kernel.libbpf import LIBBPF_DIR, build_libbpf, find_built, inputs_digest
from harness.settings import CacheLayout


def toy_tree(root: Path) -> Path:
    for rel, text in ((LIBBPF_DIR / "Makefile", "all:\n"), (LIBBPF_DIR / "libbpf.c", "int x;\n"),
                      (Path("tools/include/uapi/linux/bpf.h"), "/* uapi */\n"),
                      (Path("tools/build/Makefile.feature"), "# feature\n"), (Path("kernel/bpf/verifier.c"), "v\n")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_the_key_is_the_content_of_what_the_build_reads(tmp_path: Path) -> None:
    a = toy_tree(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    assert inputs_digest(a) == inputs_digest(b)
    (b / "kernel/bpf/verifier.c").write_text("changed\n")  # not read by the libbpf build
    assert inputs_digest(a) == inputs_digest(b)
    (b / "tools/include/uapi/linux/bpf.h").write_text("/* a new field */\n")
    assert inputs_digest(a) != inputs_digest(b)
    (b / "tools/include/uapi/linux/bpf.h").write_text("/* uapi */\n")
    (b / LIBBPF_DIR / "libbpf.c").write_text("int y;\n")
    assert inputs_digest(a) != inputs_digest(b)


def test_a_cached_build_is_found_and_a_new_one_refused_here(tmp_path: Path) -> None:
    tree = toy_tree(tmp_path / "linux")
    layout = CacheLayout(tmp_path / "cache")
    with pytest.raises(RefusedError):  # tests/unit forbids builds (BPF_AUDIT_HARNESS_FORBID)
        build_libbpf(tree, layout)
    out = layout.libbpf / inputs_digest(tree)
    out.mkdir(parents=True)
    (out / "libbpf.so.1.5.0").write_bytes(b"\x7fELF")
    (out / "libbpf.so.1").symlink_to("libbpf.so.1.5.0")
    assert find_built(out) is None  # a build of the shared library alone (BUILD_VERSION 1) lacks libbpf.a
    (out / "libbpf.a").write_bytes(b"!<arch>\n")
    assert find_built(out) == out / "libbpf.so.1.5.0"
    built = build_libbpf(tree, layout)
    assert (built.path, built.version, built.cached) == (out / "libbpf.so.1.5.0", "1.5.0", True)
    assert built.archive == out / "libbpf.a"
    with pytest.raises(BuildError):
        build_libbpf(tmp_path / "not-a-tree", layout)
