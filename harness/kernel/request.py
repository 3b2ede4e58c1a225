# SPDX-License-Identifier: GPL-2.0
"""Compose the kernel stages from user options: one place the CLI and the pytest plugin share."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import PatchError
from harness.kernel import cache, kconfig
from harness.kernel.build import BuildRequest, BuildResult, build
from harness.kernel.patches import load_series
from harness.kernel.source import SourceSpec, identify, resolve
from harness.settings import DEFAULT_CONFIG_DIR, DEFAULT_PATCHES_DIR, CacheLayout, cache_root, new_run_dir


@dataclass(frozen=True)
class KernelOptions:
    """Everything that decides which kernel gets built; mirrors the CLI/pytest options."""

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

    def layout(self) -> CacheLayout:
        return CacheLayout(self.cache_dir or cache_root())


def make_request(opts: KernelOptions, *, unpack: bool = True) -> BuildRequest:
    """The build request for `opts`. unpack=False: a tarball source is only hashed (the request then serves for
    its cache key, never for a build)."""
    layout = opts.layout()
    cache.ensure_writable(layout)  # before anything writes there: a clear error, not a traceback from mkdir
    # The cheap checks of what the user typed first; resolving the source may unpack a tarball.
    series = load_series(opts.patches_dir, opts.series_file)
    if opts.no_patches:
        series = type(series)(series.directory, ())
    if opts.mutant:
        from harness.kernel.patches import with_mutant

        if opts.no_patches:
            raise PatchError(f"mutant {opts.mutant} applies on top of the series: it cannot be used without patches.",
                             usage=True)
        series = with_mutant(series, opts.patches_dir, opts.mutant)
    fragments = tuple(kconfig.load_fragments(opts.config_dir, opts.extra_fragments))
    kconfig.merge(list(fragments))  # conflicts surface before any copying or building
    spec = SourceSpec.from_args(opts.kernel_src, opts.ref)
    source = resolve(spec, layout) if unpack else identify(spec, layout)
    return BuildRequest(source=source, series=series, fragments=fragments, layout=layout, jobs=opts.jobs)


def build_kernel(opts: KernelOptions, *, run_dir: Path | None = None, progress: bool = True) -> BuildResult:
    req = make_request(opts)
    return build(req, run_dir or new_run_dir(req.layout, "build"), progress=progress)
