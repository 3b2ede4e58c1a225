# SPDX-License-Identifier: GPL-2.0
"""Tests for harness.verifier_log against verifier logs recorded from real loads (tests/data/verifier-*.log)."""

from __future__ import annotations

import os

import pytest
from helpers import DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cases.verifier_log import (
    ExpectationError,
    compile_expectation,
    last_error,
    match_messages,
    split_libbpf_log,
)

# Hypothesis keeps its example database and caches out of the repository (read lazily, so this works
# as long as nothing in this process has used Hypothesis's storage yet).
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.expanduser("~/.cache/hypothesis/bpf-audit-harness"))
settings.register_profile(
    "harness-verifier-log", database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
PROFILE = settings.get_profile("harness-verifier-log")

HOST = "verifier-6.18-tp_btf-"  # recorded on the 6.18 host as tp_btf programs (see tests/data/README.md)


def read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8", errors="replace")


def vlog(name: str) -> str:
    return split_libbpf_log(read(name))[1]


# (file, expected messages in order, the verifier's last error)
RECORDED = [
    (
        HOST + "unreleased-reference.log",
        ["call bpf_task_acquire", "Unreleased reference id={{[0-9]+}} alloc_insn={{[0-9]+}}"],
        "Unreleased reference id=2 alloc_insn=2\nBPF_EXIT instruction in main prog would lead to reference leak",
    ),
    (
        HOST + "double-release.log",
        [
            "call bpf_task_release",
            "call bpf_task_release",
            "arg#0 pointer type STRUCT task_struct must point to scalar, or struct with scalar",
        ],
        "arg#0 pointer type STRUCT task_struct must point to scalar, or struct with scalar",
    ),
    (
        HOST + "possibly-null.log",
        ["R0=ptr_or_null_task_struct(", "Possibly NULL pointer passed to trusted arg0"],
        "Possibly NULL pointer passed to trusted arg0",
    ),
    (
        HOST + "use-after-release.log",
        ["call bpf_task_release", "R{{[0-9]}} invalid mem access 'scalar'"],
        "R6 invalid mem access 'scalar'",
    ),
    (
        HOST + "ringbuf-unreleased.log",
        ["Unreleased reference"],
        "Unreleased reference id=2 alloc_insn=4\nBPF_EXIT instruction in main prog would lead to reference leak",
    ),
    (
        HOST + "ringbuf-possibly-null.log",
        ["R1 type=ringbuf_mem_or_null expected=ringbuf_mem"],
        "R1 type=ringbuf_mem_or_null expected=ringbuf_mem",
    ),
    (
        HOST + "ringbuf-use-after-submit.log",
        ["call bpf_ringbuf_submit", "invalid mem access 'scalar'"],
        "R6 invalid mem access 'scalar'",
    ),
    (
        HOST + "kptr-no-dtor.log",
        ["calling kernel function bpf_get_task_exe_file is not allowed"],
        "calling kernel function bpf_get_task_exe_file is not allowed",
    ),
]


@pytest.mark.parametrize(("name", "expected", "error"), RECORDED, ids=[r[0] for r in RECORDED])
def test_recorded_expectations_match(name: str, expected: list[str], error: str) -> None:
    result = match_messages(vlog(name), expected)
    assert result.ok, result.explain()
    assert bool(result) is True
    assert [m.index for m in result.matches] == list(range(len(expected)))
    lines = [m.line_no for m in result.matches]
    assert lines == sorted(lines)
    assert last_error(vlog(name)) == error
    # the whole bpftool -d output gives the same last error (the embedded block is found)
    assert last_error(read(name)) == error


GUEST = "verifier-6.1-lsm-"  # lsm/file_open programs verified by Debian's 6.1 kernel in a guest

RECORDED_6_1 = [
    (
        GUEST + "ringbuf-unreleased.log",
        ["Unreleased reference id={{[0-9]+}} alloc_insn={{[0-9]+}}"],
        "Unreleased reference id=2 alloc_insn=4",
    ),
    (
        GUEST + "ringbuf-possibly-null.log",
        ["R1 type=alloc_mem_or_null expected=alloc_mem"],
        "R1 type=alloc_mem_or_null expected=alloc_mem",
    ),
    (
        GUEST + "ringbuf-use-after-submit.log",
        ["call bpf_ringbuf_submit", "R6 invalid mem access 'scalar'"],
        "R6 invalid mem access 'scalar'",
    ),
]


@pytest.mark.parametrize(("name", "expected", "error"), RECORDED_6_1, ids=[r[0] for r in RECORDED_6_1])
def test_recorded_6_1_lsm_expectations_match(name: str, expected: list[str], error: str) -> None:
    log = vlog(name)
    assert "R1=ctx(off=0,imm=0)" in log  # 6.1's state format, unlike 6.18's "R1=ctx()"
    result = match_messages(log, expected)
    assert result.ok, result.explain()
    assert last_error(read(name)) == error


def test_one_regex_expectation_fits_both_kernels() -> None:
    expectation = ["R1 type={{(alloc|ringbuf)_mem}}_or_null expected={{(alloc|ringbuf)_mem}}"]
    assert match_messages(vlog(GUEST + "ringbuf-possibly-null.log"), expected=expectation).ok
    assert match_messages(vlog(HOST + "ringbuf-possibly-null.log"), expected=expectation).ok
    literal = match_messages(vlog(GUEST + "ringbuf-possibly-null.log"), ["R1 type=ringbuf_mem_or_null"])
    assert not literal.ok
    assert "closest partial match" in (literal.reason or "")
    assert any("R1 type=alloc_mem_or_null" in line for line in literal.context)


def test_6_1_accepted_and_missing_kfunc() -> None:
    assert last_error(read(GUEST + "ringbuf-accepted.log")) == ""
    text = read(GUEST + "missing-kfunc.log")
    own, verifier = split_libbpf_log(text)
    assert verifier == ""
    assert last_error(text) == ""  # the verifier never ran
    expected = ["extern (func ksym) 'bpf_task_acquire': not found in kernel or module BTFs"]
    assert match_messages(own, expected).ok
    assert not match_messages(verifier, expected).ok  # libbpf's words are not in the verifier's log


def test_match_positions_are_concrete() -> None:
    result = match_messages(vlog(HOST + "unreleased-reference.log"), ["Unreleased reference id={{[0-9]+}}"])
    (m,) = result.matches
    assert m.text == "Unreleased reference id=2"
    assert m.line_no == 16
    assert vlog(HOST + "unreleased-reference.log").split("\n")[15].startswith("Unreleased reference id=2")


def test_accepted_program_has_no_error() -> None:
    own, verifier = split_libbpf_log(read(HOST + "accepted-twin.log"))
    assert own.split("\n")[-1] == "libbpf: prog 'release_once': -- BEGIN PROG LOAD LOG --"
    assert verifier.split("\n")[-1].startswith("processed 10 insns")
    assert last_error(verifier) == ""
    result = match_messages(verifier, ["Unreleased reference"])
    assert not result.ok and result.reason == "not found anywhere in the log"


def test_libbpf_and_verifier_logs_are_searched_apart() -> None:
    own, verifier = split_libbpf_log(read(HOST + "kptr-no-dtor.log"))
    btf = "Error loading .BTF into kernel: -2. BTF is optional, ignoring."
    call = "calling kernel function bpf_get_task_exe_file is not allowed"
    assert match_messages(verifier, [call]).ok
    assert not match_messages(verifier, [btf]).ok  # the BTF refusal is only in libbpf's log
    assert match_messages(own, [btf]).ok
    assert match_messages(own.split("\n"), [btf]).ok  # a list of lines works too
    reverse = match_messages(verifier, [call, "processed {{[0-9]+}} insns", call])
    assert not reverse.ok and reverse.failed_index == 2


def test_split_libbpf_log() -> None:
    own, verifier = split_libbpf_log(read(HOST + "double-release.log"))
    assert verifier.startswith("func#0 @0")
    assert verifier.split("\n")[-1].startswith("processed 9 insns")
    assert "libbpf: prog 'double_release': -- BEGIN PROG LOAD LOG --" in own
    assert "-- END PROG LOAD LOG --" not in own
    assert "libbpf:" not in verifier


def test_wrong_message_fails_with_a_readable_report() -> None:
    log = vlog(HOST + "possibly-null.log")
    result = match_messages(log, ["call bpf_task_acquire", "Unreleased reference"])
    assert not result.ok and not result
    assert result.failed_index == 1
    assert result.failed == "Unreleased reference"
    assert [m.expectation for m in result.matches] == ["call bpf_task_acquire"]
    text = result.explain()
    assert "expected message 2 of 2 not found: 'Unreleased reference'" in text
    assert "1. 'call bpf_task_acquire' at line" in text
    assert "verifier's last error: Possibly NULL pointer passed to trusted arg0" in text
    # no partial match: the tail of the log is shown, ending with the last non-empty line
    assert result.context[-1].startswith("processed 5 insns")
    assert len(result.context) == 20


def test_partial_match_shows_lines_around_it() -> None:
    log = vlog(HOST + "unreleased-reference.log")
    result = match_messages(log, ["Unreleased reference id=7"])
    assert not result.ok
    assert "closest partial match at line 16" in (result.reason or "")
    assert any(line.startswith("Unreleased reference id=2") for line in result.context)
    start = result.context_start
    assert result.context[16 - start].startswith("Unreleased reference id=2")


def test_bad_expectations_do_not_raise_in_matching() -> None:
    result = match_messages("some log\nprocessed 1 insns", ["{{unterminated"])
    assert not result.ok
    assert "unterminated" in (result.reason or "")
    result = match_messages("x", ["{{(}}"])
    assert not result.ok and "invalid regex" in (result.reason or "")


def test_compile_expectation() -> None:
    assert compile_expectation("arg#0 (x) [y]").search("q arg#0 (x) [y] q")
    pat = compile_expectation("R{{[0-9]+}} invalid mem access '{{scalar|map_value}}'")
    assert pat.search("R6 invalid mem access 'scalar'")
    assert pat.search("R12 invalid mem access 'map_value'")
    assert not pat.search("R invalid mem access 'scalar'")
    with pytest.raises(ExpectationError):
        compile_expectation("a {{b")
    with pytest.raises(ExpectationError):
        compile_expectation("{{[}}")


def test_empty_inputs() -> None:
    assert match_messages("", []).ok
    assert match_messages(None, []).ok
    result = match_messages("", ["x"])
    assert not result.ok and "(the log is empty)" in result.explain()
    assert last_error("") == ""
    assert last_error(None) == ""
    assert split_libbpf_log(None) == ("", "")


def test_crlf_and_bytes() -> None:
    log = vlog(HOST + "double-release.log")
    expected = [r[1] for r in RECORDED if r[0] == HOST + "double-release.log"][0]
    assert match_messages(log.replace("\n", "\r\n").encode(), expected).ok
    assert last_error(log.replace("\n", "\r\n")) == RECORDED[1][2]


@PROFILE
@given(
    noise=st.lists(st.text(max_size=60), max_size=30),
    messages=st.lists(st.text(min_size=1, max_size=30).filter(lambda s: "{{" not in s), min_size=1, max_size=5),
    seed=st.randoms(use_true_random=False),
)
def test_planted_messages_are_found_in_order(noise: list[str], messages: list[str], seed) -> None:
    lines = list(noise)
    positions = sorted(seed.randint(0, len(lines)) for _ in messages)
    for offset, (pos, msg) in enumerate(zip(positions, messages, strict=True)):
        lines.insert(pos + offset, msg)
    result = match_messages("\n".join(lines), messages)
    assert result.ok, result.explain()


@PROFILE
@given(log=st.one_of(st.text(max_size=500), st.binary(max_size=500)), exps=st.lists(st.text(max_size=20), max_size=4))
def test_arbitrary_logs_never_raise(log, exps: list[str]) -> None:
    result = match_messages(log, exps)
    result.explain()
    last_error(log)
    split_libbpf_log(log)
