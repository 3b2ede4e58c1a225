# SPDX-License-Identifier: GPL-2.0
"""The forked action child: its libc calls, comm and dropped capabilities, its result pipe, and waiting for it."""

import os
import time

from .caps import Caps
from .codec import json_dumps


class ChildLibc:
    """The few libc calls the actions need that `os` does not offer."""

    def __init__(self) -> None:
        import ctypes

        self.ct = ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        vp, ci, cul, sz = ctypes.c_void_p, ctypes.c_int, ctypes.c_ulong, ctypes.c_size_t
        libc.mmap.restype, libc.mmap.argtypes = vp, [vp, sz, ci, ci, ci, ctypes.c_long]
        libc.mprotect.restype, libc.mprotect.argtypes = ci, [vp, sz, ci]
        libc.prctl.restype, libc.prctl.argtypes = ci, [ci, cul, cul, cul, cul]
        libc.ioctl.restype, libc.ioctl.argtypes = ci, [ci, cul, cul]
        libc.sethostname.restype, libc.sethostname.argtypes = ci, [ctypes.c_char_p, sz]
        libc.capget.restype, libc.capget.argtypes = ci, [vp, vp]
        libc.capset.restype, libc.capset.argtypes = ci, [vp, vp]
        self.libc = libc
        self.caps = Caps(libc)

    def check(self, ret: int, what: str) -> int:
        if ret == -1 or ret is None:
            err = self.ct.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")
        return ret

    def set_comm(self, comm: bytes) -> None:
        buf = self.ct.create_string_buffer(comm, 16) if len(comm) < 16 else self.ct.create_string_buffer(comm)
        self.check(self.libc.prctl(15, self.ct.addressof(buf), 0, 0, 0), "prctl(PR_SET_NAME)")  # PR_SET_NAME


def _read_comm() -> str:
    try:
        with open("/proc/thread-self/comm", "rb") as f:
            return f.read().rstrip(b"\n").decode("utf-8", "backslashreplace")
    except OSError:
        return ""


def _killpg(pid: int) -> None:
    for kill, target in ((os.killpg, pid), (os.kill, pid)):
        try:
            kill(target, 9)
        except OSError:
            pass


def _child(w: int, r: int, run, libc: ChildLibc | None, comm: bytes, drop: list[int]) -> None:
    """Body of a forked action child: never returns."""
    code = 0
    res: dict = {"errno": 0}
    try:
        import _signal  # builtin, already loaded: importing `signal` here would pull in enum on every fork

        for sig in (_signal.SIGTERM, _signal.SIGHUP, _signal.SIGINT, _signal.SIGPIPE):
            _signal.signal(sig, _signal.SIG_DFL)
        os.close(r)
        os.setpgid(0, 0)
        if comm:
            libc.set_comm(comm)
        if drop:
            libc.caps.drop(drop, permitted=True)
        res["comm"] = _read_comm()
        try:
            run(res)
            res.pop("step", None)
        except OSError as e:
            res["errno"] = e.errno or 0
            res["strerror"] = os.strerror(e.errno) if e.errno else str(e)
    except BaseException as e:  # noqa: BLE001 - report, never fall back into the agent's main loop
        res["child_error"] = f"{type(e).__name__}: {e}"
        code = 2
    finally:
        try:
            os.write(w, json_dumps(res).encode())
        finally:
            os._exit(code)


def _wait(pid: int, timeout: float) -> tuple[int, bool]:
    """Wait for a child with a timeout; kill its process group on timeout. Returns (exit code, timed_out)."""
    timed_out = False
    pidfd = -1
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pass
    if pidfd >= 0:
        import select

        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        try:
            timed_out = not poller.poll(max(0, int(timeout * 1000)))
        finally:
            os.close(pidfd)
    else:
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status), False
            if time.monotonic() >= deadline:
                timed_out = True
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
    if timed_out:
        _killpg(pid)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), timed_out
