# SPDX-License-Identifier: GPL-2.0
"""Triggers: a shell command, or a built-in action in a forked child (distinct pid/comm for the hook)."""

import os
import threading
import time

from .caps import parse_caps
from .child import ChildLibc, _child, _killpg, _wait
from .codec import json_loads
from .protocol import MIB, BadRequest, arg

OPEN_FLAGS = {
    "r": os.O_RDONLY,
    "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "rw": os.O_RDWR | os.O_CREAT,
    "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
}
PROT = {"none": 0, "r": 1, "rw": 3, "x": 4, "rx": 5, "rwx": 7}
MAX_OUTPUT = 1 * MIB

TYPE_CHECKING = False
if TYPE_CHECKING:  # imported where used, after the hello (start-up does not pay for messages.py)
    from .messages import TriggerReply


def _open_flags(req: dict, default: str) -> int:
    flags = arg(req, "flags", (str, int), default)
    if isinstance(flags, int):
        return flags
    if flags not in OPEN_FLAGS:
        raise BadRequest(f"argument 'flags' must be one of {sorted(OPEN_FLAGS)} or an integer")
    return OPEN_FLAGS[flags]


class Triggers:
    def __init__(self) -> None:
        self._libc: ChildLibc | None = None
        self._socket = None

    @property
    def libc(self) -> ChildLibc:
        if self._libc is None:
            self._libc = ChildLibc()
        return self._libc

    # -- validation in the agent, before the fork ------------------------------------------------------------------
    def prepare(self, action: str, req: dict):
        """Validate parameters and return a callable run in the child: (result dict) -> None, raises OSError."""
        prep = getattr(self, "_prep_" + action, None)
        if prep is None:
            names = sorted(n[6:] for n in dir(self) if n.startswith("_prep_"))
            raise BadRequest(f"unknown action {action!r}; known actions: {', '.join(names)}")
        return prep(req)

    def _prep_open(self, req: dict):
        path = arg(req, "path", str)
        flags = _open_flags(req, "r")
        in_thread = arg(req, "thread", int, 0)

        def open_close(res: dict) -> None:
            res["tid"] = threading.get_native_id()
            fd = os.open(path, flags | os.O_CLOEXEC, 0o644)
            try:
                res["ino"] = os.fstat(fd).st_ino
            finally:
                os.close(fd)

        def run(res: dict) -> None:
            res["step"] = "open"
            if not in_thread:
                open_close(res)
                return
            failure: list[BaseException] = []

            def body() -> None:  # a second thread: its tid is not the process id
                try:
                    open_close(res)
                except BaseException as e:  # noqa: BLE001 - handed to the child's own error path
                    failure.append(e)

            worker = threading.Thread(target=body, name="bah-trigger")
            worker.start()
            worker.join()
            if failure:
                raise failure[0]

        return run

    def _prep_read(self, req: dict):
        path = arg(req, "path", str)
        size = arg(req, "size", int, 4096)

        def run(res: dict) -> None:
            res["step"] = "open"
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                res["ino"] = os.fstat(fd).st_ino
                res["step"] = "read"
                res["nread"] = len(os.read(fd, size))
            finally:
                os.close(fd)

        return run

    def _prep_mprotect(self, req: dict):
        prot = arg(req, "prot", str, "rx")
        if prot not in PROT:
            raise BadRequest(f"argument 'prot' must be one of {sorted(PROT)}")
        libc = self.libc

        def run(res: dict) -> None:
            res["step"] = "mmap"
            addr = libc.libc.mmap(None, 4096, 3, 0x22, -1, 0)  # PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS
            if addr is None or addr == 2**64 - 1:
                err = libc.ct.get_errno()
                raise OSError(err, os.strerror(err))
            res["step"] = "mprotect"
            libc.check(libc.libc.mprotect(addr, 4096, PROT[prot]), "mprotect")

        return run

    def _prep_connect(self, req: dict):
        import socket

        self._socket = socket
        family = arg(req, "family", str, "inet")
        stype = {"stream": socket.SOCK_STREAM, "dgram": socket.SOCK_DGRAM}.get(arg(req, "type", str, "stream"))
        if stype is None:
            raise BadRequest("argument 'type' must be 'stream' or 'dgram'")
        if family == "unix":
            path = arg(req, "path", str)
            address: object = "\0" + path[1:] if path.startswith("@") else path
            fam = socket.AF_UNIX
        elif family in ("inet", "inet6"):
            fam = socket.AF_INET if family == "inet" else socket.AF_INET6
            host = arg(req, "addr", str, "127.0.0.1" if family == "inet" else "::1")
            port = arg(req, "port", int)
            if not 0 <= port <= 65535:
                raise BadRequest("argument 'port' must be 0..65535")
            address = (host, port)
        else:
            raise BadRequest("argument 'family' must be 'inet', 'inet6' or 'unix'")
        bind_to = None
        if "bind_addr" in req or "bind_port" in req:
            if family == "unix":
                raise BadRequest("bind_addr/bind_port apply to inet and inet6 only")
            bind_port = arg(req, "bind_port", int, 0)
            if not 0 <= bind_port <= 65535:
                raise BadRequest("argument 'bind_port' must be 0..65535")
            bind_to = (arg(req, "bind_addr", str, "127.0.0.1" if family == "inet" else "::1"), bind_port)

        def run(res: dict) -> None:
            res["step"] = "socket"
            s = socket.socket(fam, stype)
            try:
                if bind_to is not None:
                    res["step"] = "bind"
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(bind_to)
                res["step"] = "connect"
                s.connect(address)
            finally:
                s.close()

        return run

    def _socket_address(self, req: dict, family: str):
        """(socket module, address family, address) of a bind/getsockopt request: inet/inet6 addr= port=, or a
        unix path= (a file the action removes before binding and after)."""
        import socket

        if family == "unix":
            path = arg(req, "path", str)
            if not path.startswith("/"):
                raise BadRequest("argument 'path' must be an absolute path for a unix socket")
            return socket, socket.AF_UNIX, path
        if family not in ("inet", "inet6"):
            raise BadRequest("argument 'family' must be 'inet', 'inet6' or 'unix'")
        fam = socket.AF_INET if family == "inet" else socket.AF_INET6
        host = arg(req, "addr", str, "127.0.0.1" if family == "inet" else "::1")
        port = arg(req, "port", int)
        if not 0 <= port <= 65535:
            raise BadRequest("argument 'port' must be 0..65535")
        return socket, fam, (host, port)

    def _prep_bind(self, req: dict):
        """bind(2) alone: a socket bound to addr:port (or a unix path), then closed. No connect."""
        family = arg(req, "family", str, "inet")
        socket, fam, address = self._socket_address(req, family)
        stype = {"stream": socket.SOCK_STREAM, "dgram": socket.SOCK_DGRAM}.get(arg(req, "type", str, "stream"))
        if stype is None:
            raise BadRequest("argument 'type' must be 'stream' or 'dgram'")

        def run(res: dict) -> None:
            res["step"] = "socket"
            s = socket.socket(fam, stype)
            try:
                if fam == socket.AF_UNIX:
                    _unlink_quietly(address)
                else:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                res["step"] = "bind"
                s.bind(address)
            finally:
                s.close()
                if fam == socket.AF_UNIX:
                    _unlink_quietly(address)

        return run

    def _prep_getsockopt(self, req: dict):
        """getsockopt(SOL_SOCKET, SO_REUSEADDR) on a stream socket bound to addr:port (or a unix path); with
        connect=self an inet socket first connects to its own address (TCP simultaneous open: laddr = faddr),
        so the hook sees a connected socket. An inet socket is reset on close (SO_LINGER 0): no TIME_WAIT keeps
        the port from the next run."""
        family = arg(req, "family", str, "inet")
        socket, fam, address = self._socket_address(req, family)
        connect = arg(req, "connect", str, "no")
        if connect not in ("self", "no"):
            raise BadRequest("argument 'connect' must be 'self' or 'no'")
        if connect == "self" and fam == socket.AF_UNIX:
            raise BadRequest("connect=self applies to inet and inet6 sockets only")

        def run(res: dict) -> None:
            import struct

            res["step"] = "socket"
            s = socket.socket(fam, socket.SOCK_STREAM)
            try:
                if fam == socket.AF_UNIX:
                    _unlink_quietly(address)
                else:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                res["step"] = "bind"
                s.bind(address)
                if connect == "self":
                    res["step"] = "connect"
                    s.connect(address)
                res["step"] = "getsockopt"
                s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
            finally:
                if fam != socket.AF_UNIX:
                    try:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    except OSError:
                        pass
                s.close()
                if fam == socket.AF_UNIX:
                    _unlink_quietly(address)

        return run

    def _prep_readlink(self, req: dict):
        """readlink(2) of a symbolic link (e.g. /proc/self/exe: the child's own); reports the link's inode."""
        path = arg(req, "path", str)

        def run(res: dict) -> None:
            res["step"] = "lstat"
            res["ino"] = os.lstat(path).st_ino
            res["step"] = "readlink"
            res["target"] = os.readlink(path)

        return run

    def _prep_getpgid(self, req: dict):
        """getpgid(2) of the child's own pid (getpgid(0) would not reach the task_getpgid hook)."""

        def run(res: dict) -> None:
            res["step"] = "getpgid"
            res["pgid"] = os.getpgid(os.getpid())

        return run

    def _prep_ioctl(self, req: dict):
        path = arg(req, "path", str)
        cmd = arg(req, "cmd", int)
        value = arg(req, "arg", int, 0)
        flags = _open_flags(req, "r")
        if not 0 <= cmd < 2**64 or not 0 <= value < 2**64:
            raise BadRequest("'cmd' and 'arg' must be unsigned 64-bit integers")
        libc = self.libc

        def run(res: dict) -> None:
            res["step"] = "open"
            fd = os.open(path, flags | os.O_CLOEXEC | os.O_NONBLOCK)
            try:
                res["ino"] = os.fstat(fd).st_ino
                res["step"] = "ioctl"
                res["ioctl_ret"] = libc.check(libc.libc.ioctl(fd, cmd, value), "ioctl")
            finally:
                os.close(fd)

        return run

    def _prep_kill(self, req: dict):
        sig = arg(req, "signal", int, 15)
        if not 0 <= sig <= 64:
            raise BadRequest("argument 'signal' must be 0..64")
        target_comm = arg(req, "target_comm", str, None)
        libc = self.libc if target_comm is not None else None

        def run(res: dict) -> None:
            res["step"] = "fork"
            ready_r, ready_w = os.pipe()
            target = os.fork()
            if target == 0:  # the sleeping target
                try:
                    os.close(ready_r)
                    if libc is not None:
                        libc.set_comm(target_comm.encode())
                    os.write(ready_w, b"1")
                    while True:
                        time.sleep(3600)
                finally:
                    os._exit(0)
            os.close(ready_w)
            os.read(ready_r, 1)
            os.close(ready_r)
            res["target_pid"] = target
            try:
                res["step"] = "kill"
                os.kill(target, sig)
            finally:
                try:
                    os.kill(target, 9)
                except OSError:
                    pass
                _, status = os.waitpid(target, 0)
                res["target_status"] = os.waitstatus_to_exitcode(status)

        return run

    def _prep_unlink(self, req: dict):
        path = arg(req, "path", str)

        def run(res: dict) -> None:
            res["step"] = "create"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                res["ino"] = os.fstat(fd).st_ino
            finally:
                os.close(fd)
            res["step"] = "unlink"
            os.unlink(path)

        return run

    def _prep_sethostname(self, req: dict):
        name = arg(req, "hostname", str, os.uname().nodename).encode()
        libc = self.libc

        def run(res: dict) -> None:
            res["step"] = "sethostname"
            libc.check(libc.libc.sethostname(name, len(name)), "sethostname")

        return run

    # -- running ----------------------------------------------------------------------------------------------------
    def run_action(self, action: str, req: dict, timeout: float) -> "TriggerReply":
        from .messages import TriggerReply

        run = self.prepare(action, req)
        comm = arg(req, "comm", str, None)
        drop = parse_caps(req["drop_caps"]) if req.get("drop_caps") is not None else []
        libc = self.libc if (comm is not None or drop) else None
        comm_bytes = comm.encode() if comm is not None else b""
        if comm is not None and not comm_bytes:
            raise BadRequest("argument 'comm' must not be empty")
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            _child(w, r, run, libc, comm_bytes, drop)
        os.close(w)
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass
        rc, timed_out = _wait(pid, timeout)
        os.set_blocking(r, False)
        data = b""
        try:
            while chunk := os.read(r, 65536):
                data += chunk
        except BlockingIOError:
            pass
        finally:
            os.close(r)
        child: dict = {}
        if data:
            try:
                child = json_loads(data.decode("utf-8", "backslashreplace"))
            except ValueError:
                child = {"child_error": "unreadable child result"}
        err = child.pop("errno", 0)
        if not child and not timed_out:
            child["child_error"] = "the action child exited without reporting a result"
        # What the child reported: the fields TriggerReply names (comm, step, strerror, tid), the action's own in extra
        named = {k: child.pop(k) for k in ("comm", "step", "strerror", "tid") if k in child}
        return TriggerReply(id=None, ok=True, rc=rc, errno=err, pid=pid, timed_out=timed_out, **named, extra=child)

    def run_shell(self, command: str, req: dict, timeout: float) -> "TriggerReply":
        import subprocess

        from .messages import TriggerReply

        if req.get("comm") is not None:
            raise BadRequest("'comm' applies only to built-in actions (exec resets a shell command's comm)")
        cwd = arg(req, "cwd", str, None)
        stdin = arg(req, "input", str, None)
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command],
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            start_new_session=True,
        )
        timed_out = False
        try:
            out, err = proc.communicate(stdin.encode() if stdin is not None else None, timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _killpg(proc.pid)
            try:
                out, err = proc.communicate(timeout=2)
            except subprocess.TimeoutExpired:  # something outside the group holds the pipes
                out, err = b"", b""
                for stream in (proc.stdout, proc.stderr):
                    if stream is not None:
                        stream.close()
                proc.wait()
        out, err = out or b"", err or b""
        truncated = {name + "_truncated": len(data) for name, data in (("stdout", out), ("stderr", err))
                     if len(data) > MAX_OUTPUT}
        return TriggerReply(id=None, ok=True, rc=proc.returncode, errno=0, pid=proc.pid, timed_out=timed_out,
                            stdout=_text(out), stderr=_text(err), extra=truncated)


def _text(data: bytes) -> str:
    return data[:MAX_OUTPUT].decode("utf-8", "backslashreplace")


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass

