# SPDX-License-Identifier: GPL-2.0
"""Which kernel to test, as options: one table for pytest and the CLI, and the one mapping to KernelOptions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

# (flags, keyword arguments, older names): the same for pytest's addoption and argparse's add_argument, so a setting
# has one name and one meaning everywhere. An older name (what one front end used to call it) is kept as an alias in
# both. Adding a kernel option is one row here and one field of KernelOptions (harness.kernel.request).
OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any], tuple[str, ...]], ...] = (
    (("--kernel",), dict(type=Path, metavar="PATH", help=(
        "test a kernel built elsewhere as it is: a bzImage (its vmlinux beside it) or a build directory (make "
        "O=DIR, or a tree built in place); nothing is built")), ()),
    (("--kernel-src",), dict(metavar="SRC", help=(
        "a Debian source line of kernel-config/sources.toml (debian-7.3, debian-6.12: fetched into the cache), a "
        "kernel tree (one built in place is tested as it is), a git tree (with --kernel-ref) or a source tarball; "
        "default: the source of kernel-config/matrix.toml's default target")), ()),
    (("--kernel-ref",), dict(metavar="REF", help="git ref to build from --kernel-src (checked out in a worktree)"),
     ("--ref",)),
    (("--patches",), dict(type=Path, help=(
        "patches root with one series per kernel line (<major.minor>/series; the series of the source's line "
        "applies), or a directory holding your own `series` file (default: patches/)")), ()),
    (("--no-patches",), dict(action="store_true", help="build the source as is, without the series"), ()),
    (("--mutant",), dict(metavar="NAME", help=(
        "apply <series dir>/mutants/NAME.patch after the series (a deliberately broken kernel)")), ()),
    (("--kernel-config-dir",), dict(type=Path, metavar="DIR", help="directory of *.config fragments (default: "
                                    "kernel-config/)"), ("--config-dir",)),
    (("--fragment",), dict(type=Path, action="append", default=[], metavar="FILE",
                           help="extra config fragment, merged after the directory's (repeatable)"), ()),
    (("--kernel-config",), dict(type=Path, metavar="FILE", help=(
        "your own .config: the fragments are applied onto it (olddefconfig) instead of allnoconfig; each option "
        "they ask for must still stick")), ()),
    (("--cache-dir",), dict(type=Path, metavar="DIR", help="the harness cache (default: $BPF_AUDIT_HARNESS_CACHE, "
                                                          "else ~/.cache/bpf-audit-harness)"),
     ("--harness-cache",)),
    (("--jobs",), dict(type=int, metavar="N", help="make -j (default: the number of CPUs)"), ()),
    (("--llvm",), dict(metavar="LLVM", help=(
        "build the kernel with make LLVM=LLVM (1, -19 or /usr/lib/llvm-19/bin/: clang and LLVM's binutils; keyed "
        "apart from a gcc build); default $LLVM, else gcc")), ()),
)
CLI_SHORT = {"--jobs": ("-j",)}  # pytest reserves short options for itself
# The table's options that say which kernel (or part of it). The others say how to build it or where the cache is.
# With none of these and no --kernel-target, a run's kernel is the matrix's default target as a whole (its boot
# options too); with --kernel-target, any of these is a usage error (the target already names the kernel).
NAMING = tuple(flags[0] for flags, _kwargs, _older in OPTIONS if flags[0] not in ("--cache-dir", "--jobs", "--llvm"))


def add_options(add: Callable[..., Any], *, cli: bool = False, skip: tuple[str, ...] = ()) -> None:
    """Register the table with `add` (an argparse parser's add_argument, or a pytest group's addoption); `skip`
    leaves out options a subcommand does not take."""
    for flags, kwargs, older in OPTIONS:
        if flags[0] in skip:
            continue
        short = CLI_SHORT.get(flags[0], ()) if cli else ()
        add(*short, *flags, *older, **kwargs)


def dest(flag: str) -> str:
    """The attribute (argparse) or option name (pytest's getoption) under which `flag` is found."""
    return flag.lstrip("-").replace("-", "_")


def options_from(get: Callable[[str], Any], cache_dir: Path | None = None):
    """The KernelOptions the table's options ask for; `get(dest)` reads one (None or falsy: not given)."""
    from harness.kernel.request import KernelOptions

    kw: dict[str, Any] = dict(
        kernel=get("kernel"), kernel_src=get("kernel_src"), ref=get("kernel_ref"), no_patches=bool(get("no_patches")),
        mutant=get("mutant"), extra_fragments=tuple(get("fragment") or ()), kernel_config=get("kernel_config"),
        cache_dir=cache_dir or get("cache_dir"))
    for field, name in (("patches_dir", "patches"), ("config_dir", "kernel_config_dir"), ("jobs", "jobs"),
                        ("llvm", "llvm")):
        value = get(name)
        if value:
            kw[field] = value
    return KernelOptions(**kw)


def options_for(get: Callable[[str], Any], target, cache_dir: Path | None):
    """The KernelOptions of a run: a matrix `target`'s (the one named, or the default when no option names the
    kernel) with `--llvm` on top; without a target, the options' own (options_from). pytest and `selftests` both
    ask this."""
    if target is None:
        return options_from(get, cache_dir)
    from dataclasses import replace

    from harness.kernel.request import options_of_target

    opts = options_of_target(target, cache_dir)
    return replace(opts, llvm=get("llvm")) if get("llvm") else opts


def given_options(present: Callable[[str], bool]) -> list[str]:
    """The table's options the user gave (their flags), by `present(dest)`."""
    return [flags[0] for flags, _kwargs, _older in OPTIONS if present(dest(flags[0]))]


def naming_given(present: Callable[[str], bool]) -> list[str]:
    """The options naming the kernel (NAMING) the user gave, by `present(dest)`."""
    return [flag for flag in given_options(present) if flag in NAMING]
