# SPDX-License-Identifier: GPL-2.0
"""Bad input through the CLI and pytest: one clear paragraph (what, where, what to do) and a non-zero exit."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import tools
from harness.cases import compile as bpfobj
from harness.errors import CaseError, MissingToolError
from harness.settings import DEFAULT_PATCHES_DIR

pytest_plugins = ["pytester"]
CLI = str(Path(sys.executable).parent / "bpf-audit-harness")


def _cli(*args: str, env: dict | None = None, timeout: float = 1200) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout, env=env)


def _one_paragraph_error(res: subprocess.CompletedProcess, stage: str) -> str:
    """Exit 2, no traceback, and one `bpf-audit-harness: STAGE error: ...` message (returned)."""
    assert res.returncode == 2, (res.returncode, res.stdout[-2000:], res.stderr[-3000:])
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    head = f"bpf-audit-harness: {stage} error: "
    assert res.stderr.count("bpf-audit-harness: ") == 1 and head in res.stderr, res.stderr[-3000:]
    return res.stderr[res.stderr.index(head):]


def test_a_patch_directory_that_does_not_exist_or_has_no_series_is_a_usage_error(pytester, tmp_path):
    """A typo in --patches used to build the unpatched kernel, silently, under the --no-patches key."""
    for bad, says in ((tmp_path / "nope", "does not exist. Check the path"),
                      (tmp_path, "needs a series file")):
        result = pytester.runpytest("--patches", str(bad), "--collect-only", "-p", "no:cacheprovider")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"*--patches: *{says}*"])
        err = _one_paragraph_error(_cli("build", "--patches", str(bad), "--print-key"), "patch")
        assert says in err


def test_kernel_source_that_does_not_exist(tmp_path):
    err = _one_paragraph_error(_cli("build", "--kernel-src", str(tmp_path / "no-such-tree")), "source")
    assert str(tmp_path / "no-such-tree") in err and "does not exist" in err


def test_cache_dir_that_is_not_writable(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the cache directory should be\n")
    err = _one_paragraph_error(_cli("build", "--cache-dir", str(blocker / "cache")), "cache")
    assert f"{blocker / 'cache'} is not writable" in err and "BPF_AUDIT_HARNESS_CACHE" in err


def test_unwritable_cache_fails_a_pytest_session_at_the_build_stage(pytester, tmp_path):
    """The collected test needs the kernel: the run stops before it, once, naming the stage and the directory."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x\n")
    pytester.makepyfile("def test_needs_kernel(kernel_artifact):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--harness-cache", str(blocker / "cache"))
    assert result.ret == 3
    out = result.stdout.str()
    assert out.count(f"kernel cache stage failed: cache directory {blocker / 'cache'} is not writable") == 1, out
    assert " passed" not in out and " error" not in out, out


@pytest.mark.parametrize("tool, package", [
    ("clang-19", "clang-19"), ("bpftool", "bpftool"), ("qemu-system-x86_64", "qemu-system-x86"), ("vng", "virtme-ng"),
])
def test_missing_tool_names_the_debian_package(tool, package, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: nothing is on PATH
    with pytest.raises(MissingToolError) as exc:
        tools.require(tool)
    msg = str(exc.value)
    assert f"missing tool(s) on PATH: {tool}." in msg and package in msg and "apt-get install" in msg


def test_missing_qemu_stops_the_boot_with_the_package_to_install(kernel_artifact, tmp_path):
    # PATH without QEMU (but with everything else the CLI needs): the boot names qemu-system-x86.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("ssh-keygen", "gcc", "ld", "pahole", "cat", "sh"):
        found = shutil.which(tool)
        if found:
            (bindir / tool).symlink_to(found)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{bindir}"}
    err = _one_paragraph_error(_cli("boot", "--", "true", env=env), "tools")
    assert "qemu-system-x86_64" in err and "apt-get install qemu-system-x86" in err


def test_object_that_is_not_elf(tmp_path):
    text = tmp_path / "prog.o"
    text.write_text("SEC(\"lsm/file_open\") int prog(void) { return 0; }\n")
    with pytest.raises(CaseError, match=r"is not an ELF file .*clang -target bpf"):
        bpfobj.check_object(text)
    with pytest.raises(CaseError, match=r"ELF file but not a BPF object .*machine 62"):
        bpfobj.check_object(Path(shutil.which("true")))  # an x86-64 executable


def test_case_file_that_does_not_compile_fails_before_any_vm(pytester, kernel_artifact, kernel_options):
    case = pytester.path / "cases" / "broken.bpf.c"
    case.parent.mkdir()
    case.write_text('// SPDX-License-Identifier: GPL-2.0\n/* Scratch: does not compile. */\n#include "harness.h"\n\n'
                    'char _license[] SEC("license") = "GPL";\n\nSEC("lsm/file_open")\n'
                    '__description("scratch: calls a function that does not exist")\n__success\n'
                    "int BPF_PROG(broken, struct file *file)\n{\n\treturn no_such_function(file);\n}\n")
    # The machine is an SSH target nobody listens on: asking for it would fail the case as a lost VM.
    result = pytester.runpytest_subprocess("cases", "-p", "no:cacheprovider", "--harness-cache",
                                           str(kernel_options.layout().root), "--target", "ssh://root@127.0.0.1:9",
                                           timeout=600)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*broken.bpf.c: does not compile against*vmlinux.h*",
                                 "*broken.bpf.c:12:*error: call to undeclared function 'no_such_function'*"])
    assert "lost VM" not in result.stdout.str(), "a machine was asked for before the case compiled"


def _patch_dir_with(tmp_path: Path, name: str, text: str) -> Path:
    pdir = tmp_path / "patches"
    pdir.mkdir()
    series = (DEFAULT_PATCHES_DIR / "series").read_text()
    for p in DEFAULT_PATCHES_DIR.glob("*.patch"):
        shutil.copy(p, pdir / p.name)
    (pdir / name).write_text(text)
    (pdir / "series").write_text(series.rstrip("\n") + f"\n{name}\n")
    return pdir


NOT_APPLYING = """\
From: bpf-audit-harness tests <tests@invalid>
Subject: [PATCH] scratch: a hunk whose context is not in 6.12

--- a/security/commoncap.c
+++ b/security/commoncap.c
@@ -1,3 +1,3 @@
-// this line is not in the file
+// neither is this one
 // nor this context
"""


@pytest.mark.slow
def test_patch_that_does_not_apply(tmp_path):
    pdir = _patch_dir_with(tmp_path, "9999-does-not-apply.patch", NOT_APPLYING)
    err = _one_paragraph_error(_cli("build", "--patches", str(pdir)), "patch")
    assert "9999-does-not-apply.patch" in err and "security/commoncap.c" in err, err


@pytest.mark.slow
def test_config_option_that_cannot_be_satisfied(tmp_path):
    frag = tmp_path / "kvm.config"
    frag.write_text("# KVM_INTEL depends on KVM, which nothing turns on\nCONFIG_KVM_INTEL=y\n")
    err = _one_paragraph_error(_cli("build", "--fragment", str(frag)), "config")
    assert "did not stick" in err and "CONFIG_KVM_INTEL" in err and "kvm.config" in err, err
