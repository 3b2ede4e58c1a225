# SPDX-License-Identifier: GPL-2.0
"""The VM farm for real: boot the built kernel, reach it over pinned SSH, and leave no QEMU behind."""

import paramiko
import pytest
from helpers import alive

from harness.errors import LostVMError
from harness.machine.ssh import Guest, Target
from harness.machine.vm import LocalVM, VMConfig

pytestmark = [pytest.mark.vm, pytest.mark.slow]


def test_guest_runs_the_kernel_under_test(vm, kernel_artifact):
    res = vm.guest.run("uname -r", check=True)
    assert res.stdout.strip() == kernel_artifact.release
    lsm = vm.guest.run("cat /sys/kernel/security/lsm || cat /sys/kernel/security/lsm_list", check=True).stdout
    assert "bpf" in lsm.split(",")
    assert "audit=1" in vm.guest.run("cat /proc/cmdline", check=True).stdout


def test_run_keys_are_not_writable_from_the_guest(vm):
    keydir = vm.guest.target.key.parent
    res = vm.guest.run(f"touch {keydir}/planted 2>&1; echo rc=$?")
    assert "rc=0" not in res.stdout, f"guest could write the run's key directory {keydir}"
    assert not (keydir / "planted").exists()


def test_ssh_forward_listens_on_loopback_only(vm):
    port = vm.guest.target.port
    listeners = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A = LISTEN
                listeners.append(local.rsplit(":", 1)[0])
    assert listeners == ["0100007F"], f"port {port} listens on {listeners}, expected only 127.0.0.1"


def test_host_key_is_pinned(vm):
    t = vm.guest.target
    other = paramiko.Ed25519Key.from_private_key_file(str(t.key))  # a valid key that is not the guest's
    impostor = Target(t.host, t.port, t.user, t.key, other.get_base64())
    with pytest.raises(paramiko.SSHException):
        Guest(impostor).connect(timeout=30)


def test_one_connection_is_reused(vm):
    first = vm.guest._ssh().get_transport()
    vm.guest.run("true")
    vm.guest.run("true")
    assert vm.guest._ssh().get_transport() is first


def test_stop_leaves_no_qemu(kernel_artifact, tmp_path):
    vm = LocalVM(VMConfig(kernel=kernel_artifact.bzimage, accel="tcg"), tmp_path, name="leak-check")
    try:
        vm.start()
        pids = vm.qemu_pids()
        assert len(pids) == 1, pids
    finally:
        vm.stop()
    assert [p for p in pids if alive(p)] == [], "QEMU survived LocalVM.stop()"


def test_missing_kernel_image_is_a_lost_vm(tmp_path):
    with pytest.raises(LostVMError, match="does not exist"):
        LocalVM(VMConfig(kernel=tmp_path / "bzImage", accel="tcg"), tmp_path).start()
