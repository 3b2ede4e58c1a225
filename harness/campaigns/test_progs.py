# SPDX-License-Identifier: GPL-2.0
"""`selftests --test-progs` and prog_tests/*.c items: build a tree's test_progs for named tests, run it in one
guest, judge every subtest; the summary (JSON, table) and exit code the CLI reports."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import EXIT_FAILED, EXIT_HARNESS, EXIT_OK, HarnessError
from harness.selftests.testprogs.results import Report, Verdict, judge
from harness.settings import CacheLayout
from harness.status import Status

SUMMARY = "test_progs-summary.json"
COUNTED = (Status.PASS, Status.FAIL, Status.SKIP)  # counted in the summary under their `past` words, and "errors"


@dataclass
class Outcome:
    """One test_progs campaign: what was asked, what was built, what the run said (`report`), or the stage that
    failed first (`error`: a build or the machine, no verdict on any test)."""

    tree: Path
    names: tuple[str, ...]
    out_dir: Path
    files: dict[str, list[str]] = field(default_factory=dict)  # prog_tests file -> its tests
    selectors: tuple[str, ...] = ()
    report: Report | None = None
    error: str | None = None
    error_stage: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def verdicts(self) -> list[Verdict]:
        return list(self.report.verdicts) if self.report is not None else []

    def count(self, status: Status) -> int:
        return sum(1 for v in self.verdicts if v.status == status)

    def file_of(self, test: str) -> str | None:
        return next((f for f, tests in self.files.items() if test in tests), None)

    def to_json(self) -> dict[str, Any]:
        report = self.report.to_json() if self.report is not None else {}
        return {**{s.past: self.count(s) for s in COUNTED},
                "errors": self.count(Status.ERROR) + (1 if self.error else 0), "error": self.error,
                "error_stage": self.error_stage, "tree": str(self.tree), "names": list(self.names),
                "selectors": list(self.selectors), "files": self.files, "notes": self.notes, **self.meta,
                "paths": {k: str(v) for k, v in self.paths.items()},
                **{k: v for k, v in report.items() if k not in {*(s.past for s in COUNTED), "errors"}}}

    def write(self) -> Path:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / SUMMARY
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        self.paths.setdefault("json", path)
        return path


def kernel_tree(artifact, fallback: Callable[[], Path]) -> tuple[Path, list[str]]:
    """The tree the kernel under test was built from (a patched tree when the series was applied: its selftests
    are the series' too), else `fallback()` with a note (a prebuilt kernel, or a patched tree since pruned)."""
    tree = artifact.meta.tree or None
    if tree and Path(tree, "tools/testing/selftests/bpf").is_dir():
        return Path(tree), []
    src = fallback()
    why = (f"the tree it was built from ({tree}) is gone from the cache" if tree
           else "the kernel was not built from a tree here")
    return src, [f"test_progs is built from {src}: {why}"]


def run_test_progs(tree: Path, names: Sequence[str], artifact, layout: CacheLayout, out_dir: Path, pool_config, *,
                   timeout: float | None = None, verbose: bool = False,
                   say: Callable[[str], None] | None = None) -> Outcome:
    """Build `tree`'s test_progs for `names` against the kernel under test (`artifact`: its vmlinux.h and vmlinux),
    boot one machine from `pool_config`, run it there and judge. A build failure or a lost machine is the
    outcome's `error` (the stage is named), never raised; a usage error (an unknown name) is raised."""
    from harness.machine.pool import VMPool
    from harness.selftests.testprogs.build import TestSourceError, build_test_progs
    from harness.selftests.testprogs.entry import describe
    from harness.selftests.testprogs.plan import select
    from harness.selftests.testprogs.run import RUN_TIMEOUT, run_in_guest

    say = say or (lambda _msg: None)
    out_dir.mkdir(parents=True, exist_ok=True)
    selection = select(tree, names)
    outcome = Outcome(Path(tree), tuple(names), out_dir, {f.path.name: list(f.tests) for f in selection.files},
                      selection.selectors)
    outcome.meta["kernel"] = {"release": artifact.release, "key": artifact.key}
    t0 = time.monotonic()
    try:
        built = build_test_progs(tree, selection, artifact.vmlinux_h, layout, vmlinux=artifact.vmlinux, say=say)
    except TestSourceError as e:  # the tests' own sources: their failure, nothing to run
        outcome.report = Report(tuple(build_failures(outcome.files, e.failed_files)), None)
        if e.log_path is not None:
            outcome.paths["build_log"] = Path(e.log_path)
        return outcome
    except HarnessError as e:
        outcome.error, outcome.error_stage = f"building test_progs failed: {e}", "build"
        if e.log_path is not None:
            outcome.paths["build_log"] = Path(e.log_path)
        return outcome
    for line in describe(built):
        say(line)
    outcome.meta["test_progs"] = {"key": built.key, "cached": built.cached, "entry": str(built.entry),
                                  "build_seconds": round(built.seconds, 1), "objects": built.meta.get("objects"),
                                  "skeletons": built.meta.get("skeletons"),
                                  "helpers_linked": built.meta.get("helpers_linked"),
                                  "phases": built.meta.get("phases")}
    outcome.notes += list(built.meta.get("notes", []))
    failed_files = built.meta.get("failed_files") or {}
    selectors = [sel for sel in selection.selectors
                 if (outcome.file_of(sel.split("/", 1)[0]) or "") not in failed_files]
    if (built.entry / "build.log").is_file():
        shutil.copyfile(built.entry / "build.log", out_dir / "build.log")
        outcome.paths["build_log"] = out_dir / "build.log"
    modules = _test_modules(tree, artifact, layout, outcome.notes)
    pool = VMPool(pool_config)
    try:
        t1 = time.monotonic()
        try:
            machine = pool.get()
        except HarnessError as e:
            outcome.error, outcome.error_stage = f"LOST VM (no verdict): the machine did not come up: {e}", "vm"
            return outcome
        outcome.meta["boot_seconds"] = round(time.monotonic() - t1, 1)
        say(f"test_progs: running {' '.join(selectors)} in {machine.name}")
        run = run_in_guest(machine, built, selectors, out_dir, timeout=timeout or RUN_TIMEOUT,
                           verbose=verbose, modules=modules)
    finally:
        pool.close()
    outcome.notes += run.notes
    outcome.meta.update(run_seconds=round(run.seconds, 1), argv=run.argv, exit_code=run.rc,
                        total_seconds=round(time.monotonic() - t0, 1))
    for name, path in (("log", run.log), ("test_progs_json", run.json), ("console_log", run.console_log)):
        if path is not None:
            outcome.paths[name] = path
    report = judge(run.log_text, run.json_text, run.rc, selectors, lost=run.lost, timed_out=run.timed_out)
    outcome.report = Report((*report.verdicts, *build_failures(outcome.files, failed_files)), report.exit_code,
                            report.summary, report.counts, report.json_results, report.preamble, report.problems)
    if run.findings:
        outcome.notes += [f"kernel console during the run: {f.kind}: {f.first_line}" for f in run.findings]
        first = run.findings[0]
        extra = Verdict("(kernel console)", None, Status.FAIL,
                        f"the kernel reported {first.kind} while test_progs ran: {first.first_line}",
                        tuple(first.excerpt.splitlines()[-40:]))
        outcome.report = Report((*outcome.report.verdicts, extra), outcome.report.exit_code, outcome.report.summary,
                                outcome.report.counts, outcome.report.json_results, outcome.report.preamble,
                                outcome.report.problems)
    return outcome


def _test_modules(tree: Path, artifact, layout: CacheLayout, notes: list[str]) -> tuple[Path, ...]:
    """The tree's test modules (bpf_testmod.ko and its siblings) built for the kernel under test, to go beside
    test_progs as the Makefile's TRUNNER_EXTRA_FILES put them (test_progs loads bpf_testmod.ko from its directory;
    without it, it says so and skips or fails what needs it). None for a kernel without module support; a module
    that does not build is a note, and test_progs runs without it."""
    from harness.selftests.testmod_build import modules_for

    built, why = modules_for(tree, artifact.dir, artifact.config, layout)
    if built is None:
        notes.append(f"test_progs runs without bpf_testmod.ko: {why}")
        return ()
    modules = tuple(sorted(built.glob("*.ko")))
    notes.append(f"test modules beside test_progs: {', '.join(p.name for p in modules)} (built for this kernel)")
    return modules


def build_failures(files: dict[str, list[str]], failed: dict[str, str]) -> list[Verdict]:
    """A FAILED verdict for each test of a named prog_tests file that does not build (its own source, or a BPF
    program or skeleton it needs), with the compiler's lines."""
    out = []
    for name, why in failed.items():
        lines = tuple(why.splitlines())
        first = next((ln.strip() for ln in lines if "error" in ln), lines[0] if lines else "")
        for test in files.get(name, ()):
            out.append(Verdict(test, None, Status.FAIL, f"prog_tests/{name} does not build: {first}"[:300], lines))
    return out


def exit_code(outcome: Outcome) -> int:
    """1 when a subtest failed; else 3 when something got no verdict (a build, the machine, a crash); else 0."""
    if outcome.count(Status.FAIL):
        return EXIT_FAILED
    if outcome.error or outcome.count(Status.ERROR):
        return EXIT_HARNESS
    return EXIT_OK


def format_table(outcome: Outcome) -> str:
    """Every subtest with its result (and a failure's or skip's message), then a line per test and the totals."""
    lines: list[str] = []
    if outcome.error:
        lines += [f"NO VERDICT ({outcome.error_stage}): {outcome.error}"]
    verdicts = outcome.verdicts
    if verdicts:
        width = min(60, max(len(v.name) for v in verdicts))
        lines.append(f"{'TEST/SUBTEST':<{width}}  {'RESULT':<6}  MESSAGE")
        shown = {Status.PASS: "pass", Status.FAIL: "FAIL", Status.SKIP: "skip", Status.ERROR: "ERROR"}
        for v in verdicts:
            lines.append(f"{v.name:<{width}}  {shown[v.status]:<6}  {v.message[:160]}".rstrip())
        lines += ["", f"{'TEST':<{width}}  {'PASS':>4} {'FAIL':>4} {'SKIP':>4} {'ERR':>4}  FILE"]
        for test in dict.fromkeys(v.test for v in verdicts):
            mine = [v for v in verdicts if v.test == test]
            n = {s: sum(1 for v in mine if v.status == s) for s in (*COUNTED, Status.ERROR)}
            lines.append(f"{test:<{width}}  {n[Status.PASS]:>4} {n[Status.FAIL]:>4} {n[Status.SKIP]:>4} "
                         f"{n[Status.ERROR]:>4}  "
                         f"{outcome.file_of(test) or '-'}")
    j = outcome.to_json()
    lines += ["", f"subtests: {len(verdicts)}: {j['passed']} passed, {j['failed']} failed, {j['skipped']} skipped, "
                  f"{j['errors']} errors (no verdict)"]
    kernel = outcome.meta.get("kernel") or {}
    tp = outcome.meta.get("test_progs") or {}
    if kernel:
        lines.append(f"kernel {kernel.get('release')} (key {kernel.get('key')}); test_progs key {tp.get('key', '-')} "
                     f"({'cache hit' if tp.get('cached') else 'built'}); exit {outcome.meta.get('exit_code')}")
    if "total_seconds" in outcome.meta:
        lines.append(f"time: {outcome.meta['total_seconds']:.0f} s (build {tp.get('build_seconds', 0):.0f} s, boot "
                     f"{outcome.meta.get('boot_seconds', 0):.0f} s, run {outcome.meta.get('run_seconds', 0):.0f} s)")
    lines += [f"note: {n}" for n in outcome.notes]
    return "\n".join(lines) + "\n"
