# SPDX-License-Identifier: GPL-2.0
"""Tests for harness.console against console logs recorded from real guests (tests/data/console-*.log)."""

from __future__ import annotations

import os
import re

import pytest
from helpers import DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.machine import console
from harness.machine.console import Finding

# Hypothesis keeps its example database and caches out of the repository (read lazily, so this works
# as long as nothing in this process has used Hypothesis's storage yet).
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.expanduser("~/.cache/hypothesis/bpf-audit-harness"))
settings.register_profile("harness-console", database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROFILE = settings.get_profile("harness-console")



def read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8", errors="replace")


# (file, [(kind, line_no, first line as a regex)]) -- all recorded on Debian's 6.1.0-56-amd64 under QEMU TCG.
RECORDED = [
    ("console-clean-boot.log", []),
    ("console-audit-boot.log", []),
    (
        "console-warning.log",
        [
            (
                "warning",
                487,
                r"WARNING: CPU: 0 PID: 238 at /tmp/provoke\.\w+/provoke\.c:51 provoke_init\+0x45/0x1000 \[provoke\]",
            )
        ],
    ),
    ("console-bug.log", [("bug", 482, r"kernel BUG at /tmp/provoke\.\w+/provoke\.c:53!")]),
    ("console-oops.log", [("oops", 482, r"BUG: kernel NULL pointer dereference, address: 0000000000000000")]),
    ("console-panic-sysrq.log", [("panic", 480, r"Kernel panic - not syncing: sysrq triggered crash")]),
    (
        "console-panic-mid-case.log",
        [
            ("oops", 485, r"BUG: kernel NULL pointer dereference, address: 0000000000000000"),
            ("panic", 537, r"Kernel panic - not syncing: Fatal exception"),
        ],
    ),
    (
        "console-hung-task.log",
        [
            ("hung_task", line, rf"INFO: task insmod:241 blocked for more than {secs} seconds\.")
            for line, secs in ((479, 3), (518, 6), (557, 9), (596, 12), (635, 15))
        ],
    ),
    (
        "console-soft-lockup.log",
        [
            ("soft_lockup", 479, r"watchdog: BUG: soft lockup - CPU#0 stuck for 3s! \[insmod:246\]"),
            ("soft_lockup", 523, r"watchdog: BUG: soft lockup - CPU#0 stuck for 6s! \[insmod:246\]"),
        ],
    ),
    (
        "console-rcu-stall.log",
        [
            ("rcu_stall", 477, r"rcu: INFO: rcu_preempt self-detected stall on CPU"),
            ("rcu_stall", 514, r"rcu: INFO: rcu_preempt self-detected stall on CPU"),
        ],
    ),
]


@pytest.mark.parametrize(("name", "expected"), RECORDED, ids=[r[0] for r in RECORDED])
def test_recorded_logs(name: str, expected: list[tuple[str, int, str]]) -> None:
    findings = console.scan(read(name))
    assert [(f.kind, f.line_no) for f in findings] == [(k, n) for k, n, _ in expected]
    for finding, (_, _, pattern) in zip(findings, expected, strict=True):
        assert re.fullmatch(pattern, finding.first_line), finding.first_line
        # the excerpt starts with the head line as printed (timestamp kept)
        assert finding.excerpt.splitlines()[0].endswith(finding.first_line)
        assert finding.kind in console.KINDS


def test_clean_boot_has_no_findings_and_no_panic() -> None:
    text = read("console-clean-boot.log")
    assert console.scan(text) == ()
    assert not console.guest_panicked(text)
    assert console.find_panic(text) is None
    assert console.summarize(console.scan(text)) == "no kernel reports found"


def test_warning_excerpt_runs_to_end_trace() -> None:
    (finding,) = console.scan(read("console-warning.log"))
    lines = finding.excerpt.splitlines()
    assert len(lines) == 44
    assert lines[-1].endswith("---[ end trace 0000000000000000 ]---")
    assert "Call Trace:" in finding.excerpt
    assert "provoke: done" not in finding.excerpt  # the next, unrelated line is not part of the report


def test_bug_report_absorbs_its_die_header() -> None:
    (finding,) = console.scan(read("console-bug.log"))
    assert "invalid opcode: 0000 [#1] PREEMPT SMP NOPTI" in finding.excerpt
    assert finding.excerpt.splitlines()[-1].endswith("---[ end trace 0000000000000000 ]---")


def test_oops_report_contains_oops_line_and_registers() -> None:
    (finding,) = console.scan(read("console-oops.log"))
    assert "Oops: 0000 [#1] PREEMPT SMP NOPTI" in finding.excerpt
    assert "RIP: 0010:provoke_init+0x82/0x1000 [provoke]" in finding.excerpt


def test_hung_task_excerpt_ends_after_stack() -> None:
    first = console.scan(read("console-hung-task.log"))[0]
    lines = first.excerpt.splitlines()
    assert lines[-1].strip().endswith("</TASK>")
    assert any("msleep" in line for line in lines)
    assert len(lines) == 39


def test_panic_sysrq() -> None:
    text = read("console-panic-sysrq.log")
    assert console.guest_panicked(text)
    panic = console.find_panic(text)
    assert panic is not None
    assert panic.first_line == "Kernel panic - not syncing: sysrq triggered crash"
    assert "sysrq_handle_crash" in panic.excerpt
    assert console.last_agent_line(text) is None


def test_panic_mid_case_names_the_running_case() -> None:
    text = read("console-panic-mid-case.log")
    assert console.guest_panicked(text)
    panic = console.find_panic(text)
    assert panic is not None and panic.line_no == 537
    agent = console.agent_lines(text)
    assert [msg for _, msg in agent] == [
        "harness-agent: load cases/verifier/unreleased.bpf.c prog=leak",
        "harness-agent: result prog=leak verdict=rejected errno=13",
        "harness-agent: running case cases/audit/file_open.bpf.c trigger=open",
    ]
    assert console.last_agent_line(text, before=panic.line_no) == (
        "harness-agent: running case cases/audit/file_open.bpf.c trigger=open"
    )
    assert console.last_agent_line(text, before=agent[1][0]) == agent[0][1]
    # agent lines are not findings
    assert all("harness-agent" not in f.first_line for f in console.scan(text))


@pytest.mark.parametrize("name", [r[0] for r in RECORDED if not r[0].startswith("console-panic")])
def test_not_panicked(name: str) -> None:
    assert not console.guest_panicked(read(name))


def test_allowlist_suppresses_known_noise() -> None:
    text = read("console-hung-task.log")
    assert console.scan(text, allowlist=[r"blocked for more than (3|6) seconds"])[0].line_no == 557
    assert len(console.scan(text, allowlist=[re.compile(r"insmod:241")])) == 0
    assert len(console.scan(text, allowlist=[r"nothing like this"])) == 5
    # an invalid regex is taken literally instead of raising
    assert len(console.scan(text, allowlist=["blocked for more than (3"])) == 5


def _key(findings: tuple[Finding, ...]) -> list[tuple[str, int, str]]:
    return [(f.kind, f.line_no, f.first_line) for f in findings]


def test_crlf_nul_and_bytes_give_the_same_findings() -> None:
    text = read("console-panic-mid-case.log")
    expected = _key(console.scan(text))
    assert _key(console.scan(text.replace("\n", "\r\n"))) == expected
    assert _key(console.scan(text.replace("\n", "\r\r\n"))) == expected
    assert _key(console.scan(text.replace("[", "\x00["))) == expected
    assert _key(console.scan(text.encode())) == expected


def test_without_timestamps_and_with_caller_ids() -> None:
    text = read("console-soft-lockup.log")
    expected = _key(console.scan(text))
    bare = re.sub(r"(?m)^\[\s*\d+\.\d+\] ", "", text)
    assert _key(console.scan(bare)) == expected
    caller = re.sub(r"(?m)^(\[\s*\d+\.\d+\]) ", r"\1[    T1] ", text)
    assert _key(console.scan(caller)) == expected
    levels = re.sub(r"(?m)^(\[\s*\d+\.\d+\])", r"<4>\1", text)
    assert _key(console.scan(levels)) == expected


def test_report_after_partial_user_output_on_the_same_line() -> None:
    lines = read("console-warning.log").split("\n")
    lines[486] = "root@virtme-ng:/# some partial output" + lines[486]
    (finding,) = console.scan("\n".join(lines))
    assert finding.kind == "warning" and finding.line_no == 487
    assert finding.first_line.startswith("WARNING: CPU: 0 PID: 238 at ")


def test_guest_program_output_is_not_a_kernel_report() -> None:
    lines = read("console-clean-boot.log").split("\n")
    lines.insert(300, "WARNING: this line was printed by a guest program, not by the kernel")
    lines.insert(301, "BUG: neither was this one")
    text = "\n".join(lines)
    assert console.scan(text) == ()  # the log is timestamped, these two lines are not
    findings = console.scan(text, require_timestamp=False)
    assert [(f.kind, f.line_no) for f in findings] == [("warning", 301), ("bug", 302)]
    # a log without any timestamps (printk.time=0) is scanned line by line
    assert [f.kind for f in console.scan("x\nWARNING: CPU: 0 PID: 1 at a.c:1 f+0x1/0x2\ny")] == ["warning"]


def test_log_cut_off_mid_report() -> None:
    lines = read("console-oops.log").split("\n")
    # cut before the "Oops:" header (line 486) arrived: a BUG report, ending in the partial last line
    cut = "\n".join(lines[:485]) + "\n[   46.953289] Oo"
    (finding,) = console.scan(cut)
    assert (finding.kind, finding.line_no) == ("bug", 482)
    assert finding.excerpt.endswith("[   46.953289] Oo")
    # cut after it: already an oops
    cut = "\n".join(lines[:492]) + "\n[   46.9] RAX: 00000000000"
    (finding,) = console.scan(cut)
    assert (finding.kind, finding.line_no) == ("oops", 482)
    assert finding.excerpt.endswith("RAX: 00000000000")


def test_max_lines_caps_the_excerpt() -> None:
    (finding,) = console.scan(read("console-warning.log"), max_lines=5)
    assert len(finding.excerpt.splitlines()) == 5


# Kinds that Debian's 6.1 kernel cannot produce here (no KASAN/UBSAN build, no NMI watchdog under TCG):
# short texts written from the kernel's format strings (mm/kasan/report.c, lib/ubsan.c, kernel/watchdog.c
# in 6.12), NOT recorded logs.
KASAN_TEXT = """\
[   10.100000] ==================================================================
[   10.100001] BUG: KASAN: slab-use-after-free in bpf_audit_log_end+0x12/0x40
[   10.100002] Read of size 8 at addr ffff888003a1c000 by task cat/123
[   10.100003]
[   10.100004] CPU: 0 UID: 0 PID: 123 Comm: cat Not tainted 6.12.0 #1
[   10.100005] Call Trace:
[   10.100006]  <TASK>
[   10.100007]  dump_stack_lvl+0x5d/0x80
[   10.100008]  </TASK>
[   10.100009]
[   10.100010] Allocated by task 123:
[   10.100011]  kmalloc_trace+0x1/0x2
[   10.100012] ==================================================================
[   10.100013] Disabling lock debugging due to kernel taint
"""
UBSAN_TEXT = """\
[    5.000000] ------------[ cut here ]------------
[    5.000001] UBSAN: array-index-out-of-bounds in kernel/bpf/verifier.c:123:45
[    5.000002] index 12 is out of range for type 'u32 [8]'
[    5.000003] CPU: 1 UID: 0 PID: 77 Comm: agent Not tainted 6.12.0 #1
[    5.000004] Call Trace:
[    5.000005]  <TASK>
[    5.000006]  __ubsan_handle_out_of_bounds+0x1/0x2
[    5.000007]  </TASK>
[    5.000008] ---[ end trace ]---
[    5.000009] harness-agent: next case
"""
HARD_LOCKUP_TEXT = """\
[   30.000000] watchdog: CPU1: Watchdog detected hard LOCKUP on cpu 1
[   30.000001] Modules linked in:
[   30.000002] CPU: 1 UID: 0 PID: 0 Comm: swapper/1 Not tainted 6.12.0 #1
[   30.000003] RIP: 0010:native_safe_halt+0xb/0x10
[   30.000004] Call Trace:
[   30.000005]  <NMI>
[   30.000006]  </NMI>
[   30.000007]  <TASK>
[   30.000008]  default_idle+0x9/0x20
[   30.000009]  </TASK>
[   30.000010] harness-agent: next case
"""
OOPS_6_12_TEXT = """\
[    7.000000] Oops: general protection fault, probably for non-canonical address 0xdead0000: 0000 [#1] PREEMPT SMP
[    7.000001] CPU: 0 UID: 0 PID: 1 Comm: init Not tainted 6.12.0 #1
[    7.000002] ---[ end trace 0000000000000000 ]---
"""


@pytest.mark.parametrize(
    ("text", "kind", "first", "last"),
    [
        (KASAN_TEXT, "kasan", "BUG: KASAN: slab-use-after-free in bpf_audit_log_end+0x12/0x40", "=" * 66),
        (
            UBSAN_TEXT,
            "ubsan",
            "UBSAN: array-index-out-of-bounds in kernel/bpf/verifier.c:123:45",
            "---[ end trace ]---",
        ),
        (HARD_LOCKUP_TEXT, "hard_lockup", "watchdog: CPU1: Watchdog detected hard LOCKUP on cpu 1", "</TASK>"),
        (OOPS_6_12_TEXT, "oops", OOPS_6_12_TEXT.splitlines()[0][15:], "---[ end trace 0000000000000000 ]---"),
    ],
    ids=["kasan", "ubsan", "hard_lockup", "oops-6.12-format"],
)
def test_kinds_not_recordable_here(text: str, kind: str, first: str, last: str) -> None:
    (finding,) = console.scan(text)
    assert (finding.kind, finding.first_line) == (kind, first)
    assert finding.excerpt.splitlines()[-1].endswith(last)


def test_summarize() -> None:
    findings = console.scan(read("console-panic-mid-case.log"))
    assert console.summarize(findings) == (
        "2 kernel reports: 1 oops, 1 panic\n"
        "  line 485: [oops] BUG: kernel NULL pointer dereference, address: 0000000000000000\n"
        "  line 537: [panic] Kernel panic - not syncing: Fatal exception"
    )
    one = Finding(kind="warning", line_no=3, first_line="WARNING: x", excerpt="WARNING: x")
    assert console.summarize([one]) == "1 kernel report: 1 warning\n  line 3: [warning] WARNING: x"


def test_message_of() -> None:
    assert console.message_of("[    1.234567] BUG: x\r") == "BUG: x"
    assert console.message_of("<3>[    1.234567][    T1] WARNING: y") == "WARNING: y"
    assert console.message_of("[    1.234567]  dump_stack+0x1") == " dump_stack+0x1"
    assert console.message_of("no timestamp") == "no timestamp"


# The recorded oops report, planted into random text: it must still be found, at its line.
OOPS_REPORT = console.scan(read("console-oops.log"))[0].excerpt


@PROFILE
@given(before=st.text(max_size=400), after=st.text(max_size=400))
def test_planted_oops_is_found_anywhere(before: str, after: str) -> None:
    text = before + "\n" + OOPS_REPORT + "\n" + after
    line_no = text.count("\n", 0, len(before)) + 2
    findings = console.scan(text)
    match = [f for f in findings if f.line_no == line_no]
    assert len(match) == 1
    assert match[0].kind == "oops"
    assert match[0].first_line == "BUG: kernel NULL pointer dereference, address: 0000000000000000"


@PROFILE
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    findings = console.scan(data)
    assert all(f.kind in console.KINDS for f in findings)
    console.summarize(findings)
    console.guest_panicked(data)
    console.find_panic(data)
    console.agent_lines(data)
    console.last_agent_line(data, before=3)


@PROFILE
@given(text=st.text(alphabet=st.sampled_from(list("BUG: WARNING Oops Kernel panic[]0123456789.\n\r\x00<>/-#"))))
def test_kernel_flavoured_noise_never_raises(text: str) -> None:
    for finding in console.scan(text, allowlist=["(", r"\d"]):
        assert finding.line_no >= 1
