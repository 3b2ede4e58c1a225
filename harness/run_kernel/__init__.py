# SPDX-License-Identifier: GPL-2.0
"""The kernel a pytest run tests: prepared once, by the controller, where the user sees it; shared by workers.

The run's state (cache root, kernel target, VM settings, the prepared kernel) is one RunSession per process and
its processes talk through one run directory: harness.run_kernel.session."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.errors import HarnessError


def harness_cache_root(config: pytest.Config) -> Path:
    """The harness cache this run uses (resolved once, at start-up: a test may change HOME, as pytester does)."""
    from harness.run_kernel.session import run_session

    return run_session(config).cache_root


def naming_options(config: pytest.Config) -> list[str]:
    """The options given that name the kernel: the table's (harness.kernel.choice.NAMING) and --target (a remote
    machine's kernel). With none of them and no --kernel-target, the run's kernel is the matrix's default target,
    as a whole (its boot options too, and a prebuilt one is booted as shipped)."""
    from harness.kernel.choice import naming_given

    return naming_given(lambda name: given(config, "--" + name.replace("_", "-"))) + \
        (["--target"] if given(config, "--target") else [])


def kernel_target(config: pytest.Config):
    """The matrix target named by --kernel-target; without it and without any option naming the kernel, the
    target of the matrix file with default = true (the one place that decides the default kernel); else None
    (the options say which kernel, the default target's source filling in what they leave out)."""
    from harness.run_kernel.session import run_session

    explicit = run_session(config).kernel_target
    if explicit is not None or naming_options(config):
        return explicit
    from harness.kernel.targets import default_target

    return default_target()


def given(config: pytest.Config, option: str) -> bool:
    try:
        return bool(config.getoption(option))
    except ValueError:  # an option another plugin version does not define
        return False


def kernel_options_from(config: pytest.Config):
    """The KernelOptions this pytest session's options ask for (harness.kernel.choice.options_for)."""
    from harness.kernel.choice import options_for

    return options_for(lambda name: config.getoption(name), kernel_target(config), harness_cache_root(config))


@dataclass(frozen=True)
class Prepared:
    """What the report header says about the kernel under test."""

    release: str
    key: str
    source: str
    series: str
    cache_hit: bool
    seconds: float
    accel: str = ""
    notes: tuple[str, ...] = ()
    toolchain: str = ""  # what built the kernel (gcc, or LLVM= and its clang)
    compiler: str = ""  # the clang that compiles the BPF programs, its version and where the choice came from
    gdb: tuple[str, ...] = ()  # --gdb: where each VM's stub listens and the line to type

    def header(self) -> list[str]:
        how = "cache hit" if self.cache_hit else f"built in {self.seconds:.0f}s"
        lines = [f"kernel under test: {self.release} ({how}, cache key {self.key})",
                 f"  source: {self.source}", f"  series: {self.series}"]
        if self.toolchain:
            lines.append(f"  kernel built with: {self.toolchain}")
        if self.compiler:
            lines.append(f"  BPF compiler: {self.compiler}")
        if self.accel:
            lines.append(f"  accelerator: {self.accel}")
        return lines + [f"  gdb: {g}" for g in self.gdb] + [f"  note: {n}" for n in self.notes]


class AlreadyFailed(HarnessError):
    """This run's kernel could not be prepared by an earlier caller: the reason, not a second attempt."""

    stage = "kernel"


def describe(config, built) -> Prepared:
    from harness.kernel.toolchain import built_with

    art = built.artifact
    meta = art.meta
    if meta.kind == "prebuilt-deb":
        source = f"Debian package {meta.image_package or None} {meta.image_version or None} (prebuilt)"
        series = "none (booted as shipped)"
    else:
        source = built.source or meta.source_description or (
            (meta.source_path or "?") + "".join(f" [{p} {v}]" for p, v in meta.packages.items()))
        patches = meta.patches
        series = f"{len(patches)} patches: {', '.join(patches)}" if patches else "none"
    return Prepared(art.release, art.key, source, series, built.cache_hit, built.seconds, notes=built.notes,
                    toolchain=built_with(meta.toolchain, meta.llvm))


def bpf_compiler():
    """The clang the run compiles BPF programs with (--clang put it in $CLANG), checked: harness.cases.clang."""
    from harness.cases import clang

    return clang.select()


def vm_settings(config):
    """The run's checked --cpus/--memory/--append/--gdb (harness.machine.options.VMSettings)."""
    from harness.machine.options import VMSettings
    from harness.run_kernel.session import run_session

    settings = run_session(config).vm_settings
    return settings if settings is not None else VMSettings()


def pool_config(config, *, kernel: Path | None, run_dir: Path, worker: str):
    """The machine pool of one worker (or of the test_progs run): the kernel, the accelerator, --target, and the
    guest settings, with the kernel command line of the matrix target first and the user's --append after it."""
    from harness.machine.options import gdb_base, worker_index
    from harness.machine.pool import PoolConfig

    settings = vm_settings(config)
    target = kernel_target(config)
    base = gdb_base(settings)
    return PoolConfig(
        kernel=kernel, accel=config.getoption("--accel"), run_dir=run_dir,
        state_dir=kernel_options_from(config).layout().state, worker=worker, target=config.getoption("--target"),
        target_key=config.getoption("--target-key"), target_known_hosts=config.getoption("--target-known-hosts"),
        memory=settings.memory, cpus=settings.cpus,
        append=(*(target.append if target else ()), *settings.append),
        gdb_port=None if base is None else base + worker_index(worker))


def gdb_lines(config, built) -> tuple[str, ...]:
    """--gdb: the ports the run's VMs serve QEMU's gdb stub on and the line that attaches to the first."""
    from harness.machine.options import gdb_base, gdb_command

    base = gdb_base(vm_settings(config))
    if base is None:
        return ()
    workers = getattr(config.option, "numprocesses", None)
    n = workers if isinstance(workers, int) and workers > 0 else 0
    where = ", ".join(f"gw{i} 127.0.0.1:{base + i}" for i in range(n)) if n else f"127.0.0.1:{base}"
    return (f"QEMU's gdb stub of each VM (loopback only; the kernel boots with nokaslr): {where}",
            gdb_command(built.artifact.vmlinux, base))


def choose_accel(config, built, say) -> str:
    """The accelerator decision, made once here (probed, cached for the workers) and said where it is seen."""
    if config.getoption("--target"):
        return f"none: cases run on --target {config.getoption('--target')}"
    from harness.machine import accel
    choice = accel.choose(config.getoption("--accel"), kernel_options_from(config).layout().state,
                          built.artifact.bzimage, warn=say)
    return f"{choice.accel} ({choice.reason})"


# -- does this run need a kernel at all? ---------------------------------------------------------------------

def workers_elsewhere(config) -> bool:
    """Whether xdist runs workers on other hosts (--tx ssh=..., socket=...): each prepares its own kernel there,
    and the controller must not build one here (nor touch a cache)."""
    specs = getattr(config.option, "tx", None) or []
    return any(not spec.split("//", 1)[0].startswith("popen") for spec in specs)


def selects_cases(config) -> bool:
    """Whether the run's paths hold case files or a kernel tree's selftest files (both always need the kernel:
    a selftest file is even compiled against its vmlinux.h to be collected), or prog_tests files (test_progs
    runs at session start), and -m does not drop them."""
    from harness.cases.collect import is_case_file
    from harness.selftests.collect import is_selftest_file, is_selftests_dir

    if not marks_admit(config, {"vm", "slow"}):
        return False
    if prog_tests_args(config):
        return True
    for arg in config.args:
        path = Path(arg.split("::", 1)[0])
        if not path.is_absolute():
            path = Path(config.invocation_params.dir) / path
        if path.is_file() and (is_case_file(path) or is_selftest_file(path)):
            return True
        if path.is_dir() and (is_selftests_dir(path) or any(is_case_file(p) for p in _walk(path, "*.bpf.c"))):
            return True
    return False


def prog_tests_args(config) -> list[Path]:
    """The prog_tests/<name>.c files named on the command line (test_progs is built for these only: a directory
    is never walked into prog_tests/, whose every file would be a test_progs build)."""
    from harness.selftests.testprogs.collect import is_prog_tests_file

    out: list[Path] = []
    for arg in config.args:
        path = Path(arg.split("::", 1)[0])
        if not path.is_absolute():
            path = Path(config.invocation_params.dir) / path
        if path.is_file() and is_prog_tests_file(path) and path.resolve() not in out:
            out.append(path.resolve())
    return out


def run_test_progs(config, say) -> list[Path]:
    """The controller's test_progs run for the prog_tests files named on the command line, one per kernel tree:
    built for those files against the kernel under test, run in one machine, judged; each run's summary is
    written to its run directory and named in the run's test-progs.json for every process of the session (xdist
    workers collect after this: harness.run_kernel.session). Nothing runs with --collect-only, or when -m drops
    the items."""
    from harness.selftests.testprogs.collect import prog_tests_source

    files = prog_tests_args(config)
    if not files or config.option.collectonly or not marks_admit(config, {"vm", "slow"}):
        return []
    from harness.campaigns import test_progs as campaign
    from harness.run_kernel.session import run_session
    from harness.settings import new_run_dir

    artifact = run_session(config).acquire_kernel().artifact
    opts = kernel_options_from(config)
    layout = opts.layout()
    by_tree: dict[Path, list[str]] = {}
    for f in files:
        found = prog_tests_source(f)
        assert found is not None
        by_tree.setdefault(found[0], []).append(found[1])
    written = []
    for tree, stems in by_tree.items():
        out = new_run_dir(layout, "test_progs")
        pool = pool_config(config, kernel=None if config.getoption("--target") else artifact.bzimage, run_dir=out,
                           worker="test_progs")
        say(f"test_progs: {', '.join(f'{s}.c' for s in stems)} of {tree}, on {artifact.release}; log {out}")
        outcome = campaign.run_test_progs(tree, stems, artifact, layout, out, pool,
                                          timeout=config.getoption("--test-progs-timeout"),
                                          verbose=config.getoption("--test-progs-verbose"), say=say)
        written.append(outcome.write())
        n = outcome.to_json()
        say(f"test_progs: {n['passed']} passed, {n['failed']} failed, {n['skipped']} skipped, {n['errors']} without a "
            f"verdict (summary {written[-1]})")
    run_session(config).run.write_json("test-progs.json", {"summaries": [str(p) for p in written]})
    return written


# Fixtures that need the kernel under test (vm_pool asks for the kernel at run time, so it is named itself).
NEEDS_KERNEL = frozenset({"kernel_build", "kernel_artifact", "kernel_under_test", "vm_pool"})


def item_needs_kernel(item) -> bool:
    return bool(NEEDS_KERNEL & set(getattr(item, "fixturenames", ())))


def _walk(root: Path, pattern: str):
    for p in root.rglob(pattern):
        if not any(part.startswith(".") for part in p.relative_to(root).parts):
            yield p


def marks_admit(config, marks: set[str]) -> bool:
    """Whether -m (if given) selects an item carrying `marks`."""
    expr = config.getoption("markexpr", "") or ""
    return not expr or mark_expression_admits(expr, marks)


def mark_expression_admits(expr: str, marks: set[str]) -> bool:
    """Whether pytest's -m expression `expr` (names, `and`, `or`, `not`, parentheses) selects an item with
    `marks`. Read here, not through pytest's private parser; what this does not read (a mark with arguments)
    counts as selected: pytest itself then judges every item."""
    import re

    tokens = re.findall(r"\(|\)|[^\s()]+", expr)
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def or_expr() -> bool:
        value = and_expr()
        while peek() == "or":
            take()
            value = and_expr() or value
        return value

    def and_expr() -> bool:
        value = not_expr()
        while peek() == "and":
            take()
            value = not_expr() and value
        return value

    def not_expr() -> bool:
        tok = peek()
        if tok == "not":
            take()
            return not not_expr()
        if tok == "(":
            take()
            value = or_expr()
            if take() != ")":
                raise ValueError("unbalanced parentheses")
            return value
        if tok is None or tok == ")" or not re.fullmatch(r"[A-Za-z_][\w.-]*", tok):
            raise ValueError(f"unexpected {tok!r}")
        return take() in marks

    try:
        value = or_expr()
        if peek() is not None:
            raise ValueError(f"unexpected {peek()!r}")
    except (ValueError, IndexError):
        return True
    return value


def say_to_terminal(config):
    """A line printer that reaches the terminal in the controller (not captured, also under xdist)."""
    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    return say
