# SPDX-License-Identifier: GPL-2.0
"""A kernel tree's own bpftool (tools/bpf/bpftool, its bootstrap build) built into the cache once per content."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BuildError
from harness.kernel import cache
from harness.kernel.libbpf import INPUT_FILES, INPUT_TREES, LIBBPF_DIR, make_in_staging
from harness.settings import CacheLayout, refuse_if_forbidden
from harness.tools import version_line

BPFTOOL_DIR = Path("tools/bpf/bpftool")
# The bootstrap bpftool is what the selftests Makefile runs for `gen object`/`gen skeleton` when it does not
# cross-compile (USE_BOOTSTRAP): main, common, json_writer, gen and btf on the tree's own libbpf. It needs no
# clang and none of bpftool's own BPF skeletons, so it builds in well under a minute.
TARGET = "bootstrap"
BUILD_VERSION = 1  # bump when the way it is built changes in a way its inputs do not show


@dataclass(frozen=True)
class BuiltBpftool:
    path: Path
    key: str
    cached: bool


def inputs_digest(tree: Path, cc: str = "gcc") -> str:
    """sha256 over the content (by path) of everything the bootstrap build reads: bpftool's sources, libbpf's,
    the tools headers and build scripts; and the compiler's version."""
    tree = Path(tree)
    h = hashlib.sha256(b"bpftool-build:%d:%s\0" % (BUILD_VERSION, TARGET.encode()))
    h.update(version_line(cc, "--version").encode() + b"\0")
    paths = sorted(p for p in (tree / BPFTOOL_DIR).rglob("*") if p.is_file() and "Documentation" not in p.parts)
    paths += [p for p in sorted((tree / LIBBPF_DIR).iterdir()) if p.is_file()]
    for rel in INPUT_TREES:
        paths += sorted(p for p in (tree / rel).rglob("*") if p.is_file())
    paths += [tree / rel for rel in INPUT_FILES if (tree / rel).is_file()]
    cache.update_with_files(h, tree, paths)
    return h.hexdigest()[:16]


def build_bpftool(tree: Path, layout: CacheLayout, *, jobs: int | None = None, cc: str = "gcc") -> BuiltBpftool:
    """`make -C <tree>/tools/bpf/bpftool OUTPUT=<staging>/ bootstrap` once per content, under a lock (concurrent
    callers wait, then reuse); only the binary is kept, published by renaming its directory into place."""
    tree = Path(tree).resolve()
    if not (tree / BPFTOOL_DIR / "Makefile").is_file():
        raise BuildError(f"{tree} has no {BPFTOOL_DIR}/Makefile: not a kernel tree with bpftool", usage=False)
    key = inputs_digest(tree, cc)
    out_dir = layout.bpftool / key
    if (out_dir / "bpftool").is_file():
        return BuiltBpftool(out_dir / "bpftool", key, True)
    refuse_if_forbidden("build", f"building bpftool from {tree / BPFTOOL_DIR}")
    layout.bpftool.mkdir(parents=True, exist_ok=True)
    with cache.key_lock(layout, f"bpftool-{key}", holder=f"building bpftool from {tree / BPFTOOL_DIR}"):
        if (out_dir / "bpftool").is_file():
            return BuiltBpftool(out_dir / "bpftool", key, True)
        staging = Path(tempfile.mkdtemp(dir=layout.bpftool, prefix=f".staging-{key}-"))
        argv = ["make", "-C", str(tree / BPFTOOL_DIR), f"OUTPUT={staging}/build/", f"-j{jobs or os.cpu_count() or 1}",
                f"CC={cc}", f"HOSTCC={cc}", TARGET]
        (staging / "build").mkdir()
        built = staging / "build" / "bootstrap" / "bpftool"
        make_in_staging(argv, staging, f"building bpftool from {tree / BPFTOOL_DIR}",
                        layout.bpftool / f"failed-{key}.log", built.is_file)
        os.replace(built, staging / "bpftool")
        shutil.rmtree(staging / "build", ignore_errors=True)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    return BuiltBpftool(out_dir / "bpftool", key, False)
