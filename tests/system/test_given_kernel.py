# SPDX-License-Identifier: GPL-2.0
"""The developer's own kernel, tested as it is (issue 22 item 1): a build directory (make O=DIR) and a tree built in
place run the cases with nothing built and nothing of theirs changed. The builds are real: the default kernel's own
build directory, and a tree that holds that build's outputs in place."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import DEFAULT_SLOT

pytest_plugins = ["pytester"]
pytestmark = [pytest.mark.vm, pytest.mark.slow, DEFAULT_SLOT]
CLI = str(Path(sys.executable).parent / "bpf-audit-harness")
CASES = ["cases/baseline/lsm_deny.bpf.c"]


def _cases(pytester) -> None:
    from harness.settings import REPO_ROOT

    shutil.copytree(REPO_ROOT / "cases" / "baseline", pytester.path / "cases" / "baseline")
    shutil.copy(REPO_ROOT / "cases" / "harness.h", pytester.path / "cases" / "harness.h")


def test_a_build_directory_runs_the_cases_as_it_is(pytester, kernel_artifact, inner_args):
    slot = Path(kernel_artifact.meta["slot"])  # make O=slot: bzImage, vmlinux, .config, source -> the tree
    assert (slot / "arch/x86/boot/bzImage").is_file() and (slot / "source").exists()
    _cases(pytester)
    before = (slot / ".config").stat().st_mtime_ns
    result = pytester.runpytest_subprocess(*CASES, "--kernel", str(slot), *inner_args, timeout=900)
    out = result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=2)
    assert f"the kernel built in {slot} (used as it is: nothing built)" in out, out[-3000:]
    assert "[build]" not in out, "the harness built a kernel for --kernel"
    assert (slot / ".config").stat().st_mtime_ns == before
    res = subprocess.run([CLI, "build", "--kernel", str(slot / "arch/x86/boot/bzImage"), "--cache-dir",
                          inner_args[inner_args.index("--harness-cache") + 1]], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0 and "key=given-" in res.stdout, res.stdout + res.stderr


def test_a_tree_built_in_place_is_used_not_cleaned(pytester, kernel_artifact, inner_args, tmp_path):
    slot = Path(kernel_artifact.meta["slot"])
    tree = tmp_path / "linux"
    subprocess.run(["cp", "-al", str((slot / "source").resolve()), str(tree)], check=True, timeout=600)
    for rel in ("vmlinux", "arch/x86/boot/bzImage", ".config", "System.map"):  # the build, in place
        (tree / rel).unlink(missing_ok=True)
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(slot / rel, tree / rel)
    config = (tree / ".config").stat()
    mtime = tree.stat().st_mtime_ns
    _cases(pytester)
    result = pytester.runpytest_subprocess(*CASES, "--kernel-src", str(tree), *inner_args, timeout=900)
    out = result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=2)
    assert f"{tree} holds an in-tree build: testing that build as it is" in out, out[-3000:]
    after = (tree / ".config").stat()
    assert (after.st_mtime_ns, after.st_size) == (config.st_mtime_ns, config.st_size), "their .config was touched"
    assert tree.stat().st_mtime_ns == mtime, "something was written into the developer's tree"
    assert os.path.exists(tree / "vmlinux"), "the developer's build was cleaned"
