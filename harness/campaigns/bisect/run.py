# SPDX-License-Identifier: GPL-2.0
"""`git bisect run` over a kernel git tree with a harness step (build, boot, run cases); the tree is left as found."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from harness.errors import HarnessError, SourceError
from harness.tools import stream


class Verdict(StrEnum):
    """A step's verdict on a commit: the word its report says (StepReport.verdict, the JSON lines) and `code`, its
    exit code in git bisect run's language (harness.campaigns.bisect.step exits with it)."""

    code: int

    def __new__(cls, word: str, code: int) -> Verdict:
        member = str.__new__(cls, word)
        member._value_ = word
        member.code = code
        return member

    GOOD = "good", 0
    BAD = "bad", 1
    SKIP = "skip", 125
    ABORT = "abort", 128  # >= 128: git bisect run stops, no verdict on the commit
    INTERRUPTED = "interrupted", 130  # Ctrl-C (the step writes no report then)

    @classmethod
    def of(cls, word: str) -> Verdict:
        """The verdict a report's line names (what Verdict(word) does at run time; mypy reads __new__'s two
        arguments into that call)."""
        for verdict in cls:
            if verdict.value == word:
                return verdict
        raise ValueError(f"{word!r} is not a bisect step's verdict")


GOOD, BAD, SKIP, ABORT, INTERRUPTED = Verdict  # by name, as the step and the endpoint check use them


class Try(StrEnum):
    """One pytest run of a step (StepReport.tries): the step's verdict is read from these (step.judge_step)."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"  # every case skipped
    ERROR = "error"  # setup failed (the build or the boot of this commit), not a case's verdict
    ABORT = "abort"  # pytest itself stopped (interrupted, nothing collected, usage error)


class BisectError(HarnessError):
    """Mostly about the arguments or the tree the user named (exit 2); a step that could not judge an endpoint
    and a git command that failed are raised with usage=False (exit 3)."""

    stage = "bisect"
    usage = True


# ---------------------------------------------------------------- pure parsing


@dataclass
class StepReport:
    """What one step decided about one commit (a JSON line written by harness.campaigns.bisect.step)."""

    commit: str
    subject: str
    verdict: Verdict  # good | bad | skip | abort
    exit_code: int  # verdict.code
    reason: str = ""
    tries: list[Try] = field(default_factory=list)
    failing: list[str] = field(default_factory=list)  # node ids that failed (first failing try)
    output: str = ""  # the failing cases' messages
    kernel_key: str = ""
    build: str = ""  # "cache hit" or "built in Ns"
    seconds: float = 0.0

    @classmethod
    def from_json(cls, line: str) -> StepReport:
        data = json.loads(line)
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**fields, "verdict": Verdict.of(fields["verdict"]),
                      "tries": [Try(t) for t in fields.get("tries", [])]})


def read_reports(path: Path) -> list[StepReport]:
    if not path.is_file():
        return []
    return [StepReport.from_json(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass(frozen=True)
class Conclusion:
    first_bad: str | None  # full sha when git named exactly one commit
    candidates: tuple[str, ...] = ()  # when skipped commits left it ambiguous
    aborted: str = ""


_FIRST_BAD = re.compile(r"^([0-9a-f]{40}) is the first bad commit$", re.M)
_ABORT = re.compile(r"^bisect run (?:failed|cannot continue).*$", re.M)


def parse_run_output(text: str) -> Conclusion:
    """The verdict of `git bisect run` from its output."""
    m = _FIRST_BAD.search(text)
    if m:
        return Conclusion(m.group(1))
    if "There are only 'skip'ped commits left to test." in text:
        tail = text.split("The first bad commit could be any of:", 1)[-1]
        return Conclusion(None, tuple(re.findall(r"^([0-9a-f]{40})$", tail, re.M)))
    m = _ABORT.search(text)
    return Conclusion(None, aborted=m.group(0) if m else "git bisect run ended without naming a commit")


# ---------------------------------------------------------------- the git tree


def git(tree: Path, *args: str, check: bool = True) -> str:
    out = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True, check=False)
    if check and out.returncode != 0:
        raise BisectError(f"git {' '.join(args)} in {tree} failed: {out.stderr.strip() or out.stdout.strip()}",
                          usage=False)
    return out.stdout.strip()


@dataclass(frozen=True)
class TreeState:
    """Where the tree is: the branch checked out (None when detached) and the commit."""

    branch: str | None
    head: str

    def describe(self) -> str:
        return f"branch {self.branch} at {self.head[:12]}" if self.branch else f"detached HEAD {self.head[:12]}"


def tree_state(tree: Path) -> TreeState:
    branch = git(tree, "symbolic-ref", "-q", "HEAD", check=False) or None
    return TreeState(branch, git(tree, "rev-parse", "HEAD"))


def check_tree(tree: Path) -> None:
    """A tree that can be bisected: a git work tree, not mid-bisect, no changes to tracked files."""
    if not (tree / "Makefile").is_file():
        raise SourceError(f"{tree} is not a kernel tree (no Makefile); pass --kernel-src DIR.", usage=True)
    if git(tree, "rev-parse", "--is-inside-work-tree", check=False) != "true":
        raise SourceError(f"{tree} is not a git work tree: bisect needs one (pass --kernel-src DIR).", usage=True)
    log = tree / git(tree, "rev-parse", "--git-path", "BISECT_LOG")  # relative to tree, or absolute
    if log.exists():
        raise BisectError(f"{tree} is already being bisected ({log} exists). Finish it or run `git bisect reset`.")
    dirty = git(tree, "status", "--porcelain", "--untracked-files=no")
    if dirty:
        raise BisectError(f"{tree} has changes to tracked files; commit or stash them before bisecting:\n{dirty[:800]}")


def resolve_commit(tree: Path, rev: str, what: str) -> str:
    sha = git(tree, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    if not sha:
        raise BisectError(f"{what} {rev!r} is not a commit in {tree}.")
    return sha


# ---------------------------------------------------------------- running


@dataclass
class BisectResult:
    conclusion: Conclusion
    steps: list[StepReport]
    seconds: float
    run_dir: Path
    subject: str = ""
    good: str = ""
    bad: str = ""

    @property
    def first_bad(self) -> str | None:
        return self.conclusion.first_bad

    def flaky(self) -> list[StepReport]:
        return [s for s in self.steps if s.reason.startswith("flaky")]


def step_argv(tree: Path, cases: list[str], *, retries: int, report: Path, cache_dir: Path | None,
              config_dir: Path | None, accel: str, extra_pytest: list[str]) -> list[str]:
    argv = [sys.executable, "-m", "harness.campaigns.bisect.step", "--tree", str(tree), "--retries", str(retries),
            "--report", str(report), "--accel", accel]
    if cache_dir:
        argv += ["--cache-dir", str(cache_dir)]
    if config_dir:
        argv += ["--config-dir", str(config_dir)]
    for a in extra_pytest:
        argv += [f"--pytest-arg={a}"]
    return argv + ["--", *cases]


def absolute_cases(cases: list[str], cwd: Path) -> list[str]:
    """Node ids with their file part made absolute (the step runs pytest from the harness's repo)."""
    from harness.settings import REPO_ROOT

    out = []
    for case in cases:
        file, sep, rest = case.partition("::")
        for base in (cwd, REPO_ROOT):
            if (base / file).exists():
                file = str((base / file).resolve())
                break
        else:
            raise BisectError(f"case {case!r}: {file} exists neither in {cwd} nor in {REPO_ROOT}.")
        out.append(file + sep + rest)
    return out


def _endpoint_problem(name: str, sha: str, want: Verdict, rc: int, step: StepReport | None) -> str | None:
    """Why an endpoint the step judged (exit `rc`) does not bound a bisection (None when it does)."""
    if rc == want.code:
        return None
    why = f" ({step.reason})" if step and step.reason else ""
    if rc == GOOD.code:
        return (f"the cases pass at --bad {sha[:12]}: there is no failure to bisect. Check the case names, and "
                "that --bad is a commit where you saw the failure.")
    if rc == BAD.code:
        return (f"the cases already fail at --good {sha[:12]}: the first bad commit is older. Pick an older "
                "--good.")
    if rc == SKIP.code:
        return (f"{name} {sha[:12]} could not be judged{why}: the build, the boot or a flaky case made the "
                "step skip it, and a bisection needs two endpoints the harness can judge. Pick another "
                f"{name}, or pass --no-verify-endpoints to trust it.")
    return f"the step aborted on {name} {sha[:12]} (exit {rc}){why}; see the step log."


def _verify_endpoints(tree: Path, good_sha: str, bad_sha: str, step: list[str], report: Path, log: Path,
                      out) -> None:
    """Run the step on --bad (must fail) and --good (must pass) before git bisect trusts them."""
    def echo(line: str) -> None:
        out.write(line)
        out.flush()

    for name, sha, want in (("--bad", bad_sha, BAD), ("--good", good_sha, GOOD)):
        print(f"[bisect] checking {name} {sha[:12]} first: the cases must {'fail' if want is BAD else 'pass'} there",
              file=out, flush=True)
        git(tree, "checkout", "-q", "--detach", sha)
        rc = stream(step, log, echo, grace=60)
        reports = [r for r in read_reports(report) if r.commit == sha]
        problem = _endpoint_problem(name, sha, want, rc, reports[-1] if reports else None)
        if problem:  # a commit that judges the wrong way was mistyped; one that cannot be judged is not
            raise BisectError(problem, usage=rc in (GOOD.code, BAD.code))


def run_bisect(tree: Path, good: str, bad: str, cases: list[str], *, retries: int = 3,
               cache_dir: Path | None = None, config_dir: Path | None = None, accel: str = "auto",
               extra_pytest: Sequence[str] = (), verify_endpoints: bool = True, out=sys.stdout) -> BisectResult:
    """Bisect `tree` between good and bad with the harness step; always `git bisect reset` at the end.

    With verify_endpoints (the default) the step first runs on --bad and --good: a bisection between a
    "bad" that passes or a "good" that fails names a wrong commit with full confidence."""
    from harness.settings import CacheLayout, cache_root, new_run_dir

    if not cases:
        raise BisectError("name at least one case to bisect on (a pytest node id like cases/x.bpf.c::prog).")
    if retries < 1:
        raise BisectError(f"--retries must be at least 1 (got {retries}).")
    if config_dir is not None:  # a broken fragment is a usage error now, not a skipped build at every commit
        from harness.kernel import kconfig

        kconfig.check_conflicts(kconfig.load_fragments(config_dir))
    tree = tree.resolve()
    check_tree(tree)
    good_sha, bad_sha = resolve_commit(tree, good, "--good"), resolve_commit(tree, bad, "--bad")
    if subprocess.run(["git", "-C", str(tree), "merge-base", "--is-ancestor", good_sha, bad_sha]).returncode != 0:
        raise BisectError(f"--good {good} is not an ancestor of --bad {bad}: nothing to bisect between them.")
    cases = absolute_cases(cases, Path.cwd())
    run_dir = new_run_dir(CacheLayout(cache_dir or cache_root()), "bisect")
    report = run_dir / "steps.jsonl"
    before = tree_state(tree)
    t0 = time.monotonic()
    text = ""
    step = step_argv(tree, cases, retries=retries, report=report, cache_dir=cache_dir, config_dir=config_dir,
                     accel=accel, extra_pytest=list(extra_pytest))
    try:
        print(f"[bisect] {tree}: good {good_sha[:12]}, bad {bad_sha[:12]}; cases: {' '.join(cases)}", file=out)
        print(f"[bisect] step logs: {run_dir}", file=out, flush=True)
        if verify_endpoints:
            _verify_endpoints(tree, good_sha, bad_sha, step, report, run_dir / "endpoints.log", out)
        git(tree, "bisect", "start", bad_sha, good_sha)
        text = _stream(["git", "-C", str(tree), "bisect", "run", *step], run_dir / "bisect-run.log", out)
    finally:
        _reset(tree, before)
    result = BisectResult(parse_run_output(text), read_reports(report), time.monotonic() - t0, run_dir,
                          good=good_sha, bad=bad_sha)
    if result.first_bad:
        result.subject = git(tree, "log", "-1", "--format=%s", result.first_bad)
    return result


def _stream(argv: list[str], log: Path, out) -> str:
    """Run git bisect run, echoing its output; on Ctrl-C wait for the step to clean up its VMs first."""
    chunks: list[str] = []

    def on_line(line: str) -> None:
        chunks.append(line)
        out.write(line)
        out.flush()

    log.write_text("")
    stream(argv, log, on_line, grace=60)  # the step got the same SIGINT; let pytest stop its guests
    return "".join(chunks)


def _reset(tree: Path, before: TreeState) -> None:
    """`git bisect reset` back to where the tree was; say so loudly if that did not work."""
    res = subprocess.run(["git", "-C", str(tree), "bisect", "reset"], capture_output=True, text=True)
    after = tree_state(tree)
    if after != before:
        target = before.branch.removeprefix("refs/heads/") if before.branch else before.head
        subprocess.run(["git", "-C", str(tree), "checkout", "-q", target], capture_output=True)
        after = tree_state(tree)
    if after != before:
        print(f"bpf-audit-harness bisect: could not restore {tree} to {before.describe()} (now "
              f"{after.describe()}): {res.stderr.strip()}", file=sys.stderr)


def to_json(result: BisectResult) -> dict:
    """The bisection as data (`bisect --json`): the conclusion, then every step as the step reported it."""
    c = result.conclusion
    return {"first_bad": c.first_bad, "subject": result.subject if c.first_bad else "",
            "candidates": list(c.candidates), "aborted": c.aborted, "good": result.good, "bad": result.bad,
            "seconds": round(result.seconds, 1), "run_dir": str(result.run_dir),
            "flaky": [s.commit for s in result.flaky()], "steps": [dataclasses.asdict(s) for s in result.steps]}


def format_result(result: BisectResult) -> str:
    lines = [f"{'commit':<12}  {'verdict':<7} {'tries':<16} {'build':<16} reason / subject"]
    role = {result.good: "[--good] ", result.bad: "[--bad] "}
    for s in result.steps:
        lines.append(f"{s.commit[:12]:<12}  {s.verdict:<7} {','.join(s.tries):<16} {s.build:<16} "
                     f"{role.get(s.commit, '')}{s.reason or s.subject}")
    lines.append(f"{len(result.steps)} steps in {result.seconds:.0f}s")
    flaky = result.flaky()
    if flaky:
        lines.append("flaky (skipped, never a verdict): " + ", ".join(s.commit[:12] for s in flaky))
    c = result.conclusion
    if c.first_bad:
        lines.append(f"first bad commit: {c.first_bad} {result.subject}")
        step = next((s for s in result.steps if s.commit == c.first_bad and s.verdict is BAD), None)
        if step:
            lines.append("failing cases: " + ", ".join(step.failing))
            lines.append(step.output.rstrip())
        else:
            lines.append("(the step never ran on it: it is the --bad commit you gave, and --no-verify-endpoints "
                         "skipped checking that it fails)")
    elif c.candidates:
        lines.append("inconclusive: skipped commits hide the first bad one; it is one of:")
        lines += [f"  {sha}" for sha in c.candidates]
    else:
        lines.append(f"no verdict: {c.aborted}")
    return "\n".join(lines)
