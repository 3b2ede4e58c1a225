# SPDX-License-Identifier: GPL-2.0
"""Compose the kernel stages from user options: one place the CLI and the pytest plugin share."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ConfigError, PatchError
from harness.kernel import cache, kconfig
from harness.kernel.artifact import BuildRequest, BuildResult
from harness.kernel.build import build
from harness.kernel.patches import Series, load_series, series_dir
from harness.kernel.source import SourceSpec, identify, kernel_line_of, resolve
from harness.kernel.toolchain import check_llvm
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
    kernel: Path | None = None  # a kernel built elsewhere (--kernel PATH): tested as it is, nothing is built
    kernel_config: Path | None = None  # the developer's .config: the fragments go onto it instead of allnoconfig
    # make's LLVM= for the kernel build (--llvm, else $LLVM as the kernel's own make reads it; '': gcc)
    llvm: str = field(default_factory=lambda: os.environ.get("LLVM", "").strip())

    def layout(self) -> CacheLayout:
        return CacheLayout(self.cache_dir or cache_root())


def options_of_target(target, cache_dir: Path | None = None) -> KernelOptions:
    """The KernelOptions of a matrix target (the one place a target becomes options). A prebuilt-deb target has no
    options of its own: acquire() is given the target itself."""
    if target.kind == "prebuilt":
        return KernelOptions(kernel=Path(target.path), cache_dir=cache_dir)
    return KernelOptions(kernel_src=target.kernel_src or None, ref=target.ref, no_patches=not target.series,
                         extra_fragments=target.fragments, cache_dir=cache_dir)


def acquire(opts: KernelOptions, *, target=None, accel: str = "auto", run_dir: Path | None = None,
            progress: bool = True, say=None) -> BuildResult:
    """The kernel a run tests, as an artifact: the one place that decides between a kernel the user gave
    (--kernel PATH, or a tree with an in-tree build: used as it is), a prebuilt Debian image (a matrix target of
    that kind) and a build (cached by its inputs)."""
    layout = opts.layout()
    cache.ensure_writable(layout)
    if target is not None and target.kind == "prebuilt-deb":
        from harness.kernel.prebuilt import PrebuiltRequest
        from harness.kernel.prebuilt import prepare as prepare_prebuilt

        return prepare_prebuilt(PrebuiltRequest.for_target(target, accel), layout,
                                run_dir or new_run_dir(layout, "prebuilt"), progress=progress)
    given_path = opts.kernel
    notes: tuple[str, ...] = ()
    if given_path is None and opts.kernel_src and not opts.ref:
        in_tree = _in_tree_build(Path(opts.kernel_src).expanduser())
        if in_tree is not None:
            given_path, notes = in_tree
    if given_path is not None:
        from dataclasses import replace

        from harness.kernel import given

        fragments = tuple(kconfig.load_fragments(opts.config_dir, opts.extra_fragments))
        res = given.prepare(given.locate(given_path), layout, fragments=fragments, say=say)
        return replace(res, notes=(*notes, *res.notes))
    return build_kernel(opts, run_dir=run_dir, progress=progress)


def _in_tree_build(tree: Path) -> tuple[Path, tuple[str, ...]] | None:
    """A kernel tree built in place (make -C TREE, as vng and most developers do) is used as it is, never cleaned
    or rebuilt: (the tree, what to tell the user); None for any other source."""
    from harness.kernel.trees import IN_TREE_BUILD_STATE

    if not tree.is_dir() or not any((tree / rel).exists() for rel in IN_TREE_BUILD_STATE):
        return None
    return tree, (f"{tree} holds an in-tree build: testing that build as it is (its bzImage and vmlinux; nothing "
                  f"built, nothing in the tree changed). After an edit, run make in it (make -C {tree} bzImage), "
                  "or `make mrproper` there to let the harness build it out of tree with the series.",)


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
                        base_config=_base_config(opts.kernel_config), llvm=llvm)


def _base_config(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        text = Path(path).expanduser().read_text(errors="replace")
    except OSError as e:
        raise ConfigError(f"--kernel-config {path}: {e.strerror}: give the .config to build onto.", usage=True) from e
    if "CONFIG_" not in text:
        raise ConfigError(f"--kernel-config {path} holds no CONFIG_ line: not a kernel .config.", usage=True)
    return text


def build_kernel(opts: KernelOptions, *, run_dir: Path | None = None, progress: bool = True) -> BuildResult:
    layout = opts.layout()
    cache.ensure_writable(layout)  # the run directory is the first thing written there
    run_dir = run_dir or new_run_dir(layout, "build")
    req = make_request(opts, log=run_dir / "fetch.log")
    return build(req, run_dir, progress=progress)
