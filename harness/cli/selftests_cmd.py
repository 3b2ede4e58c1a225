# SPDX-License-Identifier: GPL-2.0
"""The selftests subcommand's handler: the RUN_TESTS listing and run, and --test-progs (test_progs in a guest)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.errors import EXIT_HARNESS, EXIT_OK, HarnessError, UsageError


def cmd_selftests(ns: argparse.Namespace) -> int:
    """The kernel's own BPF selftests (RUN_TESTS programs). --list discovers, compiles and parses them (no VM; 3
    when a file did not compile). Otherwise every subtest runs in guests (an inner pytest, -n workers) and is
    judged as test_loader judges it: exit 1 when one failed, 3 when one got no verdict, else 0."""
    if ns.json:
        try:
            ns.json.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"--json {ns.json}: its directory cannot be created ({e.strerror})") from e
    if ns.jobs is not None and ns.jobs < 1:
        raise UsageError("--jobs must be >= 1")
    if ns.workers < 1:
        raise UsageError("-n/-j/--workers must be >= 1")
    if ns.test_progs:
        return _test_progs(ns)
    if ns.list:
        return _selftests_list(ns)
    return _selftests_run(ns)


def _test_progs(ns: argparse.Namespace) -> int:
    """selftests --test-progs NAME...: the kernel under test (built from --kernel-src with patches/, a cache hit
    once built), the tree it was built from, its test_progs trimmed to NAME... (cached), one guest, the verdicts.
    Exit 1 when a subtest failed, 3 when something got no verdict (a build, the machine, a crash), else 0."""
    import shutil

    from harness.campaigns import test_progs as tp
    from harness.kernel.request import acquire
    from harness.settings import CacheLayout, cache_root, new_run_dir

    if ns.files:
        raise UsageError("name RUN_TESTS files or --test-progs tests, not both (FILE... is for the RUN_TESTS set)")
    if ns.vmlinux_h is not None:
        raise UsageError("--vmlinux-h is for the RUN_TESTS --list: test_progs is built against the kernel under test")
    if ns.test_progs_verbose and ns.list:
        raise UsageError("--test-progs-verbose is for a run; --list runs nothing")
    if not 0 < ns.timeout <= 3600:
        raise UsageError("--timeout must be in (0, 3600] seconds (the guest agent's limit)")
    layout = CacheLayout(ns.cache_dir or cache_root())
    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    opts, target = kernel_choice(ns, layout)
    built = acquire(opts, target=target, accel=ns.accel or "auto")
    art = built.artifact
    tree, notes = tp.kernel_tree(art, lambda: selftests_tree(ns, target, layout, given=False))
    say(f"kernel under test: {art.release} ({'cache hit' if built.cache_hit else 'built'}, key {art.key}); "
        f"test_progs from {tree}")
    if ns.list:
        return _test_progs_list(ns, tree, art, layout, say)
    from harness.machine import options
    from harness.machine.pool import PoolConfig

    settings = options.from_namespace(ns)
    gdb = options.pick_gdb_ports(settings, 1)
    out = (ns.out or new_run_dir(layout, "test_progs")).resolve()
    pool = PoolConfig(kernel=art.bzimage, accel=ns.accel or "auto", run_dir=out, state_dir=layout.state,
                      worker="test_progs", cpus=settings.cpus, memory=settings.memory, append=settings.append,
                      gdb_port=gdb)
    if gdb is not None:
        say(f"gdb: QEMU's gdb stub on 127.0.0.1:{gdb} (kernel booted with nokaslr):\n  "
            f"{options.gdb_command(art.vmlinux, gdb)}")
    outcome = tp.run_test_progs(tree, ns.test_progs, art, layout, out, pool, timeout=ns.timeout,
                                verbose=ns.test_progs_verbose, say=say)
    outcome.notes[:0] = notes
    path = outcome.write()
    sys.stdout.write(tp.format_table(outcome))
    if ns.json:
        shutil.copyfile(path, ns.json)
        outcome.paths["--json"] = ns.json
    for kind, p in outcome.paths.items():
        print(f"{kind:15} {p}")
    return tp.exit_code(outcome)



def kernel_choice(ns: argparse.Namespace, layout) -> tuple[Any, Any]:
    """The KernelOptions of the kernel under test and its matrix target (None: the options name the kernel), as
    the pytest plugin maps the same options (harness.run_kernel.kernel_options_from): --kernel-target NAME; else,
    with no option naming the kernel, the matrix's default target; else harness.kernel.choice.options_from.
    selftests' own --jobs (--list's compilers) is not make's -j: it is not read as one."""
    from harness.kernel import choice
    from harness.kernel.targets import default_target
    from harness.kernel.targets import load as load_matrix

    def get(name: str) -> Any:
        return None if name == "jobs" else getattr(ns, name, None)

    naming = choice.naming_given(lambda d: bool(get(d)))
    if ns.kernel_target and naming:
        raise UsageError(f"--kernel-target names the kernel and its source: not with {', '.join(naming)}")
    target = None if naming else load_matrix().get(ns.kernel_target) if ns.kernel_target else default_target()
    return choice.options_for(get, target, layout.root), target


def selftests_tree(ns: argparse.Namespace, target, layout, *, given: bool = True) -> Path:
    """The tree whose selftests run: a matrix target's source (the default kernel's when no option names one);
    else --kernel-src (at --kernel-ref); else the source tree of the kernel given with --kernel (`given`; without
    it: the default kernel's source)."""
    from harness.campaigns.selftests import source_tree

    if target is not None:
        return source_tree(target.kernel_src or None, layout, ref=target.ref)
    if ns.kernel_src or not ns.kernel or not given:
        return source_tree(ns.kernel_src, layout, ref=ns.kernel_ref)
    return _given_tree(ns.kernel)


def _test_progs_list(ns: argparse.Namespace, tree: Path, art, layout, say) -> int:
    """--list --test-progs: resolve the names, build test_progs (cached), list its tests and what went in."""
    import json

    from harness.selftests.testprogs.build import build_test_progs
    from harness.selftests.testprogs.entry import describe
    from harness.selftests.testprogs.plan import select

    selection = select(tree, ns.test_progs)
    built = build_test_progs(tree, selection, art.vmlinux_h, layout, vmlinux=art.vmlinux, say=say)
    for f in selection.files:
        print(f"{f.path.name}: {', '.join(f.tests)}")
    print(f"run: test_progs -a {','.join(selection.selectors)}")
    for line in describe(built):
        print(line)
    print(f"entry {built.entry}")
    if ns.json:
        ns.json.write_text(json.dumps({"tree": str(tree), "files": {f.path.name: list(f.tests) for f in
                                                                     selection.files},
                                       "selectors": list(selection.selectors), "entry": str(built.entry),
                                       "key": built.key, "cached": built.cached, **built.meta}, indent=1) + "\n")
        print(f"json   {ns.json}")
    return EXIT_OK


def _selftests_list(ns: argparse.Namespace) -> int:
    import json

    from harness.selftests.listing import run_list
    from harness.settings import CacheLayout, cache_root

    layout = CacheLayout(ns.cache_dir or cache_root())
    tree, vmlinux_h, vmlinux = _selftests_inputs(ns, layout)  # vmlinux: a kernel entry's, as the Makefile does
    listing = run_list(tree, vmlinux_h, layout, ns.files, jobs=ns.jobs, vmlinux=vmlinux)
    sys.stdout.write(listing.table())
    if ns.json:
        try:
            ns.json.write_text(json.dumps(listing.to_json(), indent=1) + "\n")
        except OSError as e:
            raise HarnessError(f"--json {ns.json} cannot be written: {e.strerror}") from e
        print(f"json   {ns.json}")
    if listing.failed:
        print(f"bpf-audit-harness: selftests error: {len(listing.failed)} file(s) could not be compiled or read: "
              f"{', '.join(f.name for f in listing.failed)}", file=sys.stderr)
        return EXIT_HARNESS
    return EXIT_OK


def _selftests_run(ns: argparse.Namespace) -> int:
    """Run the selected files of the tree's RUN_TESTS set on the kernel under test (kernel_choice: by default the
    default kernel), acquired here, through an inner pytest handed that artifact; print the per-file table, write
    the JSON summary."""
    import json
    import shutil

    from harness.campaigns import selftests as st
    from harness.campaigns.known_differences import load_known_differences
    from harness.selftests.discover import discover
    from harness.selftests.select import build_selector
    from harness.settings import CacheLayout, cache_root, new_run_dir

    if ns.vmlinux_h is not None:
        raise UsageError("--vmlinux-h is for --list: a run compiles against the kernel under test's own vmlinux.h")
    if ns.workers < 1:
        raise UsageError("-n/--workers must be >= 1")
    from harness.machine import options

    settings = options.with_gdb_ports(options.from_namespace(ns), ns.workers)  # the inner run gets `--gdb PORT`
    known = load_known_differences(ns.known_differences)
    layout = CacheLayout(ns.cache_dir or cache_root())
    opts, target = kernel_choice(ns, layout)
    tree = selftests_tree(ns, target, layout)
    selector = build_selector(tree, t=ns.t, a=ns.a, b=ns.b, d=ns.d, use_lists=not ns.no_denylist)
    chosen = st.select_files(tree, ns.files, selector=selector)
    if not chosen.files:
        raise UsageError(f"no RUN_TESTS file of {tree} is selected (-t/-a/-b/-d"
                         f"{', and the tree DENYLIST: --no-denylist runs everything' if selector.sources else ''})")
    out = (ns.out or new_run_dir(layout, "selftests")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    kernel, settings = _kernel_under_test(ns, opts, target, out, settings)
    inner = options.pytest_args(settings)
    run = st.SelftestsRun(chosen.tree, chosen.files, out, workers=ns.workers, kernel=kernel,
                          cache_dir=ns.cache_dir, accel=ns.accel,
                          known=tuple(known), extra_pytest=(*inner, *ns.pytest_arg), selector=selector,
                          verbosity=min(ns.verbose, 2), last_failed=ns.last_failed,
                          pytest_cache=layout.root / "pytest-cache" / f"selftests-{_digest(str(chosen.tree))}")
    lists = f"; {', '.join(selector.sources)}" if selector.sources else ""
    print(f"selftests: {len(run.files)} file(s) of {tree}, {ns.workers} worker(s){lists}; log {out / 'pytest.log'}",
          file=sys.stderr)
    # --gdb: the inner run's header says where each VM's stub listens and the line to type, so it is shown
    summary, paths = st.run_selftests(run, progress=sys.stderr if ns.verbose or settings.gdb is not None else None)
    sys.stdout.write(st.format_table(summary))
    if ns.json:
        shutil.copyfile(paths["json"], ns.json)
        paths["--json"] = ns.json
    if ns.json_report:
        from harness.selftests.test_progs_log import name_of_test

        skeletons = {s.name: s for s in discover(chosen.tree).skeletons}
        tests = {name: name_of_test(skeletons[name].test) for name in chosen.names if name in skeletons}
        ns.json_report.write_text(json.dumps(st.to_test_progs_json(summary, tests, verbose=ns.verbose > 0), indent=1)
                                  + "\n")
        paths["-J"] = ns.json_report
    for kind, path in paths.items():
        print(f"{kind:6} {path}")
    return st.exit_code(summary)


def _kernel_under_test(ns: argparse.Namespace, opts, target, out: Path, settings):
    """Acquire the kernel under test here (a build shows its progress in this process; its log goes to `out`) and
    say which it is. Returns what the inner pytest is handed, never a recipe to re-derive: the artifact's cache
    entry (--kernel takes every kind, a prebuilt Debian image's too), and the guest settings with the target's
    kernel command line before the user's --append (the inner session, told only the entry, knows no target)."""
    from dataclasses import replace

    from harness.kernel.request import acquire

    built = acquire(opts, target=target, accel=ns.accel or "auto", run_dir=out)
    art = built.artifact
    for note in built.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"kernel under test: {art.release} ({'cache hit' if built.cache_hit else 'built'}, key {art.key})",
          file=sys.stderr)
    append = target.append if target is not None else ()
    return art.dir, replace(settings, append=(*append, *settings.append))


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _given_tree(kernel: Path) -> Path:
    """The source tree of a kernel built elsewhere (--kernel PATH), whose selftests run on it."""
    from harness.kernel import given

    tree = given.locate(kernel).source_tree
    if tree is None:
        raise UsageError(f"--kernel {kernel}: its source tree cannot be found (no `source` link beside the build): "
                         "name it with --kernel-src TREE")
    return tree


def _selftests_inputs(ns: argparse.Namespace, layout) -> tuple[Path, Path, Path | None]:
    """The tree (selftests_tree), the vmlinux.h and the vmlinux beside it (None with --vmlinux-h FILE). Default: the
    kernel under test's (kernel_choice): a kernel given with --kernel or a prebuilt image, prepared here; a build's
    from the cache (never built here)."""
    from harness.kernel.request import acquire

    opts, target = kernel_choice(ns, layout)
    if ns.vmlinux_h is not None:
        tree = selftests_tree(ns, target, layout, given=False)  # a directory is used in place: no identity walk
        if not ns.vmlinux_h.is_file():
            raise UsageError(f"--vmlinux-h {ns.vmlinux_h} does not exist")
        return tree, ns.vmlinux_h, None
    if opts.kernel is not None or (target is not None and target.kind == "prebuilt-deb"):
        art = acquire(opts, target=target, accel=ns.accel or "auto").artifact
        return selftests_tree(ns, target, layout), art.vmlinux_h, art.vmlinux
    tree = selftests_tree(ns, target, layout)
    from harness.kernel import cache
    from harness.kernel.request import make_request
    from harness.selftests.listing import SelftestsError

    key = make_request(opts, unpack=False).key_inputs().key()
    entry = cache.published(layout, key)
    if entry is None or not (entry / "vmlinux.h").is_file():
        src = (f" --kernel-target {ns.kernel_target}" if ns.kernel_target
               else f" --kernel-src {ns.kernel_src}" if ns.kernel_src else "")
        raise SelftestsError(f"no kernel built from this source is in the cache (key {key}), so there is no "
                             f"vmlinux.h to compile against: run `bpf-audit-harness build{src}` (with the same kernel "
                             "options) first, or pass --vmlinux-h FILE")
    return tree, entry / "vmlinux.h", entry / "vmlinux"
