# SPDX-License-Identifier: GPL-2.0
"""Where things live: the cache outside the repo, per-run log directories, repo paths."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from harness.proc import pid_alive

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent  # the checkout, when the harness runs from one (an editable install)
# The data the code needs beside it (guests/, kernel-config/, patches/, cases/harness.h): the checkout's own files in
# a checkout; in an installed wheel the copies setup.py put into the package as harness/_share/ (same names).
SHARE_DIR = PACKAGE_DIR / "_share"
FROM_CHECKOUT = (REPO_ROOT / "kernel-config").is_dir() and (REPO_ROOT / "guests" / "boot-sshd.sh").is_file()
DATA_ROOT = REPO_ROOT if FROM_CHECKOUT else SHARE_DIR
DEFAULT_PATCHES_DIR = DATA_ROOT / "patches"  # the patches root: one series per kernel line, patches/<line>/series
DEFAULT_CONFIG_DIR = DATA_ROOT / "kernel-config"
GUESTS_DIR = DATA_ROOT / "guests"  # the guest agent package, the boot script, the test_progs shim
CASES_INCLUDE_DIR = DATA_ROOT / "cases"  # harness.h, the case programs' header (the cases themselves: a checkout's)
CACHE_ENV = "BPF_AUDIT_HARNESS_CACHE"


def suite_cwd() -> Path:
    """Where an inner pytest (matrix, mutants, bisect, selftests) runs: the checkout (its pytest settings, `cases`
    relative to it), or, installed, the directory the user ran the command in."""
    return REPO_ROOT if FROM_CHECKOUT else Path.cwd()


# Comma-separated actions this process (and its children) must not take: "build" (a kernel build or a
# prebuilt kernel's preparation on a cache miss) and "boot" (any QEMU). For CI steps that must only reuse what
# is cached, and for the project's own tests (tests/conftest.py holds each test to its marks with it).
FORBID_ENV = "BPF_AUDIT_HARNESS_FORBID"
KEEP_RUNS = 30
KEPT_SUFFIX = ".kept.json"  # beside a VM's record while the VM is kept for inspection (harness.machine.keep)


def refuse_if_forbidden(action: str, what: str) -> None:
    """Raise RefusedError if FORBID_ENV names `action` ("build" or "boot")."""
    forbidden = {a.strip() for a in os.environ.get(FORBID_ENV, "").split(",") if a.strip()}
    if action in forbidden:
        from harness.errors import RefusedError

        raise RefusedError(f"{what}: refused, {FORBID_ENV}={os.environ[FORBID_ENV]} forbids '{action}' here. "
                           f"(The project's own tests set it for a test not marked "
                           f"{'slow' if action == 'build' else 'vm'}: mark the test for what it does.)")


def cache_root() -> Path:
    """The build cache: $BPF_AUDIT_HARNESS_CACHE, else $XDG_CACHE_HOME/bpf-audit-harness."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "bpf-audit-harness"


@dataclass(frozen=True)
class CacheLayout:
    """Subdirectories of one cache root; nothing outside them is ever written."""

    root: Path

    @property
    def sources(self) -> Path:
        """Unpacked trees (tar-<digest>/), Debian source lines' tarballs (debian/<line>/<version>/), --ref worktrees."""
        return self.root / "src"

    @property
    def apt(self) -> Path:
        """The harness's own apt roots, one per Debian source line (its sources.list, lists, empty dpkg status)."""
        return self.root / "apt"

    @property
    def trees(self) -> Path:
        """Patched trees: a hard-link mirror of a source with the series applied (harness.kernel.trees)."""
        return self.root / "trees"

    @property
    def slots(self) -> Path:
        """Build directories (make O=...), one per (tree, merged config, toolchain): incremental builds."""
        return self.root / "slots"

    @property
    def kernels(self) -> Path:
        return self.root / "kernels"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def locks(self) -> Path:
        return self.root / "locks"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def ccache(self) -> Path:
        return self.root / "ccache"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def objects(self) -> Path:
        """Compiled case objects (bpfobj), content-addressed."""
        return self.root / "objects"

    @property
    def libbpf(self) -> Path:
        """libbpf shared libraries built from kernel trees' tools/lib/bpf (harness.kernel.libbpf), keyed by their
        inputs; the guest agent runs on one of them for the kernel's own selftests."""
        return self.root / "libbpf"

    @property
    def bpftool(self) -> Path:
        """bpftool (its bootstrap build: gen skeleton, gen object, btf dump) built from kernel trees'
        tools/bpf/bpftool, keyed by their inputs (harness.kernel.bpftool)."""
        return self.root / "bpftool"

    @property
    def test_progs(self) -> Path:
        """test_progs binaries trimmed to named prog_tests, with the BPF objects they open, keyed by everything
        that went in (harness.selftests.testprogs.build, .entry)."""
        return self.root / "test_progs"

    @property
    def generated(self) -> Path:
        """Headers generated from a kernel tree (the selftests' bpf_helper_defs.h), keyed by their inputs."""
        return self.root / "generated"


def listdir(directory: Path) -> list[Path]:
    """The entries of `directory`, sorted; [] when it is not there (any more). Everything under the cache can be
    removed by another process at any moment (run pruning, `cache --prune`, the GC at session start): a reader
    takes an entry that vanished before or while it looked as normal, never as an error."""
    try:
        return sorted(directory / name for name in os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []


def run_files(runs: Path, suffix: str) -> list[Path]:
    """Files named *`suffix` in every run directory under `runs`; run directories pruned meanwhile are skipped."""
    out: list[Path] = []
    for run in listdir(runs):
        out += [f for f in listdir(run) if f.name.endswith(suffix)]
    return out


def new_run_dir(layout: CacheLayout, label: str = "run") -> Path:
    """A fresh directory for one invocation's logs; old ones beyond KEEP_RUNS are pruned."""
    layout.runs.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = layout.runs / f"{stamp}-{label}-{os.getpid()}"
    path.mkdir(parents=True, exist_ok=True)
    _prune_runs(layout.runs)
    return path


def _prune_runs(runs: Path) -> None:
    import shutil

    dated = []
    for p in listdir(runs):
        try:  # another process may be pruning the same directory right now
            if p.is_dir():
                dated.append((p.stat().st_mtime, p))
        except FileNotFoundError:
            continue
    entries = [p for _, p in sorted(dated)]
    for old in entries[:-KEEP_RUNS]:
        if _owner_alive(old):  # a long run (bisect, mutants, matrix) still writes there
            continue
        shutil.rmtree(old, ignore_errors=True)


def _owner_alive(run_dir: Path) -> bool:
    """Run directories end in -<pid> of the process that made them (new_run_dir). A directory holding a kept VM
    (pytest --keep-vm-on-failure: its keys and record, until `bpf-audit-harness ssh RUN --stop` or the timeout)
    counts as owned too, but only while its keep file is live: a stale one (deadline passed, or no deadline and
    its owner gone) pins nothing."""
    now = time.time()
    if any(kept_until(f) > now for f in listdir(run_dir) if f.name.endswith(KEPT_SUFFIX)):
        return True
    pid = run_dir.name.rsplit("-", 1)[-1]
    return pid.isdigit() and pid_alive(int(pid))


def kept_until(path: Path) -> float:
    """When a kept VM is due to end (epoch seconds): 0 for "not kept" (no file, one that does not parse, or one
    with no deadline whose owner is gone: its reaper was killed before it could write the deadline), inf while its
    owner still runs (the reaper writes the deadline when the owner exits), else the deadline."""
    import json

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return 0.0
    if not isinstance(data, dict):
        return 0.0
    deadline = data.get("deadline")
    if isinstance(deadline, int | float):
        return float(deadline)
    owner = data.get("owner_pid")
    if isinstance(owner, int) and not pid_alive(owner):
        return 0.0
    return float("inf")


def start_ticks(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot, /proc/PID/stat field 22), or None if it is gone: with
    the pid, an identity that a recycled pid does not share."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2:].split()
    return int(fields[19])


def harness_version() -> str:
    """The installed package's version, plus the git commit when the harness runs from a checkout."""
    import subprocess
    from importlib import metadata

    try:
        version = metadata.version("bpf-audit-harness")
    except metadata.PackageNotFoundError:
        version = "unknown (not installed: pip install -e .)"
    if not FROM_CHECKOUT or not (REPO_ROOT / ".git").exists():
        return version
    try:
        head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=False)
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return version
    if head.returncode != 0 or not head.stdout.strip():
        return version
    return f"{version} (git {head.stdout.strip()}{', with local changes' if dirty.stdout.strip() else ''})"
