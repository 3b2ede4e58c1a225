# SPDX-License-Identifier: GPL-2.0
"""A source edited while its kernel builds is never published under the key of what it was (issue 21 item 1).
A real build of a real tree (the default kernel's own unpacked source, given as a directory: its patched tree and
build slot are the default kernel's, so make is incremental), a real edit while make runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import DEFAULT_SLOT, start_until_make

from harness.kernel.request import KernelOptions, make_request

pytestmark = [pytest.mark.slow, DEFAULT_SLOT]
CLI = str(Path(sys.executable).parent / "bpf-audit-harness")
EDITED = "init/version.c"


def test_an_edit_while_make_runs_publishes_nothing(kernel_artifact, kernel_options):
    layout = kernel_options.layout()
    src = make_request(kernel_options).source.path  # the default source, unpacked in the cache
    opts = KernelOptions(kernel_src=str(src), cache_dir=layout.root)
    key = make_request(opts).key_inputs().key()
    assert not (layout.kernels / key).exists(), "a kernel of this tree as a directory is cached: nothing to test"
    path = src / EDITED
    text, st = path.read_bytes(), path.stat()
    proc, seen = start_until_make([CLI, "build", "--kernel-src", str(src), "--cache-dir", str(layout.root)])
    try:
        assert proc.poll() is None, "".join(seen)[-3000:]
        time.sleep(2)
        path.write_bytes(text + b"/* bpf-audit-harness fault test: edited during the build */\n")
        rest, _ = proc.communicate(timeout=1800)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        path.write_bytes(text)  # the default kernel's tree as it was (its identity is the tarball's: unchanged)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    out = "".join(seen) + rest
    assert proc.returncode == 3, out[-3000:]
    assert "changed while it was being built" in out and "nothing was published" in out, out[-3000:]
    assert not (layout.kernels / key).exists(), "a kernel built from a tree edited mid-build was published"
    subprocess.run([CLI, "build", "--cache-dir", str(layout.root)], check=True, capture_output=True, timeout=3600)
