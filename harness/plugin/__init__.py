# SPDX-License-Identifier: GPL-2.0
"""pytest plugin: options, configuration checks, collection and the run's summary; the stages live in their own
modules, the plugin's kernel and guest hooks and fixtures in harness.plugin.kernel and harness.plugin.guest."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.run_kernel import (  # a small module: the stages themselves stay lazily imported
    harness_cache_root,
    kernel_options_from,
    kernel_target,
    naming_options,
)
from harness.run_kernel.session import PLUGIN_NAME, RunSession, run_session

# for conftest.py files and tests
__all__ = ["harness_cache_root", "kernel_options_from", "kernel_target", "run_session"]

# Registered with this module (pytest reads pytest_plugins of every plugin module it registers): their hooks and
# fixtures are the plugin's as much as the ones here.
pytest_plugins = ["harness.plugin.kernel", "harness.plugin.guest"]


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("bpf-audit-harness", "kernel under test (bpf-audit-harness)")
    from harness.kernel.choice import add_options as add_kernel_options

    add_kernel_options(g.addoption)  # --kernel, --kernel-src, ..., --cache-dir (--harness-cache): harness.kernel.choice
    g.addoption("--accel", default="auto", choices=("auto", "kvm", "tcg"),
                help="QEMU accelerator; auto probes KVM with a real boot and falls back to TCG")
    g.addoption("--target", help="run on an existing machine over SSH instead of a local VM: ssh://user@host:port")
    g.addoption("--target-key", type=Path, help="private key for --target (default ~/.ssh/id_ed25519)")
    g.addoption("--target-known-hosts", type=Path,
                help="known_hosts file pinning the --target's host key (default: ~/.ssh/known_hosts)")
    g.addoption("--clang", metavar="PATH", help="the clang that compiles BPF programs (>= 16, keeping btf_type_tag; "
                "a name on PATH such as clang-20 or clang, or a path); default $CLANG, else clang-19 or another")
    from harness.machine.options import add_options

    add_options(g.addoption, aliases=True)  # --cpus, --memory (--vm-memory), --append, --gdb
    g.addoption("--kernel-target", metavar="NAME",
                help="run on this kernel of the matrix file (kernel-config/matrix.toml): sets source, series and "
                     "boot options; a prebuilt-deb target is booted as shipped. Without it and without any kernel "
                     "option: the target with default = true")
    g.addoption("--kernel-matrix", type=Path, metavar="FILE", help="matrix file for --kernel-target")
    g.addoption("--case-timeout", type=float, default=300.0, metavar="SECONDS",
                help="a test (case) that holds its VM longer than this is stopped: its VM is killed, the test "
                     "is reported as a lost VM and the next test gets a fresh VM (default 300; 0: no limit)")
    g.addoption("--console-findings", default="fail", choices=("fail", "warn"),
                help="a WARNING:/BUG:/Oops on the guest console during a case, scenario test or selftest that "
                     "otherwise passed: fail it (default) or only warn")
    g.addoption("--selftests-filter", metavar="JSON", help="selftests: test_progs' selection (harness.selftests."
                "select.Selector as JSON: what `selftests -t/-a/-b/-d` and the tree's DENYLIST make)")
    g.addoption("--selftests-verbosity", type=int, default=0, help="selftests: test_progs' -v (1) or -vv (2): the "
                "verifier log level every load gets at least")
    g.addoption("--selftests-record", metavar="DIR", help="write the guest agent's answers for each selftest subtest "
                "as JSON under DIR (what tests/unit/test_selftests_compare.py replays)")
    g.addoption("--test-progs-timeout", type=float, default=1800.0, metavar="SECONDS",
                help="prog_tests/*.c files: how long their test_progs run may take in the guest (default 1800)")
    g.addoption("--test-progs-verbose", action="store_true",
                help="prog_tests/*.c files: run test_progs with -v (every subtest's lines, skip reasons among them; "
                     "-v writes while tests run, which tests counting their own syscalls can see)")
    g.addoption("--keep-vm-on-failure", nargs="?", const=30.0, default=None, metavar="MINUTES",
                type=_keep_minutes,
                help="keep the VM of the first failing test running (its case's program loaded and pinned) for "
                     "inspection: the summary says how to reach it (`bpf-audit-harness ssh RUN`); it is stopped "
                     "MINUTES (default 30) after the run ends, or by `bpf-audit-harness ssh RUN --stop`")


def _keep_minutes(text: str) -> float:
    from harness.machine.keep import parse_minutes

    return parse_minutes(text)


@pytest.hookimpl(tryfirst=True)  # before hypothesis' own: it loads --hypothesis-profile, which must be registered
def pytest_configure(config: pytest.Config) -> None:
    from harness.settings import cache_root

    # Case items carry these marks in any project, not only in one whose ini file declares them.
    config.addinivalue_line("markers", "vm: needs a booted guest (boots the cached kernel under QEMU)")
    config.addinivalue_line("markers", "slow: builds a kernel or boots several guests")
    if getattr(config.option, "xmlpath", None) and not hasattr(config, "workerinput"):
        from harness.cases.collect import JUnitCaseNames  # the JUnit file names case files by path, not dotted

        config.pluginmanager.register(JUnitCaseNames(config), "bpf-audit-harness-junit-names")
    # Nothing here installs a signal handler or touches the cache: a session that collects no harness item and asks
    # for no harness fixture must not notice the plugin (activate() does that, once the run turns out to need it).
    if config.getoption("--case-timeout") < 0:
        raise pytest.UsageError("--case-timeout must be a number of seconds >= 0 (0: no limit).")
    # The run's state, one object (harness.run_kernel.session); the cache root resolved once, at start-up: a test
    # may change HOME (pytester does) and must not move the cache.
    run = RunSession.create(config, (config.getoption("--cache-dir") or cache_root()).resolve())
    config.pluginmanager.register(run, PLUGIN_NAME)
    if config.getoption("hypothesis_profile", None):  # the property's profiles (ci, nightly), by hypothesis' option
        from harness.gen.profiles import register

        register(run.cache_root)
    run.kernel_target = _kernel_target(config)
    if config.getoption("--patches") and not config.getoption("--no-patches"):
        _check_patches(config)
    if config.getoption("--target"):
        _check_target(config)
    if config.getoption("--mutant"):
        _check_mutant(config)
    if config.getoption("--keep-vm-on-failure") is not None:
        _keep_vms(config)
    run.vm_settings = _vm_settings(config, run)
    if config.getoption("--clang"):
        _use_clang(config)


def activate(config: pytest.Config) -> None:
    """The run needs the harness: RunSession.activate."""
    run_session(config).activate()


def _vm_settings(config: pytest.Config, run):
    """--cpus/--memory/--append/--gdb checked; with --gdb the controller settles the run's first port before xdist
    starts its workers, and hands it to each in its workerinput (RunSession.pytest_configure_node)."""
    import dataclasses

    from harness.errors import UsageError
    from harness.machine import options

    try:
        settings = options.check_settings(config.getoption("--cpus"), config.getoption("--memory"),
                                          config.getoption("--append"), config.getoption("--gdb"))
        if settings.gdb is not None:
            if config.getoption("--target"):
                raise UsageError("--gdb starts QEMU's gdb stub of a local VM; a --target machine is not booted here")
            if run.is_worker:  # its controller settled the first port (gwN listens on it + N)
                settings = dataclasses.replace(settings, gdb=run.controller_gdb_port or settings.gdb)
            else:
                workers = getattr(config.option, "numprocesses", None)
                settings = options.with_gdb_ports(settings, workers if isinstance(workers, int) and workers > 0 else 1)
    except UsageError as e:
        raise pytest.UsageError(str(e)) from None
    return settings


def _use_clang(config: pytest.Config) -> None:
    """--clang: checked once (version, type tags) and named in $CLANG for the workers and every compile site."""
    from harness.cases import clang
    from harness.errors import HarnessError

    try:
        clang.use(config.getoption("--clang"))
    except HarnessError as e:
        raise pytest.UsageError(str(e)) from None


def _keep_vms(config: pytest.Config) -> None:
    """--keep-vm-on-failure: one Keeper per process; the run's first failing test claims the one kept VM."""
    from harness.machine.keep import Keeper

    if config.getoption("--target"):
        raise pytest.UsageError("--keep-vm-on-failure keeps a local VM; with --target the machine is yours already")
    run = run_session(config)
    run.keeper = Keeper(config.getoption("--keep-vm-on-failure"), run.run.file("kept-vm"))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Where the kept VM is and how to get a shell in it (--keep-vm-on-failure)."""
    keeper = run_session(config).keeper
    kept = keeper.kept() if keeper is not None else None
    if kept is None:
        return
    from harness.tools import quoted

    tr = terminalreporter
    tr.section("VM kept for inspection (--keep-vm-on-failure)", yellow=True)
    tr.write_line(f"the VM of {kept.case or 'the first failing test'} still runs: stopped {kept.minutes:g} min "
                  "after this run ends, or now with --stop")
    for note in kept.notes:
        tr.write_line(f"  {note}")
    run = Path(kept.run_dir).name
    tr.write_line(f"  shell:    bpf-audit-harness ssh {run}")
    tr.write_line(f"  command:  bpf-audit-harness ssh {run} -- bpftool prog show")
    tr.write_line(f"  or ssh:   {quoted(kept.ssh_argv())}")
    tr.write_line(f"  stop:     bpf-audit-harness ssh {run} --stop")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Once per run (the controller, not each xdist worker): evict case objects unused for 30 days. They are
    recompiled in a second; kernels are only evicted by `bpf-audit-harness cache --prune`."""
    config = session.config
    if hasattr(config, "workerinput") or not run_session(config).active:
        return  # a worker, or a session that never needed the harness: its cache is not touched
    from harness.kernel import gc
    from harness.settings import CacheLayout

    try:
        gc.collect(CacheLayout(harness_cache_root(config)), gc.Policy(older_than_days=30), kinds=("object",))
    except OSError:
        pass  # a read-only or vanished cache: nothing to evict


def _kernel_target(config: pytest.Config):
    """The matrix Target named by --kernel-target (None without it); bad names and combinations are usage errors."""
    name = config.getoption("--kernel-target")
    if not name:
        if config.getoption("--kernel-matrix"):
            raise pytest.UsageError("--kernel-matrix needs --kernel-target NAME")
        return None
    from harness.campaigns.matrix import spec as matrix_spec

    clash = naming_options(config)
    if clash:
        raise pytest.UsageError(f"--kernel-target {name} already says which kernel to run; drop {', '.join(clash)}")
    try:
        return matrix_spec.load(config.getoption("--kernel-matrix")).get(name)
    except matrix_spec.MatrixError as e:
        raise pytest.UsageError(str(e)) from e


def _check_target(config: pytest.Config) -> None:
    """--target: a URL that parses, and one worker (workers would share the machine's agent, audit daemon slot,
    /tmp/bah and audit rules, and wipe each other's)."""
    from harness.machine.ssh import Target

    url = config.getoption("--target")
    try:
        Target.parse(url, Path("unused"))
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None
    workers = getattr(config.option, "numprocesses", None)
    if workers not in (None, 0, 1):
        raise pytest.UsageError(f"--target {url} runs on one machine: use one worker (drop -n {workers}); "
                                "several workers would share its agent, audit daemon and rules")


def _series_directory(config: pytest.Config) -> Path:
    """The series directory the run's source takes from --patches (or patches/): its kernel line's, or --patches
    itself when it holds a series file. Known without fetching or unpacking anything (HarnessError otherwise)."""
    from harness.kernel.request import series_directory

    return series_directory(kernel_options_from(config))


def _check_patches(config: pytest.Config) -> None:
    from harness.errors import HarnessError
    from harness.kernel.patches import load_series

    try:
        load_series(_series_directory(config))
    except HarnessError as e:
        raise pytest.UsageError(f"--patches: {e}") from None


def _check_mutant(config: pytest.Config) -> None:
    from harness.campaigns.mutants import mutant_path
    from harness.errors import HarnessError

    if config.getoption("--no-patches"):
        raise pytest.UsageError("--mutant applies on top of the patch series: it cannot be used with --no-patches.")
    try:
        mutant_path(_series_directory(config), config.getoption("--mutant"))
    except HarnessError as e:
        raise pytest.UsageError(f"--mutant: {e}") from None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # JUnit names a case file's items by a dotted classname that cannot be mapped back to a path; the matrix
    # reruns and matches known failures by node id, so write it into the JUnit properties.
    if getattr(config.option, "xmlpath", None):
        for item in items:
            item.user_properties.append(("nodeid", item.nodeid))


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if file_path.name.endswith(".bpf.c"):
        from harness.cases.collect import CaseFileCollector, is_case_file

        if is_case_file(file_path):
            return CaseFileCollector.from_parent(parent, path=file_path)
    elif file_path.suffix == ".c" and file_path.parent.name == "prog_tests":
        from harness import run_kernel
        from harness.selftests.testprogs.collect import TestProgsFileCollector

        if file_path.resolve() in run_kernel.prog_tests_args(parent.config):
            return TestProgsFileCollector.from_parent(parent, path=file_path,
                                                      summaries=run_session(parent.config).test_progs_summaries)
    elif file_path.suffix == ".c" and file_path.parent.name == "progs":
        from harness.selftests.collect import SelftestFileCollector, is_selftest_file

        if is_selftest_file(file_path):
            run = run_session(parent.config)
            if run.selftests_kernel is None:
                run.selftests_kernel = _kernel_for_selftests(run)
            return SelftestFileCollector.from_parent(parent, path=file_path, kernel=run.selftests_kernel)
    return None


def _kernel_for_selftests(run: RunSession):
    """What collecting a kernel tree's selftests needs of the kernel under test (its vmlinux.h): prepared once per
    process, a cache hit after the controller prepared it at session start."""
    import functools

    @functools.cache
    def get():
        from harness.selftests.collect import KernelForSelftests

        art = run.acquire_kernel().artifact
        return KernelForSelftests(art.vmlinux_h, art.release, run.cache_root, art.vmlinux, art.config, art.dir)

    return get

