# SPDX-License-Identifier: GPL-2.0
"""The record judge on records a real kernel emitted (tests/data), with expectations parsed from case text."""

from pathlib import Path

import pytest
from helpers import DATA

from harness.cases import audit
from harness.cases.expect import judge
from harness.cases.parse import parse_case_text

AUDIT_H = Path("/usr/include/linux/audit.h")


@pytest.fixture(scope="module")
def records():
    types = audit.parse_audit_h(AUDIT_H.read_text()) if AUDIT_H.exists() else None
    return audit.parse_log((DATA / "audit-console-bpf-load-unload.log").read_text(), types)


def expectations(*lines: str):
    body = "\n".join(lines)
    text = f"""// SPDX-License-Identifier: GPL-2.0
/* scratch */
#include "harness.h"
SEC("lsm/file_open")
__description("judge test")
__success
__trigger("open", "path=/tmp/x", "comm=bah_x")
{body}
int BPF_PROG(p, struct file *file)
{{
	return 0;
}}
"""
    prog = parse_case_text(text, "scratch.bpf.c").programs[0]
    return prog.expect_records, prog.expect_no_records


def run(records, *lines, **variables):
    exp, unexp = expectations(*lines)
    return judge(records, exp, unexp, {"prog_id": "2", **variables})


def test_load_record_of_the_loaded_program_is_found(records):
    v = run(records, '__expect_record("BPF", "prog-id=${prog_id}", "op=LOAD", "leading=prog-id,op", "count=1")')
    assert v.ok, v.problems


def test_wrong_value_fails_and_shows_the_candidates(records):
    v = run(records, '__expect_record("BPF", "prog-id=${prog_id}", "op=ATTACH")')
    assert not v.ok
    assert "expected at least one BPF record" in v.problems[0]
    assert "op=LOAD (wanted ATTACH)" in v.problems[0]


def test_count_is_exact(records):
    assert not run(records, '__expect_record("BPF", "op=LOAD", "count=1")').ok  # there are several LOADs


def test_order_and_absent_field(records):
    assert run(records, '__expect_record("SYSCALL", "order=arch,syscall,comm", "!cause")').ok
    v = run(records, '__expect_record("SYSCALL", "order=comm,arch")')
    assert not v.ok and "field order arch,comm (wanted comm,arch)" in v.problems[0]


def test_decoded_untrusted_string(records):
    assert run(records, '__expect_record("SYSCALL", "comm=bpftool", "raw:comm=\\"bpftool\\"")').ok


def test_same_event_links_load_to_its_bpf_syscall(records):
    assert run(records, '__expect_record("BPF", "prog-id=${prog_id}", "op=LOAD")',
               '__expect_record("SYSCALL", "syscall=321", "same_event=BPF")').ok
    # prog 2's UNLOAD happened outside a syscall record: no SYSCALL shares its serial
    v = run(records, '__expect_record("BPF", "prog-id=${prog_id}", "op=UNLOAD")',
            '__expect_record("SYSCALL", "same_event=BPF")')
    assert not v.ok and "sharing a serial with the BPF record" in v.problems[0]


def test_expect_no_record(records):
    assert run(records, '__expect_no_record("BPF", "op=ATTACH")').ok
    v = run(records, '__expect_no_record("BPF", "prog-id=${prog_id}")')
    assert not v.ok and "expected no BPF record" in v.problems[0]
