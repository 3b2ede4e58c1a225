# SPDX-License-Identifier: GPL-2.0
"""The plugin as users meet it (pytester): collection errors name file:line, one item per program (a wrong
expectation on a real kernel: tests/system/test_plugin_wrong_expectation.py)."""

from helpers import SCRATCH_CASE

pytest_plugins = ["pytester"]


def test_malformed_annotation_is_a_collection_error_naming_file_and_line(pytester):
    case = pytester.path / "cases" / "bad.bpf.c"
    case.parent.mkdir()
    case.write_text(SCRATCH_CASE.format(description="x", verdict='__failure __msg("Unreleased reference)'))
    result = pytester.runpytest("--collect-only", "cases")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*bad.bpf.c:9*"])


def test_case_items_are_collected_one_per_program(pytester):
    case = pytester.path / "cases" / "two.bpf.c"
    case.parent.mkdir()
    body = SCRATCH_CASE.format(description="one", verdict="__success")
    body += body.split('char _license[] SEC("license") = "GPL";\n', 1)[1].replace("scratch_prog", "second_prog")
    case.write_text(body)
    result = pytester.runpytest("--collect-only", "-q", "cases")
    result.stdout.fnmatch_lines(["cases/two.bpf.c::scratch_prog", "cases/two.bpf.c::second_prog"])
