# SPDX-License-Identifier: GPL-2.0
"""Evidence is complete before a verdict (issue 21 items 2, 3), on real guests: a console barrier that never
reaches the console makes a passing case 'no verdict'; a scenario capture waits for every record the block caused,
however many are still in flight when it ends."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]
pytestmark = [pytest.mark.vm, pytest.mark.slow]

QUIET_CONSOLE = """\
// SPDX-License-Identifier: GPL-2.0
/* Scratch case written by tests/system/test_faults_evidence.py. */
#include "harness.h"

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("passes, but silences the console below emergencies: the barrier line can never reach it")
__success
__trigger("shell", "cmd=echo 1 > /proc/sys/kernel/printk")
int BPF_PROG(quiet_console, struct file *file)
{
	return 0;
}
"""


def test_a_console_barrier_that_never_arrives_is_no_verdict(pytester, kernel_artifact, inner_args):
    (pytester.path / "cases").mkdir()
    from harness.settings import REPO_ROOT

    (pytester.path / "cases" / "harness.h").write_text((REPO_ROOT / "cases" / "harness.h").read_text())
    (pytester.path / "cases" / "quiet.bpf.c").write_text(QUIET_CONSOLE)
    result = pytester.runpytest_subprocess("cases", "-rA", *inner_args, timeout=900)
    out = result.stdout.str()
    result.assert_outcomes(failed=1)
    assert "no verdict: the kernel console could not be read to the end of the case" in out, out[-4000:]
    assert "did not reach the console within 15s" in out, out[-4000:]


def test_a_capture_waits_for_records_still_in_flight(vm, audit):
    """6000 user records sent by a SCHED_FIFO process inside the block: kauditd (and the agent) cannot run until
    it exits, so at the block's end most records are still queued in the kernel. The capture must hold every one.
    (Measured here with the old fixed 0.5 s read after the block: 4641 of 6000, and no loss reported.)"""
    n = 6000
    burst = ("import socket,struct;"
             "s=socket.socket(socket.AF_NETLINK,socket.SOCK_RAW,9);"
             f"[s.send(struct.pack('=IHHII',16+len(m),1107,1,i,0)+m) "
             f"for i,m in ((i,b'bah-burst-%d\\\\0' % i) for i in range({n}))]")
    with audit.capture() as recs:
        vm.guest.run(f"chrt -f 50 /usr/bin/python3 -S -c \"{burst}\"", check=True, timeout=300)
    got = {r.raw.split("bah-burst-")[1].split("'")[0] for r in recs.items if "bah-burst-" in r.raw}
    assert len(got) == n, f"{n - len(got)} of {n} records sent inside the block were not captured"
