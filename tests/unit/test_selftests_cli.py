# SPDX-License-Identifier: GPL-2.0
"""`bpf-audit-harness selftests --list` through real CLI processes on a toy tree: the table, the JSON, and the
exit codes (0 listed, 2 usage, 3 a file that does not compile, or no vmlinux.h in the cache). Nothing is built
or booted (the harness is held to that)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from helpers import HARNESS, USAGE, cli
from selftests_tree import BPF, make_tree, vmlinux_h

from harness.cases.compile import CLANG_CANDIDATES
from harness.settings import CACHE_ENV, FORBID_ENV

pytestmark = pytest.mark.skipif(not any(shutil.which(c) for c in CLANG_CANDIDATES), reason="no clang-16..19")


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, FORBID_ENV: "build,boot", CACHE_ENV: str(tmp_path / "cache")}


def test_list_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    out = tmp_path / "out" / "list.json"
    res = cli("selftests", "--list", "--kernel-src", str(tree), "--vmlinux-h", str(vmlinux_h(tmp_path)), "--jobs", "2",
              "--json", str(out), env=_env(tmp_path))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split()[:7] == ["FILE", "GROUP", "PROGS", "PRIV", "UNPRIV", "ARCH", "UNSUP"]
    row = next(line for line in lines if line.startswith("verifier_mtu "))
    assert row.split()[1:7] == ["verifier", "2", "2", "1", "0", "0"] and "caps -SYS_ADMIN,PERFMON" in row
    assert "bpf_testmod x3" in next(line for line in lines if line.startswith("foo_testmod "))
    assert "subtests: 14 privileged + 7 unprivileged = 21" in res.stdout
    assert "compiling 7/7" in res.stderr
    data = json.loads(out.read_text())
    assert data["totals"]["programs"] == 14 and data["totals"]["missing"] == ["bar_missing"]
    mtu = next(f for f in data["files"] if f["file"] == "verifier_mtu")
    assert mtu["caps_enable"] == ["CAP_BPF", "CAP_NET_ADMIN"] and mtu["subtests"][0]["msgs"] == []
    assert mtu["subtests"][2]["msgs"] == ["invalid"] and mtu["subtests"][2]["expect_failure"]


def test_selected_files_only(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    res = cli("selftests", "--list", "--kernel-src", str(tree), "--vmlinux-h", str(vmlinux_h(tmp_path)),
              "verifier_x", "foo_after.c", env=_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert [line.split()[0] for line in res.stdout.splitlines()[1:3]] == ["verifier_x", "foo_after"]
    assert "files: 8 in the RUN_TESTS set, 2 selected" in res.stdout


def test_a_file_that_does_not_compile_is_listed_and_exits_3(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    (tree / BPF / "progs/foo_block.c").write_text("int broken(void) { return undeclared_thing; }\n")
    res = cli("selftests", "--list", "--kernel-src", str(tree), "--vmlinux-h", str(vmlinux_h(tmp_path)),
              env=_env(tmp_path))
    assert res.returncode == HARNESS, res.stderr
    assert "COMPILE FAILED:" in next(line for line in res.stdout.splitlines() if line.startswith("foo_block "))
    assert "undeclared_thing" in res.stdout and "1 failed to compile" in res.stdout
    assert "selftests error: 1 file(s) could not be compiled or read: foo_block" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("args", [
    ["selftests"],
    ["selftests", "--list", "no_such_skeleton"],
    ["selftests", "--list", "--jobs", "0"],
    ["selftests", "-j", "0"],
    ["selftests", "--list", "--vmlinux-h", "/nonexistent/vmlinux.h"],
])
def test_usage_errors(tmp_path: Path, args: list[str]) -> None:
    tree = make_tree(tmp_path)
    extra = ["--kernel-src", str(tree)]
    if "--vmlinux-h" not in args:
        extra += ["--vmlinux-h", str(vmlinux_h(tmp_path))]
    res = cli(*args, *extra, env=_env(tmp_path))
    assert res.returncode == USAGE, res.stderr
    assert "Traceback" not in res.stderr


def test_not_a_tree_is_a_usage_error(tmp_path: Path) -> None:
    res = cli("selftests", "--list", "--kernel-src", str(tmp_path / "nope"), "--vmlinux-h",
              str(vmlinux_h(tmp_path)), env=_env(tmp_path))
    assert res.returncode == USAGE and "is not a directory" in res.stderr
    res = cli("selftests", "--list", "--kernel-src", str(tmp_path), "--vmlinux-h", str(vmlinux_h(tmp_path)),
              env=_env(tmp_path))
    assert res.returncode == USAGE and "no tools/testing/selftests/bpf/prog_tests" in res.stderr


def test_without_a_built_kernel_there_is_no_vmlinux_h(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    res = cli("selftests", "--list", "--kernel-src", str(tree), env=_env(tmp_path))
    assert res.returncode == HARNESS, res.stderr
    assert "no kernel built from this source is in the cache" in res.stderr and "--vmlinux-h" in res.stderr
