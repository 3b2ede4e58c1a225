# SPDX-License-Identifier: GPL-2.0
"""Two pytest sessions at once on one machine: one kernel cache, two VMs that share no port, file or guest."""

import json
import os
import subprocess
import sys
import time

import pytest
from helpers import alive

pytestmark = [pytest.mark.vm, pytest.mark.slow]

INNER = """\
import json, os, time
from pathlib import Path

def test_holds_a_vm_while_the_other_session_does(vm, kernel_artifact):
    me, other = Path(os.environ["BAH_ME"]), Path(os.environ["BAH_OTHER"])
    boot_id = vm.guest.run("cat /proc/sys/kernel/random/boot_id", check=True).stdout.strip()
    vm.guest.run(f"echo {me.name} > /tmp/bah-session", check=True)
    me.write_text(json.dumps({"port": vm.port, "console": str(vm.console_log), "run_dir": str(vm.run_dir),
                              "qemu": vm.qemu_pids(), "key": kernel_artifact.key, "boot_id": boot_id}))
    deadline = time.monotonic() + 900
    while not other.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert other.exists(), "the other session never got its VM"
    # both VMs are up now: each session still reaches its own guest
    assert vm.guest.run("cat /tmp/bah-session", check=True).stdout.strip() == me.name
    assert vm.guest.run("cat /proc/sys/kernel/random/boot_id", check=True).stdout.strip() == boot_id
"""


def test_two_sessions_share_the_cache_and_their_vms_do_not_collide(kernel_artifact, kernel_options, tmp_path):
    procs = {}
    for me, other in (("a", "b"), ("b", "a")):
        d = tmp_path / me
        d.mkdir()
        (d / "test_inner.py").write_text(INNER)
        env = {**os.environ, "BAH_ME": str(tmp_path / f"{me}.json"), "BAH_OTHER": str(tmp_path / f"{other}.json")}
        procs[me] = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_inner.py",
                                      "--harness-cache", str(kernel_options.layout().root)],
                                     cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    outs = {}
    try:
        for me, proc in procs.items():
            outs[me] = proc.communicate(timeout=1200)[0]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for me, proc in procs.items():
        assert proc.returncode == 0, outs[me][-3000:]
    a, b = (json.loads((tmp_path / f"{me}.json").read_text()) for me in ("a", "b"))
    assert a["key"] == b["key"] == kernel_artifact.key  # one cached kernel, reused by both
    assert a["port"] != b["port"]
    assert a["run_dir"] != b["run_dir"] and a["console"] != b["console"]
    assert a["boot_id"] != b["boot_id"]
    assert len(a["qemu"]) == len(b["qemu"]) == 1 and a["qemu"] != b["qemu"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(p) for p in a["qemu"] + b["qemu"]):
        time.sleep(0.2)
    assert not [p for p in a["qemu"] + b["qemu"] if alive(p)], "a session's QEMU outlived it"
