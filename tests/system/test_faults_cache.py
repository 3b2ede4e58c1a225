# SPDX-License-Identifier: GPL-2.0
"""Damaged cache entries are misses, said once, and the build that follows replaces them (real builds)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import DEFAULT_SLOT, default_source, series_plus

from harness.kernel.artifact import KernelArtifact
from harness.kernel.request import KernelOptions, make_request

pytestmark = [DEFAULT_SLOT]

DEFAULT_SOURCE = default_source()[0]  # one kernel line per run (see helpers.default_source)

CLI = str(Path(sys.executable).parent / "bpf-audit-harness")


@pytest.mark.slow
def test_truncated_meta_or_a_missing_image_is_rebuilt_with_a_warning_not_a_traceback(kernel_options,
                                                                                     default_source_tree, tmp_path):
    layout = kernel_options.layout()
    patches = series_plus(tmp_path / "p", default_source_tree, "init/version.c",
                          "/* bpf-audit-harness: damaged cache entry test */\n")
    key = make_request(KernelOptions(kernel_src=DEFAULT_SOURCE, patches_dir=patches,
                                     cache_dir=layout.root)).key_inputs().key()
    argv = [CLI, "build", "--kernel-src", DEFAULT_SOURCE, "--patches", str(patches), "--cache-dir", str(layout.root)]
    try:
        first = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
        assert first.returncode == 0, first.stderr[-3000:]
        entry = layout.kernels / key
        for damage, says in (
            (lambda: (entry / "meta.json").write_text('{"key": "' + key[:5]), "meta.json unreadable"),
            (lambda: (entry / "bzImage").unlink(), "bzImage is missing"),
            (lambda: (entry / "vmlinux.h").write_text(""), "vmlinux.h is empty"),
        ):
            damage()
            res = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
            assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-3000:]
            assert f"cache entry {entry} is damaged ({says}" in res.stderr, res.stderr[-3000:]
            assert "built in " in res.stdout and f"key={key}" in res.stdout, res.stdout
            assert KernelArtifact.problem(entry) is None  # replaced by a whole entry
        again = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        assert again.stdout.startswith("cache hit in ") and "damaged" not in again.stderr, again.stderr
    finally:
        shutil.rmtree(layout.kernels / key, ignore_errors=True)
