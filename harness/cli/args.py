# SPDX-License-Identifier: GPL-2.0
"""The `bpf-audit-harness` command line: every subcommand's options, its help and the exit codes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TypeAlias

from harness.cli import commands, selftests_cmd
from harness.errors import EXIT_OK

DESCRIPTION = "`bpf-audit-harness` subcommands: thin wrappers over the same stages the pytest plugin uses."

EXIT_CODES = """\
exit codes (the same in every subcommand):
  0  everything asked for passed (build: the kernel is in the cache; doctor: a run can work here)
  1  it ran and found a failure: matrix: a case failed (not a known failure); mutants: a mutant survived;
     bisect: no single first bad commit (skipped commits hide it); boot, ssh: the command in the guest failed;
     selftests: a subtest failed (known differences excepted; --test-progs: test_progs' FAIL)
  2  usage: an option, a path or an input file (patch series, config fragment, matrix or known-failures file,
     mutant name, bisect endpoints that do not judge as given) is wrong; refused before anything ran
  3  the harness or the machine failed: a build, a boot, a lost VM, a missing tool, an unwritable cache;
     matrix: a kernel could not be run (and no case failed); mutants: a mutant could not be judged (and none
     survived); bisect: an endpoint or step could not be judged; selftests: a subtest got no verdict (and
     none failed; --test-progs: a build, a lost VM, a crash or a killed run); doctor: something a run needs is
     missing
"""


def _given_kernel_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kernel", type=Path, metavar="PATH",
                   help="a kernel built elsewhere, tested as it is: a bzImage (its vmlinux beside it) or a build "
                   "directory (make O=DIR, or a tree built in place); nothing is built")


def _kernel_args(p: argparse.ArgumentParser) -> None:
    """The options that choose the kernel, as in pytest (harness.kernel.choice: one table, one name each)."""
    from harness.kernel.choice import add_options

    add_options(p.add_argument, cli=True, skip=("--kernel",))


def _clang_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clang", metavar="PATH", help="the clang that compiles BPF programs (>= 16, keeping "
                   "btf_type_tag; a name on PATH such as clang-20 or clang, or a path); default $CLANG, else clang-19 "
                   "or another clang on PATH")


def _vm_args(p: argparse.ArgumentParser) -> None:
    from harness.machine.options import add_options

    add_options(p.add_argument)  # --cpus, --memory, --append, --gdb: the same names and meaning as in pytest


def _minutes(text: str) -> float:
    from harness.machine.keep import parse_minutes

    return parse_minutes(text)


class _Version(argparse.Action):
    """--version: computed only when asked (the git commit takes a subprocess)."""

    def __init__(self, option_strings, dest, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from harness.settings import harness_version

        print(f"bpf-audit-harness {harness_version()}")
        parser.exit(EXIT_OK)


_Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # what add_subparsers() returns


def _add_build(sub: _Subparsers) -> None:
    """The `build` subcommand."""
    p = sub.add_parser("build", help="source -> patches -> config -> cached kernel artifact")
    _kernel_args(p)
    _given_kernel_arg(p)
    p.add_argument("--kernel-target", metavar="NAME", help="build (or fetch) this kernel of the matrix file")
    p.add_argument("--matrix", type=Path, help="matrix file (default: kernel-config/matrix.toml)")
    p.add_argument("--print-key", action="store_true",
                   help="print the cache key of this kernel and exit (no build; for CI caches)")
    p.set_defaults(func=commands.cmd_build)


def _add_matrix(sub: _Subparsers) -> None:
    """The `matrix` subcommand."""
    p = sub.add_parser("matrix", help="run the suite on each kernel of kernel-config/matrix.toml; write JUnit "
                       "(a <testsuite> per kernel), JSON, text and an HTML page, with each case's logs beside them")
    p.add_argument("--targets", help="comma-separated target names (default: all, in file order)")
    p.add_argument("--matrix", type=Path, help="matrix file (default: kernel-config/matrix.toml)")
    p.add_argument("--known-failures", type=Path, help="known-failures list (default: known-failures.toml "
                   "beside the matrix file)")
    p.add_argument("--rerun-failures", type=int, default=0, metavar="N",
                   help="rerun each failing case up to N times; one that then passes is reported flaky")
    p.add_argument("--out", type=Path, help="output directory (default: results/matrix-<time>)")
    p.add_argument("--report-only", type=Path, metavar="DIR",
                   help="run nothing: rebuild the reports from DIR/<target>/ (junit.xml, rerun-N.junit.xml, "
                        "target.json), e.g. the per-kernel results of CI jobs")
    p.add_argument("--json", type=Path, metavar="FILE",
                   help="also write the JSON summary here (it is always written as matrix.json in the output)")
    p.add_argument("--suite", choices=("cases", "selftests"), default="cases",
                   help="what runs on each kernel: the project's cases/ (default), or the kernel's own BPF "
                   "selftests (RUN_TESTS files) from that kernel's own tree (a prebuilt Debian kernel: its "
                   "linux-source package)")
    p.add_argument("--cases", action="append", default=None, help="pytest paths to run (default: cases)")
    p.add_argument("--selftests", metavar="FILE,...", help="--suite selftests: only these skeletons (e.g. "
                   "verifier_and,verifier_lsm; default: every RUN_TESTS file of each tree)")
    p.add_argument("--known-differences", type=Path, metavar="FILE", help="--suite selftests: for each kernel's "
                   "selftests.json (default: kernel-config/selftests-known-differences.toml)")
    p.add_argument("-n", "--workers", type=int, default=2, help="pytest-xdist workers (VMs) per kernel")
    p.add_argument("--accel", default="auto", choices=("auto", "kvm", "tcg"))
    p.add_argument("--cache-dir", type=Path, help="build cache (default: ~/.cache/bpf-audit-harness)")
    p.add_argument("--pytest-arg", action="append", default=[], help="extra pytest argument (repeatable)")
    _clang_arg(p)
    p.set_defaults(func=commands.cmd_matrix)


def _add_boot(sub: _Subparsers) -> None:
    """The `boot` subcommand."""
    p = sub.add_parser("boot", help="boot the kernel in a VM: run `-- CMD` or open a shell")
    _kernel_args(p)
    p.add_argument("--kernel", type=Path, metavar="PATH",
                   help="boot this kernel instead of the harness's build: a bzImage, or a build directory")
    p.add_argument("--accel", default="auto", choices=("auto", "kvm", "tcg"))
    _vm_args(p)
    p.add_argument("--timeout", type=float, default=600, help="seconds CMD may run")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS (default: interactive shell)")
    p.set_defaults(func=commands.cmd_boot)


def _add_mutants(sub: _Subparsers) -> None:
    """The `mutants` subcommand."""
    p = sub.add_parser("mutants", help="build each patches/<line>/mutants/ bug on top of the series, run the suite: "
                       "which cases kill which mutant")
    _kernel_args(p)
    p.add_argument("names", nargs="*", metavar="NAME", help="mutants to check (default: all in the series' mutants/)")
    p.add_argument("--cases", action="append", default=None, help="pytest paths to run (default: cases)")
    p.add_argument("-n", "--workers", type=int, default=2, help="pytest-xdist workers (VMs) per suite run")
    p.add_argument("--json", type=Path, help="write the kill table here (default: the run directory)")
    p.add_argument("--out", type=Path, help="directory for JUnit files and logs (default: a new run directory)")
    p.add_argument("--pytest-arg", action="append", default=[], help="extra pytest argument (repeatable)")
    _clang_arg(p)
    p.set_defaults(func=commands.cmd_mutants)


def _add_bisect(sub: _Subparsers) -> None:
    """The `bisect` subcommand."""
    p = sub.add_parser("bisect", help="git bisect run over a kernel git tree: build, boot, run CASE... per step")
    p.add_argument("--good", required=True, help="a commit where the cases pass")
    p.add_argument("--bad", required=True, help="a later commit where they fail")
    p.add_argument("--kernel-src", help="the kernel git tree to bisect (default: the current directory); "
                   "each step builds it as it is at that commit, without patches/")
    p.add_argument("--retries", type=int, default=3,
                   help="tries of a failing case before the commit is called bad (default 3); a failure that "
                   "does not repeat is flaky and the commit is skipped")
    p.add_argument("--kernel-config-dir", "--config-dir", dest="config_dir", type=Path,
                   help="directory of *.config fragments (default: kernel-config/)")
    p.add_argument("--cache-dir", "--harness-cache", type=Path,
                   help="build cache (default: ~/.cache/bpf-audit-harness)")
    p.add_argument("--accel", default="auto", choices=("auto", "kvm", "tcg"))
    p.add_argument("--pytest-arg", action="append", default=[], help="extra pytest argument (repeatable)")
    p.add_argument("--no-verify-endpoints", dest="verify_endpoints", action="store_false",
                   help="do not run the step on --bad and --good first (by default it must fail on --bad and "
                   "pass on --good, or nothing is bisected)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the conclusion and every step as JSON")
    p.add_argument("case", nargs="+", metavar="CASE", help="pytest node id, e.g. cases/audit/x.bpf.c::prog")
    _clang_arg(p)
    p.set_defaults(func=commands.cmd_bisect)


def _add_cache(sub: _Subparsers) -> None:
    """The `cache` subcommand."""
    p = sub.add_parser("cache", help="show the build cache; --prune evicts kernels and objects unused for a while")
    p.add_argument("--cache-dir", help="cache root (default: $BPF_AUDIT_HARNESS_CACHE or "
                   "~/.cache/bpf-audit-harness)")
    p.add_argument("--prune", action="store_true", help="evict kernel entries and compiled case objects")
    p.add_argument("--older-than", type=float, default=30.0, metavar="DAYS",
                   help="evict what was not used for this many days (default 30)")
    p.add_argument("--max-size", metavar="SIZE", help="then evict least recently used until kernels + objects fit "
                   "(e.g. 10G); nothing used in the last 6 hours is ever evicted")
    p.add_argument("--dry-run", action="store_true", help="say what would go, delete nothing")
    p.add_argument("-v", "--verbose", action="store_true", help="list every evicted object, not only kernels")
    p.set_defaults(func=commands.cmd_cache)


def _add_config(sub: _Subparsers) -> None:
    """The `config` subcommand."""
    p = sub.add_parser("config", help="print the merged config fragments (one fragment, as make merges it)")
    _kernel_args(p)
    p.add_argument("--dump", action="store_true",
                   help="annotate each option with the fragment file and line it comes from")
    p.set_defaults(func=commands.cmd_config)


def _add_doctor(sub: _Subparsers) -> None:
    """The `doctor` subcommand."""
    p = sub.add_parser("doctor", help="check this machine: every tool with its version and Debian package, KVM, "
                       "the Debian source lines cached, the cache; exit 0 when a run can work, 3 (with the apt-get "
                       "line) when not; asks no archive")
    p.add_argument("--cache-dir", type=Path, help="build cache (default: ~/.cache/bpf-audit-harness)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON")
    _clang_arg(p)
    p.set_defaults(func=commands.cmd_doctor)


def _add_ssh(sub: _Subparsers) -> None:
    """The `ssh` subcommand."""
    p = sub.add_parser("ssh", help="a shell (or `-- CMD`) in the VM that pytest --keep-vm-on-failure kept")
    p.add_argument("run", metavar="RUN", help="the run directory the pytest summary names (a name under the "
                   "cache's runs/, or a path)")
    p.add_argument("--stop", action="store_true", help="stop the kept VM now")
    p.add_argument("--keep", type=_minutes, metavar="MINUTES", help="keep it until MINUTES from now (instead of "
                   "the time given to --keep-vm-on-failure); without CMD, only say so")
    p.add_argument("--print-command", action="store_true", help="print the ssh command line; connect to nothing")
    p.add_argument("--cache-dir", type=Path, help="build cache (default: ~/.cache/bpf-audit-harness)")
    p.add_argument("command", nargs="*", help="-- CMD ARGS: run CMD in the guest (default: an interactive shell)")
    p.set_defaults(func=commands.cmd_ssh)


def _add_report(sub: _Subparsers) -> None:
    """The `report` subcommand."""
    p = sub.add_parser("report", help="plot the benchmark history (benchmarks/results/*.json): a PNG and an HTML "
                       "page")
    p.add_argument("--results", type=Path, help="directory of result JSON files (default: benchmarks/results)")
    p.add_argument("--out", type=Path, help="output directory (default: results/report)")
    p.set_defaults(func=commands.cmd_report)


def _add_selftests(sub: _Subparsers) -> None:
    """The `selftests` subcommand."""
    p = sub.add_parser("selftests", help="the kernel's own BPF selftests (the RUN_TESTS programs) run in guests and "
                       "judged as test_loader judges them: a per-file table and a JSON summary; --list: discover, "
                       "compile and parse them (no VM)")
    p.add_argument("--list", action="store_true", help="list each file's programs and subtests (priv/unpriv, "
                   "unsupported with reasons) and the totals; run nothing")
    # The kernel to test: the same table as `build` and pytest (--kernel-src is also the tree whose
    # tools/testing/selftests/bpf run). Its --jobs (make -j) is left out: selftests' own --jobs below is --list's
    # compilers at once, a different thing under the name it always had here.
    from harness.kernel.choice import add_options

    add_options(p.add_argument, cli=True, skip=("--jobs",))
    p.add_argument("--vmlinux-h", type=Path, help="--list: compile against this vmlinux.h (default: the cached "
                   "kernel built from that source; build it first)")
    p.add_argument("--jobs", type=int, help="--list: compilers at once (default: the CPUs available)")
    p.add_argument("-n", "-j", "--workers", type=int, default=2, help="VMs at once, one pytest-xdist worker each "
                   "(test_progs' -j; default 2)")
    sel = p.add_argument_group("test_progs' selection (RUN_TESTS files: a test is the prog_tests function that runs a "
                               "file, a subtest its program)")
    sel.add_argument("-t", action="append", default=[], metavar="TESTS", help="run tests (and test/subtest) whose "
                     "name contains one of these (comma-separated, or @FILE)")
    sel.add_argument("-a", action="append", default=[], metavar="TESTS", help="run these tests (globs with '*', "
                     "comma-separated, or @FILE)")
    sel.add_argument("-b", action="append", default=[], metavar="TESTS", help="leave out tests whose name contains "
                     "one of these")
    sel.add_argument("-d", action="append", default=[], metavar="TESTS", help="leave out these tests (globs, "
                     "@FILE: e.g. -d @DENYLIST)")
    sel.add_argument("--no-denylist", action="store_true", help="do not honour the tree's DENYLIST/DENYLIST.<arch> "
                     "and ALLOWLIST files (honoured by default, as BPF CI passes them)")
    p.add_argument("-J", "--json-report", type=Path, metavar="FILE", help="also write the results in test_progs' "
                   "own -J JSON shape")
    p.add_argument("--kernel-target", metavar="NAME", help="run on this kernel of kernel-config/matrix.toml (its "
                   "source's tree; e.g. 7.3-series-testmod, with module support for bpf_testmod.ko)")
    rerun = p.add_mutually_exclusive_group()
    rerun.add_argument("--lf", "--last-failed", dest="last_failed", action="store_const", const="lf",
                       help="rerun only what failed last time on this tree and kernel (pytest's --lf)")
    rerun.add_argument("--ff", "--failed-first", dest="last_failed", action="store_const", const="ff",
                       help="run what failed last time first (pytest's --ff)")
    p.add_argument("--accel", default=None, choices=("auto", "kvm", "tcg"), help="QEMU accelerator (default auto)")
    p.add_argument("--known-differences", type=Path, metavar="FILE", help="subtests that fail here for an explained "
                   "reason, counted apart (default: kernel-config/selftests-known-differences.toml)")
    p.add_argument("--out", type=Path, help="directory for the JUnit file, the log and selftests.json (default: a "
                   "new run directory in the cache)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the JSON summary (--list: every file, "
                   "subtest and reason) here")
    p.add_argument("--pytest-arg", action="append", default=[], help="extra pytest argument (repeatable)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="show the inner pytest's output as it runs; "
                   "as test_progs' -v/-vv, load every program with a verifier log level of at least 1 (-vv: 2)")
    p.add_argument("--test-progs", nargs="+", metavar="NAME", help="instead of the RUN_TESTS files: build the "
                   "tree's own test_progs for these prog_tests (a file prog_tests/NAME.c: its tests; a test NAME; "
                   "NAME/SUBTEST), run it in one guest (`test_progs -a NAME,... -J FILE`) and judge every subtest "
                   "as test_progs did; with --list: build it and list its tests, no VM")
    p.add_argument("--test-progs-verbose", action="store_true", help="--test-progs: run test_progs with -v (every "
                   "subtest's lines in the log, a skip's reason among them; -v writes while tests run, which tests "
                   "that count their own syscalls can see)")
    p.add_argument("--timeout", type=float, default=1800.0, metavar="SECONDS",
                   help="--test-progs: how long test_progs may run in the guest (default 1800, at most 3600)")
    p.add_argument("files", nargs="*", metavar="FILE", help="only these (skeleton names such as verifier_and, "
                   "or paths of progs/*.c)")
    _clang_arg(p)
    _vm_args(p)
    p.set_defaults(func=selftests_cmd.cmd_selftests)


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand with its options; `func` names the handler in harness.cli.commands (selftests:
    harness.cli.selftests_cmd)."""
    parser = argparse.ArgumentParser(prog="bpf-audit-harness", description=DESCRIPTION, epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_Version, help="print the version (and git commit) and exit")
    sub = parser.add_subparsers(dest="cmd", required=True)
    _add_build(sub)
    _add_matrix(sub)
    _add_boot(sub)
    _add_mutants(sub)
    _add_bisect(sub)
    _add_cache(sub)
    _add_config(sub)
    _add_doctor(sub)
    _add_ssh(sub)
    _add_report(sub)
    _add_selftests(sub)
    return parser
