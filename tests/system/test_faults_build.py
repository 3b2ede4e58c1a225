# SPDX-License-Identifier: GPL-2.0
"""Ctrl-C during a real kernel build, and a build that fails: nothing is published; the next build starts clean."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import DEFAULT_SLOT, group_gone, series_plus, sigint_default, start_until_make

from harness.kernel.request import KernelOptions, make_request

pytestmark = [pytest.mark.slow, DEFAULT_SLOT]
CLI = str(Path(sys.executable).parent / "bpf-audit-harness")


def _leftovers(layout, key: str) -> list[Path]:
    """Anything of `key` in the cache but its lock file: an entry, a staging dir, a work dir. (The build slot is
    not the key's: it is kept for the next build of the same tree and config.)"""
    found = [layout.kernels / key] if (layout.kernels / key).exists() else []
    found += list(layout.kernels.glob(f".staging-{key}-*")) if layout.kernels.is_dir() else []
    found += list(layout.work.glob(f"build-{key}-*")) if layout.work.is_dir() else []
    return found


def test_ctrl_c_and_a_failing_build_publish_nothing_and_the_next_build_succeeds(kernel_artifact, kernel_options,
                                                                                 tmp_path):
    layout = kernel_options.layout()
    src = make_request(kernel_options).source.path
    good = series_plus(tmp_path / "good", src, "init/version.c",
                       "/* bpf-audit-harness fault test: a harmless comment */\n")
    # kernel/bounds.c is compiled in make's prepare stage: the build fails within seconds of make starting
    bad = series_plus(tmp_path / "bad", src, "kernel/bounds.c",
                      '#error "bpf-audit-harness fault test: this build must fail"\n')
    good_opts = KernelOptions(patches_dir=good, cache_dir=layout.root)
    good_key = make_request(good_opts).key_inputs().key()
    bad_key = make_request(KernelOptions(patches_dir=bad, cache_dir=layout.root)).key_inputs().key()
    for key in (good_key, bad_key):  # an entry left by an earlier run of this test would make it a cache hit
        shutil.rmtree(layout.kernels / key, ignore_errors=True)

    # 1. Ctrl-C (SIGINT to the whole foreground group, as a terminal sends it) once make runs.
    proc, seen = start_until_make([CLI, "build", "--patches", str(good), "--cache-dir", str(layout.root)],
                                  preexec_fn=sigint_default)
    try:
        assert proc.poll() is None, "".join(seen)[-3000:]
        time.sleep(5)  # compiling by now
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    out = "".join(seen) + rest
    assert proc.returncode == 130 and "bpf-audit-harness: interrupted" in out, out[-3000:]
    assert group_gone(proc.pid) == [], "make or a compiler outlived the interrupted build"
    assert _leftovers(layout, good_key) == []

    # 2. A build that fails in make.
    res = subprocess.run([CLI, "build", "--patches", str(bad), "--cache-dir", str(layout.root)],
                         capture_output=True, text=True, timeout=3600)
    assert res.returncode == 3, res.stderr[-3000:]  # the harness failed (a build), not the user's input
    assert "bpf-audit-harness: build error: make failed" in res.stderr, res.stderr[-3000:]
    assert "this build must fail" in res.stderr and "Full log: " in res.stderr, res.stderr[-3000:]
    # It ran in the build slot the Ctrl-C left: what that build wrote was removed, the rest reused.
    assert "was left by an interrupted build: removed the" in res.stderr, res.stderr[-3000:]
    assert _leftovers(layout, bad_key) == []

    # 3. The interrupted inputs again: a clean build from scratch that succeeds and is published. A second
    # build of the same inputs, started while make runs, waits on the key's lock and then reuses the entry.
    argv = [CLI, "build", "--patches", str(good), "--cache-dir", str(layout.root)]
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    second = None
    try:
        assert first.stdout is not None
        head = []
        for line in first.stdout:
            head.append(line)
            if line.startswith("[build]") and ": make -C " in line:
                break
        second = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        out_first = "".join(head) + first.communicate(timeout=3600)[0]
        out_second = second.communicate(timeout=600)[0]
        assert first.returncode == 0 and f"key={good_key}" in out_first, out_first[-3000:]
        assert "built in " in out_first, out_first[-3000:]
        # The second says whom it waits for, then reuses the entry without building.
        assert second.returncode == 0, out_second[-3000:]
        assert out_second.startswith(f"[lock] waiting for pid {first.pid}: building kernel {good_key}"), out_second
        assert "cache hit in " in out_second and f"key={good_key}" in out_second, out_second[-3000:]
        assert "[build]" not in out_second, out_second[-3000:]
        assert _leftovers(layout, good_key) == [layout.kernels / good_key]
        assert (layout.kernels / good_key / "meta.json").is_file() and (layout.kernels / good_key / "bzImage").is_file()
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(layout.kernels / good_key, ignore_errors=True)  # ~100 MB nobody else needs
