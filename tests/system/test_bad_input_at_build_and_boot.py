# SPDX-License-Identifier: GPL-2.0
"""Bad input that only the real build or boot finds: a missing QEMU, a case file that does not compile, a patch
that does not apply, a config option that cannot be set. Each: one clear paragraph and a non-zero exit."""

import os
import shutil
import sys
from pathlib import Path

import pytest
from helpers import HARNESS, cli, default_source, one_paragraph_error

from harness.settings import DEFAULT_PATCHES_DIR

pytest_plugins = ["pytester"]


def test_missing_qemu_stops_the_boot_with_the_package_to_install(kernel_artifact, tmp_path):
    # PATH without QEMU (but with everything else the CLI needs): the boot names qemu-system-x86.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("ssh-keygen", "gcc", "ld", "pahole", "cat", "sh"):
        found = shutil.which(tool)
        if found:
            (bindir / tool).symlink_to(found)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{bindir}"}
    err = one_paragraph_error(cli("boot", "--", "true", env=env), "tools", HARNESS)
    assert "qemu-system-x86_64" in err and "apt-get install qemu-system-x86" in err


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
    source, line = default_source()
    series = (DEFAULT_PATCHES_DIR / line / "series").read_text()  # the default source's line
    for p in (DEFAULT_PATCHES_DIR / line).glob("*.patch"):
        shutil.copy(p, pdir / p.name)
    (pdir / name).write_text(text)
    (pdir / "series").write_text(series.rstrip("\n") + f"\n{name}\n")
    return pdir


NOT_APPLYING = """\
From: bpf-audit-harness tests <tests@invalid>
Subject: [PATCH] scratch: a hunk whose context is not in the tree

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
    err = one_paragraph_error(cli("build", "--kernel-src", default_source()[0], "--patches", str(pdir)), "patch",
                              HARNESS)
    assert "9999-does-not-apply.patch" in err and "security/commoncap.c" in err, err


@pytest.mark.slow
def test_config_option_that_cannot_be_satisfied(tmp_path):
    frag = tmp_path / "kvm.config"
    frag.write_text("# KVM_INTEL depends on KVM, which nothing turns on\nCONFIG_KVM_INTEL=y\n")
    err = one_paragraph_error(cli("build", "--fragment", str(frag)), "config", HARNESS)
    assert "did not stick" in err and "CONFIG_KVM_INTEL" in err and "kvm.config" in err, err
