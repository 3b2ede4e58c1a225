# SPDX-License-Identifier: GPL-2.0
"""The guest settings and the BPF compiler as a user gives them, seen from inside real guests: pytest -n 2 with
--cpus 2 --append foo=bar --gdb --clang <a plain `clang`>; each worker's VM has 2 vCPUs and foo=bar on its command
line, serves QEMU's gdb stub on its own loopback port (gdb attaches, reads rip, detaches, and the guest goes on),
and the header names the compiler with its version, the ports and the gdb line. Then the CLI's `boot`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import SCRATCH_CASE

pytest_plugins = ["pytester"]

LLVM19_CLANG = Path("/usr/lib/llvm-19/bin/clang")

INSIDE = '''
import json, os, subprocess

def test_inside(vm, worker_id):
    seen = vm.guest.run("cat /proc/cmdline; nproc", timeout=120).stdout.split("\\n")
    port = vm.config.gdb_port
    gdb = subprocess.run(["gdb", "-batch", "-ex", f"target remote 127.0.0.1:{port}", "-ex", "info registers rip"],
                         capture_output=True, text=True, timeout=120)
    after = vm.guest.run("echo still-alive", timeout=120).stdout.strip()
    out = os.path.join(os.environ["RESULTS"], worker_id + ".json")
    with open(out, "w") as f:
        json.dump({"cmdline": seen[0], "nproc": seen[1], "port": port, "gdb_rc": gdb.returncode,
                   "gdb": gdb.stdout + gdb.stderr, "after": after}, f)
'''


@pytest.mark.vm
@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("gdb"), reason="gdb not installed (make test-deps)")
@pytest.mark.skipif(not LLVM19_CLANG.is_file(), reason="clang-19 not installed (make deps)")
def test_cpus_append_gdb_and_clang_in_real_guests(pytester, kernel_artifact, inner_args, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "clang").symlink_to(LLVM19_CLANG)  # a plain `clang`, as an LLVM install names it
    results = tmp_path / "results"
    results.mkdir()
    monkeypatch.setenv("RESULTS", str(results))
    monkeypatch.delenv("CLANG", raising=False)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    case = pytester.path / "cases" / "ok.bpf.c"
    case.parent.mkdir()
    case.write_text(SCRATCH_CASE.format(description="compiled by a plain clang", verdict="__success"))
    pytester.makepyfile(test_inside=INSIDE)
    res = pytester.runpytest_subprocess("cases", "test_inside.py", *inner_args, "-n", "2", "--dist", "each",
                                        "--cpus", "2", "--append", "foo=bar", "--gdb", "--clang", "clang",
                                        timeout=1500)
    out = res.outlines + res.errlines
    res.assert_outcomes(passed=4)  # the case and the test, on each worker
    text = "\n".join(out)
    assert re.search(rf"BPF compiler: {re.escape(str(bin_dir / 'clang'))} \(clang 19\.\d+\.\d+; --clang\)", text), text
    gdb_line = next(line for line in out if "gdb: QEMU's gdb stub" in line)
    ports = [int(p) for p in re.findall(r"gw\d 127\.0\.0\.1:(\d+)", gdb_line)]
    assert len(ports) == 2 and ports[1] == ports[0] + 1, gdb_line
    assert f"gdb {kernel_artifact.vmlinux} -ex 'target remote 127.0.0.1:{ports[0]}'" in text, text
    seen = {p.stem: json.loads(p.read_text()) for p in results.glob("gw*.json")}
    assert sorted(seen) == ["gw0", "gw1"], seen
    for worker, got in seen.items():
        words = got["cmdline"].split()
        assert "foo=bar" in words and "nokaslr" in words and "audit=1" in words, got
        assert words.index("foo=bar") > words.index("audit=1"), got  # after the harness's own: it can override
        assert got["nproc"] == "2", got
        assert got["port"] == ports[int(worker[2:])], (got, ports)  # one port per worker, loopback only
        assert got["gdb_rc"] == 0 and re.search(r"rip\s+0x[0-9a-f]+", got["gdb"]), got["gdb"]
        assert got["after"] == "still-alive", got  # gdb detached, the guest runs on


@pytest.mark.vm
@pytest.mark.slow
def test_boot_cli_takes_the_same_settings(kernel_artifact, tmp_path):
    cli = Path(sys.executable).parent / "bpf-audit-harness"
    res = subprocess.run([str(cli), "boot", "--kernel", str(kernel_artifact.bzimage), "--cpus", "2", "--memory",
                          "768M", "--append", "foo=bar baz=1", "--", "sh", "-c",
                          "cat /proc/cmdline; nproc; grep MemTotal /proc/meminfo"],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, (res.stdout, res.stderr[-3000:])
    cmdline, nproc, mem = res.stdout.strip().splitlines()
    assert {"foo=bar", "baz=1"} <= set(cmdline.split()) and "nokaslr" not in cmdline, cmdline
    assert nproc == "2"
    assert 600_000 < int(mem.split()[1]) < 786_432, mem  # kB: 768M less what the kernel keeps
    bad = subprocess.run([str(cli), "boot", "--kernel", str(kernel_artifact.bzimage), "--append", "a='b c'"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "holds a quote, a space or a shell character" in bad.stderr, bad.stderr
