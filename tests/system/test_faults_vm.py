# SPDX-License-Identifier: GPL-2.0
"""Fault injection on real guests: panic, hang, sshd killed, QEMU SIGKILLed; the case is a lost VM, the run goes on."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import descendants, group_gone

from harness.machine.lifetime import recorded_groups

pytest_plugins = ["pytester"]
pytestmark = [pytest.mark.vm, pytest.mark.slow]

HEAD = """\
// SPDX-License-Identifier: GPL-2.0
/* Scratch case file written by tests/system/test_faults_vm.py. */
#include "harness.h"

char _license[] SEC("license") = "GPL";
"""

FAULT = """
SEC("lsm/file_open")
__description("fault: {what}")
__success
__trigger("shell", "cmd={cmd}")
int BPF_PROG({name}, struct file *file)
{{
	return 0;
}}
"""

# A plain case that must pass on whatever VM it gets (after a fault: a fresh one).
AFTER = """
SEC("lsm/file_open")
__description("after the fault: an ordinary case")
__success
__trigger("open", "path=/tmp/bah/after_{n}", "comm=bah_after")
__expect_errno(0)
int BPF_PROG(after_fault_{n}, struct file *file)
{{
	return 0;
}}
"""

# The guest hangs for real: this LSM program spins in bpf_loop for ~2^46 iterations inside the trigger's
# open(); the kernel is PREEMPT_NONE with one CPU, so nothing else in the guest (sshd, the agent) runs again.
SPIN = """
static long spin_inner(__u64 i, void *ctx)
{
	return 0;
}

static long spin_outer(__u64 i, void *ctx)
{
	bpf_loop(1 << 23, spin_inner, NULL, 0);
	return 0;
}

SEC("lsm/file_open")
__description("fault: the hook spins (practically) forever and the guest hangs")
__success
__trigger("open", "path=/tmp/bah/spin", "comm=bah_spin")
__expect_errno(0)
int BPF_PROG(fault_hang, struct file *file)
{
	if (!harness_comm_is("bah_spin") || !harness_file_name_is(file, "spin"))
		return 0;
	bpf_loop(1 << 23, spin_outer, NULL, 0);
	return 0;
}
"""


def _write_cases(root: Path, *parts: str) -> Path:
    case = root / "cases" / "faults.bpf.c"
    case.parent.mkdir(exist_ok=True)
    case.write_text(HEAD + "".join(parts))
    return case


def _console_logs(text: str) -> list[Path]:
    """Console log paths named in a report."""
    return [Path(p) for p in dict.fromkeys(re.findall(r"(/\S+-console\.log)", text))]


def _check_lost_then_fresh(result, fault: str, n_faults: int = 1) -> str:
    """The fault case(s) failed as lost VMs naming the console log; every other case passed on a new VM."""
    out = result.stdout.str()
    result.assert_outcomes(failed=n_faults, passed=n_faults)
    # Not in the short summary: pytest truncates its lines to the terminal, except under CI=true.
    reports = "\n".join(line for line in out.splitlines() if not line.startswith("FAILED "))
    assert reports.count("LOST VM (not a verdict on the case)") == n_faults, out[-6000:]
    assert f"lost VM during {fault}" in out, out[-6000:]
    logs = _console_logs(out)
    assert logs and all(p.is_file() for p in logs), out[-4000:]
    run_dir = logs[0].parent
    booted = sorted(p.name for p in run_dir.glob("main-*-console.log"))
    # one VM per fault plus the fresh one the next case ran on
    assert booted == [f"main-{i}-console.log" for i in range(1, n_faults + 2)], booted
    return out


def test_guest_panic_mid_case_is_a_lost_vm_and_the_next_case_passes(pytester, kernel_artifact, inner_args):
    _write_cases(pytester.path,
                 FAULT.format(what="the trigger panics the guest", cmd="echo c > /proc/sysrq-trigger",
                              name="fault_panic"),
                 AFTER.format(n=1))
    result = pytester.runpytest_subprocess("cases", *inner_args, timeout=900)
    out = _check_lost_then_fresh(result, "fault_panic")
    assert "[panic]" in out and "Kernel panic - not syncing: sysrq triggered crash" in out, out[-6000:]
    (log,) = [p for p in _console_logs(out) if p.name == "main-1-console.log"]
    assert "sysrq triggered crash" in log.read_text(errors="replace")


def test_guest_hang_hits_the_case_timeout_and_the_next_case_passes(pytester, kernel_artifact, inner_args):
    _write_cases(pytester.path, SPIN, AFTER.format(n=1))
    result = pytester.runpytest_subprocess("cases", "--case-timeout", "45", *inner_args,
                                           timeout=900)
    out = _check_lost_then_fresh(result, "fault_hang")
    assert "ran longer than --case-timeout=45s, so its VM was killed" in out, out[-6000:]


def test_sshd_killed_in_the_guest_replaces_the_vm_and_the_run_continues(pytester, kernel_artifact, inner_args):
    # 1: every sshd gets SIGKILL (the listener is the guest's main command, so the guest powers off);
    # 2: the listener is frozen and the connection's sshd killed: QEMU runs on, but a reconnect fails.
    freeze = "kill -STOP $(cat /run/harness-sshd.pid); pkill -KILL -P $(cat /run/harness-sshd.pid)"
    _write_cases(pytester.path,
                 FAULT.format(what="sshd is killed", cmd="pkill -KILL -x sshd", name="fault_sshd_killed"),
                 AFTER.format(n=1),
                 FAULT.format(what="sshd stops answering", cmd=freeze, name="fault_sshd_frozen"),
                 AFTER.format(n=2))
    result = pytester.runpytest_subprocess("cases", *inner_args, timeout=900)
    out = _check_lost_then_fresh(result, "fault_sshd_killed", n_faults=2)
    assert "lost VM during fault_sshd_frozen" in out and "does not answer a reconnect" in out, out[-6000:]


def test_qemu_sigkilled_from_outside_is_detected_reported_and_replaced(kernel_artifact, kernel_options, inner_args,
                                                                    tmp_path):
    marker = "harness-fault-test: sleeping in the trigger"
    _write_cases(tmp_path, FAULT.format(what="QEMU is killed while the trigger sleeps",
                                        cmd=f"echo {marker} > /dev/kmsg; sleep 25", name="fault_qemu_killed"),
                 AFTER.format(n=1))
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "cases", *inner_args],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        runs = kernel_options.layout().runs
        deadline = time.monotonic() + 600
        console = None
        while time.monotonic() < deadline and proc.poll() is None:
            logs = list(runs.glob(f"*-vm-main-{proc.pid}/main-1-console.log"))
            if logs and marker in logs[0].read_text(errors="replace").split("\n", 1)[-1]:
                console = logs[0]
                break
            time.sleep(0.5)
        assert console is not None, f"the trigger never started: {proc.communicate()[0][-3000:]}"
        qemu = [pid for pid, name in descendants(proc.pid).items() if name.startswith("qemu-system")]
        assert len(qemu) == 1, descendants(proc.pid)
        os.kill(qemu[0], signal.SIGKILL)
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, out[-4000:]
    assert "1 failed, 1 passed" in out, out[-4000:]
    assert "LOST VM (not a verdict on the case)" in out and "lost VM during fault_qemu_killed" in out, out[-4000:]
    assert str(console) in out, out[-4000:]
    assert (console.parent / "main-2-console.log").is_file(), "no fresh VM was booted for the next case"
    # Every VM the run recorded (the killed one and its replacement): its whole process group is gone. (Not the
    # reaped pytest's descendants: orphans are reparented, so that check could never fail.)
    groups = recorded_groups(console.parent)
    assert sorted(groups) == ["main-1", "main-2"], groups
    assert [name for name, pgid in groups.items() if group_gone(pgid)] == [], "a VM outlived its session"


# A real kernel report from userspace: with watchdog_thresh=1 the soft-lockup detector reports after 2 s,
# and this hook keeps the CPU in the kernel (PREEMPT_NONE, no cond_resched in bpf_loop) for several seconds.
LOCKUP = """
static long lockup_inner(__u64 i, void *ctx)
{
	return 0;
}

/* Spin for a fixed time, not a fixed count: how fast TCG runs the loop depends on the host's load. */
static long lockup_outer(__u64 i, void *deadline)
{
	bpf_loop(1 << 12, lockup_inner, NULL, 0);
	return bpf_ktime_get_ns() > *(__u64 *)deadline;
}

SEC("lsm/file_open")
__description("a case that passes, but its hook holds the CPU long enough for a soft-lockup BUG report")
__success
__trigger("shell", "cmd=echo 1 > /proc/sys/kernel/watchdog_thresh; : > /tmp/bah/lockup; cat /tmp/bah/lockup")
int BPF_PROG(console_bug, struct file *file)
{
	if (!harness_comm_is("cat") || !harness_file_name_is(file, "lockup"))
		return 0;
	__u64 deadline = bpf_ktime_get_ns() + 5000000000ULL;  /* soft lockup is reported after 2 s stuck */

	bpf_loop(1 << 23, lockup_outer, &deadline, 0);
	return 0;
}
"""


def test_kernel_bug_on_the_console_fails_a_passing_case_or_only_warns(pytester, kernel_artifact, inner_args):
    _write_cases(pytester.path, LOCKUP)
    strict = pytester.runpytest_subprocess("cases", *inner_args, timeout=900)
    strict.assert_outcomes(failed=1)
    out = strict.stdout.str()
    assert "kernel reported soft_lockup during the case: watchdog: BUG: soft lockup" in out, out[-5000:]
    assert "--- kernel console during the case ---" in out and "stuck for" in out, out[-5000:]
    assert re.search(r"console log: /\S+-console\.log", out), out[-5000:]

    lenient = pytester.runpytest_subprocess("cases", "--console-findings", "warn", *inner_args,
                                            timeout=900)
    lenient.assert_outcomes(passed=1, warnings=1)
    out = lenient.stdout.str()
    assert "kernel reported soft_lockup during the case (warn-only): watchdog: BUG: soft lockup" in out, out[-5000:]
