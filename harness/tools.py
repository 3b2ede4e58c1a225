# SPDX-License-Identifier: GPL-2.0
"""Host tools the stages need, and the Debian package that provides each when it is missing."""

from __future__ import annotations

import shlex
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import IO

from harness.errors import MissingToolError

DEBIAN_PACKAGE = {
    "make": "make",
    "gcc": "gcc",
    "flex": "flex",
    "bison": "bison",
    "bc": "bc",
    "pahole": "dwarves",
    "ccache": "ccache",
    "zstd": "zstd",
    "git": "git",
    "patch": "patch",
    "tar": "tar",
    "xz": "xz-utils",
    "clang-19": "clang-19",
    "llvm-strip-19": "llvm-19",
    "bpftool": "bpftool",
    "qemu-system-x86_64": "qemu-system-x86",
    "vng": "virtme-ng (pip, in the project's venv: `make venv`)",
    "sshd": "openssh-server",
    "ssh-keygen": "openssh-client",
}

BUILD_TOOLS = ("make", "gcc", "flex", "bison", "bc", "pahole", "zstd", "tar", "xz", "bpftool")


def require(*tools: str) -> dict[str, str]:
    """Resolve each tool on PATH or raise one MissingToolError naming every missing one."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for tool in tools:
        path = shutil.which(tool) or (shutil.which(tool, path="/usr/sbin:/sbin") if tool == "sshd" else None)
        if path:
            found[tool] = path
        else:
            missing.append(tool)
    if missing:
        pkgs = sorted({DEBIAN_PACKAGE.get(t, t) for t in missing})
        raise MissingToolError(
            f"missing tool(s) on PATH: {', '.join(missing)}. Install with: apt-get install {' '.join(pkgs)} "
            "(or run `make deps`, which installs everything the harness needs)."
        )
    return found


@cache
def version_line(*argv: str) -> str:
    """First line of `argv` output, for cache keys and reports; '' when the tool is absent."""
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else ""


def quoted(argv: list[str] | tuple[str, ...]) -> str:
    """An argument list as a shell-quoted string, for logs and 'run this by hand' hints."""
    return shlex.join([str(a) for a in argv])


_PR_SET_PDEATHSIG = 1
_libc_prctl = None


def _prctl():
    global _libc_prctl
    if _libc_prctl is None:
        import ctypes

        _libc_prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved in the parent, not after fork
    return _libc_prctl


def die_with_parent_preexec(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A preexec_fn: the child gets `sig` when the process that started it dies, even by SIGKILL (the kernel's
    PR_SET_PDEATHSIG). For children that write shared state (make in a build slot, git in a worktree): a killed
    harness must not leave them writing while the next run takes the lock."""
    prctl = _prctl()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)

    return preexec


_HANDED_DOWN: list[int] = []


@contextmanager
def hand_down(lock_file) -> Iterator[None]:
    """Children started inside this block (child_kwargs) inherit the open lock file, so the lock stays held until
    the last of them exits: a SIGKILLed harness's orphans (git's own children, a compiler make started) finish
    before the next run may take the lock and touch what they write."""
    _HANDED_DOWN.append(lock_file.fileno())
    try:
        yield
    finally:
        _HANDED_DOWN.remove(lock_file.fileno())


def child_kwargs() -> dict:
    """subprocess arguments for a child that writes shared state: it dies with us (SIGKILL via PDEATHSIG) and
    holds the locks handed down to it."""
    return {"preexec_fn": die_with_parent_preexec(), "pass_fds": tuple(_HANDED_DOWN)}


def stream(argv: list[str], log: Path, on_line: Callable[[str], None], *, env: dict[str, str] | None = None,
           grace: float = 0.0) -> int:
    """Run argv with stdout+stderr merged, appending every line to `log` and handing it to `on_line`; returns
    the exit code. If the caller is interrupted (Ctrl-C, an exception), the child gets `grace` seconds to end
    by itself (it saw the same SIGINT and may be cleaning up, e.g. stopping VMs), then it is killed."""
    with log.open("a") as f:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", **child_kwargs())
        return _pump(proc, f, on_line, grace=grace)


INNER_GRACE = 60.0  # seconds an interrupted campaign gives its inner pytest to stop its guests itself


def run_inner_pytest(argv: list[str], log: IO[str], *, cwd: Path, on_line: Callable[[str], None] | None = None,
                     grace: float = INNER_GRACE) -> int:
    """A campaign's inner pytest, its output to `log` (and line by line to `on_line`); returns its exit code.

    It never outlives the campaign: if the campaign dies, even by SIGKILL, the kernel sends the inner session
    SIGTERM (PDEATHSIG), which the harness's plugin answers by ending its VMs at once. If the campaign is
    interrupted (Ctrl-C, SIGTERM), the inner session gets `grace` seconds to stop by itself (a terminal's Ctrl-C
    reached it too), then SIGTERM and 30 s, then SIGKILL."""
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace", preexec_fn=die_with_parent_preexec(signal.SIGTERM))
    return _pump(proc, log, on_line, grace=grace, term=30.0)


def _pump(proc: subprocess.Popen, log: IO[str], on_line: Callable[[str], None] | None, *, grace: float,
          term: float = 0.0) -> int:
    """Copy the child's output to `log` (and `on_line`) until it exits; its exit code. Interrupted, the child gets
    `grace` seconds to end by itself, then (with `term`) SIGTERM and `term` seconds, then SIGKILL."""
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if on_line is not None:
                on_line(line)
        return proc.wait()
    except BaseException:
        steps = [(None, grace)] + ([(signal.SIGTERM, term)] if term > 0 else []) + [(signal.SIGKILL, None)]
        for sig, wait in steps:
            if sig is not None:
                proc.send_signal(sig)
            if wait == 0:
                continue
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        raise
