# SPDX-License-Identifier: GPL-2.0
"""A mutant build killed mid-make must not poison the next mutant: the patched tree is re-derived from the source
and the series for every build, never from what the killed build left in it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import DEFAULT_SLOT, default_source, start_until_make

from harness.kernel import trees
from harness.kernel.patches import apply_series, load_series, with_mutant
from harness.kernel.request import KernelOptions, make_request
from harness.settings import DEFAULT_PATCHES_DIR

pytestmark = [pytest.mark.slow, DEFAULT_SLOT]
CLI = str(Path(sys.executable).parent / "bpf-audit-harness")
EDITED = "security/lsm_audit_kfuncs.c"
SOURCE, LINE = default_source()
SERIES = DEFAULT_PATCHES_DIR / LINE  # the default line: its series and mutants


def _expected(source_tree: Path, mutant: str) -> str:
    """The edited file as the series plus `mutant` make it, applied to a scratch copy of the source's file."""
    series = with_mutant(load_series(SERIES), SERIES, mutant)
    with tempfile.TemporaryDirectory() as tmp:
        for rel in trees.touched_files(series):
            src = source_tree / rel
            if src.is_file():
                (Path(tmp) / rel).parent.mkdir(parents=True, exist_ok=True)
                (Path(tmp) / rel).write_bytes(src.read_bytes())
        apply_series(series, Path(tmp))
        return (Path(tmp) / EDITED).read_text()


def test_sigkill_mid_mutant_build_then_another_mutant_is_built_from_the_series_and_that_mutant_only(
        kernel_options, tmp_path):
    layout = kernel_options.layout()
    source_tree = make_request(KernelOptions(kernel_src=SOURCE, cache_dir=layout.root)).source.path
    keys = {m: make_request(KernelOptions(kernel_src=SOURCE, mutant=m,
                                          cache_dir=layout.root)).key_inputs().key()
            for m in ("prog-id-zero", "record-type-avc")}
    for key in keys.values():  # cached from an earlier run: this test needs real builds
        subprocess.run(["rm", "-rf", str(layout.kernels / key)], check=True)
    proc, seen = start_until_make([CLI, "build", "--kernel-src", SOURCE, "--mutant", "prog-id-zero",
                                   "--cache-dir", str(layout.root)])
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # no cleanup at all: the tree holds mutant A, the slot is marked
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    tree = make_request(KernelOptions(kernel_src=SOURCE, cache_dir=layout.root)).source
    patched = trees.patched_tree_dir(tree, layout)
    assert (patched / EDITED).read_text() == _expected(source_tree, "prog-id-zero"), "".join(seen)[-2000:]

    res = subprocess.run([CLI, "build", "--kernel-src", SOURCE, "--mutant", "record-type-avc", "--cache-dir",
                          str(layout.root)],
                         capture_output=True, text=True, timeout=3600)
    try:
        assert res.returncode == 0, res.stderr[-3000:]
        assert f"key={keys['record-type-avc']}" in res.stdout, res.stdout
        assert "was left by an interrupted build: removed the" in res.stderr, res.stderr[-3000:]
        # The tree now holds the series and mutant B only: A's change went with the killed build.
        assert (patched / EDITED).read_text() == _expected(source_tree, "record-type-avc")
        assert _expected(source_tree, "record-type-avc") != _expected(source_tree, "prog-id-zero")
    finally:
        for key in keys.values():
            subprocess.run(["rm", "-rf", str(layout.kernels / key)], check=True)
