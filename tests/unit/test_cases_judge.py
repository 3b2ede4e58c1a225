# SPDX-License-Identifier: GPL-2.0
"""Unit tests of how a rejection case is judged from recorded loads: the verifier's log, and libbpf's apart."""

from __future__ import annotations

import pytest
from helpers import DATA

from harness.cases.parse import parse_case_text
from harness.cases.run import _judge_rejection
from harness.cases.verifier_log import split_libbpf_log
from harness.machine.messages import msg as agent_msg
from harness.status import Status

HEAD = '// SPDX-License-Identifier: GPL-2.0\n/* test */\n#include "harness.h"\n'


def rejection(annotations: str):
    text = HEAD + f'SEC("lsm/file_open")\n__description("d") __failure {annotations}\n' \
                  "int BPF_PROG(p, struct file *file)\n{\n\treturn 0;\n}\n"
    (prog,) = parse_case_text(text, "t.bpf.c").programs
    return prog


def load_of(recorded: str) -> agent_msg.LoadReply:
    own, verifier = split_libbpf_log((DATA / recorded).read_text())
    return agent_msg.LoadReply(id=1, ok=True, loaded=False, errno=22, verifier_log=verifier, programs=[],
                         libbpf_log=own.split("\n"))


@pytest.mark.faults  # issue 21: provokes the fault for real
def test_a_load_that_never_reached_the_verifier_fails_whatever_libbpf_printed() -> None:
    # recorded: libbpf could not resolve the kfunc extern; the message names it, and used to pass
    load = load_of("verifier-6.1-lsm-missing-kfunc.log")
    for msg in ('__msg("not found in kernel")', '__msg("bpf_task_acquire")'):
        out = _judge_rejection(rejection(msg), load, {}, "6.1.0")
        assert out.status is Status.FAIL, out.report()
        assert "before the verifier ran" in out.summary
        assert "not found in kernel or module BTFs" in out.report()  # libbpf's words shown, not matched


@pytest.mark.faults  # issue 21: provokes the fault for real
def test_libbpf_msg_is_matched_in_libbpf_log_and_msg_in_the_verifier_log() -> None:
    load = load_of("verifier-6.18-tp_btf-kptr-no-dtor.log")
    ok = _judge_rejection(rejection('__libbpf_msg("Error loading .BTF into kernel") '
                                    '__msg("calling kernel function bpf_get_task_exe_file is not allowed")'),
                          load, {}, "6.18.0")
    assert ok.status is Status.PASS, ok.report()
    swapped = _judge_rejection(rejection('__msg("Error loading .BTF into kernel") '
                                         '__msg("calling kernel function bpf_get_task_exe_file is not allowed")'),
                               load, {}, "6.18.0")
    assert swapped.status is Status.FAIL and "verifier log lacks" in swapped.summary, swapped.report()


def test_every_need_is_known_to_the_btf_lookup_and_btf_needs_name_their_functions() -> None:
    """The __needs table: a BTF need names the functions it looks for; bpf_lsm is read from BTF too (the kernel
    was built with it: bpf_lsm_file_open), whatever the LSM list says at run time; an unknown name is said."""
    from harness.cases.needs import BTF, NEEDS, missing_from_btf

    everything = frozenset(f for n in NEEDS.values() for f in n.btf_funcs)
    assert all(n.btf_funcs for n in NEEDS.values() if n.evidence == BTF)
    assert all(missing_from_btf(name, everything) is None for name in NEEDS)
    assert missing_from_btf("bpf_lsm", frozenset()) == "kernel lacks bpf_lsm_file_open (not in vmlinux BTF)"
    assert missing_from_btf("bpf_audit", everything - {"bpf_audit_log_start"}) == (
        "kernel lacks bpf_audit_log_start (not in vmlinux BTF)")
    assert missing_from_btf("nope", everything).startswith("unknown feature 'nope' (known: bpf_audit, bpf_lsm")
