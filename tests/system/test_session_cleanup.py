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
from helpers import alive, sigint_default

pytestmark = [pytest.mark.vm, pytest.mark.slow]

INNER_TEST = """\
import json, os, time
def test_holds_a_vm(vm):
    open({pids!r}, "w").write(json.dumps(vm.qemu_pids()))
    time.sleep({sleep})
"""


def _start(tmp_path: Path, cache_root: Path, sleep: int) -> tuple[subprocess.Popen, Path]:
    pids = tmp_path / "qemu-pids.json"
    (tmp_path / "test_inner.py").write_text(INNER_TEST.format(pids=str(pids), sleep=sleep))
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_inner.py",
                             "--harness-cache", str(cache_root)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=sigint_default)
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
    assert [p for p in pids if alive(p)] == [], "QEMU outlived the pytest session"


def _reap(proc: subprocess.Popen, pids: list[int], group: bool) -> None:
    """A failed test must not leak its inner session or VMs: SIGTERM (the harness cleans up), then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            break
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def _assert_gone_soon(pids: list[int], out: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.2)
    assert [p for p in pids if alive(p)] == [], f"QEMU survived Ctrl-C:\n{out[-2000:]}"


def test_no_qemu_left_after_ctrl_c(kernel_artifact, kernel_options, tmp_path):
    proc, pids_file = _start(tmp_path, kernel_options.layout().root, sleep=600)
    pids: list[int] = []
    try:
        pids = _wait_for(pids_file, proc, 600)
        assert pids and all(alive(p) for p in pids)
        os.kill(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            _reap(proc, pids, group=False)
    assert proc.returncode != 0
    _assert_gone_soon(pids, out)


XDIST_INNER = """\
import json, os, time
import pytest

@pytest.mark.parametrize("n", [1, 2])
def test_holds_a_vm(vm, n):
    open(os.path.join({out!r}, f"tmp-{{n}}"), "w").write(str(vm.tmp_dir))
    open(os.path.join({out!r}, f"pids-{{n}}.json"), "w").write(json.dumps(vm.qemu_pids()))
    time.sleep(600)
"""


def test_ctrl_c_with_xdist_workers_leaves_no_qemu_and_no_temp_dir(kernel_artifact, kernel_options, tmp_path):
    """A terminal's Ctrl-C goes to the whole foreground process group: the controller and both workers."""
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    tmp.mkdir()
    (tmp_path / "test_inner.py").write_text(XDIST_INNER.format(out=str(out)))
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
                             "test_inner.py", "--harness-cache", str(kernel_options.layout().root)],
                            cwd=tmp_path, env={**os.environ, "TMPDIR": str(tmp)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True, preexec_fn=sigint_default)
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None and len(list(out.glob("pids-*.json"))) < 2:
            time.sleep(0.5)
        time.sleep(1)  # let both files be written completely
        pids = [p for f in out.glob("pids-*.json") for p in json.loads(f.read_text())]
        assert len(pids) == 2 and all(alive(p) for p in pids), proc.poll() or pids
        os.killpg(proc.pid, signal.SIGINT)
        text, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            _reap(proc, pids, group=True)
    assert proc.returncode != 0
    _assert_gone_soon(pids, text)
    # pytest's own basetemp (pytest-of-<user>/, made by xdist for its workers) is kept by design; the run's
    # tempfiles (keys, sockets, anything vng or the harness makes) must not be, in it or beside it
    assert [p.name for p in tmp.iterdir() if not p.name.startswith("pytest-of-")] == []
    assert [p for p in tmp.rglob("*") if not p.is_dir()] == [], "the session left temporary files behind"
    # virtme-run's own temp files live in a per-VM directory in the run dir, removed when the VM stops
    vm_tmps = [Path(f.read_text()) for f in out.glob("tmp-*")]
    assert len(vm_tmps) == 2 and [d for d in vm_tmps if d.exists()] == []
