# SPDX-License-Identifier: GPL-2.0
"""Cross-check harness.audit against auparse (auditd's parser) on records a case made the kernel emit, live."""

import json

import pytest

from harness.cases import audit
from harness.cases import compile as bpfobj
from harness.cases.session import GuestSession
from harness.settings import REPO_ROOT

pytestmark = [pytest.mark.vm, pytest.mark.slow]
CASE = REPO_ROOT / "cases" / "audit" / "encoding.bpf.c"  # quoted and hex-encoded untrusted strings, plus SYSCALL


def test_auparse_sees_what_harness_audit_sees(vm, kernel_artifact, tmp_path):
    types = audit.parse_audit_h(kernel_artifact.audit_h.read_text())
    compiled = bpfobj.compile_case(CASE, kernel_artifact.vmlinux_h, tmp_path)
    assert compiled.ok, compiled.stderr
    session = GuestSession(vm)
    session.audit.ensure()
    agent = session.agent
    remote = session.files.push(compiled.obj)
    mark = agent.request("audit_mark")["mark"]
    for prog, comm in (("comm_space_hex", "bah enc sp"), ("comm_plain_quoted", "bah_encp")):
        load = agent.request("load", path=remote, programs=[prog])
        assert load["loaded"], load.get("verifier_log")
        link = agent.request("attach", handle=load["handle"], program=prog)["link"]
        session.link.shell("mkdir -p /tmp/bah && touch /tmp/bah/encp /tmp/bah/encsp")
        agent.request("trigger", action="open", path=f"/tmp/bah/{'encsp' if ' ' in comm else 'encp'}", comm=comm)
        agent.request("detach", link=link)
        agent.request("unload", handle=load["handle"])
    raw = agent.request("audit_read", since=mark, wait=1.0)["records"]
    ours = audit.parse_records(raw, types)
    assert any(r.is_type("BPF_LSM_ACCESS") for r in ours), "the cases emitted no BPF_LSM_ACCESS record"

    log = tmp_path / "captured.jsonl"  # the guest's libaudit names the types, as auditd would
    log.write_text("".join(json.dumps({"type": r["type"], "text": r["text"]}) + "\n" for r in raw if r["type"] != 1320))
    remote_log = "/tmp/harness-auparse-input.jsonl"
    vm.guest.put(log, remote_log)
    dumper = "/tmp/harness-auparse-dump.py"  # pushed: the repo's path need not exist in the guest (a CI checkout)
    vm.guest.put(REPO_ROOT / "guests" / "auparse_dump.py", dumper)
    res = vm.guest.run(f"/usr/bin/python3 {dumper} {remote_log}", timeout=120, check=True)
    theirs = json.loads(res.stdout)

    ours_events = audit.group_events(r for r in ours if r.type != 1320)
    assert [e.serial for e in ours_events] == [e["serial"] for e in theirs]
    disagreements = []
    for mine, their in zip(ours_events, theirs, strict=True):
        assert [r.type for r in mine.records] == [r["type"] for r in their["records"]], (mine, their)
        for rec, trec in zip(mine.records, their["records"], strict=True):
            tfields = [tuple(f) for f in trec["fields"] if f[0] != "type"]
            if list(rec.fields) != tfields:
                disagreements.append(f"fields differ:\n  harness: {rec.fields}\n  auparse: {tfields}")
            for name, value in trec["interpreted"].items():
                if rec.is_type("BPF_LSM_ACCESS") and rec.decoded(name) != value:
                    disagreements.append(f"{name}: harness decodes {rec.decoded(name)!r}, auparse {value!r}")
    assert not disagreements, "\n".join(disagreements)
