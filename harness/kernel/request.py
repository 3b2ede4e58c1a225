# SPDX-License-Identifier: GPL-2.0
"""Compose the kernel stages from user options: one place the CLI and the pytest plugin share."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import PatchError
from harness.kernel import cache, kconfig
from harness.kernel.build import BuildRequest, BuildResult, build, check_llvm
from harness.kernel.patches import Series, load_series, series_dir
from harness.kernel.source import SourceSpec, identify, kernel_line_of, resolve
from harness.settings import DEFAULT_CONFIG_DIR, DEFAULT_PATCHES_DIR, CacheLayout, cache_root, new_run_dir


@dataclass(frozen=True)
class KernelOptions:
    """Everything that decides which kernel gets built; mirrors the CLI/pytest options. kernel_src None (and no
    ref): the default kernel, the target of kernel-config/matrix.toml with default = true (its source, series and
    fragments; no_patches, patches_dir, mutant and extra_fragments still apply on top of it). patches_dir is a
    patches root (one series per kernel line, patches/<line>/series) or a directory holding a series itself."""

    kernel_src: str | None = None
    ref: str | None = None
    patches_dir: Path = DEFAULT_PATCHES_DIR
    series_file: Path | None = None
    config_dir: Path = DEFAULT_CONFIG_DIR
    extra_fragments: tuple[Path, ...] = ()
    cache_dir: Path | None = None
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    no_patches: bool = False
    mutant: str | None = None  # a patches/mutants/<name>.patch applied after the series (mutation checks)
    # make's LLVM= for the kernel build (--llvm, else $LLVM as the kernel's own make reads it; '': gcc)
    llvm: str = field(default_factory=lambda: os.environ.get("LLVM", "").strip())

    def layout(self) -> CacheLayout:
        return CacheLayout(self.cache_dir or cache_root())


def effective(opts: KernelOptions) -> KernelOptions:
    """`opts` with the default kernel filled in when no source is named: the matrix's default target gives the
    source, whether its series applies (unless --patches or --mutant ask for one) and its extra fragments."""
    if opts.kernel_src is not None or opts.ref:
        return opts
    from dataclasses import replace

    from harness.kernel.targets import default_build_target

    target = default_build_target()
    wants_series = opts.patches_dir != DEFAULT_PATCHES_DIR or opts.series_file is not None or bool(opts.mutant)
    return replace(opts, kernel_src=target.source, no_patches=opts.no_patches or not (target.series or wants_series),
                   extra_fragments=(*target.fragments, *opts.extra_fragments))


def series_directory(opts: KernelOptions, spec: SourceSpec | None = None) -> Path:
    """The directory of the series `opts` apply: --patches DIR when it holds a series file, else the patches root's
    <line>/ for the kernel line of the source (known before anything is fetched or unpacked)."""
    opts = effective(opts)
    if opts.series_file is not None:
        return opts.patches_dir
    spec = spec or SourceSpec.from_args(opts.kernel_src, opts.ref)
    return series_dir(opts.patches_dir, kernel_line_of(spec, opts.layout()))


def _series(opts: KernelOptions, spec: SourceSpec) -> Series:
    if opts.no_patches:
        if opts.mutant:
            raise PatchError(f"mutant {opts.mutant} applies on top of the series: it cannot be used without patches.",
                             usage=True)
        return Series(opts.patches_dir, ())
    directory = series_directory(opts, spec)
    series = load_series(directory, opts.series_file)
    if opts.mutant:
        from harness.kernel.patches import with_mutant

        series = with_mutant(series, directory, opts.mutant)
    return series


def make_request(opts: KernelOptions, *, unpack: bool = True, offline: bool = False,
                 log: Path | None = None) -> BuildRequest:
    """The build request for `opts`. unpack=False: a tarball source is only hashed (the request then serves for
    its cache key, never for a build); offline=True (with unpack=False): a Debian line is what the cache holds,
    its archive is not asked. `log`: where apt's output goes when a Debian line is fetched."""
    layout = opts.layout()
    cache.ensure_writable(layout)  # before anything writes there: a clear error, not a traceback from mkdir
    opts = effective(opts)
    # The cheap checks of what the user typed first; resolving the source may fetch and unpack a tarball.
    spec = SourceSpec.from_args(opts.kernel_src, opts.ref)
    llvm = check_llvm(opts.llvm)
    series = _series(opts, spec)
    fragments = tuple(kconfig.load_fragments(opts.config_dir, opts.extra_fragments))
    kconfig.check_conflicts(list(fragments))  # for every kernel line, before any fetching, copying or building
    source = resolve(spec, layout, log=log) if unpack else identify(spec, layout, offline=offline, log=log)
    return BuildRequest(source=source, series=series, fragments=fragments, layout=layout, jobs=opts.jobs,
                        llvm=llvm)


def build_kernel(opts: KernelOptions, *, run_dir: Path | None = None, progress: bool = True) -> BuildResult:
    layout = opts.layout()
    cache.ensure_writable(layout)  # the run directory is the first thing written there
    run_dir = run_dir or new_run_dir(layout, "build")
    req = make_request(opts, log=run_dir / "fetch.log")
    return build(req, run_dir, progress=progress)
