# SPDX-License-Identifier: GPL-2.0
"""Mutation check end to end: `bpf-audit-harness mutants` builds one mutant kernel and a case kills it."""

import json
import re
import subprocess
import sys

import pytest

from harness.settings import REPO_ROOT


@pytest.mark.slow
@pytest.mark.vm
def test_cli_mutants_builds_one_mutant_and_a_case_kills_it(kernel_options, tmp_path):
    """End to end: series + start-not-ret-null (a cache hit once built), the rule 3 cases on it, the kill table."""
    out_json = tmp_path / "kills.json"
    argv = [sys.executable, "-m", "harness.cli", "mutants", "start-not-ret-null", "--cases",
            "cases/verifier/null_unchecked.bpf.c", "-n", "1", "--json", str(out_json),
            "--cache-dir", str(kernel_options.layout().root)]
    out = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert re.search(r"^start-not-ret-null\s+3\s+killed\s+2", out.stdout, re.M), out.stdout
    data = json.loads(out_json.read_text())
    (m,) = data["mutants"]
    assert m["killed"] and data["killed"] == 1
    assert sorted(m["failed"]) == ["cases/verifier/null_unchecked.bpf.c::unchecked_to_end",
                                   "cases/verifier/null_unchecked.bpf.c::unchecked_to_logger"]
    assert m["passed"] == 1  # the accepted twin still loads: the kernel works, only rule 3 is broken
