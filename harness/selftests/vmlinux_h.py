# SPDX-License-Identifier: GPL-2.0
"""The vmlinux.h the selftests Makefile compiles against: the kernel's BTF dumped by the tree's own bpftool."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

from harness.cases.compile import find_clang
from harness.errors import BuildError, HarnessError
from harness.selftests.recipe import Recipe, build_recipe
from harness.settings import CacheLayout

DUMP_TIMEOUT = 300


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def tree_vmlinux_h(tree: Path, vmlinux: Path, layout: CacheLayout, bpftool=None) -> tuple[Path, str]:
    """`$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > vmlinux.h`, as the selftests Makefile makes it: the tree's
    bootstrap bpftool (built once per content) on the kernel under test's vmlinux, cached by both. A newer tree
    needs its own bpftool's dump: since 6.9 it declares the kernel's kfuncs (7.3's selftests call bpf_wq_set_callback
    and others with no declaration of their own), which the host's bpftool (Debian's 7.1) leaves out.
    `bpftool`: the tree's, when the caller has built it already. Returns (path, how it was made)."""
    from harness.kernel.bpftool import build_bpftool

    try:
        bpftool = bpftool or build_bpftool(tree, layout)
    except (BuildError, OSError) as e:
        raise HarnessError(f"the tree's bpftool could not be built for its vmlinux.h: {str(e).splitlines()[0]}") from e
    out_dir = layout.generated / f"vmlinux-tree-{bpftool.key}-{_digest(vmlinux)}"
    target = out_dir / "vmlinux.h"
    how = f"vmlinux.h dumped from the kernel's vmlinux by the tree's own bpftool ({bpftool.path})"
    if target.is_file() and target.stat().st_size > 0:
        return target, how
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".tmp-", suffix=".h")
    try:
        with os.fdopen(fd, "w") as fh:
            proc = subprocess.run([str(bpftool.path), "btf", "dump", "file", str(vmlinux), "format", "c"], stdout=fh,
                                  stderr=subprocess.PIPE, text=True, timeout=DUMP_TIMEOUT, check=False)
        if proc.returncode != 0 or os.path.getsize(tmp) == 0:
            raise HarnessError(f"{bpftool.path} btf dump file {vmlinux} format c failed: {proc.stderr.strip()[-500:]}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target, how


def recipe_for(tree: Path, vmlinux_h: Path, layout: CacheLayout, vmlinux: Path | None = None) -> Recipe:
    """The tree's recipe against the vmlinux.h its Makefile would make (the tree's bpftool on `vmlinux`), or
    `vmlinux_h` as given when there is no vmlinux or that cannot be made (said in the recipe's notes)."""
    from dataclasses import replace

    note = None
    if vmlinux is not None and Path(vmlinux).is_file():
        try:
            vmlinux_h, note = tree_vmlinux_h(tree, vmlinux, layout)
        except HarnessError as e:
            note = f"the kernel's own vmlinux.h ({e})"
    recipe = build_recipe(tree, vmlinux_h, layout, find_clang())
    if note:
        recipe = replace(recipe, honoured=(note, *recipe.honoured))
    return recipe

