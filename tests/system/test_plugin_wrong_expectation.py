# SPDX-License-Identifier: GPL-2.0
"""The plugin as users meet it (pytester) on a real kernel: a wrong expectation fails with a clear message."""

import pytest
from helpers import SCRATCH_CASE

pytest_plugins = ["pytester"]


@pytest.mark.vm
@pytest.mark.slow
def test_wrong_expectation_fails_with_a_clear_message(pytester, kernel_artifact, inner_args):
    case = pytester.path / "cases" / "wrong.bpf.c"
    case.parent.mkdir()
    case.write_text(SCRATCH_CASE.format(description="claims a rejection that does not happen",
                                        verdict='__failure __msg("Unreleased reference")'))
    result = pytester.runpytest_subprocess("cases", *inner_args, timeout=900)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*wrong.bpf.c:*claims a rejection that does not happen*",
        "*expected the verifier to reject scratch_prog, but it loaded*",
        "*verifier log: *verifier.log*",
    ])
