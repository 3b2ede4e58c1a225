# SPDX-License-Identifier: GPL-2.0
"""Verdicts that cannot pass by accident, and a guest with no way in or out: provoked on real guests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cases.flood import flood_command
from harness.cases.parse import parse_case_text
from harness.cases.run import run_case
from harness.machine.messages import msg
from harness.settings import REPO_ROOT
from harness.status import Status

pytest_plugins = ["pytester"]
pytestmark = [pytest.mark.vm, pytest.mark.slow]
HEADER = (REPO_ROOT / "cases" / "harness.h").read_text()

FLOOD_NO_RECORD = """// SPDX-License-Identifier: GPL-2.0
/* Scratch: a no-record case whose own trigger floods audit; with a tiny backlog records are lost. */
#include "harness.h"

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("expects no record with cause=never while logging thousands of others")
__needs("bpf_audit")
__success
__trigger("shell", "cmd=FLOOD")
__expect_no_record("BPF_LSM_ACCESS", "cause=never")
int BPF_PROG(flood_no_record, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_load") || !harness_file_name_is(file, "load"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "flood");
	bpf_audit_log_end(ac);
	return 0;
}
""".replace("FLOOD", flood_command(3000))


def _case(tmp_path: Path, text: str, name: str):
    (tmp_path / "harness.h").write_text(HEADER)
    path = tmp_path / f"{name}.bpf.c"
    path.write_text(text)
    return parse_case_text(text, str(path)).programs[0], path


def test_a_no_record_case_that_lost_records_is_no_verdict_and_with_room_it_passes(
        vm, case_session, kernel_under_test, case_objects, tmp_path):
    from harness.cases import compile as bpfobj

    missing = kernel_under_test.features.missing("bpf_audit")
    if missing:
        pytest.skip(missing)
    prog, path = _case(tmp_path, FLOOD_NO_RECORD, "flood_no_record")
    obj = bpfobj.compile_case(path, kernel_under_test.vmlinux_h, case_objects).obj
    case_session.audit.ensure()
    agent = case_session.agent
    case_session.link.shell("auditctl -D >/dev/null")  # one record per open: nothing else fills the backlog
    # A full backlog must lose records, not stall the trigger: with the default backlog_wait_time (60 s) the
    # shell's own syscall-exit records (GFP_KERNEL) sleep on the full queue past the trigger's 30 s timeout.
    before = agent.must(msg.AuditStatusRequest())
    agent.must(msg.AuditSet(backlog_limit=8, backlog_wait_time=0))
    try:
        tight = run_case(prog, obj, kernel_under_test, case_session, tmp_path / "tight")
    finally:
        agent.must(msg.AuditSet(backlog_limit=before.backlog_limit or 8192,
                                backlog_wait_time=before.backlog_wait_time))
    assert tight.status is Status.ERROR, tight.report()
    assert tight.summary.startswith("audit capture incomplete, not a verdict on the case: the kernel lost "), \
        tight.summary
    roomy = run_case(prog, obj, kernel_under_test, case_session, tmp_path / "roomy")
    assert roomy.status is Status.PASS, roomy.report()


AGENT_KILLER = """// SPDX-License-Identifier: GPL-2.0
/* Scratch: the trigger kills the guest agent that runs it (its parent): a lost agent, then a fresh VM. */
#include "harness.h"

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("kills the guest agent mid-case")
__success
__trigger("shell", "cmd=kill -9 $PPID; sleep 5")
int BPF_PROG(kill_agent, struct file *file)
{
	return 0;
}

SEC("lsm/file_open")
__description("the case after it passes on a fresh VM")
__success
__trigger("open", "path=/tmp/bah/after")
int BPF_PROG(after_agent_death, struct file *file)
{
	return 0;
}
"""


def test_a_dead_agent_is_a_lost_machine_and_the_next_case_passes_on_a_fresh_vm(pytester, kernel_artifact,
                                                                                 inner_args):
    (pytester.path / "cases").mkdir()
    (pytester.path / "cases" / "harness.h").write_text(HEADER)
    (pytester.path / "cases" / "agent.bpf.c").write_text(AGENT_KILLER)
    result = pytester.runpytest_subprocess("cases", *inner_args, timeout=900)
    out = result.stdout.str()
    result.assert_outcomes(failed=1, passed=1)
    assert "LOST VM (not a verdict on the case)" in out and "lost the guest agent during kill_agent" in out, out
    assert "killed by" in out and "the guest's last kernel messages" in out, out[-5000:]
    assert "KeyError" not in out, out[-5000:]


def test_the_guest_reaches_nothing_and_its_sshd_forwards_nothing(vm, tmp_path):
    import socket

    # A service on the host's loopback: restrict=on keeps the guest away from it (10.0.2.2 is the host).
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    try:
        res = vm.guest.run(f"timeout 10 busybox nc -w 3 10.0.2.2 {port} </dev/null; echo rc=$?", timeout=30)
    finally:
        srv.close()
    assert "rc=0" not in res.stdout, f"the guest reached the host's 127.0.0.1:{port}: {res.stdout}"
    # sshd: no port forwarding through the guest.
    transport = vm.guest._ssh().get_transport()
    with pytest.raises(Exception, match="(?i)prohibited|denied|rejected|failed"):
        transport.open_channel("direct-tcpip", ("10.0.2.2", port), ("127.0.0.1", 0), timeout=10)
    # The guest's shadow file is its own one line, none of the host's password hashes.
    shadow = vm.guest.run("cat /etc/shadow", timeout=30).stdout
    assert shadow == "root:*:1:0:99999:7:::\n", shadow


def test_the_agent_and_case_objects_live_in_a_private_directory_of_the_session(vm, case_session, bpf):
    bpf.load(REPO_ROOT / "cases" / "baseline" / "lsm_deny.bpf.c", "baseline_file_open_deny")
    private = vm.guest.private_dir()
    res = vm.guest.run(f"stat -c '%a %u' {private}; ls {private} {private}/cases", timeout=30).stdout
    assert res.startswith("700 0\n") and "agent.pyz" in res and "lsm_deny.bpf-" in res, res
    assert not vm.guest.run("ls /tmp/harness-agent.pyz /tmp/harness-cases 2>/dev/null", timeout=30).stdout


def test_a_cache_directory_with_a_space_in_its_path_boots_and_runs_a_case(kernel_artifact, plain_source, tmp_path):
    """Paths reach vng's --exec line and sshd_config: quoted, they survive a space. (The kernel and its unpacked
    source are linked in: a cache hit, no build.)"""
    cache = tmp_path / "a cache"
    (cache / "kernels").mkdir(parents=True)
    (cache / "src").mkdir()
    subprocess.run(["cp", "-al", str(kernel_artifact.dir), str(cache / "kernels" / kernel_artifact.key)], check=True)
    subprocess.run(["cp", "-al", str(plain_source.parent), str(cache / "src" / plain_source.parent.name)], check=True)
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--harness-cache",
                          str(cache), "cases/baseline/lsm_deny.bpf.c"], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=900, env={**os.environ, "BPF_AUDIT_HARNESS_CACHE": str(cache)})
    assert res.returncode == 0 and " passed" in res.stdout, res.stdout[-3000:] + res.stderr[-3000:]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a small tmpfs (a disk that fills up)")
def test_a_full_disk_during_a_build_is_one_clear_error(plain_source, tmp_path):
    """A cache on a 64 MiB tmpfs: make runs out of room in its build directory."""
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "bpf-audit-harness-full", str(tiny)], check=True)
    try:
        res = subprocess.run([str(Path(sys.executable).parent / "bpf-audit-harness"), "build", "--kernel-src",
                              str(plain_source), "--no-patches", "--cache-dir", str(tiny / "cache")],
                             capture_output=True, text=True, timeout=3600)
    finally:
        subprocess.run(["umount", "-l", str(tiny)], check=False)
    assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert res.stderr.count("bpf-audit-harness: ") == 1, res.stderr[-3000:]
    assert f"the file system of the harness cache {tiny / 'cache'} is full" in res.stderr, res.stderr[-3000:]
    assert "MiB free" in res.stderr and "BPF_AUDIT_HARNESS_CACHE" in res.stderr, res.stderr[-3000:]
    shutil.rmtree(tiny, ignore_errors=True)
