# SPDX-License-Identifier: GPL-2.0
"""The harness reads -m to decide, before collection, whether the kernel is needed: its reading must agree with
pytest's own for the expressions users write (checked against pytest's real -m on real items)."""

from __future__ import annotations

import pytest

from harness.run_kernel import mark_expression_admits

pytest_plugins = ["pytester"]

EXPRESSIONS = ["vm", "not vm", "vm and slow", "vm and not slow", "not (vm or slow)", "slow or faults",
               "(vm and slow) or faults", "not not vm", "faults"]


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_the_reading_agrees_with_pytest(pytester, expr):
    pytester.makeini("[pytest]\nmarkers =\n    vm: x\n    slow: x\n    faults: x\n")
    pytester.makepyfile(
        "import pytest\n"
        "@pytest.mark.vm\n@pytest.mark.slow\ndef test_vm_slow(): pass\n"
        "@pytest.mark.vm\ndef test_vm(): pass\n"
        "def test_none(): pass\n")
    result = pytester.runpytest("-m", expr, "-p", "no:cacheprovider", "--collect-only", "-q")
    selected = {line.split("::")[-1] for line in result.stdout.lines if "::" in line}
    assert ("test_vm_slow" in selected) == mark_expression_admits(expr, {"vm", "slow"})
    assert ("test_vm" in selected) == mark_expression_admits(expr, {"vm"})
    assert ("test_none" in selected) == mark_expression_admits(expr, set())


def test_what_it_cannot_read_counts_as_selected():
    assert mark_expression_admits("vm(arg=1)", set()) and mark_expression_admits("vm and (", set())
