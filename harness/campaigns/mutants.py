# SPDX-License-Identifier: GPL-2.0
"""Mutation checks: build the series plus one deliberate bug from its mutants/ (patches/<line>/mutants/), run the
suite, report kills."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.campaigns.inner import inner_pytest_argv
from harness.campaigns.results import CaseResult, parse_junit
from harness.errors import HarnessError, PatchError
from harness.kernel.patches import available_mutants as available
from harness.kernel.patches import mutant_path, mutants_dir
from harness.status import Status
from harness.tools import run_inner_pytest

__all__ = ["available", "mutant_path", "mutants_dir"]  # the mutant files themselves live with the series


# ---------------------------------------------------------------- mutant files


@dataclass(frozen=True)
class MutantInfo:
    """What a mutant's header says: its name, the spec rules it breaks, the bug in one line."""

    name: str
    breaks: str
    bug: str


def parse_header(text: str, name: str) -> MutantInfo:
    """The `Breaks:` and `Bug:` lines of a mutant patch's header (the text before the first diff)."""
    head = text.split("\ndiff --git ", 1)[0]
    breaks = re.search(r"^Breaks:\s*(.+)$", head, re.M)
    bug = re.search(r"^Bug:\s*(.+)$", head, re.M)
    if not breaks or not bug:
        raise PatchError(f"mutant {name}: the header needs a 'Breaks: rule N' line and a 'Bug: ...' line.", usage=True)
    return MutantInfo(name, breaks.group(1).strip(), bug.group(1).strip())


def load_info(patches_dir: Path, name: str) -> MutantInfo:
    return parse_header(mutant_path(patches_dir, name).read_text(errors="replace"), name)


# ---------------------------------------------------------------- running


@dataclass
class MutantResult:
    name: str
    breaks: str
    bug: str
    status: str  # killed | survived | build-failed | harness-error
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    passed: int = 0
    skipped: int = 0
    kernel_key: str = ""
    build_seconds: float = 0.0
    cache_hit: bool = False
    suite_seconds: float = 0.0
    junit: str = ""
    detail: str = ""

    @property
    def killed(self) -> bool:
        return self.status == "killed"


def classify(results: list[CaseResult]) -> tuple[str, list[str], list[str]]:
    """killed when at least one case failed or errored (a crash the mutant caused is a kill too).

    An error that belongs to no test item (an xdist worker's collection failure: JUnit names it after the
    worker, without '::') says nothing about the kernel: the run is a harness error, not a kill.
    """
    stray = [r.nodeid for r in results if r.status is Status.ERROR and "::" not in r.nodeid]
    if stray:
        return "harness-error", [], stray
    # a case that failed without a verdict (a lost VM, records lost) is listed with the failures, as before
    failed = [r.nodeid for r in results if r.status is Status.FAIL or (r.status.failing and r.not_verdict)]
    errors = [r.nodeid for r in results if r.status is Status.ERROR and not r.not_verdict]
    return ("killed" if failed or errors else "survived"), failed, errors


def suite_argv(opts, kernel: Path, junit: Path, *, cases: list[str], workers: int, extra: list[str]) -> list[str]:
    """The inner pytest on the very kernel the mutant build produced (its cache entry, by path): the inner session
    re-derives nothing, so any kernel option the build took (--fragment, a series file) is honoured as built."""
    return inner_pytest_argv(cases, junit=junit, workers=workers, kernel=kernel, cache_dir=opts.cache_dir,
                             extra=extra)


def run_mutant(name: str, opts, run_dir: Path, *, cases: list[str], workers: int,
               extra_pytest: Sequence[str] = ()) -> MutantResult:
    """Build series + mutant `name` (cache-aware; incremental in the series' patched tree and slot, since a
    mutant changes one file) and run the suite on it in a pytest subprocess."""
    from dataclasses import replace

    from harness.kernel.request import build_kernel, series_directory
    from harness.settings import suite_cwd

    info = load_info(series_directory(opts), name)
    res = MutantResult(name, info.breaks, info.bug, "harness-error")
    mopts = replace(opts, mutant=name)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        built = build_kernel(mopts, run_dir=run_dir)
    except PatchError as e:
        res.detail = f"does not apply: {e}"
        return res
    except HarnessError as e:
        res.status, res.detail = "build-failed", f"{e.stage}: {e}"
        return res
    res.kernel_key, res.build_seconds, res.cache_hit = built.artifact.key, round(built.seconds, 1), built.cache_hit
    run_dir.mkdir(parents=True, exist_ok=True)  # a long run's directory may have been pruned meanwhile
    junit = run_dir / f"junit-{name}.xml"
    argv = suite_argv(opts, built.artifact.dir, junit, cases=cases, workers=workers, extra=list(extra_pytest))
    log = run_dir / f"pytest-{name}.log"
    t0 = time.monotonic()
    with log.open("w") as f:
        f.write("$ " + " ".join(argv) + "\n")
        f.flush()
        rc = run_inner_pytest(argv, f, cwd=suite_cwd())
    res.suite_seconds = round(time.monotonic() - t0, 1)
    res.junit = str(junit)
    if rc not in (0, 1) or not junit.is_file():
        tail = log.read_text(errors="replace")[-1500:]
        res.detail = f"pytest exited {rc} (not a test verdict); log {log}:\n{tail}"
        return res
    results = parse_junit(junit.read_text())
    res.status, res.failed, res.errors = classify(results)
    if res.status == "harness-error":
        first = next(r for r in results if r.nodeid in res.errors)
        why = (first.detail.strip().splitlines() or [""])[0]  # says more than the message, "collection failure"
        res.detail = f"not a verdict: {first.nodeid}: {why}"
    res.passed = sum(r.status is Status.PASS for r in results)
    res.skipped = sum(r.status in (Status.SKIP, Status.XFAIL) for r in results)
    return res


def format_table(results: list[MutantResult]) -> str:
    """The kill table: one line per mutant, then the cases that killed it, indented."""
    width = max([len(r.name) for r in results] + [6])
    lines = [f"{'mutant':<{width}}  {'rule':<7} {'verdict':<13} kills  passed skipped", "-" * (width + 44)]
    for r in results:
        kills = len(r.failed) + len(r.errors)
        lines.append(f"{r.name:<{width}}  {r.breaks.removeprefix('rule '):<7} {r.status:<13} {kills:>5}  "
                     f"{r.passed:>6} {r.skipped:>7}")
        for n in r.failed:
            lines.append(f"{'':<{width}}    failed: {n}")
        for n in r.errors:
            lines.append(f"{'':<{width}}    error:  {n}")
        if r.detail:
            lines.append(f"{'':<{width}}    {r.detail.splitlines()[0][:200]}")
    killed = sum(r.killed for r in results)
    lines.append(f"{killed}/{len(results)} mutants killed")
    return "\n".join(lines)


def write_json(results: list[MutantResult], path: Path) -> None:
    data = {
        "killed": sum(r.killed for r in results),
        "total": len(results),
        "mutants": [asdict(r) | {"killed": r.killed} for r in results],
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


def run_all(opts, names: list[str], *, cases: list[str], workers: int, json_path: Path | None,
            out_dir: Path | None = None, extra_pytest: Sequence[str] = ()) -> list[MutantResult]:
    """Build and test each mutant in turn (sequentially: one build at a time), print and save the kill table."""
    from harness.kernel.request import series_directory
    from harness.settings import new_run_dir

    series = series_directory(opts)  # the series of the source's kernel line (or --patches DIR's own)
    names = names or available(series)
    if not names:
        raise PatchError(f"no mutants in {mutants_dir(series)} (expected NAME.patch files).", usage=True)
    for name in names:  # every name and option checked before the first (long) build
        load_info(series, name)
    cases = [str(Path(c).resolve()) if Path(c.split("::")[0]).exists() else c for c in cases]
    run_dir = out_dir.resolve() if out_dir else new_run_dir(opts.layout(), "mutants")
    run_dir.mkdir(parents=True, exist_ok=True)
    json_path = json_path or run_dir / "mutants.json"
    results: list[MutantResult] = []
    for i, name in enumerate(names, 1):
        print(f"[mutants] {i}/{len(names)} {name}", file=sys.stderr, flush=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        r = run_mutant(name, opts, run_dir, cases=cases, workers=workers, extra_pytest=extra_pytest)
        print(f"[mutants] {name}: {r.status} ({len(r.failed) + len(r.errors)} failing cases; build "
              f"{'cache hit' if r.cache_hit else f'{r.build_seconds:.0f}s'}, suite {r.suite_seconds:.0f}s)",
              file=sys.stderr, flush=True)
        results.append(r)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        write_json(results, json_path)  # partial results survive an interrupted run
    print(format_table(results))
    print(f"JSON: {json_path}\nlogs: {run_dir}")
    return results
