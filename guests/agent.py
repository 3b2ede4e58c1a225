# SPDX-License-Identifier: GPL-2.0
"""Resident guest agent: JSON-lines requests on stdin to load/attach BPF objects, run triggers and read audit records.

Runs as `/usr/bin/python3 -S agent.py [--no-kmsg] [--kmsg-level N] [--quiet] [--libbpf PATH]`, stdlib only.
Protocol: guests/README.md. Only JSON responses go to stdout; diagnostics go to stderr and /dev/kmsg.
Imports are kept minimal at start-up (no `re`, no `json` module on the fast path) and lazy elsewhere.
"""

import os
import sys
import threading
import time

_T0 = time.monotonic()

MIB = 1 << 20
DEFAULT_LOG_SIZE = 2 * MIB
MAX_LOG_SIZE = 64 * MIB
MIN_LOG_SIZE = 1024
ENOSPC = 28
LOG_PREFIX = "harness-agent: "

# ---------------------------------------------------------------------------------------------------------------------
# JSON without importing `json` (json.decoder/encoder import `re`, which dominates start-up time): the C scanner and
# encoder from `_json` do the work; falls back to the `json` module if `_json` is missing.


class _ScanContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        raise ValueError(f"non-standard JSON constant {name}")


def _no_default(obj: object) -> str:
    return repr(obj)


def _make_codec():
    try:
        import _json

        scanner = _json.make_scanner(_ScanContext())
        encoder = _json.make_encoder(
            None, _no_default, _json.encode_basestring_ascii, None, ":", ",", False, False, True
        )

        def loads(text: str):
            text = text.strip()
            try:
                obj, end = scanner(text, 0)
            except StopIteration as e:
                raise ValueError(f"expecting a JSON value at char {e.value}") from None
            if end != len(text):
                raise ValueError(f"extra data after the JSON value at char {end}")
            return obj

        def dumps(obj) -> str:
            return "".join(encoder(obj, 0))

        dumps({"probe": [1, "x", None, True, 1.5]})
        return loads, dumps
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - other Pythons
        import json

        return json.loads, lambda obj: json.dumps(obj, separators=(",", ":"), default=_no_default)


json_loads, json_dumps = _make_codec()

# ---------------------------------------------------------------------------------------------------------------------
# Diagnostics: stderr and /dev/kmsg (so they interleave with the kernel console log).


class Diag:
    def __init__(self) -> None:
        self.kmsg_fd = -1
        self.kmsg_level = 5
        self.stderr = True

    def open_kmsg(self) -> None:
        try:
            self.kmsg_fd = os.open("/dev/kmsg", os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            self.kmsg_fd = -1

    def log(self, msg: str, kmsg: bool = True) -> None:
        line = LOG_PREFIX + msg.replace("\n", " ")
        if self.stderr:
            try:
                sys.stderr.write(line + "\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
        if kmsg and self.kmsg_fd >= 0:
            try:
                os.write(self.kmsg_fd, f"<{self.kmsg_level}>{line[:900]}\n".encode("utf-8", "replace"))
            except OSError:
                pass


DIAG = Diag()


class BadRequest(Exception):
    """The request is malformed: answered with ok:false, the agent carries on."""


class OpFailed(Exception):
    """The operation was attempted and failed: ok:false with `error` and extra result fields."""

    def __init__(self, message: str, **fields: object) -> None:
        super().__init__(message)
        self.fields = fields


_REQUIRED = object()


def arg(req: dict, name: str, kind: type | tuple, default: object = _REQUIRED) -> object:
    """Fetch and type-check one request argument."""
    if name not in req or req[name] is None:
        if default is _REQUIRED:
            raise BadRequest(f"missing argument '{name}'")
        return default
    value = req[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise BadRequest(f"argument '{name}' must be {_kind_names(kinds)}, not a boolean")
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, kinds):
        raise BadRequest(f"argument '{name}' must be {_kind_names(kinds)}, got {type(value).__name__}")
    return value


def _kind_names(kinds: tuple) -> str:
    names = {
        int: "an integer",
        str: "a string",
        bool: "a boolean",
        list: "a list",
        float: "a number",
        dict: "an object",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _os_error(err: int) -> str:
    return f"{os.strerror(err)} (errno {err})" if err else "success"


# ---------------------------------------------------------------------------------------------------------------------
# Capabilities (per thread): used to load or trigger without e.g. CAP_SYS_BOOT.

CAP_NAMES = (
    "chown dac_override dac_read_search fowner fsetid kill setgid setuid setpcap linux_immutable net_bind_service "
    "net_broadcast net_admin net_raw ipc_lock ipc_owner sys_module sys_rawio sys_chroot sys_ptrace sys_pacct "
    "sys_admin sys_boot sys_nice sys_resource sys_time sys_tty_config mknod lease audit_write audit_control setfcap "
    "mac_override mac_admin syslog wake_alarm block_suspend audit_read perfmon bpf checkpoint_restore"
).split()


def parse_caps(value: object) -> list[int]:
    if not isinstance(value, list):
        raise BadRequest("argument 'drop_caps' must be a list of capability names or numbers")
    caps = []
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool) and 0 <= item < 64:
            caps.append(item)
        elif isinstance(item, str):
            name = item.lower().removeprefix("cap_")
            if name not in CAP_NAMES:
                raise BadRequest(f"unknown capability {item!r}")
            caps.append(CAP_NAMES.index(name))
        else:
            raise BadRequest(f"bad capability {item!r} in 'drop_caps'")
    return caps


class Caps:
    """capget/capset on the calling thread through libc."""

    VERSION_3 = 0x20080522

    def __init__(self, libc) -> None:
        import ctypes

        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

        class Data(ctypes.Structure):
            _fields_ = [
                ("effective", ctypes.c_uint32),
                ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32),
            ]

        self.ct = ctypes
        self.Header, self.Data = Header, Data
        self.libc = libc

    def get(self):
        hdr = self.Header(self.VERSION_3, 0)
        data = (self.Data * 2)()
        if self.libc.capget(self.ct.byref(hdr), data) != 0:
            err = self.ct.get_errno()
            raise OSError(err, "capget: " + os.strerror(err))
        return data

    def set(self, data) -> None:
        hdr = self.Header(self.VERSION_3, 0)
        if self.libc.capset(self.ct.byref(hdr), data) != 0:
            err = self.ct.get_errno()
            raise OSError(err, "capset: " + os.strerror(err))

    def drop(self, caps: list[int], permitted: bool) -> object:
        """Clear `caps` from the effective (and optionally permitted) set; return the previous state."""
        old = self.get()
        new = (self.Data * 2)()
        self.ct.memmove(new, old, self.ct.sizeof(new))
        for cap in caps:
            word, bit = divmod(cap, 32)
            new[word].effective &= ~(1 << bit) & 0xFFFFFFFF
            if permitted:
                new[word].permitted &= ~(1 << bit) & 0xFFFFFFFF
        self.set(new)
        return old


# ---------------------------------------------------------------------------------------------------------------------
# libbpf through ctypes (Debian 12: libbpf 1.1; only APIs that exist there).

LIBBPF_CANDIDATES = (
    "libbpf.so.1",
    "/usr/lib/x86_64-linux-gnu/libbpf.so.1",
    "/usr/lib/aarch64-linux-gnu/libbpf.so.1",
    "/usr/lib64/libbpf.so.1",
    "/usr/lib/libbpf.so.1",
    "libbpf.so",
)


def _mapped_path(fragment: str) -> str | None:
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6 and fragment in parts[5]:
                    return parts[5].strip()
    except OSError:
        pass
    return None


class Libbpf:
    def __init__(self, explicit: str | None = None) -> None:
        import ctypes

        self.ct = ctypes
        errors = []
        lib = None
        for name in [explicit] if explicit else LIBBPF_CANDIDATES:  # --libbpf: that one only
            try:
                lib = ctypes.CDLL(name, use_errno=True)
                break
            except OSError as e:
                errors.append(str(e))
        if lib is None and not explicit:
            import ctypes.util  # runs ldconfig: last resort, start-up only

            found = ctypes.util.find_library("bpf")
            if found:
                try:
                    lib = ctypes.CDLL(found, use_errno=True)
                except OSError as e:
                    errors.append(str(e))
        if lib is None:
            raise OSError("cannot load libbpf: " + "; ".join(errors))
        self.lib = lib
        self.path = _mapped_path("libbpf.so") or getattr(lib, "_name", "libbpf")
        self.libc = ctypes.CDLL(None, use_errno=True)
        self._declare()
        try:
            self.version = self.lib.libbpf_version_string().decode()
        except AttributeError:
            self.version = "unknown"
        self.lines: list[str] = []
        self._vacopy = {"x86_64": 24, "aarch64": 32}.get(os.uname().machine, 0)
        self._cb = self.PRINT_FN(self._print)  # keep a reference: libbpf holds the pointer
        self.lib.libbpf_set_print(self._cb)

    def _declare(self) -> None:
        ct, lib = self.ct, self.lib
        vp, cp, ci = ct.c_void_p, ct.c_char_p, ct.c_int

        class OpenOpts(ct.Structure):
            # struct bpf_object_open_opts (libbpf 1.1 libbpf.h); sz = 80 on LP64
            _fields_ = [
                ("sz", ct.c_size_t),
                ("object_name", cp),
                ("relaxed_maps", ct.c_bool),
                ("pin_root_path", cp),
                ("_attach_prog_fd_stub", ct.c_uint32),
                ("kconfig", cp),
                ("btf_custom_path", cp),
                ("kernel_log_buf", vp),
                ("kernel_log_size", ct.c_size_t),
                ("kernel_log_level", ct.c_uint32),
            ]

        self.OpenOpts = OpenOpts
        self.PRINT_FN = ct.CFUNCTYPE(ci, ci, vp, vp)
        protos = {
            "libbpf_set_print": (vp, [vp]),
            "libbpf_version_string": (cp, []),
            "bpf_object__open_file": (vp, [cp, vp]),
            "bpf_object__load": (ci, [vp]),
            "bpf_object__close": (None, [vp]),
            "bpf_object__next_program": (vp, [vp, vp]),
            "bpf_object__find_program_by_name": (vp, [vp, cp]),
            "bpf_program__name": (cp, [vp]),
            "bpf_program__section_name": (cp, [vp]),
            "bpf_program__fd": (ci, [vp]),
            "bpf_program__type": (ci, [vp]),
            "bpf_program__autoload": (ct.c_bool, [vp]),
            "bpf_program__set_autoload": (ci, [vp, ct.c_bool]),
            "bpf_program__set_log_buf": (ci, [vp, vp, ct.c_size_t]),
            "bpf_program__set_log_level": (ci, [vp, ct.c_uint32]),
            "bpf_program__attach": (vp, [vp]),
            "bpf_link__destroy": (ci, [vp]),
            "bpf_link__fd": (ci, [vp]),
            "bpf_obj_get_info_by_fd": (ci, [ci, vp, ct.POINTER(ct.c_uint32)]),
        }
        for name, (res, args) in protos.items():
            try:
                fn = getattr(lib, name)
            except AttributeError:
                if name == "libbpf_version_string":
                    continue
                raise
            fn.restype, fn.argtypes = res, args
        libc = self.libc
        libc.vsnprintf.restype = ci
        libc.vsnprintf.argtypes = [vp, ct.c_size_t, vp, vp]

    def _print(self, level: int, fmt: int, ap: int) -> int:
        """libbpf_print_fn_t: format the va_list with vsnprintf, collect every line (all levels)."""
        try:
            ct = self.ct
            size = 8192
            while True:
                buf = ct.create_string_buffer(size)
                if self._vacopy:
                    copy = ct.create_string_buffer(self._vacopy)  # va_copy is a plain struct copy here
                    ct.memmove(copy, ap, self._vacopy)
                    n = self.libc.vsnprintf(buf, size, fmt, ct.addressof(copy))
                else:
                    n = self.libc.vsnprintf(buf, size, fmt, ap)
                if n < size or not self._vacopy or size >= 16 * MIB:
                    break
                size = n + 1
            text = buf.value.decode("utf-8", "backslashreplace")
            self.lines.extend(text.rstrip("\n").split("\n"))
        except Exception as e:  # never raise into C
            self.lines.append(f"<harness-agent: cannot format libbpf message: {e!r}>")
        return 0

    def take_lines(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines

    def info(self, fd: int) -> bytes:
        """bpf_obj_get_info_by_fd into a zeroed buffer (kernel copies min(len, its struct size))."""
        ct = self.ct
        buf = ct.create_string_buffer(256)
        size = ct.c_uint32(256)
        if self.lib.bpf_obj_get_info_by_fd(fd, buf, ct.byref(size)) != 0:
            err = ct.get_errno()
            raise OSError(err, "bpf_obj_get_info_by_fd: " + os.strerror(err))
        return buf.raw[: size.value]

    def programs(self, obj: int):
        prog = self.lib.bpf_object__next_program(obj, None)
        while prog:
            yield prog
            prog = self.lib.bpf_object__next_program(obj, prog)

    def prog_name(self, prog: int) -> str:
        return (self.lib.bpf_program__name(prog) or b"").decode("utf-8", "backslashreplace")


class LoadedObject:
    def __init__(self, handle: int, path: str, obj: int) -> None:
        self.handle = handle
        self.path = path
        self.obj = obj
        self.links: set[int] = set()


class Link:
    def __init__(self, handle: int, ptr: int, obj_handle: int, program: str) -> None:
        self.handle = handle
        self.ptr = ptr
        self.obj_handle = obj_handle
        self.program = program


def _u32(raw: bytes, off: int) -> int:
    return int.from_bytes(raw[off : off + 4], sys.byteorder) if len(raw) >= off + 4 else 0


# ---------------------------------------------------------------------------------------------------------------------
# Triggers: a shell command, or a built-in action in a forked child (distinct pid/comm for the hook).

OPEN_FLAGS = {
    "r": os.O_RDONLY,
    "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "rw": os.O_RDWR | os.O_CREAT,
    "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
}
PROT = {"none": 0, "r": 1, "rw": 3, "x": 4, "rx": 5, "rwx": 7}
MAX_OUTPUT = 1 * MIB


def _open_flags(req: dict, default: str) -> int:
    flags = arg(req, "flags", (str, int), default)
    if isinstance(flags, int):
        return flags
    if flags not in OPEN_FLAGS:
        raise BadRequest(f"argument 'flags' must be one of {sorted(OPEN_FLAGS)} or an integer")
    return OPEN_FLAGS[flags]


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
            os.close(os.open(path, flags | os.O_CLOEXEC, 0o644))

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
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
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
    def run_action(self, action: str, req: dict, timeout: float) -> dict:
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
        res = {"rc": rc, "errno": child.pop("errno", 0), "pid": pid, "timed_out": timed_out}
        if not child and not timed_out:
            res["child_error"] = "the action child exited without reporting a result"
        res.update(child)
        return res

    def run_shell(self, command: str, req: dict, timeout: float) -> dict:
        import subprocess

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
        res = {"rc": proc.returncode, "errno": 0, "pid": proc.pid, "timed_out": timed_out}
        for name, data in (("stdout", out or b""), ("stderr", err or b"")):
            res[name] = data[:MAX_OUTPUT].decode("utf-8", "backslashreplace")
            if len(data) > MAX_OUTPUT:
                res[name + "_truncated"] = len(data)
        return res


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
    except BaseException as e:  # report, never fall back into the agent's main loop
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


# ---------------------------------------------------------------------------------------------------------------------
# Audit over NETLINK_AUDIT: raw socket + struct, no libraries.

NETLINK_AUDIT = 9
AF_NETLINK = 16
NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE = 1, 2, 3
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
AUDIT_GET, AUDIT_SET, AUDIT_USER = 1000, 1001, 1005
AUDIT_STATUS_ENABLED, AUDIT_STATUS_FAILURE, AUDIT_STATUS_PID = 0x1, 0x2, 0x4
AUDIT_STATUS_RATE_LIMIT, AUDIT_STATUS_BACKLOG_LIMIT, AUDIT_STATUS_BACKLOG_WAIT_TIME = 0x8, 0x10, 0x20
AUDIT_REPLACE = 1329  # the kernel probing the daemon (payload: binary pid), not a record
AUDIT_NLGRP_READLOG = 1
NOT_RECORDS = (NLMSG_ERROR, NLMSG_NOOP, NLMSG_DONE, AUDIT_REPLACE)
STATUS_FIELDS = (
    "mask enabled failure pid rate_limit backlog_limit lost backlog feature_bitmap backlog_wait_time "
    "backlog_wait_time_actual"
).split()
MAX_RECORDS = 200_000


class Audit:
    def __init__(self) -> None:
        import socket
        import struct
        import threading

        self.socket_mod, self.struct, self.threading = socket, struct, threading
        self.ctl = None
        self.rec = None
        self.mode: str | None = None
        self.seq = 0
        self.lock = threading.Lock()
        self.records: list[tuple[int, int, str]] = []
        self.next_seq = 0  # sequence number of the next record received
        self.overruns = 0
        self.thread = None
        self.wake_r = self.wake_w = -1
        self.stopping = False

    # -- netlink plumbing -------------------------------------------------------------------------------------------
    def _socket(self, groups: int = 0):
        s = self.socket_mod.socket(AF_NETLINK, self.socket_mod.SOCK_RAW, NETLINK_AUDIT)
        s.bind((0, groups))
        return s

    def _msg(self, mtype: int, flags: int, payload: bytes) -> tuple[int, bytes]:
        self.seq += 1
        hdr = self.struct.pack("=IHHII", 16 + len(payload), mtype, flags, self.seq, 0)
        return self.seq, hdr + payload

    def _split(self, data: bytes):
        """Yield (type, seq, payload) per netlink message.

        Quirk (kernel/audit.c, audit_log_end): a record unicast to the audit daemon has nlmsg_len = payload
        length, not header + payload; multicast copies get the usual length (kauditd_send_multicast_skb).
        kauditd sends one record per datagram, so a record's payload is the rest of the datagram, clipped.
        """
        off = 0
        while off + 16 <= len(data):
            length, mtype, flags, seq, pid = self.struct.unpack_from("=IHHII", data, off)
            if mtype >= 1100:  # an audit record, not a control reply (AUDIT_GET etc. are 1000-1099)
                yield mtype, seq, data[off + 16 : min(len(data), off + 16 + length)]
                return
            if length < 16 or off + length > len(data):
                break
            yield mtype, seq, data[off + 16 : off + length]
            off += (length + 3) & ~3

    def _ctl(self):
        if self.ctl is None:
            self.ctl = self._socket()
            self.ctl.settimeout(3)
        return self.ctl

    def _request(self, sock, mtype: int, payload: bytes, want_type: int | None = None) -> bytes | None:
        """Send a request; wait for its ack (want_type None) or its reply of type want_type. Raises OSError."""
        flags = NLM_F_REQUEST | (NLM_F_ACK if want_type is None else 0)
        seq, msg = self._msg(mtype, flags, payload)
        sock.sendto(msg, (0, 0))
        deadline = time.monotonic() + 3
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(65536)
            except TimeoutError:
                raise OSError(110, f"no reply from the kernel to audit message type {mtype}") from None
            for rtype, rseq, body in self._split(data):
                if rtype == NLMSG_ERROR and rseq == seq:
                    err = -self.struct.unpack_from("=i", body)[0]
                    if err:
                        raise OSError(err, f"audit message type {mtype}: {os.strerror(err)}")
                    if want_type is None:
                        return None
                elif want_type is not None and rtype == want_type and rseq == seq:
                    return body
                elif sock is self.rec and rtype not in NOT_RECORDS:
                    self._store(rtype, body)

    def status(self) -> dict:
        body = self._request(self._ctl(), AUDIT_GET, b"", want_type=AUDIT_GET) or b""
        n = min(len(body) // 4, len(STATUS_FIELDS))
        values = self.struct.unpack_from(f"={n}I", body)
        st = dict(zip(STATUS_FIELDS[:n], values, strict=True))
        if "feature_bitmap" in st:
            st["version"] = st["feature_bitmap"]
        return st

    def set(self, sock=None, **fields: int) -> None:
        masks = {
            "enabled": AUDIT_STATUS_ENABLED,
            "failure": AUDIT_STATUS_FAILURE,
            "pid": AUDIT_STATUS_PID,
            "rate_limit": AUDIT_STATUS_RATE_LIMIT,
            "backlog_limit": AUDIT_STATUS_BACKLOG_LIMIT,
            "backlog_wait_time": AUDIT_STATUS_BACKLOG_WAIT_TIME,
        }
        values = dict.fromkeys(STATUS_FIELDS, 0)
        for name, value in fields.items():
            values["mask"] |= masks[name]
            values[name] = value & 0xFFFFFFFF
        payload = self.struct.pack(f"={len(STATUS_FIELDS)}I", *(values[f] for f in STATUS_FIELDS))
        self._request(sock or self._ctl(), AUDIT_SET, payload)

    def user_message(self, mtype: int, text: str) -> None:
        self._request(self._ctl(), mtype, text.encode() + b"\0")

    # -- the reader -------------------------------------------------------------------------------------------------
    def _store(self, mtype: int, body: bytes) -> None:
        text = body.rstrip(b"\0").decode("utf-8", "backslashreplace")
        with self.lock:
            self.records.append((self.next_seq, mtype, text))
            self.next_seq += 1
            if len(self.records) > MAX_RECORDS:
                del self.records[: len(self.records) - MAX_RECORDS]

    def _reader(self) -> None:
        import select

        sock = self.rec
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        sock.setblocking(False)
        while not self.stopping:
            for fd, _ in poller.poll():
                if fd == self.wake_r:
                    return
            while True:
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    break
                except OSError as e:
                    if e.errno == 105:  # ENOBUFS: the socket overflowed and the kernel dropped records
                        self.overruns += 1
                        continue
                    DIAG.log(f"audit reader stopped: {e}")
                    return
                for mtype, _, body in self._split(data):
                    if mtype not in NOT_RECORDS:
                        self._store(mtype, body)

    def open(self, enable: bool, backlog_limit: int | None, mode: str) -> dict:
        me = os.getpid()
        if self.mode is not None:
            if self.mode != mode:
                raise OpFailed(f"audit is already open in {self.mode} mode; audit_close first")
            self._configure(enable, backlog_limit)
            return {"already_open": True, "mode": mode, "mark": self.next_seq, "status": self.status()}
        st = self.status()
        if mode == "daemon" and st.get("pid") and st["pid"] != me and os.path.exists(f"/proc/{st['pid']}"):
            raise OpFailed(_auditd_busy(st["pid"]), auditd_pid=st["pid"])
        rec = self._socket(AUDIT_NLGRP_READLOG if mode == "multicast" else 0)
        for opt in (33, 8):  # SO_RCVBUFFORCE (root), then SO_RCVBUF
            try:
                rec.setsockopt(self.socket_mod.SOL_SOCKET, opt, 8 * MIB)
                break
            except OSError:
                continue
        self.rec = rec
        if mode == "daemon":
            try:
                self.set(sock=rec, pid=me)
            except OSError as e:
                self.rec = None
                rec.close()
                if e.errno == 17:  # EEXIST
                    pid = self.status().get("pid", 0)
                    raise OpFailed(_auditd_busy(pid), errno=17, auditd_pid=pid) from None
                raise
        self.mode = mode
        self.stopping = False
        self.wake_r, self.wake_w = os.pipe()
        self.thread = self.threading.Thread(target=self._reader, name="audit-reader", daemon=True)
        self.thread.start()
        try:
            self._configure(enable, backlog_limit)
        except OSError:
            self.close()
            raise
        DIAG.log(f"audit open ({mode}), pid {me}")
        return {"mode": mode, "mark": self.next_seq, "status": self.status()}

    def _configure(self, enable: bool, backlog_limit: int | None) -> None:
        if enable:
            self.set(enabled=1)
        if backlog_limit is not None:
            self.set(backlog_limit=backlog_limit)

    def close(self) -> dict:
        if self.mode is None:
            return {"was_open": False}
        unregister_error = None
        if self.mode == "daemon":
            try:
                self.set(pid=0)
            except OSError as e:
                unregister_error = str(e)
        time.sleep(0.02)  # let the reader drain what was already queued to us
        self.stopping = True
        os.write(self.wake_w, b"x")
        self.thread.join(2)
        for fd in (self.wake_r, self.wake_w):
            os.close(fd)
        self.wake_r = self.wake_w = -1
        self.rec.close()
        self.rec = None
        self.mode = None
        with self.lock:
            self.records.clear()  # marks stay monotonic: a later read from an old mark reports dropped_before
        DIAG.log("audit closed" + (f" (unregister failed: {unregister_error})" if unregister_error else ""))
        res: dict = {"was_open": True}
        if unregister_error:
            res["unregister_error"] = unregister_error
        return res

    def read(self, since: int, wait: float, types: list[int] | None) -> dict:
        if self.mode is None:
            raise OpFailed("audit is not open (send audit_open first)")
        if wait > 0:
            time.sleep(wait)
        with self.lock:
            first = self.records[0][0] if self.records else self.next_seq
            start = max(0, since - first)
            chosen = self.records[start:]
            end = self.next_seq
        recs = [{"seq": s, "type": t, "text": x} for s, t, x in chosen if types is None or t in types]
        res = {"records": recs, "mark": end, "status": self.status(), "overruns": self.overruns}
        if since < first:
            res["dropped_before"] = first
        return res


def _auditd_busy(pid: int) -> str:
    return (
        f"auditd pid {pid} is the audit daemon; stop it (systemctl stop auditd / kill {pid}) — "
        "only one reader can be the audit daemon"
    )


# ---------------------------------------------------------------------------------------------------------------------
# The agent: request dispatch.


class Agent:
    def __init__(self, libbpf_path: str | None = None) -> None:
        self.libbpf: Libbpf | None = None
        self.libbpf_error = ""
        try:
            self.libbpf = Libbpf(libbpf_path)
        except (OSError, AttributeError) as e:
            self.libbpf_error = str(e)
        self.objects: dict[int, LoadedObject] = {}
        self.links: dict[int, Link] = {}
        self.next_handle = 1
        self.triggers = Triggers()
        self._audit: Audit | None = None
        self.exiting = False

    @property
    def audit(self) -> Audit:
        if self._audit is None:
            self._audit = Audit()
        return self._audit

    def hello(self) -> dict:
        res = {
            "id": 0,
            "ok": True,
            "op": "hello",
            "pid": os.getpid(),
            "kernel": os.uname().release,
            "libbpf": self.libbpf.path if self.libbpf else None,
        }
        if self.libbpf:
            res["libbpf_version"] = self.libbpf.version
        else:
            res["libbpf_error"] = self.libbpf_error
        res["python"] = sys.version.split()[0]
        res["startup"] = round(_process_age(), 3)
        return res

    def handle(self, line: bytes) -> dict:
        t0 = time.monotonic()
        rid = None
        try:
            try:
                req = json_loads(line.decode("utf-8", "strict"))
            except (ValueError, UnicodeDecodeError) as e:
                raise BadRequest(f"request is not valid JSON: {e}") from None
            if not isinstance(req, dict):
                raise BadRequest("request must be a JSON object")
            rid = req.get("id")
            if not isinstance(rid, int) or isinstance(rid, bool):
                rid = None
                raise BadRequest("request needs an integer 'id'")
            op = req.get("op")
            fn = getattr(self, "op_" + op, None) if isinstance(op, str) and op.isidentifier() else None
            if fn is None:
                raise BadRequest(f"unknown op {op!r}; known ops: {', '.join(self.ops())}")
            res = {"id": rid, "ok": True}
            res.update(fn(req))
        except BadRequest as e:
            res = {"id": rid, "ok": False, "error": f"bad request: {e}"}
        except OpFailed as e:
            res = {"id": rid, "ok": False, "error": str(e)}
            res.update(e.fields)
        except OSError as e:
            res = {"id": rid, "ok": False, "error": str(e), "errno": e.errno or 0}
        except Exception as e:
            import traceback

            DIAG.log(f"internal error: {type(e).__name__}: {e}", kmsg=True)
            traceback.print_exc(file=sys.stderr)
            res = {"id": rid, "ok": False, "error": f"internal error: {type(e).__name__}: {e}"}
        res["elapsed"] = round(time.monotonic() - t0, 6)
        return res

    def ops(self) -> list[str]:
        return sorted(n[3:] for n in dir(self) if n.startswith("op_"))

    # -- simple ops -------------------------------------------------------------------------------------------------
    def op_ping(self, req: dict) -> dict:
        return {}

    def op_exit(self, req: dict) -> dict:
        self.exiting = True
        return {}

    # -- BPF --------------------------------------------------------------------------------------------------------
    def _bpf(self) -> Libbpf:
        if self.libbpf is None:
            raise OpFailed(f"libbpf is not available in the guest: {self.libbpf_error}")
        return self.libbpf

    def op_load(self, req: dict) -> dict:
        bpf = self._bpf()
        path = arg(req, "path", str)
        programs = arg(req, "programs", list, None)
        if programs is not None and not all(isinstance(p, str) for p in programs):
            raise BadRequest("argument 'programs' must be a list of program names")
        level = arg(req, "log_level", int, 1)
        size = arg(req, "log_size", int, DEFAULT_LOG_SIZE)
        if not 0 <= level <= 0xFFFF:
            raise BadRequest("argument 'log_level' out of range")
        if not MIN_LOG_SIZE <= size <= MAX_LOG_SIZE:
            raise BadRequest(f"argument 'log_size' must be {MIN_LOG_SIZE}..{MAX_LOG_SIZE}")
        drop = parse_caps(req["drop_caps"]) if req.get("drop_caps") is not None else []
        program_logs = arg(req, "program_logs", bool, False)
        if not os.path.exists(path):
            raise OpFailed(f"no such object file in the guest: {path}", errno=2)
        bpf.take_lines()
        retries = 0
        while True:
            res = self._load_once(bpf, path, programs, level, size, drop)
            if res["errno"] != ENOSPC or size >= MAX_LOG_SIZE or res.get("stage") == "open":
                break
            size = min(size * 4, MAX_LOG_SIZE)
            retries += 1
        res["log_size"] = size
        res["log_retries"] = retries
        res["libbpf_log"] = bpf.take_lines()
        if not program_logs:
            for info in res["programs"]:
                info.pop("verifier_log", None)
        if res["loaded"]:
            ids = ",".join(f"{p['name']}={p['id']}" for p in res["programs"] if p["fd"] >= 0)
            DIAG.log(f"load {path}: handle {res['handle']} prog ids {ids}")
        else:
            DIAG.log(f"load {path}: rejected, {_os_error(res['errno'])}")
        return res

    def _load_once(self, bpf: Libbpf, path: str, wanted: list | None, level: int, size: int, drop: list[int]) -> dict:
        ct, lib = bpf.ct, bpf.lib
        opts = bpf.OpenOpts()
        opts.sz = ct.sizeof(opts)
        btf_buf = ct.create_string_buffer(size)
        opts.kernel_log_buf = ct.addressof(btf_buf)
        opts.kernel_log_size = size
        opts.kernel_log_level = 0  # BTF load: log only on failure (libbpf retries with level 1 into btf_buf)
        obj = lib.bpf_object__open_file(path.encode(), ct.byref(opts))
        if not obj:
            err = ct.get_errno() or 22
            return {"loaded": False, "errno": err, "stage": "open", "verifier_log": "", "programs": []}
        progs = list(bpf.programs(obj))
        names = [bpf.prog_name(p) for p in progs]
        if wanted is not None:
            missing = [n for n in wanted if n not in names]
            if missing:
                lib.bpf_object__close(obj)
                raise OpFailed(f"no program named {', '.join(missing)} in {path}; it has: {', '.join(names)}")
        bufs: dict[int, object] = {}
        for prog, name in zip(progs, names, strict=True):
            if wanted is not None:
                lib.bpf_program__set_autoload(prog, name in wanted)
            if lib.bpf_program__autoload(prog):
                buf = ct.create_string_buffer(size)
                bufs[prog] = buf
                lib.bpf_program__set_log_buf(prog, buf, size)
                lib.bpf_program__set_log_level(prog, level)
        old_caps = None
        if drop:
            old_caps = self.triggers.libc.caps.drop(drop, permitted=False)
        try:
            ret = lib.bpf_object__load(obj)
        finally:
            if old_caps is not None:
                self.triggers.libc.caps.set(old_caps)
        err = -ret if ret < 0 else 0
        infos = []
        failed = None
        for prog, name in zip(progs, names, strict=True):
            fd = lib.bpf_program__fd(prog)
            log = bufs[prog].value.decode("utf-8", "backslashreplace") if prog in bufs else ""
            info = {
                "name": name,
                "section": (lib.bpf_program__section_name(prog) or b"").decode("utf-8", "backslashreplace"),
                "type": lib.bpf_program__type(prog),
                "id": 0,
                "fd": fd if fd >= 0 else -1,
                "autoload": prog in bufs,
                "verifier_log": log,
            }
            if fd >= 0:
                try:
                    raw = bpf.info(fd)
                    info["id"] = _u32(raw, 4)
                    info["tag"] = raw[8:16].hex()
                except OSError as e:
                    info["info_error"] = str(e)
            elif err and prog in bufs and failed is None and log:
                failed = info
            infos.append(info)
        # libbpf reads the log buffers only inside bpf_object__load (and cannot reset them once loaded:
        # bpf_program__set_log_buf returns -EBUSY), so they can go away with this request.
        res: dict = {"loaded": not err, "errno": err, "programs": infos}
        btf_log = btf_buf.value.decode("utf-8", "backslashreplace")
        if btf_log:
            res["btf_log"] = btf_log
        if err:
            lib.bpf_object__close(obj)
            if failed is None:
                failed = next((i for i in infos if i["autoload"] and i["fd"] < 0), None)
            res["verifier_log"] = failed["verifier_log"] if failed else btf_log
            res["failed_program"] = failed["name"] if failed else None
            for info in infos:
                info["fd"] = -1
                info["id"] = 0
            return res
        first = next((i for i in infos if i["autoload"]), None)
        res["verifier_log"] = first["verifier_log"] if first else ""
        handle = self.next_handle
        self.next_handle += 1
        self.objects[handle] = LoadedObject(handle, path, obj)
        res["handle"] = handle
        return res

    def _object(self, req: dict) -> LoadedObject:
        handle = arg(req, "handle", int)
        if handle not in self.objects:
            raise OpFailed(f"no loaded object with handle {handle}")
        return self.objects[handle]

    def op_attach(self, req: dict) -> dict:
        bpf = self._bpf()
        lo = self._object(req)
        name = arg(req, "program", str)
        prog = bpf.lib.bpf_object__find_program_by_name(lo.obj, name.encode())
        if not prog:
            names = ", ".join(bpf.prog_name(p) for p in bpf.programs(lo.obj))
            raise OpFailed(f"no program named {name} in handle {lo.handle}; it has: {names}")
        if bpf.lib.bpf_program__fd(prog) < 0:
            raise OpFailed(f"program {name} is not loaded (autoload was off)")
        bpf.take_lines()
        ptr = bpf.lib.bpf_program__attach(prog)
        lines = bpf.take_lines()
        if not ptr:
            err = bpf.ct.get_errno()
            DIAG.log(f"attach {name}: failed, {_os_error(err)}")
            raise OpFailed(f"attach {name} failed: {_os_error(err)}", errno=err, libbpf_log=lines)
        handle = self.next_handle
        self.next_handle += 1
        self.links[handle] = Link(handle, ptr, lo.handle, name)
        lo.links.add(handle)
        res: dict = {"link": handle, "errno": 0, "libbpf_log": lines}
        fd = bpf.lib.bpf_link__fd(ptr)
        if fd >= 0:
            try:
                raw = bpf.info(fd)
                res["link_id"] = _u32(raw, 4)
                res["prog_id"] = _u32(raw, 8)
            except OSError:
                pass
        DIAG.log(f"attach {name}: link {handle} (link id {res.get('link_id')})")
        return res

    def _destroy_link(self, handle: int) -> int:
        link = self.links.pop(handle)
        lo = self.objects.get(link.obj_handle)
        if lo is not None:
            lo.links.discard(handle)
        ret = self.libbpf.lib.bpf_link__destroy(link.ptr)
        return -ret if ret < 0 else 0

    def op_detach(self, req: dict) -> dict:
        bpf = self._bpf()
        handle = arg(req, "link", int)
        if handle not in self.links:
            raise OpFailed(f"no link with handle {handle}")
        bpf.take_lines()
        err = self._destroy_link(handle)
        DIAG.log(f"detach link {handle}")
        return {"errno": err, "libbpf_log": bpf.take_lines()}

    def op_unload(self, req: dict) -> dict:
        bpf = self._bpf()
        lo = self._object(req)
        bpf.take_lines()
        links = sorted(lo.links)
        for handle in links:
            self._destroy_link(handle)
        bpf.lib.bpf_object__close(lo.obj)
        del self.objects[lo.handle]
        DIAG.log(f"unload handle {lo.handle} ({lo.path})")
        return {"detached": links, "libbpf_log": bpf.take_lines()}

    # -- triggers ---------------------------------------------------------------------------------------------------
    def op_trigger(self, req: dict) -> dict:
        timeout = arg(req, "timeout", float, 10.0)
        if not 0 < timeout <= 3600:
            raise BadRequest("argument 'timeout' must be in (0, 3600] seconds")
        shell = arg(req, "shell", str, None)
        action = arg(req, "action", str, None)
        if (shell is None) == (action is None):
            raise BadRequest("trigger needs exactly one of 'shell' or 'action'")
        if shell is not None:
            res = self.triggers.run_shell(shell, req, timeout)
            what = f"shell {shell[:80]!r}"
        else:
            res = self.triggers.run_action(action, req, timeout)
            what = f"action {action}"
        DIAG.log(
            f"trigger {what}: pid {res['pid']} rc {res['rc']} errno {res['errno']}"
            + (" TIMED OUT" if res["timed_out"] else "")
        )
        return res

    # -- audit ------------------------------------------------------------------------------------------------------
    def op_audit_open(self, req: dict) -> dict:
        enable = arg(req, "enable", bool, False)
        backlog = arg(req, "backlog_limit", int, None)
        mode = arg(req, "mode", str, "daemon")
        if mode not in ("daemon", "multicast"):
            raise BadRequest("argument 'mode' must be 'daemon' or 'multicast'")
        return self.audit.open(enable, backlog, mode)

    def op_audit_close(self, req: dict) -> dict:
        res = self.audit.close()
        res["status"] = self.audit.status()
        return res

    def op_audit_mark(self, req: dict) -> dict:
        if self.audit.mode is None:
            raise OpFailed("audit is not open (send audit_open first)")
        return {"mark": self.audit.next_seq}

    def op_audit_read(self, req: dict) -> dict:
        since = arg(req, "since", int, 0)
        wait = arg(req, "wait", float, 0.3)
        if not 0 <= wait <= 600:
            raise BadRequest("argument 'wait' must be 0..600 seconds")
        types = arg(req, "types", list, None)
        if types is not None and not all(isinstance(t, int) for t in types):
            raise BadRequest("argument 'types' must be a list of record type numbers")
        return self.audit.read(since, wait, types)

    def op_audit_status(self, req: dict) -> dict:
        res = self.audit.status()
        res["agent_mode"] = self.audit.mode
        return res

    def op_audit_set(self, req: dict) -> dict:
        fields = {}
        for name in ("enabled", "failure", "rate_limit", "backlog_limit", "backlog_wait_time"):
            value = arg(req, name, int, None)
            if value is not None:
                if value < 0:
                    raise BadRequest(f"argument '{name}' must not be negative")
                fields[name] = value
        if "enabled" in fields and fields["enabled"] not in (0, 1, 2):
            raise BadRequest("argument 'enabled' must be 0, 1 or 2")
        if not fields:
            raise BadRequest(
                "audit_set needs at least one of enabled, failure, rate_limit, backlog_limit, backlog_wait_time"
            )
        self.audit.set(**fields)
        DIAG.log("audit_set " + " ".join(f"{k}={v}" for k, v in fields.items()))
        return {"status": self.audit.status()}

    def op_audit_user(self, req: dict) -> dict:
        text = arg(req, "text", str)
        mtype = arg(req, "type", int, AUDIT_USER)
        if not 1100 <= mtype <= 1199 and not 2100 <= mtype <= 2999:
            raise BadRequest("argument 'type' must be a user message type (1100-1199 or 2100-2999)")
        self.audit.user_message(mtype, text)
        return {}

    # -- shutdown ---------------------------------------------------------------------------------------------------
    def cleanup(self) -> None:
        if self._audit is not None and self._audit.mode is not None:
            try:
                self._audit.close()
            except Exception as e:
                DIAG.log(f"cleanup: audit close failed: {e}")
        if self.libbpf is not None:
            for handle in list(self.links):
                try:
                    self._destroy_link(handle)
                except Exception as e:
                    DIAG.log(f"cleanup: link {handle}: {e}")
            for lo in list(self.objects.values()):
                self.libbpf.lib.bpf_object__close(lo.obj)
            self.objects.clear()


def _process_age() -> float:
    """Seconds since this process started (from /proc; 10 ms resolution)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        start_ticks = int(stat[stat.rindex(b")") + 2 :].split()[19])
        with open("/proc/uptime", "rb") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.monotonic() - _T0


def _parse_argv(argv: list[str]) -> dict:
    opts: dict = {"kmsg": True, "kmsg_level": 5, "quiet": False, "libbpf": None}
    it = iter(argv)
    for a in it:
        if a == "--no-kmsg":
            opts["kmsg"] = False
        elif a == "--quiet":
            opts["quiet"] = True
        elif a == "--kmsg-level":
            opts["kmsg_level"] = int(next(it))
        elif a == "--libbpf":
            opts["libbpf"] = next(it)
        else:
            sys.stderr.write(f"{LOG_PREFIX}unknown argument {a!r}\n")
            sys.exit(2)
    return opts


def _on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: list[str]) -> int:
    opts = _parse_argv(argv)
    # Keep the protocol stream private: fd 1 becomes stderr for anything else (libraries, children).
    out = open(os.dup(1), "wb", closefd=True)  # lives as long as the process
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    DIAG.stderr = not opts["quiet"]
    DIAG.kmsg_level = opts["kmsg_level"]
    if opts["kmsg"]:
        DIAG.open_kmsg()
    import _signal

    for sig in (15, 1, 2):  # SIGTERM, SIGHUP, SIGINT: clean up (links, objects, audit registration) and exit
        _signal.signal(sig, _on_signal)
    agent = Agent(opts["libbpf"])
    inp = sys.stdin.buffer

    def send(res: dict) -> None:
        out.write(json_dumps(res).encode() + b"\n")
        out.flush()

    try:
        hello = agent.hello()
        send(hello)
        DIAG.log(
            f"started pid {hello['pid']} on {hello['kernel']}, libbpf {hello['libbpf']}, startup {hello['startup']}s"
        )
        while not agent.exiting:
            line = inp.readline()
            if not line:
                DIAG.log("stdin closed, exiting")
                break
            if not line.strip():
                continue
            send(agent.handle(line))
    except BrokenPipeError:
        DIAG.log("stdout closed, exiting")
    except SystemExit:
        DIAG.log("signal received, exiting")
    finally:
        agent.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
