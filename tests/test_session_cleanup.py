# SPDX-License-Identifier: GPL-2.0
"""No QEMU outlives a pytest session: at a normal end, and after Ctrl-C (SIGINT) in the middle of a test."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.slow]

INNER_TEST = """\
import json, os, time
def test_holds_a_vm(vm):
    open({pids!r}, "w").write(json.dumps(vm.qemu_pids()))
    time.sleep({sleep})
"""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start(tmp_path: Path, cache_root: Path, sleep: int) -> tuple[subprocess.Popen, Path]:
    pids = tmp_path / "qemu-pids.json"
    (tmp_path / "test_inner.py").write_text(INNER_TEST.format(pids=str(pids), sleep=sleep))
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_inner.py",
                             "--harness-cache", str(cache_root)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    return proc, pids


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and path.read_text():
            return json.loads(path.read_text())
        time.sleep(0.5)
    raise AssertionError(f"the inner session never reported its VM: {proc.communicate()[0][-2000:]}")


def test_no_qemu_left_after_a_normal_session(kernel_artifact, kernel_options, tmp_path):
    proc, pids_file = _start(tmp_path, kernel_options.layout().root, sleep=0)
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-3000:]
    pids = json.loads(pids_file.read_text())
    assert len(pids) == 1
    assert [p for p in pids if _running(p)] == [], "QEMU outlived the pytest session"


def test_no_qemu_left_after_ctrl_c(kernel_artifact, kernel_options, tmp_path):
    proc, pids_file = _start(tmp_path, kernel_options.layout().root, sleep=600)
    pids = _wait_for(pids_file, proc, 600)
    assert pids and all(_running(p) for p in pids)
    os.kill(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_running(p) for p in pids):
        time.sleep(0.2)
    assert [p for p in pids if _running(p)] == [], f"QEMU survived Ctrl-C:\n{out[-2000:]}"
