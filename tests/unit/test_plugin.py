# SPDX-License-Identifier: GPL-2.0
"""The plugin as users meet it (pytester): collection errors name file:line; a wrong expectation fails clearly."""

import pytest

pytest_plugins = ["pytester"]

GOOD_PROGRAM = """\
// SPDX-License-Identifier: GPL-2.0
/* Scratch case written by tests/test_plugin.py. */
#include "harness.h"

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("scratch: {description}")
{verdict}
int BPF_PROG(scratch_prog, struct file *file)
{{
	return 0;
}}
"""


def test_malformed_annotation_is_a_collection_error_naming_file_and_line(pytester):
    case = pytester.path / "cases" / "bad.bpf.c"
    case.parent.mkdir()
    case.write_text(GOOD_PROGRAM.format(description="x", verdict='__failure __msg("Unreleased reference)'))
    result = pytester.runpytest("--collect-only", "cases")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*bad.bpf.c:9*"])


def test_case_items_are_collected_one_per_program(pytester):
    case = pytester.path / "cases" / "two.bpf.c"
    case.parent.mkdir()
    body = GOOD_PROGRAM.format(description="one", verdict="__success")
    body += body.split('char _license[] SEC("license") = "GPL";\n', 1)[1].replace("scratch_prog", "second_prog")
    case.write_text(body)
    result = pytester.runpytest("--collect-only", "-q", "cases")
    result.stdout.fnmatch_lines(["cases/two.bpf.c::scratch_prog", "cases/two.bpf.c::second_prog"])


@pytest.mark.vm
@pytest.mark.slow
def test_wrong_expectation_fails_with_a_clear_message(pytester, kernel_artifact, inner_args):
    case = pytester.path / "cases" / "wrong.bpf.c"
    case.parent.mkdir()
    case.write_text(GOOD_PROGRAM.format(description="claims a rejection that does not happen",
                                        verdict='__failure __msg("Unreleased reference")'))
    result = pytester.runpytest_subprocess("cases", *inner_args, timeout=900)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*wrong.bpf.c:*claims a rejection that does not happen*",
        "*expected the verifier to reject scratch_prog, but it loaded*",
        "*verifier log: *verifier.log*",
    ])
