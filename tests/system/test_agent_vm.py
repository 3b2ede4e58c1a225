# SPDX-License-Identifier: GPL-2.0
"""The guest agent in a real guest: verifier verdicts, prog ids, AUDIT_BPF records; a panic is a lost VM."""

from pathlib import Path

import pytest
from helpers import DATA

from harness.cases import audit
from harness.cases import compile as bpfobj
from harness.errors import GuestCommandError, LostVMError
from harness.machine.vm import LocalVM, VMConfig

pytestmark = [pytest.mark.vm, pytest.mark.slow]


@pytest.fixture(scope="module")
def task_ref_obj(kernel_artifact, tmp_path_factory) -> Path:
    res = bpfobj.compile_case(DATA / "agent-task-ref.bpf.c", kernel_artifact.vmlinux_h,
                              tmp_path_factory.mktemp("objs"))
    assert res.ok, res.stderr
    return res.obj


@pytest.fixture
def agent_obj(vm, task_ref_obj):
    remote = f"/tmp/{task_ref_obj.name}"
    vm.guest.put(task_ref_obj, remote)
    return vm.guest.agent(), remote


def test_agent_reports_rejection_with_verifier_log(agent_obj):
    agent, remote = agent_obj
    res = agent.request("load", path=remote, programs=["leak_task"])
    assert res["ok"] and res["loaded"] is False
    assert res["errno"] > 0
    assert "Unreleased reference" in res["verifier_log"]


def test_agent_loads_accepted_twin_with_a_prog_id(agent_obj):
    agent, remote = agent_obj
    res = agent.request("load", path=remote, programs=["release_task"])
    assert res["ok"] and res["loaded"], res.get("verifier_log")
    (prog,) = [p for p in res["programs"] if p["name"] == "release_task"]
    assert prog["id"] > 0
    assert agent.request("unload", handle=res["handle"])["ok"]


def test_load_and_unload_records_carry_the_loaders_prog_id(agent_obj, kernel_artifact):
    agent, remote = agent_obj
    opened = agent.request("audit_open", enable=True)
    assert opened["ok"], opened.get("error")
    mark = agent.request("audit_mark")["mark"]
    res = agent.request("load", path=remote, programs=["release_task"])
    assert res["loaded"]
    prog_id = next(p["id"] for p in res["programs"] if p["name"] == "release_task")
    agent.request("unload", handle=res["handle"])
    raw = agent.request("audit_read", since=mark, wait=1.0)["records"]
    records = audit.parse_records(raw, audit.parse_audit_h(kernel_artifact.audit_h.read_text()))
    ops = [r.get("op") for r in records if r.is_type("BPF") and r.get("prog-id") == str(prog_id)]
    assert ops == ["LOAD", "UNLOAD"], [r.raw for r in records]


def test_panicking_guest_is_a_lost_vm_with_the_panic_excerpt(kernel_artifact, tmp_path):
    vm = LocalVM(VMConfig(kernel=kernel_artifact.bzimage), tmp_path, name="panic")
    try:
        vm.start()
        with pytest.raises((GuestCommandError, LostVMError)):
            vm.guest.run("echo c > /proc/sysrq-trigger", timeout=60)
        vm.proc.wait(timeout=60)  # panic=-1 + -no-reboot: QEMU exits
        lost = vm.lost("guest died")
    finally:
        vm.stop()
    assert any(f.kind == "panic" for f in lost.findings), lost.findings
    assert "sysrq" in str(lost).lower()
    assert lost.console_log == vm.console_log and vm.console_log.is_file()
