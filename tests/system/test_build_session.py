# SPDX-License-Identifier: GPL-2.0
"""One build per run, seen: under -n 2 the controller builds with progress on the terminal and names the kernel;
a tree that does not build ends the run with one error, not one per item or per worker."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

import pytest
from helpers import DEFAULT_SLOT, default_source, series_plus

from harness.settings import REPO_ROOT

pytestmark = [DEFAULT_SLOT]

DEFAULT_SOURCE = default_source()[0]  # one kernel line per run (see helpers.default_source)

pytest_plugins = ["pytester"]


@pytest.mark.slow
@pytest.mark.vm
def test_n2_run_builds_once_in_the_controller_visibly_and_a_broken_tree_is_one_error(pytester, default_source_tree,
                                                                                      inner_args, tmp_path):
    case = REPO_ROOT / "cases" / "baseline" / "lsm_deny.bpf.c"
    (pytester.path / "cases").mkdir()
    shutil.copy(case, pytester.path / "cases" / case.name)
    shutil.copy(REPO_ROOT / "cases" / "harness.h", pytester.path / "cases" / "harness.h")
    # A comment of this run's own: a new cache key, so the controller really builds (incrementally, in the
    # series' slot); its entry is removed at the end.
    good = series_plus(tmp_path / "good", default_source_tree, "init/version.c",
                       f"/* bpf-audit-harness: session build test {uuid.uuid4().hex} */\n")
    result = pytester.runpytest_subprocess("cases", "-n", "2", "--kernel-src", DEFAULT_SOURCE, "--patches", str(good),
                                           *inner_args, timeout=1800)
    out = result.stdout.str() + result.stderr.str()
    key = re.search(r"cache key (\w+)", out)
    if key:
        shutil.rmtree(Path(inner_args[inner_args.index("--harness-cache") + 1]) / "kernels" / key.group(1),
                      ignore_errors=True)
    result.assert_outcomes(passed=2)  # the case file holds two programs
    # Built by the controller (the header comes after it), with its progress, its log and the kernel named.
    assert out.count("[build] incremental: make -C ") == 1, out[-5000:]
    assert "(full output: " in out and "[build] done: " in out, out[-5000:]
    assert re.search(r"kernel under test: \S+ \(built in \d+s, cache key", out), out[-5000:]  # before any test
    count = sum(w.endswith(".patch") for w in (good / "series").read_text().split())  # the series + 1
    assert f"  series: {count} patches: " in out and "9999-extra.patch" in out, out[-5000:]
    assert "  accelerator: " in out, out[-5000:]
    assert "created: 2/2 workers" in out or "2 workers [1 item]" in out, out[-5000:]

    # A tree that does not build: one error for the run, before any worker starts; no item runs.
    bad = series_plus(tmp_path / "bad", default_source_tree, "kernel/bounds.c",
                      '#error "bpf-audit-harness: session build test, this build must fail"\n')
    result = pytester.runpytest_subprocess("cases", "-n", "2", "--kernel-src", DEFAULT_SOURCE, "--patches", str(bad),
                                           *inner_args, timeout=1800)
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == 3, out[-5000:]
    assert out.count("this build must fail") >= 1 and out.count("kernel build stage failed: make failed") == 1, out
    assert "Full log: " in out and not re.search(r"\d+ passed", out) and "workers" not in out, out[-5000:]


@pytest.mark.slow
def test_tests_that_need_the_kernel_have_it_built_by_the_controller_after_collection(pytester, default_source_tree,
                                                                                     inner_args, tmp_path):
    """No case files: the collected items' fixtures say the kernel is needed. A worker says so when it has
    collected; the controller builds before it schedules anything, and a failure is one error for the run."""
    bad = series_plus(tmp_path / "bad", default_source_tree, "kernel/bounds.c",
                      '#error "bpf-audit-harness: collected-items build test, this build must fail"\n')
    pytester.makepyfile(test_needs="""
        def test_one(kernel_artifact):
            pass

        def test_two(kernel_artifact):
            pass

        def test_pure():
            pass
    """)
    result = pytester.runpytest_subprocess("-n", "2", "--kernel-src", DEFAULT_SOURCE, "--patches", str(bad),
                                           *inner_args, timeout=1800)
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == 3, out[-5000:]
    assert out.count("kernel build stage failed: make failed") == 1, out[-8000:]
    assert not re.search(r"\d+ (passed|failed)", out) and "FAILED" not in out, out[-5000:]
    # Deselected, they need nothing: no build at all.
    result = pytester.runpytest_subprocess("-n", "2", "-k", "pure", "--kernel-src", DEFAULT_SOURCE, "--patches",
                                           str(bad), *inner_args, timeout=600)
    result.assert_outcomes(passed=1)
    assert "[build]" not in result.stdout.str() + result.stderr.str()
