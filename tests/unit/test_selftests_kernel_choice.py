# SPDX-License-Identifier: GPL-2.0
"""`selftests` takes the kernel options of harness.kernel.choice's table and maps them as `build` and pytest do:
parsed by the real parser, mapped by kernel_choice to the KernelOptions it acquires (nothing built or booted)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from harness.cli.args import build_parser
from harness.cli.selftests_cmd import kernel_choice
from harness.errors import UsageError
from harness.kernel.request import options_of_target
from harness.kernel.targets import default_target
from harness.kernel.targets import load as load_matrix
from harness.settings import CacheLayout


def _choice(tmp_path: Path, *args: str):
    ns = build_parser().parse_args(["selftests", *args])
    return ns, kernel_choice(ns, CacheLayout(tmp_path / "cache"))


def test_fragment_and_patches_reach_the_kernel_options(tmp_path: Path) -> None:
    frag, patches = tmp_path / "extra.config", tmp_path / "patches"
    _ns, (opts, target) = _choice(tmp_path, "--fragment", str(frag), "--patches", str(patches), "verifier_and")
    assert target is None  # the options name the kernel: not the default target as a whole
    assert opts.extra_fragments == (frag,) and opts.patches_dir == patches
    assert opts.cache_dir == tmp_path / "cache"


def test_every_old_spelling_still_parses(tmp_path: Path) -> None:
    ns, (opts, target) = _choice(tmp_path, "--kernel-src", "debian-6.12", "--no-patches", "--ref", "v1",
                                 "--config-dir", str(tmp_path), "--harness-cache", str(tmp_path / "c"),
                                 "--mutant", "m", "--kernel-config", str(tmp_path / ".config"), "--llvm", "1")
    assert target is None and ns.cache_dir == tmp_path / "c"
    assert (opts.kernel_src, opts.no_patches, opts.ref, opts.config_dir, opts.mutant, opts.llvm) == (
        "debian-6.12", True, "v1", tmp_path, "m", "1")
    assert opts.kernel_config == tmp_path / ".config"


def test_selftests_jobs_is_list_compilers_not_make_j(tmp_path: Path) -> None:
    """selftests' --jobs (and -j, its -n) keeps its own meaning: the table's --jobs is not registered here."""
    ns, (opts, _target) = _choice(tmp_path, "--jobs", "1", "-j", "3", "--kernel-src", "debian-6.12")
    assert ns.jobs == 1 and ns.workers == 3
    assert opts.jobs == (os.cpu_count() or 1)  # make -j: its default, not --list's compilers


def test_no_kernel_option_is_the_default_target_as_a_whole(tmp_path: Path) -> None:
    _ns, (opts, target) = _choice(tmp_path, "--jobs", "2", "--llvm", "1")
    assert target == default_target()
    assert opts == replace(options_of_target(target, tmp_path / "cache"), llvm="1")  # as pytest reads --llvm


def test_a_matrix_target_maps_as_the_matrix_does(tmp_path: Path) -> None:
    name = load_matrix().targets[-1].name
    _ns, (opts, target) = _choice(tmp_path, "--kernel-target", name)
    assert target is not None and target.name == name
    assert opts == options_of_target(target, tmp_path / "cache")


@pytest.mark.parametrize("extra", [["--fragment", "f.config"], ["--kernel-src", "debian-6.12"], ["--no-patches"],
                                   ["--kernel", "bzImage"], ["--patches", "p"]])
def test_a_matrix_target_takes_no_other_kernel_option(tmp_path: Path, extra: list[str]) -> None:
    with pytest.raises(UsageError, match=extra[0]):
        _choice(tmp_path, "--kernel-target", default_target().name, *extra)
