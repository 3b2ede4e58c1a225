# SPDX-License-Identifier: GPL-2.0
"""One `git bisect run` step: build the tree at HEAD (cached), boot it, run the cases; exit 0/1/125/128."""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path

from harness.campaigns.bisect.run import ABORT, BAD, GOOD, INTERRUPTED, SKIP, StepReport, Try, Verdict, git
from harness.campaigns.inner import inner_pytest_argv
from harness.campaigns.results import CaseResult, parse_junit
from harness.errors import BuildError, ConfigError, HarnessError, PatchError
from harness.status import Status
from harness.tools import run_inner_pytest


def judge_try(rc: int, results: list[CaseResult]) -> tuple[Try, str]:
    """One pytest run -> (its Try, reason). Pure: the step's whole decision table."""
    # A case that ran and gave no verdict (a lost VM, records lost) counts as a failure here, as it did when the
    # reader called it FAIL: a commit whose kernel dies under the case is bad. Only setup errors skip the commit.
    failed = [r for r in results if r.status is Status.FAIL or (r.status.failing and r.not_verdict)]
    errors = [r for r in results if r.status is Status.ERROR and not r.not_verdict]
    if rc == 0 and results and all(r.status in (Status.SKIP, Status.XFAIL) for r in results):
        return Try.SKIP, f"every case skipped: {results[0].message}"
    if rc == 0:
        return Try.PASS, ""
    if rc == 1 and failed:
        return Try.FAIL, ""
    if rc == 1 and errors:  # setup failed: build or boot of this commit, not the case's verdict
        return Try.ERROR, f"setup error (build or boot, not the case): {errors[0].message}"
    if rc == 2:
        return Try.ABORT, "pytest was interrupted"
    if rc == 5:
        return Try.ABORT, "pytest collected no tests: check the case ids"
    return Try.ABORT, f"pytest exited {rc} (usage or internal error)"


def judge_step(tries: list[Try]) -> tuple[Verdict, str]:
    """The step's verdict from its tries: bad only when every try failed; a failure that went away is flaky."""
    if not tries:
        return ABORT, "no try ran"
    last = tries[-1]
    if last is Try.ABORT:
        return ABORT, ""
    if tries[0] is Try.PASS:
        return GOOD, ""
    if tries[0] in (Try.SKIP, Try.ERROR):
        return SKIP, ""
    if all(t is Try.FAIL for t in tries):
        return BAD, ""
    return SKIP, f"flaky: failed then {','.join(tries[1:])} (tries: {','.join(tries)})"


def suite_argv(ns: argparse.Namespace, junit: Path, kernel: Path) -> list[str]:
    """The inner pytest on the kernel this step built from the commit checked out in --tree (its cache entry, by
    path: the inner session never resolves the tree again): the cases, one worker."""
    return inner_pytest_argv(ns.cases, junit=junit, kernel=kernel, accel=ns.accel, cache_dir=ns.cache_dir,
                             extra=ns.pytest_arg)


def run_step(ns: argparse.Namespace) -> tuple[Verdict, StepReport]:
    from harness.kernel.request import KernelOptions, build_kernel
    from harness.settings import suite_cwd

    t0 = time.monotonic()
    commit = git(ns.tree, "rev-parse", "HEAD")
    rep = StepReport(commit, git(ns.tree, "log", "-1", "--format=%s"), ABORT, ABORT.code)
    kw = dict(kernel_src=str(ns.tree), no_patches=True, cache_dir=ns.cache_dir)
    if ns.config_dir:
        kw["config_dir"] = ns.config_dir
    print(f"[step] {commit[:12]} {rep.subject}", flush=True)
    try:
        built = build_kernel(KernelOptions(**kw), progress=True)
    except (BuildError, PatchError, ConfigError) as e:
        rep.verdict, rep.exit_code, rep.reason = SKIP, SKIP.code, f"build failed ({e.stage}): {str(e).splitlines()[0]}"
        return SKIP, rep
    rep.kernel_key = built.artifact.key
    rep.build = "cache hit" if built.cache_hit else f"built in {built.seconds:.0f}s"
    run_dir = Path(ns.report).parent
    run_dir.mkdir(parents=True, exist_ok=True)  # a long bisection's run directory may have been pruned meanwhile
    for n in range(1, ns.retries + 1):
        junit = run_dir / f"junit-{commit[:12]}-{n}.xml"
        log = run_dir / f"pytest-{commit[:12]}-{n}.log"
        with log.open("w") as f:
            argv = suite_argv(ns, junit, built.artifact.dir)
            rc = run_inner_pytest(argv, f, cwd=suite_cwd())
        results = parse_junit(junit.read_text()) if junit.is_file() else []
        outcome, reason = judge_try(rc, results)
        rep.tries.append(outcome)
        print(f"[step] try {n}/{ns.retries}: {outcome} {reason}".rstrip(), flush=True)
        if outcome is Try.ABORT:
            rep.reason = f"{reason} (log {log})"
            break
        if outcome is Try.FAIL and not rep.failing:
            bad = [r for r in results if r.status is Status.FAIL or (r.status.failing and r.not_verdict)]
            rep.failing = [r.nodeid for r in bad]
            rep.output = "\n".join(f"--- {r.nodeid}\n{r.detail.strip()}" for r in bad)
        if outcome != "fail":
            rep.reason = rep.reason or reason
            break
    verdict, why = judge_step(rep.tries)
    rep.verdict, rep.exit_code = verdict, verdict.code
    rep.reason = why or rep.reason
    rep.seconds = round(time.monotonic() - t0, 1)
    return verdict, rep


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.campaigns.bisect.step", description=__doc__)
    p.add_argument("--tree", type=Path, required=True)
    p.add_argument("--retries", type=int, default=3, help="tries before a failing commit is called bad")
    p.add_argument("--report", type=Path, required=True, help="append this step's JSON line here")
    p.add_argument("--cache-dir", type=Path)
    p.add_argument("--config-dir", type=Path)
    p.add_argument("--accel", default="auto")
    p.add_argument("--pytest-arg", action="append", default=[])
    p.add_argument("cases", nargs="+")
    ns = p.parse_args(argv)
    try:
        verdict, rep = run_step(ns)
    except KeyboardInterrupt:
        return INTERRUPTED.code
    except HarnessError as e:  # source, cache, tools: the harness cannot work, no verdict on the commit
        print(f"[step] harness error ({e.stage}): {e}", file=sys.stderr)
        return ABORT.code
    except Exception:  # noqa: BLE001 - a traceback's exit 1 would tell git bisect 'bad'; a crash is no verdict
        traceback.print_exc()
        return ABORT.code
    ns.report.parent.mkdir(parents=True, exist_ok=True)
    with ns.report.open("a") as f:
        f.write(json.dumps(asdict(rep)) + "\n")
    print(f"[step] {rep.commit[:12]}: {rep.verdict} (exit {verdict.code}) {rep.reason}".rstrip(), flush=True)
    return verdict.code


if __name__ == "__main__":
    sys.exit(main())
