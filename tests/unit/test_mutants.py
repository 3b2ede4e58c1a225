# SPDX-License-Identifier: GPL-2.0
"""Mutation checks: the shipped mutants, --mutant in the cache key and the series, recorded mutant runs (one
real kill: tests/system/test_mutant_kill.py)."""

import re
import shutil
import subprocess

import pytest
from helpers import DATA

from harness.campaigns.mutants import (
    MutantResult,
    available,
    classify,
    format_table,
    load_info,
    mutant_path,
)
from harness.campaigns.results import parse_junit
from harness.errors import PatchError
from harness.kernel.patches import load_series
from harness.kernel.request import KernelOptions, make_request
from harness.settings import REPO_ROOT

pytest_plugins = ["pytester"]
MUTANTS_DATA = DATA / "mutants"
# The mutants live beside the newest line's series (patches/7.3/mutants/); 6.12's were retired with its old API.
MUTANT_LINE = REPO_ROOT / "patches" / "7.3"


def test_at_least_seven_mutants_each_naming_the_rule_it_breaks():
    names = available(MUTANT_LINE)
    assert len(names) >= 7, names
    for name in names:
        info = load_info(MUTANT_LINE, name)
        assert re.fullmatch(r"rule \d+(, \d+)*", info.breaks), (name, info.breaks)
        assert info.bug


def test_every_mutant_applies_with_patch_p1_on_top_of_the_series(source_7_3, tmp_path):
    """Only the files the series and mutants touch are copied from the 7.3 tree: cheap, and the real check."""
    from harness.kernel.patches import apply_series

    src = source_7_3
    series = load_series(MUTANT_LINE)
    mutants = [mutant_path(MUTANT_LINE, n) for n in available(MUTANT_LINE)]
    touched = set()
    for p in [*(p.path for p in series.patches), *mutants]:
        touched |= set(re.findall(r"^--- a/(\S+)$", p.read_text(), re.M))
    base = tmp_path / "base"
    for rel in touched:
        if (src / rel).is_file():
            (base / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / rel, base / rel)
    apply_series(series, base)
    for m in mutants:
        tree = tmp_path / m.stem
        shutil.copytree(base, tree)
        out = subprocess.run(["patch", "-p1", "--batch", "--forward", "-i", str(m)], cwd=tree,
                             capture_output=True, text=True)
        assert out.returncode == 0, f"{m.name} does not apply on top of the series:\n{out.stdout}{out.stderr}"
        assert "offset" not in out.stdout and "fuzz" not in out.stdout, f"{m.name} applies only loosely: {out.stdout}"


def test_a_mutant_is_one_more_patch_and_a_different_cache_key(source_7_3):
    ref = make_request(KernelOptions(patches_dir=MUTANT_LINE))
    a = make_request(KernelOptions(patches_dir=MUTANT_LINE, mutant="prog-id-zero"))
    b = make_request(KernelOptions(patches_dir=MUTANT_LINE, mutant="record-type-avc"))
    assert a.series.patches[:-1] == ref.series.patches
    assert a.series.patches[-1].name == "prog-id-zero.patch"
    keys = {r.key_inputs().key() for r in (ref, a, b)}
    assert len(keys) == 3, "a mutant kernel must not share a cache entry with the reference or another mutant"
    assert make_request(KernelOptions(patches_dir=MUTANT_LINE, mutant="prog-id-zero")).key_inputs().key() == \
        a.key_inputs().key()


def test_unknown_mutant_is_an_error_naming_the_known_ones(source_7_3):
    with pytest.raises(PatchError, match=r"no mutant 'nope'.*Known mutants: .*prog-id-zero"):
        make_request(KernelOptions(patches_dir=MUTANT_LINE, mutant="nope"))
    with pytest.raises(PatchError, match="not a plain file stem"):
        make_request(KernelOptions(patches_dir=MUTANT_LINE, mutant="../series"))
    with pytest.raises(PatchError, match="without patches"):
        make_request(KernelOptions(patches_dir=MUTANT_LINE, mutant="prog-id-zero", no_patches=True))


def test_pytest_mutant_option_rejects_unknown_names_and_no_patches(pytester):
    line = ["--patches", str(MUTANT_LINE)]
    result = pytester.runpytest(*line, "--mutant", "nope", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--mutant: no mutant 'nope'*Known mutants:*prog-id-zero*"])
    result = pytester.runpytest(*line, "--mutant", "prog-id-zero", "--no-patches", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--mutant applies on top of the patch series*"])


def test_junit_of_a_real_mutant_run_gives_outcomes_by_node_id():
    """Recorded from `bpf-audit-harness mutants start-not-ret-null` (the full suite on that kernel)."""
    results = parse_junit((MUTANTS_DATA / "junit-start-not-ret-null.xml").read_text())
    by_id = {r.nodeid: r for r in results}
    assert by_id["cases/verifier/null_unchecked.bpf.c::unchecked_to_end"].status == "fail"
    assert by_id["cases/verifier/null_unchecked.bpf.c::checked_before_use"].status == "pass"
    status, failed, errors = classify(results)
    assert status == "killed" and "cases/verifier/null_unchecked.bpf.c::unchecked_to_logger" in failed
    assert all(n.startswith("cases/") and ".bpf.c::" in n for n in by_id)


def test_a_worker_collection_error_is_no_kill():
    """Recorded: a file appeared under cases/ while two xdist workers collected (a shared checkout)."""
    results = parse_junit((MUTANTS_DATA / "junit-dentry-untrusted-args-worker-collection-race.xml").read_text())
    assert [r.nodeid for r in results] == ["gw1"]
    status, failed, errors = classify(results)
    assert status == "harness-error" and errors == ["gw1"] and not failed


def test_kill_table_lists_each_mutant_and_its_killing_cases():
    rows = [MutantResult("a-bug", "rule 3", "x", "killed", failed=["cases/v.bpf.c::p"], passed=3),
            MutantResult("b-bug", "rule 12", "y", "survived", passed=4)]
    table = format_table(rows)
    assert re.search(r"^a-bug\s+3\s+killed\s+1", table, re.M)
    assert "failed: cases/v.bpf.c::p" in table
    assert re.search(r"^b-bug\s+12\s+survived", table, re.M)
    assert table.endswith("1/2 mutants killed")
