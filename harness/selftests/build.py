# SPDX-License-Identifier: GPL-2.0
"""Compile selftest programs with upstream's recipe into the harness's content-addressed object cache."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.cases.compile import CompileResult, compile_cached
from harness.selftests.recipe import Recipe

Progress = Callable[[int, int, str, CompileResult], None]  # (done, total, name, result)


def compile_selftest(src: Path, recipe: Recipe, out_dir: Path) -> CompileResult:
    """Compile one progs/<name>.c (a cache hit when its source and every recipe input are unchanged).
    A compile error comes back in the result, never raised."""
    src = Path(src)
    stem = src.name.removesuffix(".c")
    try:
        source = src.read_bytes()
    except OSError as e:
        return CompileResult(None, False, f"cannot read {src}: {e.strerror}", recipe.argv(src, out_dir / f"{stem}.o"))
    key = recipe.object_key(src, source)[:24]
    # cwd: the selftests directory, as make runs the rule (a relative #include of the source resolves the same)
    return compile_cached(stem, key, lambda obj: recipe.argv(src, obj), out_dir, compiler=recipe.clang,
                          cwd=recipe.selftests)


def default_jobs() -> int:
    """Parallel compiles: the CPUs this process may use (os.sched_getaffinity), at least one."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def compile_all(sources: Iterable[tuple[str, Path]], recipe: Recipe, out_dir: Path, *, jobs: int | None = None,
                progress: Progress | None = None) -> dict[str, CompileResult]:
    """Compile every (name, source) with up to `jobs` compilers at once; results by name, in input order.
    `progress` is called (from this thread) after each one finishes."""
    items = list(sources)
    results: dict[str, CompileResult] = {}
    workers = max(1, min(jobs or default_jobs(), len(items) or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="selftest-cc") as pool:
        futures = [(name, pool.submit(compile_selftest, src, recipe, out_dir)) for name, src in items]
        for done, (name, fut) in enumerate(futures, 1):
            results[name] = fut.result()
            if progress is not None:
                progress(done, len(items), name, results[name])
    return {name: results[name] for name, _src in items}


def read_file_specs(skel, obj: Path, tree: Path, recipe: Recipe, out_dir: Path, testmod=None, *,
                    arch: str = "x86_64"):
    """A compiled RUN_TESTS file's FileSpecs as the tree's own test_loader reads them (its dialect), with what a run
    needs besides: the tree's helper names (the xlated disassembly) and the custom BTF objects its __btf_path /
    __btf_func_path tags name, built from progs/<stem>.c with the same recipe (or why not)."""
    from dataclasses import replace

    from harness.selftests.dialect import of_tree
    from harness.selftests.disasm import helper_names_of_tree
    from harness.selftests.suite import load_file

    fs = load_file(skel, obj, testmod, arch=arch, dialect=of_tree(tree), tree=tree)
    if fs.error:
        return fs
    built: dict[str, Path] = {}
    errors: dict[str, str] = {}
    for name in fs.btf_files():
        stem = Path(name).name.removesuffix(".o").removesuffix(".bpf")
        src = recipe.selftests / "progs" / f"{stem}.c"
        if not src.is_file():
            errors[name] = f"no {src} to build it from"
            continue
        res = compile_selftest(src, recipe, out_dir)
        if res.ok and res.obj is not None:
            built[name] = res.obj
        else:
            errors[name] = f"{src.name} does not compile: {res.stderr.strip()[-500:]}"
    try:
        helpers = helper_names_of_tree(tree)
    except OSError:
        helpers = {}
    return replace(fs, helpers=helpers, btf_objects=built, btf_errors=errors)
