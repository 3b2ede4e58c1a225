# SPDX-License-Identifier: GPL-2.0
"""A case's audit log is auditd's own format: the real `ausearch -if` reads it (recorded records of a real
guest, written out as the harness writes a case's audit.log)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from helpers import DATA

from harness.cases import audit
from harness.cases.auditd_log import to_auditd_log

TYPES = {1300: "SYSCALL", 1327: "PROCTITLE", 1334: "BPF"}


@pytest.fixture
def ausearch():
    path = shutil.which("ausearch")
    if path is None:
        pytest.skip("ausearch not installed (Debian package auditd)")
    return path


def test_ausearch_reads_a_case_log(tmp_path, ausearch):
    records = audit.parse_log((DATA / "audit-console-bpf-load-unload.log").read_text(), TYPES)
    log = tmp_path / "audit.log"
    log.write_text(to_auditd_log(records))
    first = log.read_text().splitlines()[0]
    assert first.startswith("type=BPF msg=audit(1795423843.176:10): prog-id=1 op=LOAD"), first
    res = subprocess.run([ausearch, "-if", str(log), "-m", "BPF", "--raw"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    found = [line for line in res.stdout.splitlines() if line.startswith("type=BPF")]
    assert len(found) == sum(1 for r in records if r.type == 1334) >= 2, res.stdout
    events = subprocess.run([ausearch, "-if", str(log), "-a", "10", "-i"], capture_output=True, text=True,
                            timeout=60)
    assert "type=SYSCALL" in events.stdout and "syscall=bpf" in events.stdout, events.stdout


def test_a_type_libaudit_does_not_know_is_written_as_auditd_writes_it(tmp_path, ausearch):
    rec = audit.parse_line("audit: type=1427 audit(1795423843.176:11): prog-id=1 pid=5 comm=\"x\" cause=\"y\"",
                           {1427: "BPF_LSM_ACCESS"})
    text = to_auditd_log([rec])
    assert text.startswith("type=UNKNOWN[1427] msg=audit(1795423843.176:11): prog-id=1"), text
    (tmp_path / "audit.log").write_text(text)
    res = subprocess.run([ausearch, "-if", str(tmp_path / "audit.log"), "-a", "11", "--raw"], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0 and "cause=\"y\"" in res.stdout, res.stdout + res.stderr


def test_a_case_log_reads_back_as_the_records_written() -> None:
    """What the runner writes (audit.log) is what readers of it get back, 1427 included: the property's reader
    once parsed it in the older per-line format and saw no records at all, on every kernel."""
    types = {**TYPES, 1302: "PATH", 1307: "CWD", 1427: "BPF_LSM_ACCESS"}  # as a kernel's audit.h names them
    records = audit.parse_log((DATA / "audit-console-bpf-load-unload.log").read_text(), types)
    records.append(audit.parse_line('audit: type=1427 audit(1795423843.176:11): prog-id=1 pid=5 comm="x" cause="y"',
                                    types))
    back = audit.parse_log(to_auditd_log(records), types)
    assert [(r.type, list(r.fields)) for r in back] == [(r.type, list(r.fields)) for r in records]
    assert back[-1].is_type("BPF_LSM_ACCESS") and len(back) >= 3
