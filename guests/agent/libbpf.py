# SPDX-License-Identifier: GPL-2.0
"""libbpf through ctypes (Debian 12: libbpf 1.1; only APIs that exist there), loaded objects and links."""

import os
import sys

from .protocol import MIB

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

        class TestRunOpts(ct.Structure):
            # struct bpf_test_run_opts (libbpf 1.1 to 1.5 bpf.h); sz = 80 on LP64
            _fields_ = [
                ("sz", ct.c_size_t),
                ("data_in", vp),
                ("data_out", vp),
                ("data_size_in", ct.c_uint32),
                ("data_size_out", ct.c_uint32),
                ("ctx_in", vp),
                ("ctx_out", vp),
                ("ctx_size_in", ct.c_uint32),
                ("ctx_size_out", ct.c_uint32),
                ("retval", ct.c_uint32),
                ("repeat", ct.c_int),
                ("duration", ct.c_uint32),
                ("flags", ct.c_uint32),
                ("cpu", ct.c_uint32),
                ("batch_size", ct.c_uint32),
            ]

        self.OpenOpts = OpenOpts
        self.TestRunOpts = TestRunOpts
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
            "bpf_program__flags": (ct.c_uint32, [vp]),
            "bpf_program__set_flags": (ci, [vp, ct.c_uint32]),
            "bpf_object__next_map": (vp, [vp, vp]),
            "bpf_map__name": (cp, [vp]),
            "bpf_map__set_autocreate": (ci, [vp, ct.c_bool]),
            "bpf_map__type": (ci, [vp]),
            "bpf_map__fd": (ci, [vp]),
            "bpf_prog_test_run_opts": (ci, [ci, vp]),
            "bpf_program__attach": (vp, [vp]),
            "bpf_program__pin": (ci, [vp, cp]),
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
        except Exception as e:  # noqa: BLE001 - never raise into C
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

    def maps(self, obj: int):
        m = self.lib.bpf_object__next_map(obj, None)
        while m:
            yield m
            m = self.lib.bpf_object__next_map(obj, m)

    def map_name(self, m: int) -> str:
        return (self.lib.bpf_map__name(m) or b"").decode("utf-8", "backslashreplace")

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


def u32(raw: bytes, off: int) -> int:
    return int.from_bytes(raw[off : off + 4], sys.byteorder) if len(raw) >= off + 4 else 0
