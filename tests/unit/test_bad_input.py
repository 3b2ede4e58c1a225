# SPDX-License-Identifier: GPL-2.0
"""Bad input through the CLI and pytest: one clear paragraph (what, where, what to do) and a non-zero exit.

Here the input is refused before any build or boot; tests/system/test_bad_input_at_build_and_boot.py has the
input only the build or the boot can find wrong."""

import shutil
from pathlib import Path

import pytest
from helpers import HARNESS, USAGE, cli, one_paragraph_error

from harness import tools
from harness.cases import compile as bpfobj
from harness.errors import CaseError, MissingToolError

pytest_plugins = ["pytester"]


def test_a_patch_directory_that_does_not_exist_or_has_no_series_is_a_usage_error(pytester, tmp_path):
    """A typo in --patches used to build the unpatched kernel, silently, under the --no-patches key."""
    for bad, says in ((tmp_path / "nope", "does not exist. Check the path"),
                      (tmp_path, "no patch series for Linux 7.3 in")):  # the default kernel's line
        result = pytester.runpytest("--patches", str(bad), "--collect-only", "-p", "no:cacheprovider")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"*--patches: *{says}*"])
        err = one_paragraph_error(cli("build", "--patches", str(bad), "--print-key"), "patch", USAGE)
        assert says in err


@pytest.mark.parametrize("argv, says", [
    (["--target", "ssh://root@127.0.0.1:9", "-n", "2"], "*--target ssh://root@127.0.0.1:9 runs on one machine: "
                                                         "use one worker (drop -n 2)*"),
    (["--target", "http://root@127.0.0.1:9"], "*--target*ssh://*"),
    (["--target", "ssh://root@127.0.0.1:notaport"], "*--target*port*"),
])
def test_a_target_for_several_workers_or_a_malformed_target_is_a_usage_error_at_start(pytester, argv, says):
    """Workers on one --target would share its agent, audit daemon and rules; a bad URL was a traceback per test."""
    result = pytester.runpytest_subprocess(*argv, "--collect-only", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-1000:] + result.stderr.str()[-1000:]
    result.stderr.fnmatch_lines([says])
    assert "Traceback" not in result.stderr.str()


def test_kernel_source_that_does_not_exist(tmp_path):
    err = one_paragraph_error(cli("build", "--kernel-src", str(tmp_path / "no-such-tree")), "source", USAGE)
    assert str(tmp_path / "no-such-tree") in err and "does not exist" in err


def test_cache_dir_that_is_not_writable(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the cache directory should be\n")
    err = one_paragraph_error(cli("build", "--cache-dir", str(blocker / "cache")), "cache", HARNESS)
    assert f"{blocker / 'cache'} is not writable" in err and "BPF_AUDIT_HARNESS_CACHE" in err


def test_unwritable_cache_fails_a_pytest_session_at_the_build_stage(pytester, tmp_path):
    """The collected test needs the kernel: the run stops before it, once, naming the stage and the directory."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x\n")
    pytester.makepyfile("def test_needs_kernel(kernel_artifact):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--harness-cache", str(blocker / "cache"))
    assert result.ret == 3
    out = result.stdout.str() + result.stderr.str()
    assert out.count(f"kernel cache stage failed: cache directory {blocker / 'cache'} is not writable") == 1, out
    assert "no tests ran" in out and "no test ran: the kernel could not be prepared (cache stage" in out, out


@pytest.mark.parametrize("tool, package", [
    ("clang-19", "clang-19"), ("bpftool", "bpftool"), ("qemu-system-x86_64", "qemu-system-x86"), ("vng", "virtme-ng"),
])
def test_missing_tool_names_the_debian_package(tool, package, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: nothing is on PATH
    with pytest.raises(MissingToolError) as exc:
        tools.require(tool)
    msg = str(exc.value)
    assert f"missing tool(s) on PATH: {tool}." in msg and package in msg and "apt-get install" in msg


def test_object_that_is_not_elf(tmp_path):
    text = tmp_path / "prog.o"
    text.write_text("SEC(\"lsm/file_open\") int prog(void) { return 0; }\n")
    with pytest.raises(CaseError, match=r"is not an ELF file .*clang -target bpf"):
        bpfobj.check_object(text)
    with pytest.raises(CaseError, match=r"ELF file but not a BPF object .*machine 62"):
        bpfobj.check_object(Path(shutil.which("true")))  # an x86-64 executable
