# SPDX-License-Identifier: GPL-2.0
"""No QEMU outlives its owner: SIGHUP, SIGTERM and SIGKILL to pytest (with and without xdist), SIGTERM to `boot`,
Ctrl-C to `matrix`; real guests, real signals. Every VM the run recorded must be gone within seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import descendants, sigint_default

from harness.kernel.targets import default_target
from harness.machine.lifetime import RECORD_SUFFIX, group_alive
from harness.settings import REPO_ROOT, run_files

pytestmark = [pytest.mark.vm, pytest.mark.slow]
CLI = str(Path(sys.executable).parent / "bpf-audit-harness")
MARK = "harness-signal-test: the trigger holds the VM"
HOLD = f"""// SPDX-License-Identifier: GPL-2.0
/* Scratch case: its trigger holds the VM for a minute, so the test can signal the run while QEMU runs. */
#include "harness.h"

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("holds its VM while the test sends a signal")
__success
__trigger("shell", "cmd=echo {MARK} > /dev/kmsg; sleep 60")
int BPF_PROG(hold, struct file *file)
{{
	return 0;
}}
"""
GONE_WITHIN = 20.0  # seconds: the reaper ends a dead owner's group at once, QEMU gets 2 s to exit


def _write_case(root: Path, n: int = 1) -> None:
    (root / "cases").mkdir(exist_ok=True)
    (root / "cases" / "harness.h").write_text((REPO_ROOT / "cases" / "harness.h").read_text())
    for i in range(n):
        (root / "cases" / f"hold{i}.bpf.c").write_text(HOLD.replace("hold,", f"hold{i},"))


def _records(runs: Path, owners: set[int]) -> dict[Path, int]:
    """Console log -> process group of every VM recorded by one of `owners` (other runs' directories may be pruned
    while this looks: the GC of every session start does it)."""
    import json

    out = {}
    for rec in run_files(runs, RECORD_SUFFIX):
        try:
            data = json.loads(rec.read_text())
        except (OSError, ValueError):
            continue
        if data.get("owner_pid") in owners:
            out[rec.parent / (rec.name.removesuffix(RECORD_SUFFIX) + "-console.log")] = int(data["pgid"])
    return out


def _wait_for_held_vms(proc: subprocess.Popen, runs: Path, want: int, timeout: float = 600) -> dict[Path, int]:
    """Wait until `want` VMs of this run (its process and its xdist workers) run the holding trigger."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        owners = {proc.pid, *descendants(proc.pid)}
        vms = _records(runs, owners)
        held = [log for log in vms if log.is_file() and MARK in log.read_text(errors="replace").split("\n", 1)[-1]]
        if len(held) >= want:
            return vms
        time.sleep(0.5)
    out = proc.communicate(timeout=30)[0] if proc.poll() is not None else "(still running)"
    raise AssertionError(f"the run never held {want} VM(s): {out[-3000:]}")


def _assert_all_gone(vms: dict[Path, int], proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + GONE_WITHIN
    while time.monotonic() < deadline and any(group_alive(g) for g in vms.values()):
        time.sleep(0.2)
    left = {str(log): g for log, g in vms.items() if group_alive(g)}
    for g in left.values():  # do not leave them to the next test
        os.killpg(g, signal.SIGKILL)
    assert not left, f"QEMU outlived {what} by {GONE_WITHIN:.0f}s: {left}"
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise AssertionError(f"{what}: the process did not exit") from None


@pytest.mark.parametrize("workers", [0, 2], ids=["no-xdist", "xdist-2"])
@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_a_signal_to_pytest_ends_every_vm_it_started(sig, workers, kernel_artifact, kernel_options, inner_args,
                                                    tmp_path):
    """SIGHUP (a closed terminal), SIGTERM (a CI timeout) and SIGKILL to the pytest process alone, as they come."""
    _write_case(tmp_path, n=max(workers, 1))
    argv = [sys.executable, "-m", "pytest", "-q", "cases", *inner_args]
    if workers:
        argv += ["-n", str(workers)]
    proc = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        vms = _wait_for_held_vms(proc, kernel_options.layout().runs, want=max(workers, 1))
        os.kill(proc.pid, sig)
        _assert_all_gone(vms, proc, f"{sig.name} to pytest{' -n ' + str(workers) if workers else ''}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_sigterm_to_boot_ends_its_vm(kernel_artifact, kernel_options):
    proc = subprocess.Popen([CLI, "boot", "--cache-dir", str(kernel_options.layout().root), "--",
                             "sh", "-c", f"echo {MARK} > /dev/kmsg; sleep 120"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        vms = _wait_for_held_vms(proc, kernel_options.layout().runs, want=1)
        os.kill(proc.pid, signal.SIGTERM)
        _assert_all_gone(vms, proc, "SIGTERM to bpf-audit-harness boot")
        assert proc.returncode == 130, proc.returncode  # handled as an interrupt, not a crash
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_ctrl_c_to_matrix_with_one_worker_ends_the_inner_runs_vm(kernel_artifact, kernel_options, tmp_path):
    """Ctrl-C reaches the whole foreground group: matrix, its inner pytest and (before) the VM's group."""
    _write_case(tmp_path)
    proc = subprocess.Popen([CLI, "matrix", "--targets", default_target().name, "-n", "1", "--cases",
                             str(tmp_path / "cases"), "--out", str(tmp_path / "out"), "--cache-dir",
                             str(kernel_options.layout().root)],
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, preexec_fn=sigint_default)
    try:
        vms = _wait_for_held_vms(proc, kernel_options.layout().runs, want=1)
        os.killpg(proc.pid, signal.SIGINT)
        _assert_all_gone(vms, proc, "Ctrl-C to bpf-audit-harness matrix")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
