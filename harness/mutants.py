# SPDX-License-Identifier: GPL-2.0
"""Mutation checks: build the series plus one deliberate bug from patches/mutants/, run the suite, report kills."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.errors import HarnessError, PatchError
from harness.patches import Patch, Series

MUTANTS_SUBDIR = "mutants"


# ---------------------------------------------------------------- mutant files


@dataclass(frozen=True)
class MutantInfo:
    """What a mutant's header says: its name, the spec rules it breaks, the bug in one line."""

    name: str
    breaks: str
    bug: str


def mutants_dir(patches_dir: Path) -> Path:
    return patches_dir / MUTANTS_SUBDIR


def available(patches_dir: Path) -> list[str]:
    """Names of the mutants shipped beside a series (file stem of patches/mutants/*.patch), sorted."""
    d = mutants_dir(patches_dir)
    return sorted(p.name[: -len(".patch")] for p in d.glob("*.patch")) if d.is_dir() else []


def mutant_path(patches_dir: Path, name: str) -> Path:
    """The patch file of mutant `name`; PatchError naming the known mutants when there is none."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name or ""):
        raise PatchError(f"mutant name {name!r} is not a plain file stem (letters, digits, '.', '_', '-').")
    path = mutants_dir(patches_dir) / f"{name}.patch"
    if not path.is_file():
        known = ", ".join(available(patches_dir)) or "none"
        raise PatchError(f"no mutant {name!r}: {path} does not exist. Known mutants: {known}.")
    return path


def parse_header(text: str, name: str) -> MutantInfo:
    """The `Breaks:` and `Bug:` lines of a mutant patch's header (the text before the first diff)."""
    head = text.split("\ndiff --git ", 1)[0]
    breaks = re.search(r"^Breaks:\s*(.+)$", head, re.M)
    bug = re.search(r"^Bug:\s*(.+)$", head, re.M)
    if not breaks or not bug:
        raise PatchError(f"mutant {name}: the header needs a 'Breaks: rule N' line and a 'Bug: ...' line.")
    return MutantInfo(name, breaks.group(1).strip(), bug.group(1).strip())


def load_info(patches_dir: Path, name: str) -> MutantInfo:
    return parse_header(mutant_path(patches_dir, name).read_text(errors="replace"), name)


def with_mutant(series: Series, patches_dir: Path, name: str) -> Series:
    """`series` with mutant `name` appended: a different patch list, hence a different cache key."""
    path = mutant_path(patches_dir, name)
    mutant = Patch(path.resolve(), 1, hashlib.sha256(path.read_bytes()).hexdigest())
    return Series(series.directory, (*series.patches, mutant))


# ---------------------------------------------------------------- JUnit results (pure)


@dataclass(frozen=True)
class CaseResult:
    nodeid: str
    outcome: str  # passed | failed | error | skipped
    message: str = ""


def _nodeid(classname: str, name: str) -> str:
    """pytest's JUnit names back to a node id: classname 'cases.audit.x.bpf.c' + name -> 'cases/audit/x.bpf.c::name'."""
    if classname.endswith(".bpf.c"):
        stem = classname[: -len(".bpf.c")].replace(".", "/")
        return f"{stem}.bpf.c::{name}"
    return f"{classname}::{name}" if classname else name


def parse_junit(text: str) -> list[CaseResult]:
    """Every <testcase> of a pytest JUnit XML report with its outcome and first failure message."""
    root = ET.fromstring(text)
    results = []
    for tc in root.iter("testcase"):
        prop = tc.find("properties/property[@name='nodeid']")
        nodeid = prop.get("value") if prop is not None else _nodeid(tc.get("classname", ""), tc.get("name", ""))
        outcome, message = "passed", ""
        for child in tc:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                message = child.text or child.get("message") or ""  # the text holds the message and more
                if child.tag != "skipped":
                    break
        results.append(CaseResult(nodeid, outcome, message.strip()))
    return results


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
    if any(r.outcome == "error" and "::" not in r.nodeid for r in results):
        return "harness-error", [], [r.nodeid for r in results if r.outcome == "error" and "::" not in r.nodeid]
    failed = [r.nodeid for r in results if r.outcome == "failed"]
    errors = [r.nodeid for r in results if r.outcome == "error"]
    return ("killed" if failed or errors else "survived"), failed, errors


def suite_argv(opts, name: str, junit: Path, *, cases: list[str], workers: int, extra: list[str]) -> list[str]:
    """pytest on the same kernel the mutant build used: every kernel option is passed through."""
    from harness.settings import DEFAULT_CONFIG_DIR, DEFAULT_PATCHES_DIR

    if opts.extra_fragments or opts.series_file:
        raise HarnessError("mutants: --fragment and a custom series file have no pytest equivalent; "
                           "put the fragment in a --config-dir instead.")
    argv = [sys.executable, "-m", "pytest", *cases, "--mutant", name, f"--junitxml={junit}", "-q",
            "-p", "no:cacheprovider", "-o", "junit_family=xunit2"]
    if workers > 1:
        argv += ["-n", str(workers)]
    if opts.kernel_src:
        argv += ["--kernel-src", str(opts.kernel_src)]
    if opts.ref:
        argv += ["--kernel-ref", opts.ref]
    if Path(opts.patches_dir) != DEFAULT_PATCHES_DIR:
        argv += ["--patches", str(Path(opts.patches_dir).resolve())]
    if Path(opts.config_dir) != DEFAULT_CONFIG_DIR:
        argv += ["--kernel-config-dir", str(Path(opts.config_dir).resolve())]
    if opts.cache_dir:
        argv += ["--harness-cache", str(Path(opts.cache_dir).resolve())]
    return argv + extra


def run_mutant(name: str, opts, run_dir: Path, *, cases: list[str], workers: int,
               extra_pytest: list[str] = (), incremental: bool = True) -> MutantResult:
    """Build series + mutant `name` (cache-aware) and run the suite on it in a pytest subprocess."""
    from dataclasses import replace

    from harness.pipeline import build_kernel
    from harness.settings import REPO_ROOT

    info = load_info(opts.patches_dir, name)
    res = MutantResult(name, info.breaks, info.bug, "harness-error")
    mopts = replace(opts, mutant=name)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        built = build_incremental(opts, name, run_dir) if incremental else build_kernel(mopts, run_dir=run_dir)
    except PatchError as e:
        res.detail = f"does not apply: {e}"
        return res
    except HarnessError as e:
        res.status, res.detail = "build-failed", f"{e.stage}: {e}"
        return res
    res.kernel_key, res.build_seconds, res.cache_hit = built.artifact.key, round(built.seconds, 1), built.cache_hit
    run_dir.mkdir(parents=True, exist_ok=True)  # a long run's directory may have been pruned meanwhile
    junit = run_dir / f"junit-{name}.xml"
    argv = suite_argv(opts, name, junit, cases=cases, workers=workers, extra=list(extra_pytest))
    log = run_dir / f"pytest-{name}.log"
    t0 = time.monotonic()
    with log.open("w") as f:
        f.write("$ " + " ".join(argv) + "\n")
        f.flush()
        rc = subprocess.run(argv, cwd=REPO_ROOT, stdout=f, stderr=subprocess.STDOUT, check=False).returncode
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
        res.detail = f"not a verdict: {first.nodeid}: {first.message.splitlines()[0] if first.message else ''}"
    res.passed = sum(r.outcome == "passed" for r in results)
    res.skipped = sum(r.outcome == "skipped" for r in results)
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
            out_dir: Path | None = None, extra_pytest: list[str] = (), incremental: bool = True) -> list[MutantResult]:
    """Build and test each mutant in turn (sequentially: one build at a time), print and save the kill table."""
    from harness.settings import new_run_dir

    names = names or available(opts.patches_dir)
    if not names:
        raise PatchError(f"no mutants in {mutants_dir(opts.patches_dir)} (expected NAME.patch files).")
    for name in names:  # every name and option checked before the first (long) build
        load_info(opts.patches_dir, name)
    suite_argv(opts, names[0], Path("junit.xml"), cases=cases, workers=workers, extra=[])
    cases = [str(Path(c).resolve()) if Path(c.split("::")[0]).exists() else c for c in cases]
    run_dir = out_dir.resolve() if out_dir else new_run_dir(opts.layout(), "mutants")
    run_dir.mkdir(parents=True, exist_ok=True)
    json_path = json_path or run_dir / "mutants.json"
    results: list[MutantResult] = []
    for i, name in enumerate(names, 1):
        print(f"[mutants] {i}/{len(names)} {name}", file=sys.stderr, flush=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        r = run_mutant(name, opts, run_dir, cases=cases, workers=workers, extra_pytest=extra_pytest,
                       incremental=incremental)
        print(f"[mutants] {name}: {r.status} ({len(r.failed) + len(r.errors)} failing cases; build "
              f"{'cache hit' if r.cache_hit else f'{r.build_seconds:.0f}s'}, suite {r.suite_seconds:.0f}s)",
              file=sys.stderr, flush=True)
        results.append(r)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        write_json(results, json_path)  # partial results survive an interrupted run
    print(format_table(results))
    print(f"JSON: {json_path}\nlogs: {run_dir}")
    return results


# ---------------------------------------------------------------- incremental mutant builds

BASE_READY = ".harness-mutant-base-ready"


def base_tree_dir(layout, base_key: str) -> Path:
    """The reference kernel's build tree kept for mutants (not swept: its name is not build-*)."""
    return layout.work / f"mutant-base-{base_key}"


def build_incremental(opts, name: str, run_dir: Path, *, progress: bool = True):
    """Series + mutant `name`, published under the same key a full build would have, built incrementally.

    All mutants patch the same few files of one tree: a full build per mutant would redo ~1,400 objects
    (ccache hits, but still hashed) plus copying the tree. Instead one build tree of the reference series is
    kept in the cache's work/ (mutant-base-<reference key>); each mutant is applied to it, `make` rebuilds
    what changed and relinks, the artifact is published under the mutant's own key, and the patch is
    reverted. A per-base lock serialises users of that tree; the mutant's key lock is taken as in
    kbuild.build, so a concurrent `pytest --mutant` waits and then hits the cache.
    """
    import os
    import shutil
    from dataclasses import replace

    from harness import cache, kbuild, kconfig
    from harness.kbuild import BuildResult, KernelArtifact
    from harness.patches import apply_series
    from harness.pipeline import make_request
    from harness.tools import BUILD_TOOLS, require

    t0 = time.monotonic()
    req = make_request(replace(opts, mutant=name))
    layout = req.layout
    cache.ensure_writable(layout)
    key = req.key_inputs().key()
    hit = cache.published(layout, key)
    if hit:
        return BuildResult(KernelArtifact.load(hit), True, time.monotonic() - t0, None)
    require(*BUILD_TOOLS)
    base_req = make_request(replace(opts, mutant=None))
    base_key = base_req.key_inputs().key()
    base = base_tree_dir(layout, base_key)
    tree = base / "linux"
    mutant = Series(req.series.directory, req.series.patches[-1:])
    log = run_dir / f"build-{key}.log"
    with cache.key_lock(layout, f"mutant-base-{base_key}"), cache.key_lock(layout, key):
        hit = cache.published(layout, key)
        if hit:
            return BuildResult(KernelArtifact.load(hit), True, time.monotonic() - t0, None)
        if not (base / BASE_READY).is_file():
            shutil.rmtree(base, ignore_errors=True)
            base.mkdir(parents=True)
            kbuild._say(progress, f"[mutants] new base tree for {base_key}: copying {req.source.path} -> {tree}")
            kbuild._run(["cp", "-a", "--reflink=auto", str(req.source.path), str(tree)], log, "copy source")
            apply_series(base_req.series, tree, log)
            kbuild.configure(tree, base_req.merged, base, log)
            (base / BASE_READY).write_text(base_key + "\n")
        applied = apply_series(mutant, tree, log)
        if not applied.applied:
            raise PatchError(f"mutant {name} was already present in {tree}: the base tree is not clean; "
                             f"delete {base} and rerun.")
        try:
            kbuild._make(req, tree, log, progress)
            final_config = (tree / ".config").read_text()
            kconfig.verify(req.merged, final_config, str(tree / ".config"))
            with cache.staging(layout, key) as staged:
                kbuild._collect(tree, staged, log)
                meta = {
                    "key": key,
                    "release": (tree / "include/config/kernel.release").read_text().strip(),
                    "source": req.source.identity,
                    "source_path": str(req.source.spec.describe()),
                    "kernelversion": req.source.kernelversion,
                    "patches": [p.name for p in req.series.patches],
                    "patches_applied": [p.name for p in req.series.patches],
                    "patches_already_present": [],
                    "toolchain": list(kbuild.toolchain_identity()),
                    "build_seconds": round(time.monotonic() - t0, 1),
                    "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "config_options": len(kconfig.parse_dotconfig(final_config)),
                    "incremental_from": base_key,
                    "builder_pid": os.getpid(),
                }
                entry = cache.publish(layout, key, staged, meta)
        finally:
            patch = mutant.patches[0]
            undo = subprocess.run(["patch", f"-p{patch.strip}", "-R", "--batch", "--no-backup-if-mismatch",
                                   "-i", str(patch.path)], cwd=tree, capture_output=True, text=True)
            if undo.returncode != 0:  # never leave a mutant in the base: the next one would build on top
                (base / BASE_READY).unlink(missing_ok=True)
    return BuildResult(KernelArtifact.load(entry), False, time.monotonic() - t0, log)
