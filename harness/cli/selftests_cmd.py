# SPDX-License-Identifier: GPL-2.0
"""The selftests subcommand's handler: the RUN_TESTS listing and run, and --test-progs (test_progs in a guest)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli.commands import _llvm
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
    from harness.kernel.request import KernelOptions, acquire
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

    opts = KernelOptions(kernel=ns.kernel, kernel_src=ns.kernel_src, cache_dir=layout.root, **_llvm(ns))
    built = acquire(opts)
    art = built.artifact
    tree, notes = tp.kernel_tree(art, lambda: tp_source(ns, layout))
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


def tp_source(ns: argparse.Namespace, layout) -> Path:
    from harness.campaigns.selftests import source_tree

    return source_tree(ns.kernel_src, layout)


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
    tree, vmlinux_h = _selftests_inputs(ns, layout)
    vmlinux = vmlinux_h.parent / "vmlinux" if ns.vmlinux_h is None else None  # a kernel entry: as the Makefile does
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
    """Run the selected files of the tree's RUN_TESTS set on the kernel under test (built from --kernel-src, by
    default the default kernel) through an inner pytest; print the per-file table, write the JSON summary."""
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
    inner = [*options.pytest_args(settings), *(["--llvm", ns.llvm] if ns.llvm else [])]
    known = load_known_differences(ns.known_differences)
    layout = CacheLayout(ns.cache_dir or cache_root())
    if ns.kernel_target and (ns.kernel_src or ns.no_patches or ns.kernel):
        raise UsageError("--kernel-target names the kernel and its source: not with --kernel-src, --kernel or "
                         "--no-patches")
    if ns.kernel_target:
        from harness.kernel.targets import load as load_matrix

        tree = st.source_tree(load_matrix().get(ns.kernel_target).kernel_src, layout)
    elif ns.kernel_src or not ns.kernel:
        tree = st.source_tree(ns.kernel_src, layout)
    else:
        tree = _given_tree(ns.kernel)
    selector = build_selector(tree, t=ns.t, a=ns.a, b=ns.b, d=ns.d, use_lists=not ns.no_denylist)
    chosen = st.select_files(tree, ns.files, selector=selector)
    if not chosen.files:
        raise UsageError(f"no RUN_TESTS file of {tree} is selected (-t/-a/-b/-d"
                         f"{', and the tree DENYLIST: --no-denylist runs everything' if selector.sources else ''})")
    out = (ns.out or new_run_dir(layout, "selftests")).resolve()
    run = st.SelftestsRun(chosen.tree, chosen.files, out,
                          workers=ns.workers, kernel_src=None if ns.kernel else ns.kernel_src, kernel=ns.kernel,
                          cache_dir=ns.cache_dir, accel=ns.accel,
                          known=tuple(known), extra_pytest=(*inner, *ns.pytest_arg), selector=selector,
                          verbosity=min(ns.verbose, 2), no_patches=ns.no_patches, last_failed=ns.last_failed,
                          target=ns.kernel_target,
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


def _selftests_inputs(ns: argparse.Namespace, layout) -> tuple[Path, Path]:
    """The tree (--kernel-src, default the default kernel's source, unpacked into the cache) and the vmlinux.h
    (--vmlinux-h, default: the one of the kernel `bpf-audit-harness build` builds from that tree; never built
    here)."""
    from harness.campaigns.selftests import source_tree

    if ns.kernel and ns.vmlinux_h is None:  # a kernel built elsewhere: its tree, its vmlinux.h (prepared here)
        from harness.kernel.request import KernelOptions, acquire

        art = acquire(KernelOptions(kernel=ns.kernel, cache_dir=layout.root)).artifact
        return (source_tree(ns.kernel_src, layout) if ns.kernel_src else _given_tree(ns.kernel)), art.vmlinux_h
    tree = source_tree(ns.kernel_src, layout)  # a directory is used in place: listing it needs no identity walk
    if ns.vmlinux_h is not None:
        if not ns.vmlinux_h.is_file():
            raise UsageError(f"--vmlinux-h {ns.vmlinux_h} does not exist")
        return tree, ns.vmlinux_h
    from harness.kernel import cache
    from harness.kernel.request import KernelOptions, make_request
    from harness.selftests.listing import SelftestsError

    opts = KernelOptions(kernel_src=ns.kernel_src, cache_dir=layout.root, **_llvm(ns))
    key = make_request(opts, unpack=False).key_inputs().key()
    entry = cache.published(layout, key)
    if entry is None or not (entry / "vmlinux.h").is_file():
        src = f" --kernel-src {ns.kernel_src}" if ns.kernel_src else ""
        raise SelftestsError(f"no kernel built from this source is in the cache (key {key}), so there is no "
                             f"vmlinux.h to compile against: run `bpf-audit-harness build{src}` first, or pass "
                             "--vmlinux-h FILE")
    return tree, entry / "vmlinux.h"
