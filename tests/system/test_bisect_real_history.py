# SPDX-License-Identifier: GPL-2.0
"""bisect for real: a bisection of a git history that names a planted bug, toy histories whose commits do not
build (skipped, or an endpoint that cannot be judged), and Ctrl-C during a step; each leaves the tree as found."""

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import default_source, git, sigint_default

from harness.campaigns.bisect.run import tree_state
from harness.settings import DEFAULT_PATCHES_DIR, REPO_ROOT

MUTANT = "start-not-ret-null"
CASE = "cases/verifier/null_unchecked.bpf.c::unchecked_to_end"
DEMO_VERSION = 1
# Fixed identities and dates: the same commits (hence the same cache keys) on every run and every machine.
_IDENT = {"GIT_AUTHOR_NAME": "bpf-audit-harness", "GIT_AUTHOR_EMAIL": "harness@example.invalid",
          "GIT_COMMITTER_NAME": "bpf-audit-harness", "GIT_COMMITTER_EMAIL": "harness@example.invalid"}


def _plumb(git_dir: Path, *args: str, stdin: str | None = None, when: int = 0, work_tree: Path | None = None,
           strip: bool = True) -> str:
    """git with a fixed identity and date and no user or system config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    date = f"{1767225600 + when * 3600} +0000"  # 2026-01-01, one hour per commit
    env.update(_IDENT, GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date, GIT_CONFIG_NOSYSTEM="1",
               GIT_CONFIG_GLOBAL=os.devnull)
    argv = ["git", f"--git-dir={git_dir}", *([f"--work-tree={work_tree}"] if work_tree else []), *args]
    out = subprocess.run(argv, input=stdin, env=env, capture_output=True, text=True, cwd=work_tree)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {out.stderr}")
    return out.stdout.strip() if strip else out.stdout


def _commit(git_dir: Path, parent: str | None, message: str, when: int) -> str:
    tree = _plumb(git_dir, "write-tree")
    sha = _plumb(git_dir, "commit-tree", "--no-gpg-sign", tree, *(["-p", parent] if parent else []),
                 stdin=message + "\n", when=when)
    _plumb(git_dir, "update-ref", "refs/heads/main", sha)
    return sha


def _subject(patch: Path) -> str:
    """The patch's Subject header, unfolded, without the [PATCH n/m] tag."""
    m = re.search(r"^Subject: (.*(?:\n[ \t].*)*)", patch.read_text(), re.M)
    if not m:
        return patch.stem
    return re.sub(r"^\[[^]]*\]\s*", "", re.sub(r"\s*\n[ \t]+", " ", m.group(1))).strip()


def build_demo_repo(layout, source_tree: Path, identity: str, version: str) -> tuple[Path, dict[str, str]]:
    """A git repository: the default kernel's source, its series patch by patch, a commit reintroducing MUTANT, two
    harmless commits.

    Built once per input (cached under the harness cache's src/) with git plumbing only: the index is filled
    from the unpacked tarball without copying it, patches go in with `git apply --cached`, and every commit has
    a fixed author, committer and date, so its hash is the same on every run.
    """
    from harness.kernel.patches import load_series

    line = default_source()[1]  # the demo history is the default kernel's source and its line's series
    series = load_series(DEFAULT_PATCHES_DIR / line)
    mutant = DEFAULT_PATCHES_DIR / line / "mutants" / f"{MUTANT}.patch"
    h = hashlib.sha256(f"{DEMO_VERSION}:{identity}".encode())
    for p in (*[p.path for p in series.patches], mutant):
        h.update(p.read_bytes())
    repo = layout.sources / f"bisect-demo-{h.hexdigest()[:16]}"
    refs = repo / "refs.json"
    if refs.is_file():
        return repo, json.loads(refs.read_text())
    import fcntl
    import shutil
    import tempfile

    layout.locks.mkdir(parents=True, exist_ok=True)
    with open(layout.locks / "bisect-demo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if refs.is_file():
            return repo, json.loads(refs.read_text())
        tmp = Path(tempfile.mkdtemp(prefix=".bisect-demo-", dir=layout.sources))
        try:
            git_dir = tmp / "repo.git"
            subprocess.run(["git", "init", "-q", "--bare", str(git_dir)], check=True)
            _plumb(git_dir, "add", "-A", "-f", ".", work_tree=source_tree)
            shas = {"base": _commit(git_dir, None, f"Linux {version} (the Debian source as unpacked)", 0)}
            parent = shas["base"]
            for i, p in enumerate(series.patches, 1):
                _plumb(git_dir, "apply", "--cached", str(p.path))
                parent = shas[f"series-{i}"] = _commit(git_dir, parent, _subject(p.path), i)
            _plumb(git_dir, "apply", "--cached", str(mutant))
            parent = shas["bug"] = _commit(git_dir, parent, "bpf, lsm: register bpf_audit_log_start without "
                                           "KF_RET_NULL (planted bug)", 10)
            doc = "Documentation/bpf/index.rst"  # not part of any build
            text = _plumb(git_dir, "cat-file", "blob", f"main:{doc}", strip=False)
            for i, word in enumerate(("one", "two"), 1):
                text += f"\n.. harmless comment {word}\n"
                blob = _plumb(git_dir, "hash-object", "-w", "--stdin", stdin=text)
                _plumb(git_dir, "update-index", "--cacheinfo", f"100644,{blob},{doc}")
                parent = shas[f"harmless-{i}"] = _commit(git_dir, parent, f"Documentation: harmless {word}", 10 + i)
            (tmp / "refs.json").write_text(json.dumps(shas, indent=1))
            os.rename(tmp, repo)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return repo, json.loads(refs.read_text())


@pytest.fixture
def demo_tree(kernel_options, tmp_path):
    """A worktree of the demo repository on its own branch, removed after the test."""
    from harness.kernel.source import SourceSpec, resolve

    layout = kernel_options.layout()
    src = resolve(SourceSpec.from_args(default_source()[0], None), layout)  # fetched and unpacked
    repo, shas = build_demo_repo(layout, src.path, src.identity, src.kernelversion)
    git_dir = repo / "repo.git"
    branch = f"bisect-test-{os.getpid()}"
    tree = tmp_path / "linux"
    _plumb(git_dir, "worktree", "prune")
    _plumb(git_dir, "worktree", "add", "-q", "-b", branch, str(tree), shas["harmless-2"])
    try:
        yield tree, shas
    finally:
        _plumb(git_dir, "worktree", "remove", "--force", str(tree))
        _plumb(git_dir, "branch", "-D", branch)


@pytest.mark.slow
@pytest.mark.vm
def test_bisect_names_the_planted_bug_commit_and_leaves_the_tree_as_found(demo_tree, kernel_options):
    tree, shas = demo_tree
    before = tree_state(tree)
    t0 = time.monotonic()
    # --good is the whole series: at series-1 (only the record type) the case cannot run at all (the kfuncs do
    # not exist yet), so the endpoint check rightly refuses it as a commit it cannot judge.
    last = max((k for k in shas if k.startswith("series-")), key=lambda k: int(k.split("-")[1]))
    argv = [sys.executable, "-m", "harness.cli", "bisect", "--kernel-src", str(tree), "--good", shas[last],
            "--bad", "HEAD", "--retries", "2", "--cache-dir", str(kernel_options.layout().root), CASE]
    out = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-4000:]
    assert f"first bad commit: {shas['bug']}" in out.stdout, text[-4000:]
    assert "planted bug" in out.stdout
    assert "failing cases: " in out.stdout and "unchecked_to_end" in out.stdout
    steps = [line for line in out.stdout.splitlines() if line.startswith("[step] ") and " try " not in line
             and "(exit" in line]
    # the endpoints first (--bad fails, --good passes), then git bisect's own steps
    assert steps[0].startswith(f"[step] {git(tree, 'rev-parse', 'HEAD')[:12]}: bad (exit 1)"), text[-4000:]
    assert steps[1].startswith(f"[step] {shas[last][:12]}: good (exit 0)"), text[-4000:]
    assert 1 <= len(steps) - 2 <= 3, text[-4000:]  # bug, harmless-1 and harmless-2 (the known bad) are left
    assert tree_state(tree) == before, "bisect did not leave the tree on its branch and commit"
    assert git(tree, "status", "--porcelain", "--untracked-files=no") == ""
    assert not (tree / git(tree, "rev-parse", "--git-path", "BISECT_LOG")).exists()
    print(out.stdout[out.stdout.find("commit        verdict"):])  # the step table and the verdict
    print(f"bisect: 2 endpoint checks + {len(steps) - 2} steps in {time.monotonic() - t0:.0f}s")


def _toy_history(tree: Path, n: int = 4) -> list[str]:
    """A git tree whose Makefile is no kernel: every build fails at `make allnoconfig`."""
    git(tree, "init", "-q", "-b", "work")
    shas = []
    for i in range(n):
        (tree / "Makefile").write_text(f"VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = {i}\n")
        git(tree, "add", "Makefile")
        git(tree, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", f"step {i}")
        shas.append(git(tree, "rev-parse", "HEAD"))
    return shas


def _toy_bisect(tmp_path: Path, *extra: str) -> tuple[Path, list[str], list[str]]:
    """A toy history and the CLI call that bisects all of it (first commit good, last bad)."""
    tree = tmp_path / "toy"
    tree.mkdir()
    shas = _toy_history(tree)
    argv = [sys.executable, "-m", "harness.cli", "bisect", "--kernel-src", str(tree), "--good", shas[0],
            "--bad", shas[-1], "--cache-dir", str(tmp_path / "cache"), *extra, "cases/verifier/null_unchecked.bpf.c"]
    return tree, shas, argv


@pytest.mark.slow  # runs the real build stage (on a toy tree, where it fails at allnoconfig)
def test_commits_that_do_not_build_are_skipped_and_the_tree_is_reset(tmp_path):
    """Real git bisect run with the real step: every build fails (125), so git cannot name one commit."""
    tree, shas, argv = _toy_bisect(tmp_path, "--no-verify-endpoints")
    before = tree_state(tree)
    out = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "inconclusive: skipped commits hide the first bad one" in out.stdout, out.stdout
    assert out.stdout.count("build failed (config)") >= 2, out.stdout
    assert tree_state(tree) == before
    assert not (tree / git(tree, "rev-parse", "--git-path", "BISECT_LOG")).exists()


@pytest.mark.slow  # runs the real build stage (on a toy tree, where it fails at allnoconfig)
def test_an_endpoint_the_step_cannot_judge_stops_before_git_bisect_starts(tmp_path):
    """By default the step runs on --bad first: here its build fails (125), so nothing is bisected."""
    tree, shas, argv = _toy_bisect(tmp_path)
    before = tree_state(tree)
    out = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 3, out.stdout + out.stderr  # an endpoint the harness cannot judge: not a usage error
    assert f"checking --bad {shas[-1][:12]} first" in out.stdout
    assert f"--bad {shas[-1][:12]} could not be judged (build failed (config)" in out.stderr, out.stderr
    assert "--no-verify-endpoints" in out.stderr
    assert out.stdout.count("(exit 125)") == 1, out.stdout  # one step, on --bad; git bisect never ran
    assert tree_state(tree) == before
    assert not (tree / git(tree, "rev-parse", "--git-path", "BISECT_LOG")).exists()


@pytest.mark.slow  # runs the real build stage (on a toy tree, where it fails at allnoconfig)
def test_ctrl_c_during_a_step_still_resets_the_tree(tmp_path):
    import signal

    tree = tmp_path / "toy"
    tree.mkdir()
    shas = _toy_history(tree, 8)
    git(tree, "checkout", "-q", "-b", "other", shas[2])  # not at the tip: the reset must come back here
    before = tree_state(tree)
    argv = [sys.executable, "-m", "harness.cli", "bisect", "--kernel-src", str(tree), "--good", shas[0],
            "--bad", shas[-1], "--cache-dir", str(tmp_path / "cache"), "cases/verifier/null_unchecked.bpf.c"]
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, preexec_fn=sigint_default)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("[step] "):
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
            break
    rest = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, "".join(seen) + rest
    assert tree_state(tree) == before, "".join(seen) + rest
    assert not (tree / git(tree, "rev-parse", "--git-path", "BISECT_LOG")).exists()
