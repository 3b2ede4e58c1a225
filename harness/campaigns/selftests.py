# SPDX-License-Identifier: GPL-2.0
"""`bpf-audit-harness selftests`: a tree's RUN_TESTS set through an inner pytest, as a per-file table and JSON."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.campaigns.inner import inner_pytest_argv
from harness.campaigns.known_differences import KnownDifference, kernel_line
from harness.campaigns.results import CaseResult, parse_junit, suite_seconds
from harness.errors import EXIT_FAILED, EXIT_HARNESS, EXIT_OK, HarnessError, UsageError
from harness.selftests.discover import SELFTESTS
from harness.selftests.select import Selector
from harness.settings import CacheLayout, suite_cwd
from harness.status import Status
from harness.tools import run_inner_pytest

# The statuses a subtest has in the summary (a listed known difference is an XFAIL), and the words its JSON, table
# and files use for them (consumers read these keys: keep them).
WORD = {Status.PASS: "passed", Status.FAIL: "failed", Status.SKIP: "skipped", Status.ERROR: "error",
        Status.XFAIL: "known_difference"}
PASSED, FAILED, SKIPPED, ERROR, KNOWN = WORD.values()
_STATUS_OF = {word: s for s, word in WORD.items()}
WHOLE_FILE = "(whole file)"
UNPRIV_SUFFIX = " @unpriv"


@dataclass
class Outcome:
    """One subtest's result in the summary."""

    file: str
    subtest: str
    mode: str  # priv | unpriv | "" (a whole-file item: the file did not compile, or a collection error)
    status: Status  # PASS | FAIL | SKIP | ERROR (no verdict: the harness's or the machine's) | XFAIL (known difference)
    reason: str = ""
    nodeid: str = ""
    seconds: float = 0.0
    verifier_log: str = ""
    failure: str = ""  # the judge's kind of failure (harness.selftests.judge.failure_kind)


def outcomes(results: Sequence[CaseResult], known: Sequence[KnownDifference] = (),
             files: Sequence[str] | None = None) -> tuple[list[Outcome], list[KnownDifference], list[KnownDifference]]:
    """The inner run's testcases as subtest outcomes; then, of the known differences this run should show (their
    file ran, on a kernel line they name): the stale ones (their subtest passed) and the unmatched ones (no failure
    of their subtest with their outcome and message: it is missing, skipped, or fails in another way, which is
    then a failure like any other)."""
    out: list[Outcome] = []
    releases: set[str] = set()
    absorbing: list[KnownDifference] = []
    for r in results:
        file = r.prop("selftest_file") or _file_of(r.nodeid)
        subtest = r.prop("subtest") or (r.nodeid.split("::", 1)[1] if "::" in r.nodeid else WHOLE_FILE)
        o = Outcome(file, subtest, r.prop("mode"), Status.ERROR, r.message, r.nodeid, r.seconds, r.prop("verifier log"),
                    r.prop("failure"))
        releases.update(r.props("kernel"))
        if r.status is Status.PASS:
            o.status = Status.PASS
        elif r.status in (Status.SKIP, Status.XFAIL):
            o.status = Status.SKIP
        elif r.status is Status.FAIL:
            o.status = Status.FAIL
            listed = next((k for k in known if k.explains(file, subtest, o.failure, f"{r.message}\n{r.detail}")),
                          None)
            if listed is not None:
                o.status, o.reason = Status.XFAIL, f"{listed.reason} (failed: {r.message})"
                absorbing.append(listed)
        elif r.status is Status.ERROR and not r.not_verdict:  # setup, teardown or collection failed: the harness's
            o.reason = (r.detail.strip().splitlines() or [r.message])[-1]
        out.append(o)
    line = kernel_line(next(iter(releases))) if len(releases) == 1 else None
    ran = sorted({o.file for o in out}) if files is None else list(files)
    due = [k for k in known if k.applies_to(ran, line) or (k.lines and line is None and k.file in ran)]
    stale = [k for k in due if any(o.status is Status.PASS and (o.file, o.subtest) == (k.file, k.subtest) for o in out)]
    unmatched = [k for k in due if k not in stale and k not in absorbing]
    return out, stale, unmatched


def _file_of(nodeid: str) -> str:
    return Path(nodeid.split("::", 1)[0]).name.removesuffix(".c")


@dataclass
class Summary:
    """What `selftests` reports: totals, the privileged pass rate, and a row per file."""

    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)
    stale: list[KnownDifference] = field(default_factory=list)
    unmatched: list[KnownDifference] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def count(self, status: Status | str, mode: str | None = None) -> int:
        """Subtests with `status` (a Status, or its WORD), of `mode` when given."""
        status = _STATUS_OF.get(status, status)
        return sum(1 for o in self.outcomes if o.status is status and (mode is None or o.mode == mode))

    def to_json(self) -> dict[str, Any]:
        # a whole-file item (a file that did not compile) counts as one privileged subtest: it cannot lift the rate
        priv = [o for o in self.outcomes if o.mode in ("priv", "")]
        passed_priv = sum(1 for o in priv if o.status is Status.PASS)
        return {
            "passed": self.count(PASSED), "failed": self.count(FAILED), "skipped": self.count(SKIPPED),
            "errors": self.count(ERROR), "known_differences": self.count(KNOWN),
            "subtests": len(self.outcomes),
            "privileged": {"subtests": len(priv), "passed": passed_priv,
                           "pass_rate": round(passed_priv / len(priv), 4) if priv else None,
                           **{WORD[s]: sum(1 for o in priv if o.status is s)
                              for s in (Status.FAIL, Status.SKIP, Status.ERROR, Status.XFAIL)}},
            "unprivileged": {k: self.count(k, "unpriv") for k in (PASSED, FAILED, SKIPPED, ERROR, KNOWN)},
            "skip_reasons": dict(Counter(_reason_key(o.reason) for o in self.outcomes
                                         if o.status is Status.SKIP).most_common()),
            "stale_known_differences": [asdict(k) for k in self.stale],
            "unmatched_known_differences": [asdict(k) for k in self.unmatched],
            **self.meta,
            "files": self.files,
        }


def _reason_key(reason: str) -> str:
    """A skip reason without its details in parentheses, for the totals."""
    return reason.split(" (")[0][:160]


def summarize(results: Sequence[CaseResult], files: Sequence[str], known: Sequence[KnownDifference] = (),
              meta: dict[str, Any] | None = None) -> Summary:
    """Group the outcomes by file, in `files` order (a file with no outcome at all is listed with an error)."""
    outs, stale, unmatched = outcomes(results, known, files)
    summary = Summary(outcomes=outs, stale=stale, unmatched=unmatched, meta=dict(meta or {}))
    by_file: dict[str, list[Outcome]] = {name: [] for name in files}
    for o in outs:
        by_file.setdefault(o.file, []).append(o)
    for name, rows in by_file.items():
        counts = Counter(o.status for o in rows)
        row: dict[str, Any] = {WORD[s]: counts.get(s, 0) for s in WORD}
        if not rows:
            row[ERROR] = 1
            rows.append(Outcome(name, WHOLE_FILE, "", Status.ERROR, "no result: the inner run reported nothing for it"))
            outs.append(rows[-1])
        row["subtests"] = [{"name": o.subtest, "mode": o.mode, "status": WORD[o.status], "reason": o.reason,
                            "seconds": round(o.seconds, 3), **({"verifier_log": o.verifier_log}
                                                              if o.verifier_log else {})} for o in rows]
        row["skip_reasons"] = dict(Counter(_reason_key(o.reason) for o in rows if o.status is Status.SKIP))
        summary.files[name] = row
    return summary


def format_table(summary: Summary) -> str:
    """A line per file (passed, failed, skipped with reasons, known differences, errors), the failures with their
    first line, and the totals."""
    head = f"{'FILE':<38} {'PASS':>5} {'FAIL':>5} {'SKIP':>5} {'KNOWN':>5} {'ERR':>4}  SKIPPED BECAUSE"
    lines = [head]
    for name, row in summary.files.items():
        reasons = "; ".join(f"{r} x{n}" if n > 1 else r for r, n in row["skip_reasons"].items())
        lines.append(f"{name:<38} {row[PASSED]:>5} {row[FAILED]:>5} {row[SKIPPED]:>5} {row[KNOWN]:>5} "
                     f"{row[ERROR]:>4}  {reasons[:200]}")
    for title, status in (("FAILED", Status.FAIL), ("NO VERDICT (harness or machine)", Status.ERROR),
                          ("KNOWN DIFFERENCES", Status.XFAIL)):
        rows = [o for o in summary.outcomes if o.status is status]
        if rows:
            lines += ["", f"{title}:"]
            lines += [f"  {o.file}: {o.subtest}: {(o.reason.splitlines() or [''])[0][:200]}" for o in rows]
    if summary.stale or summary.unmatched:
        lines += ["", "KNOWN DIFFERENCES THAT DO NOT HOLD (the list is wrong: fix it):"]
    for k in summary.stale:
        lines.append(f"  listed as a known difference but passed (remove it from the list): {k.name}")
    for k in summary.unmatched:
        lines.append(f"  listed as a known difference but no such failure happened: {k.name}")
    j = summary.to_json()
    p = j["privileged"]
    rate = f"{100 * p['pass_rate']:.1f}%" if p["pass_rate"] is not None else "-"
    lines += ["", f"subtests: {j['subtests']}: {j['passed']} passed, {j['failed']} failed, {j['skipped']} skipped, "
                  f"{j['known_differences']} known differences, {j['errors']} errors (no verdict)",
              f"privileged: {p['passed']}/{p['subtests']} passed ({rate}), {p[FAILED]} failed, {p[SKIPPED]} skipped, "
              f"{p[KNOWN]} known differences, {p[ERROR]} errors"]
    if "seconds" in summary.meta:
        lines.append(f"time: {summary.meta['seconds']:.0f} s wall ({summary.meta.get('workers', 1)} workers)")
    return "\n".join(lines) + "\n"


def exit_code(summary: Summary) -> int:
    """1 when a subtest failed or a known difference did not hold (stale, unmatched); else 3 when one got no
    verdict (the harness or the machine); else 0."""
    if summary.count(Status.FAIL) or summary.stale or summary.unmatched:
        return EXIT_FAILED
    return EXIT_HARNESS if summary.count(Status.ERROR) else EXIT_OK


def source_tree(kernel_src: str | None, layout: CacheLayout, *, ref: str | None = None,
                what: str = "--kernel-src") -> Path:
    """The tree whose RUN_TESTS set runs: `kernel_src` (a directory as is, never walked; a tarball unpacked into
    the cache; a git tree at `ref`: the harness's worktree, where a build put that commit; a Debian source line:
    fetched and unpacked into the cache), by default the source the default kernel is built from. `what` names the
    source in messages."""
    from harness.kernel.source import SourceSpec, resolve

    spec = SourceSpec.from_args(kernel_src, ref)
    if spec.kind == "dir":
        if not spec.path.is_dir():
            raise UsageError(f"{what} {kernel_src} is not a directory or a source tarball")
        return spec.path
    return resolve(spec, layout).path


@dataclass(frozen=True)
class Selection:
    """The RUN_TESTS files of a tree to run (absolute paths, in order), and the names asked for that the tree
    does not have (only when the caller allows that: a matrix kernel older than the file)."""

    tree: Path
    files: tuple[Path, ...]
    absent: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return [f.name.removesuffix(".c") for f in self.files]


def select_files(tree: Path, names: Sequence[str] = (), *, allow_absent: bool = False,
                 selector: Selector | None = None) -> Selection:
    """`names` (skeleton names, file names or progs/*.c paths; none: every file) among `tree`'s RUN_TESTS set,
    then the files whose test `selector` runs (test_progs' should_run() on the prog_tests function's test name).
    A name outside the set is a usage error, or with `allow_absent` listed in `absent` (a path to a file of
    the tree that test_progs does not run through test_loader is a usage error either way)."""
    from harness.selftests.discover import discover
    from harness.selftests.listing import select
    from harness.selftests.test_progs_log import name_of_test

    found = discover(tree)
    chosen, absent = ([], []) if names else (select(found, []), [])
    for name in names:
        try:
            chosen += select(found, [name])
        except UsageError:
            if not allow_absent:
                raise
            absent.append(str(name))
    chosen = list(dict.fromkeys(chosen))
    if allow_absent:  # named by a RUN_TESTS call, but the tree has no progs/<name>.c
        absent += [s.name for s in chosen if s.source is None and s.group != "none"]
        chosen = [s for s in chosen if s.source is not None or s.group == "none"]
    outside = [s.name for s in chosen if s.group == "none" or s.source is None]
    if outside:
        raise UsageError(f"not in the RUN_TESTS set of {tree}, so test_progs does not run them through test_loader: "
                         f"{', '.join(outside)}")
    if selector is not None:
        chosen = [s for s in chosen if selector.should_run(name_of_test(s.test))]
    return Selection(tree.resolve(), tuple(s.source.resolve() for s in chosen if s.source), tuple(absent))


@dataclass(frozen=True)
class SelftestsRun:
    """What the CLI asks for: the tree's files (absolute paths, in order) and how to run them."""

    tree: Path
    files: tuple[Path, ...]
    out_dir: Path
    # The kernel under test as the CLI acquired it: its cache entry, handed to the inner pytest as it is (never a
    # recipe for the inner session to build again)
    kernel: Path
    workers: int = 2
    cache_dir: Path | None = None
    accel: str | None = None
    known: tuple[KnownDifference, ...] = ()
    extra_pytest: tuple[str, ...] = ()
    selector: Selector | None = None  # test_progs' -t/-a/-b/-d and the tree's lists, for the subtests
    verbosity: int = 0  # test_progs' -v (1) / -vv (2): the verifier log level every load gets at least
    last_failed: str | None = None  # "lf" | "ff": pytest's --lf / --ff, with a pytest cache of this tree's runs
    pytest_cache: Path | None = None


def inner_argv(run: SelftestsRun, junit: Path) -> list[str]:
    """The inner pytest: the files, on the `kernel` the CLI acquired, xdist keeping a file's
    subtests together on one worker (in test_progs' order: each priv subtest before its unpriv one)."""
    extra = ["--rootdir", str(run.tree / SELFTESTS)]
    if run.workers > 1:
        extra += ["--dist", "loadfile"]
    if run.selector is not None and (run.selector.whitelist or run.selector.blacklist):
        extra.append("--selftests-filter=" + json.dumps(asdict(run.selector)))
    if run.verbosity:
        extra.append(f"--selftests-verbosity={run.verbosity}")
    return inner_pytest_argv([str(f) for f in run.files], junit=junit, workers=run.workers, kernel=run.kernel,
                             accel=run.accel, cache_dir=run.cache_dir, pytest_cache=run.pytest_cache,
                             rerun=run.last_failed, extra=[*extra, *run.extra_pytest])


def run_selftests(run: SelftestsRun, *, progress=sys.stderr) -> tuple[Summary, dict[str, Path]]:
    """Run the inner pytest (its output to a log, and its progress line by line to `progress`), then read its
    JUnit file into a Summary. A run that gives no JUnit file is a HarnessError (the kernel could not be
    prepared, a usage error of the inner session)."""
    run.out_dir.mkdir(parents=True, exist_ok=True)
    junit, log = run.out_dir / "junit.xml", run.out_dir / "pytest.log"
    argv = inner_argv(run, junit)
    t0 = time.monotonic()
    with log.open("w") as f:
        f.write("$ " + " ".join(argv) + "\n")
        f.flush()

        def echo(line: str) -> None:
            progress.write(line)
            progress.flush()

        rc = run_inner_pytest(argv, f, cwd=suite_cwd(), on_line=echo if progress is not None else None)
    seconds = time.monotonic() - t0
    if not junit.is_file() or rc not in (0, 1):
        tail = log.read_text(errors="replace")[-2000:]
        raise HarnessError(f"the inner pytest exited {rc} without a verdict on the subtests (log {log}):\n{tail}",
                           log_path=log)
    text = junit.read_text()
    meta = {"tree": str(run.tree), "workers": run.workers, "seconds": round(seconds, 1),
            "pytest_seconds": round(suite_seconds(text), 1), "junit": str(junit), "log": str(log),
            "files_selected": len(run.files)}
    names = [f.name.removesuffix(".c") for f in run.files]
    summary = summarize(parse_junit(text), names, run.known, meta)
    libbpf = sorted({o for o in _props(text, "libbpf")})
    notes = sorted({o for o in _props(text, "note")})
    summary.meta.update(libbpf=libbpf, notes=notes)
    path = run.out_dir / "selftests.json"
    path.write_text(json.dumps(summary.to_json(), indent=1) + "\n")
    return summary, {"json": path, "junit": junit, "log": log}


def _props(text: str, name: str) -> list[str]:
    return [v for r in parse_junit(text) for v in r.props(name)]


def to_test_progs_json(summary: Summary, tests: dict[str, str], *, verbose: bool = False) -> dict[str, Any]:
    """The results in test_progs' own -J shape: {"success", "success_subtest", "skipped", "failed",
    "failed_subtest", "results": [{"name", "number", "message", "failed", "subtests": [{"name", "number",
    "message", "failed"}]}]}. A test is a prog_tests function (`tests`: file -> its test name); as test_progs does,
    a test lists its failed subtests only, every subtest with `verbose`. No verdict counts as a failure."""
    by_test: dict[str, list[Outcome]] = {}
    for o in summary.outcomes:
        by_test.setdefault(tests.get(o.file, o.file), []).append(o)
    results, counts = [], dict.fromkeys(("success", "success_subtest", "skipped", "failed", "failed_subtest"), 0)
    for number, (test, rows) in enumerate(by_test.items(), 1):
        # a known difference (XFAIL) is a failure there
        bad = [o for o in rows if o.status in (Status.FAIL, Status.ERROR, Status.XFAIL)]
        counts["failed" if bad else "success"] += 1
        counts["failed_subtest"] += len(bad)
        counts["success_subtest"] += sum(1 for o in rows if o.status is Status.PASS)
        counts["skipped"] += sum(1 for o in rows if o.status is Status.SKIP)
        subtests = [{"name": o.subtest, "number": i, "message": "" if o.status is Status.PASS else o.reason,
                     "failed": o in bad} for i, o in enumerate(rows, 1) if verbose or o in bad]
        results.append({"name": test, "number": number, "message": "", "failed": bool(bad), "subtests": subtests})
    return {**counts, "results": results}
