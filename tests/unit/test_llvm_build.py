# SPDX-License-Identifier: GPL-2.0
"""LLVM= kernel builds (--llvm, $LLVM): keyed apart from the gcc build of the same tree (another cache entry and
build slot), make run with LLVM= and its clang, bad values and missing tools said clearly. No build runs here."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import PLAIN_SOURCE

from harness.errors import ConfigError, MissingToolError
from harness.kernel.build import make_command, slot_dir
from harness.kernel.request import KernelOptions, make_request
from harness.kernel.toolchain import check_llvm, llvm_tool, require_llvm, toolchain_identity


@pytest.fixture
def opts(plain_source, pytestconfig, monkeypatch) -> KernelOptions:
    from harness.plugin import harness_cache_root

    monkeypatch.delenv("LLVM", raising=False)
    return KernelOptions(kernel_src=PLAIN_SOURCE, cache_dir=harness_cache_root(pytestconfig))


def test_an_llvm_build_has_its_own_key_and_slot(opts, monkeypatch):
    gcc = make_request(opts, unpack=False, offline=True)
    llvm1 = make_request(replace(opts, llvm="1"), unpack=False, offline=True)
    llvm19 = make_request(replace(opts, llvm="-19"), unpack=False, offline=True)
    keys = {r.key_inputs().key() for r in (gcc, llvm1, llvm19)}
    assert len(keys) == 3, keys
    assert gcc.key_inputs().toolchain == toolchain_identity() and gcc.llvm == ""  # a gcc key is what it was
    assert llvm1.key_inputs().toolchain[0] == "LLVM=1"
    tree, merged = Path("/tree"), gcc.merged
    assert slot_dir(gcc.layout, tree, merged) != slot_dir(gcc.layout, tree, merged, "1")
    # $LLVM is read as the kernel's own make reads it: the same key as --llvm 1
    monkeypatch.setenv("LLVM", "1")
    from_env = make_request(KernelOptions(kernel_src=PLAIN_SOURCE, cache_dir=opts.cache_dir), unpack=False,
                            offline=True)
    assert from_env.key_inputs().key() == llvm1.key_inputs().key()


def test_make_runs_with_llvm_and_its_clang(opts):
    req = make_request(replace(opts, llvm="-19"), unpack=False, offline=True)
    argv, env = make_command(req, Path("/tree"), Path("/slot"))
    cc = "ccache clang-19" if shutil.which("ccache") else "clang-19"
    assert argv[:5] == ["make", "-C", "/tree", "O=/slot", f"-j{req.jobs}"]
    assert argv[5:] == ["LLVM=-19", f"CC={cc}", "bzImage", "vmlinux"]
    gcc = make_request(opts, unpack=False, offline=True)
    assert "LLVM=" not in " ".join(make_command(gcc, Path("/tree"), Path("/slot"))[0])
    assert env["KBUILD_BUILD_TIMESTAMP"] == "@0" and "MAKEFLAGS" not in env


def test_llvm_values_as_make_takes_them():
    assert [llvm_tool(v, "ld.lld") for v in ("1", "-19", "/usr/lib/llvm-19/bin/")] == \
        ["ld.lld", "ld.lld-19", "/usr/lib/llvm-19/bin/ld.lld"]
    assert check_llvm(" 1 ") == "1" and check_llvm("") == ""
    with pytest.raises(ConfigError) as e:
        check_llvm("19")
    assert e.value.usage and "LLVM=-19 (a suffix" in str(e.value)


@pytest.mark.skipif(shutil.which("ld.lld-19") is not None, reason="lld-19 is installed: nothing missing to show")
def test_missing_llvm_tools_are_named_with_their_packages():
    with pytest.raises(MissingToolError) as e:
        require_llvm("-19")
    assert "ld.lld-19" in str(e.value) and "apt-get install clang-19 lld-19 llvm-19" in str(e.value)
