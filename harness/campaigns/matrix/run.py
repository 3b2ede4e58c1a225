# SPDX-License-Identifier: GPL-2.0
"""`bpf-audit-harness matrix`: per kernel target build (cache-aware) and run the suite, then write the reports."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.campaigns.inner import inner_pytest_argv
from harness.campaigns.matrix import formats as mf
from harness.campaigns.matrix import report as mr
from harness.campaigns.matrix import selftests as ms
from harness.campaigns.matrix.spec import KernelTarget, KnownFailure, Matrix
from harness.campaigns.results import CaseResult, parse_junit, suite_seconds
from harness.errors import HarnessError
from harness.selftests.discover import SELFTESTS
from harness.settings import CacheLayout, cache_root, new_run_dir, suite_cwd
from harness.tools import quoted, run_inner_pytest


@dataclass(frozen=True)
class MatrixOptions:
    out_dir: Path
    cases: tuple[str, ...] = ("cases",)
    workers: int = 2
    rerun_failures: int = 0
    cache_dir: Path | None = None
    accel: str = "auto"
    extra_pytest: tuple[str, ...] = ()
    suite: str = "cases"  # or "selftests": each kernel's own tree's BPF selftests (matrix/selftests.py)
    selftests: tuple[str, ...] = ()  # --suite selftests: only these skeletons (none: the whole RUN_TESTS set)
    known_differences: tuple = ()  # --suite selftests: campaigns.selftests.KnownDifference, for its summary


def prepare_target(target: KernelTarget, layout: CacheLayout, accel: str, run_dir: Path):
    """Build (or fetch) the target's kernel; a cache hit costs a key computation. Returns a BuildResult-like."""
    from harness.kernel.request import acquire, options_of_target

    return acquire(options_of_target(target, layout.root), target=target, accel=accel, run_dir=run_dir)


def suite_argv(target: KernelTarget, kernel: Path, opts: MatrixOptions, junit: Path, tests: list[str],
               workers: int, rootdir: Path | None = None) -> list[str]:
    """The inner pytest for one target: the artifact prepare_target gave (`kernel`, its cache entry: the inner
    session never re-derives it) booted with the target's kernel command line, the rest as every campaign runs it.
    rootdir: a tree's selftests directory (node ids relative to it; a file's subtests kept on one worker)."""
    extra = [f"--append={word}" for word in target.append]
    if rootdir is not None:
        extra += ["--rootdir", str(rootdir)] + (["--dist", "loadfile"] if workers > 1 else [])
    return inner_pytest_argv(tests, junit=junit, workers=workers, kernel=kernel, accel=opts.accel,
                             cache_dir=opts.cache_dir, extra=[*extra, *opts.extra_pytest])


def _pytest(argv: list[str], log: Path) -> int:
    with log.open("a") as f:
        f.write(f"$ {quoted(argv)}\n")
        f.flush()
        return run_inner_pytest(argv, f, cwd=suite_cwd())


def run_target(target: KernelTarget, matrix: Matrix, known: tuple[KnownFailure, ...], opts: MatrixOptions,
               layout: CacheLayout) -> mr.KernelRun:
    run = _run_target(target, matrix, known, opts, layout)
    save_target_meta(run, opts.out_dir / target.name)
    return run


TARGET_META = "target.json"


def save_target_meta(run: mr.KernelRun, tdir: Path) -> None:
    """What the JUnit files do not say (release, key, a setup error), so --report-only can rebuild the report."""
    tdir.mkdir(parents=True, exist_ok=True)
    meta = {"kernel": run.kernel, "description": run.description, "release": run.release, "error": run.error,
            "seconds": round(run.seconds, 1), "artifact_key": run.artifact_key, "packages": dict(run.packages),
            "version_notes": list(run.version_notes)}
    (tdir / TARGET_META).write_text(json.dumps(meta, indent=2) + "\n")


def load_target_run(target: KernelTarget, tdir: Path, known: tuple[KnownFailure, ...]) -> mr.KernelRun:
    """A KernelRun rebuilt from a target's output directory (junit.xml, rerun-N.junit.xml, target.json, logs/)."""
    try:
        meta = json.loads((tdir / TARGET_META).read_text())
    except (OSError, ValueError):
        meta = {}
    base = dict(kernel=target.name, description=meta.get("description") or target.description,
                release=meta.get("release", ""), seconds=float(meta.get("seconds") or 0.0),
                artifact_key=meta.get("artifact_key", ""), packages=tuple((meta.get("packages") or {}).items()),
                version_notes=tuple(meta.get("version_notes") or ()))
    junit = tdir / "junit.xml"
    if meta.get("error") or not junit.is_file():
        return mr.KernelRun(**base, error=meta.get("error") or f"no results: {junit} does not exist",
                            files=_kernel_files(tdir))
    return judge_dir(tdir, known, **base)


def junit_files(tdir: Path) -> list[Path]:
    """The target's JUnit files in run order: junit.xml, then rerun-1.junit.xml, rerun-2.junit.xml, ..."""
    files = [tdir / "junit.xml"]
    while (tdir / f"rerun-{len(files)}.junit.xml").is_file():
        files.append(tdir / f"rerun-{len(files)}.junit.xml")
    return files


def _rel(path: Path, tdir: Path) -> str:
    """A path inside the target's directory as the results directory (its parent) sees it."""
    return path.relative_to(tdir.parent).as_posix()


def _kernel_files(tdir: Path) -> tuple[mr.Link, ...]:
    named = [("pytest log", tdir / "pytest.log")]
    named += [("JUnit" if i == 0 else f"JUnit rerun {i}", f) for i, f in enumerate(junit_files(tdir))]
    return tuple(mr.Link(label, _rel(path, tdir)) for label, path in named if path.is_file())


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:120]


def keep_case_logs(tdir: Path, runs: list[list[CaseResult]]) -> dict[str, list[mr.Link]]:
    """Copy the log files each case's JUnit properties name (verifier, libbpf, audit records, console) into
    tdir/logs/<case>/try-<n>/, so the results directory stands alone: the run directories they were written to
    are pruned from the cache. Idempotent (a copy already there is kept: --report-only finds the kernel job's
    copies). Returns node id -> links: each try's JUnit file and the copies that exist."""
    links: dict[str, list[mr.Link]] = {}
    copied: dict[str, Path] = {}  # a file two cases name (a VM's console log) is copied once
    files = junit_files(tdir)
    for attempt, (junit, results) in enumerate(zip(files, runs, strict=True), 1):
        for r in results:
            mine = links.setdefault(r.nodeid, [])
            mine.append(mr.Link("JUnit" if attempt == 1 else f"JUnit rerun {attempt - 1}", _rel(junit, tdir),
                                attempt))
            for label, value in r.properties:
                if label not in mr.CASE_LOGS or not value:
                    continue
                src = Path(value)
                dest = copied.get(value) or tdir / "logs" / _slug(r.nodeid) / f"try-{attempt}" / _slug(src.name)
                if not dest.is_file() and src.is_file():
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        shutil.copyfile(src, dest)
                    except OSError as e:
                        _say(f"[matrix] cannot keep {src} as {dest}: {e.strerror}")
                if dest.is_file():
                    copied[value] = dest
                    mine.append(mr.Link(label, _rel(dest, tdir), attempt))
    return links


def judge_dir(tdir: Path, known: tuple[KnownFailure, ...], **run) -> mr.KernelRun:
    """Judge a target's JUnit files (first run and reruns) into a KernelRun, its logs kept and linked."""
    texts = [f.read_text() for f in junit_files(tdir)]
    runs = [parse_junit(t) for t in texts]
    cells, now_passing = mr.judge(run["kernel"], runs[0], runs[1:], known)
    logs = keep_case_logs(tdir, runs)
    files = _kernel_files(tdir)
    pytest_log = tuple(f for f in files if f.label == "pytest log")
    cells = [dataclasses.replace(c, logs=(*logs.get(c.case, ()), *pytest_log)) for c in cells]
    return mr.KernelRun(**run, cells=tuple(cells), now_passing=tuple(now_passing),
                        suite_seconds=sum(suite_seconds(t) for t in texts), files=files)


def report_from_dir(out_dir: Path, targets: tuple[KernelTarget, ...], known: tuple[KnownFailure, ...],
                    title: str = mr.Report.title) -> mr.Report:
    """Rebuild the matrix report from per-target directories (CI: one job per kernel, one report job); its links
    are relative to out_dir."""
    runs = tuple(load_target_run(t, out_dir / t.name, known) for t in targets)
    return mr.Report(runs, title=title,
                     generated=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()) + f", from {out_dir}")


def _run_target(target: KernelTarget, matrix: Matrix, known: tuple[KnownFailure, ...], opts: MatrixOptions,
                layout: CacheLayout) -> mr.KernelRun:
    t0 = time.monotonic()
    tdir = opts.out_dir / target.name
    tdir.mkdir(parents=True, exist_ok=True)
    for stale in (*tdir.glob("rerun-*.junit.xml"), tdir / "junit.xml", tdir / ms.SUMMARY_JSON, tdir / ms.SUMMARY_TEXT):
        # an --out reused: only this run's files
        stale.unlink(missing_ok=True)
    shutil.rmtree(tdir / "logs", ignore_errors=True)
    log = tdir / "pytest.log"
    _say(f"[matrix] {target.name}: {target.description}")
    try:
        built = prepare_target(target, layout, opts.accel, new_run_dir(layout, f"matrix-{target.name}"))
    except HarnessError as e:
        return mr.KernelRun(target.name, target.description, error=f"{e.stage} stage failed: {e}",
                            seconds=time.monotonic() - t0)
    art = built.artifact
    versions = dict(packages=tuple(sorted(art.meta.packages.items())), version_notes=built.notes)
    for note in built.notes:
        _say(f"[matrix] {target.name}: {note}")
    _say(f"[matrix] {target.name}: kernel {art.release} ({'cache hit' if built.cache_hit else 'built'}, "
         f"{built.seconds:.0f}s, key {art.key})"
         + "".join(f"\n[matrix] {target.name}:   {n} {v}" for n, v in versions["packages"]))
    junit = tdir / "junit.xml"
    tests, rootdir, chosen = list(opts.cases), None, None
    if opts.suite == "selftests":
        try:
            chosen = _selftests_for(target, art.meta.to_json(), opts, layout, tdir, versions)
        except HarnessError as e:
            _say(f"[matrix] {target.name}: {e}")
            return mr.KernelRun(target.name, target.description, art.release, seconds=time.monotonic() - t0,
                                error=f"{e.stage} stage failed: {e}", artifact_key=art.key, **versions)
        tests, rootdir = [str(f) for f in chosen.files], chosen.tree / SELFTESTS
    argv = suite_argv(target, art.dir, opts, junit, tests, opts.workers, rootdir)
    _say(f"[matrix] {target.name}: $ {quoted(argv)}  (log: {log})")
    rc = _pytest(argv, log)
    if rc not in (0, 1) or not junit.is_file():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        return mr.KernelRun(target.name, target.description, art.release, seconds=time.monotonic() - t0,
                            error=f"pytest exited {rc} (not a test verdict; see {log}):\n{tail}", artifact_key=art.key,
                            files=_kernel_files(tdir), **versions)
    first = parse_junit(junit.read_text())
    remaining = [r.nodeid for r in first if r.status.failing and r.rerunnable]
    for i in range(1, opts.rerun_failures + 1):
        if not remaining:
            break
        rjunit = tdir / f"rerun-{i}.junit.xml"
        _say(f"[matrix] {target.name}: rerun {i}/{opts.rerun_failures} of {len(remaining)} failing case(s)")
        again = remaining if rootdir is None else ms.rerun_args(rootdir, remaining)
        rc = _pytest(suite_argv(target, art.dir, opts, rjunit, again, min(opts.workers, len(remaining)), rootdir), log)
        if rc not in (0, 1) or not rjunit.is_file():
            if rjunit.is_file():  # judge_dir reads rerun-N.junit.xml files: not this one
                rjunit.rename(rjunit.with_name(f"rerun-{i}.crashed.junit.xml"))
            break  # a rerun that crashed says nothing about flakiness; the first verdict stands
        rerun = parse_junit(rjunit.read_text())
        remaining = [r.nodeid for r in rerun if r.status.failing and r.nodeid in remaining]
    run = judge_dir(tdir, known, kernel=target.name, description=target.description, release=art.release,
                    seconds=time.monotonic() - t0, artifact_key=art.key, **versions)
    if chosen is not None:
        summary = ms.write_summary(tdir, chosen, junit, opts.known_differences,
                                   {"kernel": target.name, "release": art.release, "workers": opts.workers})
        j = summary.to_json()
        _say(f"[matrix] {target.name}: selftests: {j['subtests']} subtests, {j['passed']} passed, {j['failed']} "
             f"failed, {j['skipped']} skipped, {j['errors']} no verdict ({tdir / ms.SUMMARY_TEXT})")
        for k in (*summary.stale, *summary.unmatched):
            how = "passed" if k in summary.stale else "no such failure"
            _say(f"[matrix] {target.name}: known difference that does not hold ({how}): {k.name}")
    _say(f"[matrix] {target.name}: {mr.counts_text(run) or 'no cases'} in {run.seconds:.0f}s")
    return run


def _selftests_for(target: KernelTarget, meta: dict, opts: MatrixOptions, layout: CacheLayout, tdir: Path,
                   versions: dict) -> ms.st.Selection:
    """The target's own tree and the files of it to run; the packages the tree came from and the notes (files it
    lacks) are added to `versions`, also when no file can run."""
    choice = ms.tree_choice(target, meta)
    _say(f"[matrix] {target.name}: selftests of {choice.describe()}")
    tree, packages, notes = ms.resolve_tree(choice, layout, tdir / "selftests-source.log")
    versions["packages"] = tuple(sorted({**dict(versions["packages"]), **packages}.items()))
    versions["version_notes"] = (*versions["version_notes"], *notes)
    chosen = ms.select(tree, opts.selftests)
    versions["version_notes"] = (*versions["version_notes"], *ms.absent_note(chosen))
    _say(f"[matrix] {target.name}: {len(chosen.files)} selftests file(s) of {tree / SELFTESTS}"
         + "".join(f"\n[matrix] {target.name}: {n}" for n in versions["version_notes"]))
    return chosen


def write_outputs(report: mr.Report, out_dir: Path, results_dir: Path | None = None) -> dict[str, Path]:
    """matrix.junit.xml, matrix.json, matrix.html and matrix.txt (summary, then the full table) in out_dir.
    results_dir: where the per-kernel directories are, when not out_dir itself (the links are made to reach it)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if results_dir is not None and results_dir.resolve() != out_dir.resolve():
        prefix = Path(os.path.relpath(results_dir.resolve(), out_dir.resolve())).as_posix()
        report = dataclasses.replace(report, link_prefix=prefix.rstrip("/") + "/")
    paths = {"junit": out_dir / "matrix.junit.xml", "json": out_dir / "matrix.json",
             "html": out_dir / "matrix.html", "text": out_dir / "matrix.txt"}
    paths["junit"].write_text(mf.to_junit(report))
    paths["json"].write_text(json.dumps(mf.to_json(report), indent=2) + "\n")
    paths["html"].write_text(mf.to_html(report))
    paths["text"].write_text(mf.to_summary(report) + "\n" + mf.to_text(report))
    return paths


def run_matrix(matrix: Matrix, targets: tuple[KernelTarget, ...], known: tuple[KnownFailure, ...],
               opts: MatrixOptions, title: str = mr.Report.title) -> tuple[mr.Report, dict[str, Path]]:
    layout = CacheLayout(opts.cache_dir or cache_root())
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    runs = tuple(run_target(t, matrix, known, opts, layout) for t in targets)
    report = mr.Report(runs, title=title, generated=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
                       + f", {time.monotonic() - t0:.0f}s on {os.uname().nodename}"
                       + (f", failures rerun up to {opts.rerun_failures}x" if opts.rerun_failures else ""))
    return report, write_outputs(report, opts.out_dir)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
