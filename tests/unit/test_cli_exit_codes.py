# SPDX-License-Identifier: GPL-2.0
"""The CLI's exit codes, per subcommand, through real CLI processes and without building or booting anything:
0 passed, 1 it ran and found a failure, 2 usage (what the user typed), 3 the harness or the machine failed.

A code that needs a real kernel (mutants 0/1, bisect 0/1, boot's guest command) is covered by tests/system. Here
the harness is held to no builds and no boots (BPF_AUDIT_HARNESS_FORBID): a stage that would build or boot is
refused, which is the harness failing, exit 3."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
from helpers import CLI, DATA, HARNESS, USAGE, cli, fake_kept_vm, git, one_paragraph_error

from harness.settings import FORBID_ENV, REPO_ROOT

NO_BUILD_NO_BOOT = {**os.environ, FORBID_ENV: "build,boot"}


def _toy_tree(tmp_path: Path, commits: int = 1) -> Path:
    """A directory the source stage takes for a kernel tree (a Makefile with a version), as a git tree."""
    tree = tmp_path / "toy"
    tree.mkdir()
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\nEXTRAVERSION =\n")
    git(tree, "init", "-q")
    for i in range(commits):
        (tree / "file").write_text(f"{i}\n")
        git(tree, "add", "Makefile", "file")
        git(tree, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", f"commit {i}")
    return tree


def test_version_names_the_package_version_and_the_commit():
    res = cli("--version")
    assert res.returncode == 0, res.stderr
    head = git(REPO_ROOT, "rev-parse", "--short=12", "HEAD")
    assert res.stdout.startswith("bpf-audit-harness 0.") and f"(git {head}" in res.stdout, res.stdout


def test_help_documents_the_exit_codes():
    res = cli("--help")
    assert res.returncode == 0
    for line in ("exit codes (the same in every subcommand):", "  0  everything asked for passed",
                 "  1  it ran and found a failure", "  2  usage:", "  3  the harness or the machine failed"):
        assert line in res.stdout, res.stdout


def test_argparse_errors_are_usage_errors():
    for args in (["build", "--jobs", "many"], ["no-such-subcommand"], ["matrix", "--accel", "fast"], []):
        res = cli(*args)
        assert res.returncode == USAGE, (args, res.stderr)


# -- build ------------------------------------------------------------------------------------------------------

def test_build(tmp_path):
    toy = str(_toy_tree(tmp_path))
    res = cli("build", "--kernel-src", toy, "--print-key", "--cache-dir", str(tmp_path / "cache"))  # builds nothing
    assert res.returncode == 0 and len(res.stdout.strip()) == 24, res.stderr
    assert "source: " in res.stderr and "(Linux 6.12.0)" in res.stderr, res.stderr
    one_paragraph_error(cli("build", "--patches", str(tmp_path / "nope"), "--print-key"), "patch", USAGE)
    only_612 = tmp_path / "patches"  # a patches root with a series for 6.12 only: the default kernel (7.3) has none
    (only_612 / "6.12").mkdir(parents=True)
    (only_612 / "6.12" / "series").write_text("")
    err = one_paragraph_error(cli("build", "--patches", str(only_612), "--print-key"), "patch", USAGE)
    assert "no patch series for Linux 7.3" in err and "series exist for 6.12" in err and "--no-patches" in err
    one_paragraph_error(cli("build", "--kernel-src", str(tmp_path / "nope")), "source", USAGE)
    one_paragraph_error(cli("build", "--kernel-target", "nope"), "matrix", USAGE)
    err = one_paragraph_error(cli("build", "--kernel-target", "7.3-plain", "--no-patches"), "usage", USAGE)
    assert "--kernel-target already names the kernel" in err
    blocker = tmp_path / "a-file"
    blocker.write_text("x\n")
    one_paragraph_error(cli("build", "--cache-dir", str(blocker / "cache")), "cache", HARNESS)
    err = one_paragraph_error(cli("build", "--kernel-src", toy, "--no-patches", "--cache-dir",
                                  str(tmp_path / "cache"), env=NO_BUILD_NO_BOOT), "policy", HARNESS)
    assert "building kernel" in err


# -- config -----------------------------------------------------------------------------------------------------

def test_config_prints_the_merged_fragment_and_dump_says_where_each_option_comes_from(tmp_path):
    from harness.kernel import kconfig
    from harness.settings import DEFAULT_CONFIG_DIR

    merged = kconfig.merge(kconfig.load_fragments(DEFAULT_CONFIG_DIR), "7.3")  # the default kernel's line
    plain, dump = cli("config"), cli("config", "--dump")
    assert plain.returncode == 0 and dump.returncode == 0, plain.stderr + dump.stderr
    assert plain.stdout == merged.render() and "# from" not in plain.stdout
    assert dump.stdout == "# merged for Linux 7.3 (debian-7.3)\n" + merged.render(annotate=True)
    assert "CONFIG_SYSCTL=y  # from " in dump.stdout and "(kernel >=7.3)" in dump.stdout
    on_612 = cli("config", "--kernel-src", "debian-6.12")  # the line is known from its name: nothing is fetched
    assert "CONFIG_PROC_SYSCTL=y\n" in on_612.stdout and "CONFIG_SYSCTL=" not in on_612.stdout
    first = merged.settings[0]
    assert f"{first.render()}  # from {DEFAULT_CONFIG_DIR / '00-guest-base.config'}:" in dump.stdout
    for s in merged.settings:
        assert f"{s.source}:{s.line}" in dump.stdout  # every option with its file and line
    bad = tmp_path / "bad.config"
    bad.write_text("CONFIG_BPF=y\nthis is not kconfig\n")
    err = one_paragraph_error(cli("config", "--fragment", str(bad)), "config", USAGE)
    assert f"{bad}:2: not a Kconfig line" in err
    (tmp_path / "empty").mkdir()
    one_paragraph_error(cli("config", "--config-dir", str(tmp_path / "empty")), "config", USAGE)


# -- matrix -----------------------------------------------------------------------------------------------------

def _report_dir(tmp_path: Path, junit: str | None, error: str = "") -> Path:
    """A --report-only directory holding one kernel (6.12-series): its JUnit file, or the error that kept it from
    running."""
    from harness.campaigns.matrix.report import KernelRun
    from harness.campaigns.matrix.run import save_target_meta

    out = tmp_path / f"report-{junit or 'error'}"
    (out / "6.12-series").mkdir(parents=True)
    if junit:
        shutil.copy(DATA / "matrix" / junit, out / "6.12-series" / "junit.xml")
    save_target_meta(KernelRun("6.12-series", "series", "6.12.117", seconds=1.0, artifact_key="k", error=error),
                     out / "6.12-series")
    return out


@pytest.mark.parametrize("junit, error, code", [
    ("6.12-series-green.junit.xml", "", 0),
    ("6.12-series-serial-case-timeout-lost-vm.junit.xml", "", 1),
    (None, "build stage failed: make failed (exit 2)", 3),
])
def test_matrix_report_only(tmp_path, junit, error, code):
    out = _report_dir(tmp_path, junit, error)
    res = cli("matrix", "--report-only", str(out), "--targets", "6.12-series")
    assert res.returncode == code, res.stdout[-2000:] + res.stderr[-2000:]


def test_matrix_usage_errors(tmp_path):
    bad = tmp_path / "matrix.toml"
    bad.write_text("[[target]\nname = \n")
    one_paragraph_error(cli("matrix", "--matrix", str(bad), "--out", str(tmp_path / "o")), "matrix", USAGE)
    one_paragraph_error(cli("matrix", "--targets", "nope", "--out", str(tmp_path / "o")), "matrix", USAGE)
    one_paragraph_error(cli("matrix", "--rerun-failures", "-1", "--out", str(tmp_path / "o")), "usage", USAGE)


# -- mutants ----------------------------------------------------------------------------------------------------

def test_mutants(tmp_path):
    err = one_paragraph_error(cli("mutants", "no-such-mutant", "--kernel-src", "debian-6.12"), "patch", USAGE)
    assert "no mutant 'no-such-mutant'" in err
    one_paragraph_error(cli("mutants", "--no-patches"), "usage", USAGE)
    # A mutant whose kernel cannot be built (here: builds are refused) is not judged: exit 3, not "survived".
    res = cli("mutants", "start-not-ret-null", "--patches", "patches/7.3", "--kernel-src", str(_toy_tree(tmp_path)),
              "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out"), env=NO_BUILD_NO_BOOT)
    assert res.returncode == HARNESS, res.stdout[-2000:] + res.stderr[-2000:]
    assert json.loads((tmp_path / "out" / "mutants.json").read_text())["mutants"][0]["status"] == "build-failed"


# -- bisect -----------------------------------------------------------------------------------------------------

CASE = "cases/verifier/null_unchecked.bpf.c"


def test_bisect(tmp_path):
    tree = _toy_tree(tmp_path, commits=2)
    base = ["bisect", "--kernel-src", str(tree), "--cache-dir", str(tmp_path / "cache")]
    err = one_paragraph_error(cli(*base, "--good", "HEAD", "--bad", "HEAD~1", CASE), "bisect", USAGE)
    assert "is not an ancestor of --bad" in err
    one_paragraph_error(cli(*base, "--good", "HEAD~1", "--bad", "nope", CASE), "bisect", USAGE)
    one_paragraph_error(cli(*base, "--good", "HEAD~1", "--bad", "HEAD", "--retries", "0", CASE), "bisect", USAGE)
    (tmp_path / "frags").mkdir()
    (tmp_path / "frags" / "a.config").write_text("CONFIG_X=y\nCONFIG_X=n\n")
    one_paragraph_error(cli(*base, "--good", "HEAD~1", "--bad", "HEAD", "--config-dir", str(tmp_path / "frags"),
                            CASE), "config", USAGE)
    # The step cannot judge --bad (its build is refused): nothing is bisected, and that is the harness failing.
    res = cli(*base, "--good", "HEAD~1", "--bad", "HEAD", CASE, env=NO_BUILD_NO_BOOT)
    assert res.returncode == HARNESS, res.stdout[-3000:] + res.stderr[-3000:]
    assert "bpf-audit-harness: bisect error: the step aborted on --bad" in res.stderr, res.stderr[-3000:]
    assert git(tree, "status", "--porcelain") == "" and git(tree, "log", "-1", "--format=%s") == "commit 1"


# -- boot -------------------------------------------------------------------------------------------------------

def test_boot(tmp_path):
    one_paragraph_error(cli("boot", "--kernel", str(tmp_path / "bzImage")), "source", USAGE)
    one_paragraph_error(cli("boot", "--kernel-src", str(tmp_path / "nope")), "source", USAGE)
    image = tmp_path / "bzImage"
    image.write_bytes(b"not booted: boots are refused here\n")
    err = one_paragraph_error(cli("boot", "--kernel", str(image), "--cache-dir", str(tmp_path / "cache"), "--",
                                  "true", env=NO_BUILD_NO_BOOT), "policy", HARNESS)
    assert "booting boot" in err


# -- cache ------------------------------------------------------------------------------------------------------

def test_cache(tmp_path):
    res = cli("cache", "--cache-dir", str(tmp_path / "cache"))
    assert res.returncode == 0 and "kernels: 0" in res.stdout, res.stderr
    one_paragraph_error(cli("cache", "--cache-dir", str(tmp_path), "--prune", "--max-size", "lots"), "usage", USAGE)
    afile = tmp_path / "a-file"
    afile.write_text("x\n")
    one_paragraph_error(cli("cache", "--cache-dir", str(afile)), "usage", USAGE)


# -- doctor -----------------------------------------------------------------------------------------------------

def test_doctor(tmp_path):
    """0 when nothing a run needs is missing (3 otherwise: on this machine either is right); with no tools on PATH
    it is 3, with one apt-get line for what is missing. It never builds or boots (both are refused here)."""
    res = cli("doctor", "--cache-dir", str(tmp_path / "cache"), "--json", str(tmp_path / "doctor.json"),
              env=NO_BUILD_NO_BOOT)
    missing = [line for line in res.stdout.splitlines() if line.startswith("  MISSING ")]
    assert res.returncode == (3 if missing else 0), res.stdout + res.stderr
    report = json.loads((tmp_path / "doctor.json").read_text())  # --json: the same report as data
    assert len(report["tools"]) == len([t for t in report["tools"] if t["status"] in ("ok", "missing")])
    assert sum(t["status"] == "missing" and t["required"] for t in report["tools"]) == len(missing)
    assert report["verdict"] == ("a run cannot work here yet" if missing else "a run can work here")
    assert report["cache"]["root"] == str(tmp_path / "cache") and report["cache"]["free_bytes"] > 0
    assert "accelerator: not probed: no kernel built yet (run `make build`)" in res.stdout, res.stdout
    assert f"cache: {tmp_path / 'cache'}: " in res.stdout and "free on its file system" in res.stdout
    bare = cli("doctor", "--cache-dir", str(tmp_path / "cache"),
               env={**NO_BUILD_NO_BOOT, "PATH": str(Path(sys.executable).parent)})
    assert bare.returncode == HARNESS, bare.stdout + bare.stderr
    (apt,) = [line for line in bare.stdout.splitlines() if line.startswith("missing: apt-get install ")]
    for package in ("clang-19", "qemu-system-x86", "make", "bpftool", "dwarves"):
        assert f" {package}" in apt.split("install", 1)[1], apt
    assert "verdict: a run cannot work here yet" in bare.stdout


# -- ssh (a stand-in kept VM: `sleep` under the reaper) ---------------------------------------------------------

def test_ssh(tmp_path):
    runs = tmp_path / "cache" / "runs"
    base = ["--cache-dir", str(tmp_path / "cache")]
    one_paragraph_error(cli("ssh", "no-such-run", *base), "usage", USAGE)
    (runs / "20260101-000000-vm-main-1").mkdir(parents=True)
    err = one_paragraph_error(cli("ssh", "20260101-000000-vm-main-1", *base), "vm", HARNESS)
    assert "no VM is kept in" in err
    run_dir = runs / "20260101-000000-vm-gw0-2"
    run_dir.mkdir()
    reaper = fake_kept_vm(run_dir, owner=os.getpid(), minutes=5)
    try:
        bindir = tmp_path / "bin"  # an `ssh` that exits as told: how the guest command's status maps
        bindir.mkdir()
        (bindir / "ssh").write_text("#!/bin/sh\nexit $BAH_TEST_SSH_EXIT\n")
        (bindir / "ssh").chmod(0o755)
        for ssh_rc, code in ((0, 0), (1, 1), (7, 1), (255, 3)):
            env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "BAH_TEST_SSH_EXIT": str(ssh_rc)}
            res = cli("ssh", run_dir.name, *base, "--", "bpftool", "prog", "show", env=env)
            assert res.returncode == code, (ssh_rc, res.stderr)
        res = cli("ssh", run_dir.name, *base, "--stop")
        assert res.returncode == 0 and "stopped the kept VM gw0-1" in res.stdout, res.stderr
        deadline = time.monotonic() + 10
        while reaper.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert reaper.poll() is not None, "--stop left the kept VM's group running"
        one_paragraph_error(cli("ssh", run_dir.name, *base), "vm", HARNESS)  # nothing kept any more
    finally:
        if reaper.poll() is None:
            os.killpg(reaper.pid, 9)
        reaper.wait()


# -- report -----------------------------------------------------------------------------------------------------

def test_report(tmp_path):
    res = cli("report", "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out" / "benchmark-history.png").stat().st_size > 10_000
    assert 'src="benchmark-history.png"' in (tmp_path / "out" / "index.html").read_text()
    (tmp_path / "empty").mkdir()
    one_paragraph_error(cli("report", "--results", str(tmp_path / "empty"), "--out", str(tmp_path / "o")), "usage",
                        USAGE)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.json").write_text("{not json")
    one_paragraph_error(cli("report", "--results", str(tmp_path / "bad"), "--out", str(tmp_path / "o")), "usage",
                        USAGE)


# -- selftests --------------------------------------------------------------------------------------------------

def test_selftests(tmp_path):
    """--list on a toy tree: 0 when every file compiles, 3 when one does not (it is listed) or no vmlinux.h is
    in the cache, 2 for what the user typed. (tests/unit/test_selftests_cli.py has the details.)"""
    from selftests_tree import BPF, make_tree, vmlinux_h

    if not any(shutil.which(c) for c in ("clang-19", "clang-18", "clang-17", "clang-16")):
        pytest.skip("no clang-16..19")
    tree, env = make_tree(tmp_path), {**NO_BUILD_NO_BOOT, "BPF_AUDIT_HARNESS_CACHE": str(tmp_path / "cache")}
    args = ["selftests", "--list", "--kernel-src", str(tree)]
    res = cli(*args, "--vmlinux-h", str(vmlinux_h(tmp_path)), env=env)
    assert res.returncode == 0 and "subtests: 14 privileged + 7 unprivileged" in res.stdout, res.stderr
    one_paragraph_error(cli(*args, "--vmlinux-h", str(tmp_path / "none.h"), env=env), "usage", USAGE)
    one_paragraph_error(cli(*args, "--vmlinux-h", str(vmlinux_h(tmp_path)), "nope", env=env), "usage", USAGE)
    one_paragraph_error(cli("selftests", "--kernel-src", str(tree), env=env), "usage", USAGE)
    assert "no kernel built" in one_paragraph_error(cli(*args, env=env), "selftests", HARNESS)
    (tree / BPF / "progs" / "foo_after.c").write_text("int x(void) { return nope; }\n")
    err = one_paragraph_error(cli(*args, "--vmlinux-h", str(vmlinux_h(tmp_path)), env=env), "selftests", HARNESS)
    assert "foo_after" in err


def test_every_subcommand_is_covered_here():
    import re

    text = Path(__file__).read_text()
    parser_source = (REPO_ROOT / "harness" / "cli" / "args.py").read_text()
    subcommands = set(re.findall(r'sub\.add_parser\("([a-z-]+)"', parser_source))
    assert subcommands >= {"build", "matrix", "boot", "mutants", "bisect", "cache", "config", "doctor", "ssh"}
    assert {s for s in subcommands if f"def test_{s}" not in text} == set()
    assert CLI.endswith("bpf-audit-harness")
