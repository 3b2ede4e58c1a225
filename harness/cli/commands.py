# SPDX-License-Identifier: GPL-2.0
"""The subcommands' handlers: each turns parsed options into calls of the stages and returns an exit code."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import EXIT_FAILED, EXIT_HARNESS, EXIT_OK, UsageError


def kernel_options(ns: argparse.Namespace):
    """The KernelOptions the parsed options ask for: harness.kernel.choice's mapping, the same as pytest's."""
    from harness.kernel.choice import options_from

    return options_from(lambda name: getattr(ns, name, None))


def _llvm(ns: argparse.Namespace) -> dict:
    """--llvm as a KernelOptions keyword (none: KernelOptions reads $LLVM itself)."""
    return {"llvm": ns.llvm} if getattr(ns, "llvm", None) else {}


def cmd_build(ns: argparse.Namespace) -> int:
    from harness.kernel.request import acquire

    if ns.kernel_target or ns.print_key:
        if ns.kernel:
            raise UsageError("--kernel names a kernel built elsewhere: no --kernel-target or --print-key with it")
        return _build_target_or_key(ns)
    res = acquire(kernel_options(ns))
    art = res.artifact
    state = "cache hit" if res.cache_hit else "built"
    for note in res.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"{state} in {res.seconds:.1f}s: {art.release} key={art.key}")
    print(f"  source    {res.source}")
    from harness.kernel.toolchain import built_with

    print(f"  built by  {built_with(art.meta.toolchain, art.meta.llvm)}")
    print(f"  bzImage   {art.bzimage}")
    print(f"  vmlinux   {art.vmlinux}")
    print(f"  vmlinux.h {art.vmlinux_h}")
    return 0


def _build_target_or_key(ns: argparse.Namespace) -> int:
    """build --print-key (the cache key, for CI caches) and/or --kernel-target NAME (a matrix kernel)."""
    from harness.campaigns.matrix import spec as matrix_spec
    from harness.settings import CacheLayout, cache_root, new_run_dir

    layout = CacheLayout(ns.cache_dir or cache_root())
    target = matrix_spec.load(ns.matrix).get(ns.kernel_target) if ns.kernel_target else None
    if target is not None and (ns.kernel_src or ns.kernel_ref or ns.patches or ns.no_patches
                               or getattr(ns, "mutant", None)):
        raise UsageError("--kernel-target already names the kernel; drop the source options")
    if ns.print_key:
        if target is not None and target.kind == "prebuilt-deb":
            from harness.kernel.prebuilt import PrebuiltRequest

            actual, why = PrebuiltRequest.for_target(target).resolved()
            if why.note:
                print(why.note, file=sys.stderr)
            print(actual.key())
            return 0
        from harness.kernel.request import make_request, options_of_target

        if target is not None and target.kind == "prebuilt":
            raise UsageError(f"--print-key: {target.name} is a kernel built elsewhere (kind = \"prebuilt\"): its "
                             "key is its files' content, known once `build --kernel-target` prepared it")
        opts = kernel_options(ns) if target is None else options_of_target(target, layout.root)
        req = make_request(opts, unpack=False)
        for note in req.source.notes:
            print(f"note: {note}", file=sys.stderr)
        print(f"source: {req.source.describe()}", file=sys.stderr)
        print(req.key_inputs().key())
        return 0
    from harness.campaigns.matrix.run import prepare_target

    assert target is not None  # only --print-key comes here without a target
    res = prepare_target(target, layout, "auto", new_run_dir(layout, f"build-{target.name}"))
    for note in res.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"{'cache hit' if res.cache_hit else 'built'} in {res.seconds:.1f}s: {res.artifact.release} "
          f"key={res.artifact.key}")
    if res.source:
        print(f"  source    {res.source}")
    print(f"  kernel    {res.artifact.bzimage}\n  vmlinux.h {res.artifact.vmlinux_h}")
    return 0


def _matrix_exit(report) -> int:
    """1 when a case failed (or errored) on some kernel; else 3 when a kernel could not be run at all (its build or
    boot failed); else 0 (xfail, skip and flaky do not fail the matrix)."""
    if report.failures():
        return EXIT_FAILED
    return EXIT_OK if report.ok() else EXIT_HARNESS


def cmd_matrix(ns: argparse.Namespace) -> int:
    """Build and run the suite on each matrix kernel; write JUnit, JSON, HTML and text; exit 1 on a failure."""
    import time

    from harness.campaigns.matrix import spec as matrix_spec
    from harness.campaigns.matrix.run import MatrixOptions, run_matrix

    matrix = matrix_spec.load(ns.matrix)
    known = matrix_spec.parse_known_failures(ns.known_failures or matrix.path.parent / "known-failures.toml",
                                             matrix=matrix)
    names = [n.strip() for n in ns.targets.split(",") if n.strip()] if ns.targets else None
    targets = matrix.select(names)
    if ns.rerun_failures < 0:
        raise UsageError("--rerun-failures must be >= 0")
    selftests, known_differences = _matrix_suite(ns)

    def done(report, paths: dict[str, Path]) -> int:
        """The summary (per kernel counts and packages, then failures and flaky cases), not every row."""
        import shutil

        from harness.campaigns.matrix.formats import to_summary

        if ns.json and not (ns.json.exists() and ns.json.samefile(paths["json"])):
            ns.json.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(paths["json"], ns.json)
            paths = {**paths, "--json": ns.json}
        sys.stdout.write(to_summary(report))
        for kind, path in paths.items():
            print(f"{kind:6} {path}")
        return _matrix_exit(report)

    if ns.report_only:
        from harness.campaigns.matrix.run import report_from_dir, write_outputs

        report = report_from_dir(ns.report_only, targets, known, title=_matrix_title(ns.suite))
        return done(report, write_outputs(report, ns.out or ns.report_only, results_dir=ns.report_only))
    out = ns.out or Path("results") / f"matrix-{time.strftime('%Y%m%d-%H%M%S')}"
    opts = MatrixOptions(out_dir=out.resolve(), cases=tuple(ns.cases or ["cases"]), workers=ns.workers,
                         rerun_failures=ns.rerun_failures, cache_dir=ns.cache_dir, accel=ns.accel,
                         extra_pytest=tuple(ns.pytest_arg), suite=ns.suite, selftests=selftests,
                         known_differences=known_differences)
    return done(*run_matrix(matrix, targets, known, opts, title=_matrix_title(ns.suite)))


def _matrix_suite(ns: argparse.Namespace) -> tuple[tuple[str, ...], tuple]:
    """--suite's options checked together: --cases is the cases suite's, --selftests and --known-differences the
    selftests suite's. Returns the selftests names and known differences (empty for the cases suite)."""
    from harness.campaigns.matrix.selftests import parse_names

    if ns.suite == "cases":
        given = [o for o, v in (("--selftests", ns.selftests), ("--known-differences", ns.known_differences)) if v]
        if given:
            raise UsageError(f"{' and '.join(given)} only go{'es' if len(given) == 1 else ''} with --suite selftests")
        return (), ()
    if ns.cases is not None:
        raise UsageError("--cases is for --suite cases; with --suite selftests name files with --selftests FILE,...")
    from harness.campaigns.known_differences import load_known_differences

    return parse_names(ns.selftests), tuple(load_known_differences(ns.known_differences))


def _matrix_title(suite: str) -> str:
    return "bpf-audit-harness kernel matrix" + (": the kernels' own BPF selftests" if suite == "selftests" else "")


def cmd_boot(ns: argparse.Namespace) -> int:
    """Boot the harness's kernel (or --kernel IMAGE) and run CMD, or open an interactive shell."""
    import os
    import subprocess

    from harness.machine.vm import LocalVM, VMConfig
    from harness.settings import new_run_dir
    from harness.tools import require

    require("qemu-system-x86_64")  # before the kernel: a missing QEMU is named now, not after a build or a fetch
    opts = kernel_options(ns)
    if ns.kernel and Path(ns.kernel).is_file():
        image = Path(ns.kernel)  # a bzImage alone boots; only the tests need its vmlinux
    else:
        from harness.kernel.request import acquire

        image = acquire(opts).artifact.bzimage
    from harness.machine import options

    settings = options.from_namespace(ns)
    gdb = options.pick_gdb_ports(settings, 1)
    run_dir = new_run_dir(opts.layout(), "boot")
    vm = LocalVM(VMConfig(kernel=image, accel=ns.accel, memory=settings.memory, cpus=settings.cpus,
                          append=settings.append, gdb_port=gdb), run_dir, name="boot", state_dir=opts.layout().state)
    print(f"booting {image} (console log: {vm.console_log})", file=sys.stderr)
    with vm:
        assert vm.guest is not None and vm.accel is not None  # set by a successful start()
        print(f"up in {vm.boot_seconds:.1f}s ({vm.accel.accel}); ssh port 127.0.0.1:{vm.port}", file=sys.stderr)
        if gdb is not None:
            vmlinux = image.parent / "vmlinux"
            print(f"gdb: QEMU's gdb stub on 127.0.0.1:{gdb} (kernel booted with nokaslr):\n  "
                  f"{options.gdb_command(vmlinux if vmlinux.is_file() else 'vmlinux', gdb)}", file=sys.stderr)
        command = [c for c in ns.command if c != "--"]
        if command:
            import shlex

            res = vm.guest.run(shlex.join(command), timeout=ns.timeout)
            sys.stdout.write(res.stdout)
            sys.stderr.write(res.stderr)
            return _guest_exit(res.rc)
        t = vm.guest.target
        known = run_dir / "known_hosts"
        known.write_text(f"[127.0.0.1]:{t.port} ssh-ed25519 {t.host_key_b64}\n")
        argv = ["ssh", "-i", str(t.key), "-p", str(t.port), "-o", f"UserKnownHostsFile={known}",
                "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "root@127.0.0.1"]
        print("$ " + " ".join(argv), file=sys.stderr)
        return _guest_exit(subprocess.call(argv, env=os.environ), ssh=True)


def _guest_exit(rc: int, *, ssh: bool = False) -> int:
    """A command in the guest exited `rc`: 0 stays 0, a failure is 1 (its status said on stderr), and ssh's own
    255 (no connection) is the machine failing: 3."""
    if rc == 0:
        return EXIT_OK
    if ssh and rc == 255:
        print("bpf-audit-harness: vm error: ssh could not reach the guest (exit 255)", file=sys.stderr)
        return EXIT_HARNESS
    print(f"bpf-audit-harness: the command in the guest exited {rc}", file=sys.stderr)
    return EXIT_FAILED


def cmd_config(ns: argparse.Namespace) -> int:
    """The merged config fragments as one fragment, for the kernel line of the source the options name (the default
    kernel's without any); with --dump, each option with the fragment file and line that set it (and its kernel
    range). Nothing is fetched or unpacked: a Debian line's version is its line (7.3)."""
    from harness.kernel import kconfig
    from harness.kernel.request import effective
    from harness.kernel.source import SourceSpec, kernel_line_of

    opts = effective(kernel_options(ns))
    line = kernel_line_of(SourceSpec.from_args(opts.kernel_src, opts.ref), opts.layout())
    merged = kconfig.merge(kconfig.load_fragments(opts.config_dir, opts.extra_fragments), line)
    if ns.dump:
        sys.stdout.write(f"# merged for Linux {line} ({opts.kernel_src})\n")
    sys.stdout.write(merged.render(annotate=ns.dump))
    return 0


def cmd_cache(ns: argparse.Namespace) -> int:
    """Show what the cache holds; with --prune, evict kernels and case objects unused for a while."""
    from harness.kernel import gc
    from harness.settings import CacheLayout, cache_root

    layout = CacheLayout(Path(ns.cache_dir) if ns.cache_dir else cache_root())
    try:
        max_bytes = gc.parse_size(ns.max_size) if ns.max_size else None
    except ValueError as e:
        raise UsageError(f"--max-size: {e}") from None
    if layout.root.exists() and not layout.root.is_dir():
        raise UsageError(f"the cache {layout.root} is not a directory (--cache-dir or $BPF_AUDIT_HARNESS_CACHE).")
    try:
        return _cache(ns, layout, max_bytes)
    except OSError as e:
        from harness.errors import CacheError

        raise CacheError(f"the cache {layout.root} cannot be read or changed: {e}") from e


def _cache(ns: argparse.Namespace, layout, max_bytes: int | None) -> int:
    import time

    from harness.kernel import gc

    items = gc.scan(layout)
    now = time.time()
    for kind in ("kernel", "slot", "tree", "object"):
        mine = [i for i in items if i.kind == kind]
        unused = [i for i in mine if now - i.last_used > ns.older_than * gc.DAY]
        print(f"{kind}s: {len(mine)}, {gc.human(sum(i.size for i in mine))}; unused for over {ns.older_than:g} days: "
              f"{len(unused)}, {gc.human(sum(i.size for i in unused))}")
    if not ns.prune:
        print(f"cache: {layout.root} (run with --prune to evict kernels, build slots, patched trees and case "
              "objects; the unpacked sources, ccache and runs/ manage themselves)")
        return 0
    doomed = gc.collect(layout, gc.Policy(ns.older_than, max_bytes), dry_run=ns.dry_run)
    verb = "would evict" if ns.dry_run else "evicted"
    for item in doomed:
        if item.kind != "object" or ns.verbose:
            print(f"{verb} {item.kind} {item.name} ({gc.human(item.size)}, last used "
                  f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(item.last_used))})")
    print(f"{verb} {len(doomed)} items, {gc.human(sum(i.size for i in doomed))} (nothing used in the last "
          f"{gc.IN_USE_SECONDS / 3600:g} hours is evicted: another session may be using it)")
    return 0


def cmd_mutants(ns: argparse.Namespace) -> int:
    """Build series + each mutant, run the suite on it, print the kill table; exit 1 if any mutant survived, 3 if
    none did but one could not be judged (its build failed, a harness error)."""
    from harness.campaigns.mutants import run_all

    opts = kernel_options(ns)
    if ns.no_patches or ns.mutant:
        raise UsageError("--no-patches/--mutant make no sense with mutants (name the mutants instead).")
    results = run_all(opts, ns.names, cases=ns.cases, workers=ns.workers, json_path=ns.json, out_dir=ns.out,
                      extra_pytest=ns.pytest_arg)
    if any(r.status == "survived" for r in results):
        return EXIT_FAILED
    return EXIT_OK if all(r.killed for r in results) else EXIT_HARNESS


def cmd_bisect(ns: argparse.Namespace) -> int:
    """git bisect run with the harness step; prints the first bad commit and its failing cases. Exit 0 when git
    named it, 1 when skipped commits hide it, 3 when the bisection aborted."""
    import json

    from harness.campaigns.bisect.run import format_result, run_bisect, to_json

    tree = Path(ns.kernel_src or ".")
    result = run_bisect(tree, ns.good, ns.bad, ns.case, retries=ns.retries, cache_dir=ns.cache_dir,
                        config_dir=ns.config_dir, accel=ns.accel, extra_pytest=ns.pytest_arg,
                        verify_endpoints=ns.verify_endpoints)
    print(format_result(result))
    if ns.json:
        ns.json.parent.mkdir(parents=True, exist_ok=True)
        ns.json.write_text(json.dumps(to_json(result), indent=1) + "\n")
        print(f"json   {ns.json}")
    if result.first_bad:
        return EXIT_OK
    return EXIT_FAILED if result.conclusion.candidates else EXIT_HARNESS


def cmd_doctor(ns: argparse.Namespace) -> int:
    """What a run needs, found or missing (with the apt-get line), KVM's verdict, the cache; exit 0 or 3."""
    from harness import doctor

    return doctor.run(ns.cache_dir, json_path=ns.json)


def cmd_ssh(ns: argparse.Namespace) -> int:
    """A shell (or `-- CMD`) in the VM pytest --keep-vm-on-failure kept; --stop ends it, --keep extends it."""
    import os
    import subprocess

    from harness.machine import keep
    from harness.settings import CacheLayout, cache_root

    kept = keep.find(ns.run, CacheLayout(ns.cache_dir or cache_root()).runs)
    if ns.stop:
        keep.stop(kept)
        print(f"stopped the kept VM {kept.name} of {Path(kept.run_dir).name}")
        return EXIT_OK
    if ns.keep is not None:
        keep.extend(kept, ns.keep)
    command = ns.command
    if not kept.known_hosts.is_file():
        kept.write_known_hosts()
    argv = kept.ssh_argv(command)
    if ns.print_command or (ns.keep is not None and not command):
        from harness.tools import quoted

        print(f"{kept.name} of {Path(kept.run_dir).name}: {kept.describe_deadline()}\n$ {quoted(argv)}")
        return EXIT_OK
    print(f"{kept.name} of {Path(kept.run_dir).name} ({kept.describe_deadline()})", file=sys.stderr)
    return _guest_exit(subprocess.call(argv, env=os.environ), ssh=True)


def cmd_report(ns: argparse.Namespace) -> int:
    """The benchmark history (benchmarks/results/*.json) as a PNG and an HTML page embedding it."""
    from harness import report

    paths = report.write(ns.results or report.DEFAULT_RESULTS, ns.out or report.DEFAULT_OUT)
    for kind, path in paths.items():
        print(f"{kind:5} {path}")
    return EXIT_OK

