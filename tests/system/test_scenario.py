# SPDX-License-Identifier: GPL-2.0
"""Scenario fixtures (vm, bpf, audit) used the way a kernel developer writes a Python test."""

import pytest

from harness.settings import REPO_ROOT

pytestmark = [pytest.mark.vm, pytest.mark.slow]
CASES = REPO_ROOT / "cases"


def test_record_from_a_shell_command_groups_with_its_syscall(vm, bpf, audit):
    prog = bpf.load_and_attach(CASES / "audit" / "serial.bpf.c", "grouped_with_syscall")
    vm.guest.run("mkdir -p /tmp/bah && : > /tmp/bah/serial", check=True)
    with audit.capture() as recs:
        # the case filters on its trigger's comm; run the open under that name
        vm.guest.run("/usr/bin/python3 -S -c \"import ctypes, os; "
                     "ctypes.CDLL(None).prctl(15, b'bah_serial', 0, 0, 0); os.open('/tmp/bah/serial', os.O_RDONLY)\"",
                     check=True)
    rec = recs.one(type="BPF_LSM_ACCESS", prog_id=prog.id)
    assert rec.field_names()[:3] == ("prog-id", "pid", "comm")
    (event,) = [e for e in recs.events() if e.serial == rec.serial]
    assert "SYSCALL" in event.types()


def test_unknown_record_query_explains_what_was_captured(vm, audit):
    with audit.capture() as recs:
        vm.guest.run("true")
    with pytest.raises(AssertionError, match="expected exactly one BPF_LSM_ACCESS record"):
        recs.one(type="BPF_LSM_ACCESS", prog_id=999999)
