# SPDX-License-Identifier: GPL-2.0
"""What test_loader does to a loaded object beyond loading it: xlated/JITed dumps, map writes, struct_ops, streams."""

import os

from .libbpf import Libbpf, u32
from .protocol import MIB, BadRequest, OpFailed, arg, os_error

INFO_SIZE = 256  # room for struct bpf_prog_info (the kernel copies at most its own size)
# struct bpf_prog_info offsets (include/uapi/linux/bpf.h)
JITED_PROG_LEN, XLATED_PROG_LEN, JITED_PROG_INSNS, XLATED_PROG_INSNS = 16, 20, 24, 32
NR_JITED_FUNC_LENS, JITED_FUNC_LENS = 108, 120
MAX_DUMP = 16 * MIB
STREAM_BUF = 2 * MIB  # TEST_LOADER_LOG_BUF_SZ
BTF_KIND_FUNC, BTF_KIND_FUNC_PROTO = 12, 13

TYPE_CHECKING = False
if TYPE_CHECKING:  # the ops import them when first run: start-up does not pay for messages.py
    from .messages import AttachStructOpsReply, Empty, LoadModuleReply, MapUpdateReply, StreamReadReply


def _declare(bpf: Libbpf) -> None:
    """The libbpf functions only selftests need (declared on first use: an older libbpf lacks some)."""
    if getattr(bpf, "_selftest_declared", False):
        return
    ct, lib = bpf.ct, bpf.lib
    vp, cp, ci, u = ct.c_void_p, ct.c_char_p, ct.c_int, ct.c_uint32
    protos = {
        "bpf_object__find_map_by_name": (vp, [vp, cp]),
        "bpf_map_update_elem": (ci, [ci, vp, vp, ct.c_uint64]),
        "bpf_map__attach_struct_ops": (vp, [vp]),
        "bpf_prog_stream_read": (ci, [ci, u, vp, u, vp]),
        "bpf_object__btf": (vp, [vp]),
        "btf__parse": (vp, [cp, vp]),
        "btf__free": (None, [vp]),
        "btf__type_cnt": (u, [vp]),
        "btf__type_by_id": (vp, [vp, u]),
        "btf__name_by_offset": (cp, [vp, u]),
        "btf__add_func_proto": (ci, [vp, ci]),
        "btf__add_func_param": (ci, [vp, cp, ci]),
    }
    for name, (res, args) in protos.items():
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.restype, fn.argtypes = res, args
    bpf._selftest_declared = True


def _need(bpf: Libbpf, name: str):
    fn = getattr(bpf.lib, name, None)
    if fn is None:
        raise OpFailed(f"{bpf.path} ({bpf.version}) has no {name}(): the tree's own libbpf is needed")
    return fn


def _info(bpf: Libbpf, fd: int, fields: dict[int, tuple[int, int]]) -> bytes:
    """bpf_obj_get_info_by_fd with `fields` (offset -> (value, size)) set in a zeroed struct bpf_prog_info."""
    ct = bpf.ct
    buf = ct.create_string_buffer(INFO_SIZE)
    for off, (value, size) in fields.items():
        ct.memmove(ct.addressof(buf) + off, value.to_bytes(size, "little"), size)
    size = ct.c_uint32(INFO_SIZE)
    if bpf.lib.bpf_obj_get_info_by_fd(fd, buf, ct.byref(size)) != 0:
        err = ct.get_errno()
        raise OSError(err, "bpf_prog_get_info_by_fd: " + os.strerror(err))
    return buf.raw[:size.value]


def xlated(bpf: Libbpf, fd: int) -> bytes:
    """get_xlated_program(): the program's instructions after the verifier's rewrites, as the kernel dumps them."""
    n = u32(_info(bpf, fd, {}), XLATED_PROG_LEN)
    if not 0 < n <= MAX_DUMP:
        raise OSError(0, f"xlated_prog_len is {n}")
    out = bpf.ct.create_string_buffer(n)
    _info(bpf, fd, {XLATED_PROG_LEN: (n, 4), XLATED_PROG_INSNS: (bpf.ct.addressof(out), 8)})
    return out.raw


def jited(bpf: Libbpf, fd: int) -> tuple[bytes, list[int]]:
    """get_jited_program_text()'s inputs: the JITed image and the length of each function in it."""
    ct = bpf.ct
    first = _info(bpf, fd, {})
    n, funcs = u32(first, JITED_PROG_LEN), u32(first, NR_JITED_FUNC_LENS)
    if not 0 < n <= MAX_DUMP or not 0 < funcs <= 4096:
        raise OSError(0, f"jited_prog_len {n}, nr_jited_func_lens {funcs}: the program is not JITed")
    image = ct.create_string_buffer(n)
    lens = (ct.c_uint32 * funcs)()
    _info(bpf, fd, {JITED_PROG_LEN: (n, 4), JITED_PROG_INSNS: (ct.addressof(image), 8),
                    NR_JITED_FUNC_LENS: (funcs, 4), JITED_FUNC_LENS: (ct.addressof(lens), 8)})
    return image.raw, list(lens)


def dumps(bpf: Libbpf, fd: int, kinds) -> dict:
    """The dumps a load asked for a program: xlated_insns (hex), jited_image (hex) and jited_func_lens, or
    <kind>_error with why the kernel refused it."""
    out: dict = {}
    for kind in kinds:
        try:
            if kind == "xlated":
                out["xlated_insns"] = xlated(bpf, fd).hex()
            elif kind == "jited":
                image, lens = jited(bpf, fd)
                out["jited_image"], out["jited_func_lens"] = image.hex(), lens
            else:
                raise BadRequest(f"unknown dump {kind!r} (xlated, jited)")
        except OSError as e:
            out[f"{kind}_error"] = f"{e.strerror or e} (errno {e.errno})" if e.errno else str(e.strerror or e)
    return out


def _add_func_proto(lib, btf, ret: int, names: list[bytes], types: list[int]) -> int:
    """A new FUNC_PROTO in `btf` returning `ret` with these named parameters: its type id."""
    new_id = lib.btf__add_func_proto(btf, ret)
    if new_id < 0:
        raise OpFailed(f"btf__add_func_proto failed: {os_error(-new_id)}")
    for pname, ptype in zip(names, types, strict=True):
        err = lib.btf__add_func_param(btf, pname, ptype)
        if err:
            raise OpFailed(f"btf__add_func_param failed: {os_error(-err)}")
    return new_id


def fixup_btf_from_path(bpf: Libbpf, obj: int, path: str) -> None:
    """test_loader's fixup_btf_from_path(): each FUNC of the object's BTF whose FUNC_PROTO has anonymous parameters
    gets a new FUNC_PROTO with the parameter names of the same-named FUNC in `path`'s BTF (same count)."""
    _declare(bpf)
    ct, lib = bpf.ct, bpf.lib
    for name in ("bpf_object__btf", "btf__parse", "btf__add_func_proto", "btf__add_func_param"):
        _need(bpf, name)
    prog_btf = lib.bpf_object__btf(obj)
    if not prog_btf:
        return
    custom = lib.btf__parse(path.encode(), None)
    if not custom or ct.c_long(custom).value < 0 and ct.c_long(custom).value > -4096:
        raise OpFailed(f"btf__parse({path}) failed: {os_error(ct.get_errno())}")
    words = ct.POINTER(ct.c_uint32)

    def t(btf, tid):  # (name_off, info, size_or_type, pointer to the words)
        p = ct.cast(lib.btf__type_by_id(btf, tid), words)
        return p[0], p[1], p[2], p

    def kind(info):
        return (info >> 24) & 0x1F

    try:
        custom_funcs = {}
        for j in range(1, lib.btf__type_cnt(custom)):
            name_off, info, typ, _ = t(custom, j)
            if kind(info) == BTF_KIND_FUNC:
                custom_funcs.setdefault(lib.btf__name_by_offset(custom, name_off), typ)
        for i in range(1, lib.btf__type_cnt(prog_btf)):
            name_off, info, proto_id, _ = t(prog_btf, i)
            if kind(info) != BTF_KIND_FUNC:
                continue
            _n, pinfo, ret, pp = t(prog_btf, proto_id)
            vlen = pinfo & 0xFFFF
            if kind(pinfo) != BTF_KIND_FUNC_PROTO or vlen == 0 or pp[3] != 0:  # params[0].name_off
                continue
            custom_proto = custom_funcs.get(lib.btf__name_by_offset(prog_btf, name_off))
            if custom_proto is None:
                continue
            _cn, cinfo, _cret, cp = t(custom, custom_proto)
            if kind(cinfo) != BTF_KIND_FUNC_PROTO or (cinfo & 0xFFFF) != vlen:
                continue
            types = [pp[3 + 2 * k + 1] for k in range(vlen)]
            names = [lib.btf__name_by_offset(custom, cp[3 + 2 * k]) or b"" for k in range(vlen)]
            new_id = _add_func_proto(lib, prog_btf, ret, names, types)
            t(prog_btf, i)[3][2] = new_id  # the FUNC now points at the named prototype
    finally:
        lib.btf__free(custom)


class SelftestOps:
    """Ops a test_loader run needs on a loaded object (mixed into the agent)."""

    def op_map_update(self, req: dict) -> "MapUpdateReply":
        """bpf_map_update_elem on a loaded object's map (a pre-execution callback's write): key and value in hex."""
        from .messages import MapUpdateReply

        bpf = self._bpf()
        _declare(bpf)
        lo = self._object(req)
        name = arg(req, "map", str)
        key, value = bytes.fromhex(arg(req, "key", str)), bytes.fromhex(arg(req, "value", str))
        flags = arg(req, "flags", int, 0)
        m = _need(bpf, "bpf_object__find_map_by_name")(lo.obj, name.encode())
        if not m:
            raise OpFailed(f"Can't find map '{name}'")
        ct = bpf.ct
        kbuf, vbuf = ct.create_string_buffer(key, len(key)), ct.create_string_buffer(value, len(value))
        ret = _need(bpf, "bpf_map_update_elem")(bpf.lib.bpf_map__fd(m), kbuf, vbuf, flags)
        err = ct.get_errno() if ret < 0 else 0
        return MapUpdateReply(id=None, ok=True, errno=err,
                              error=f"Error while updating map '{name}': {os_error(err)}" if err else "")

    def op_attach_struct_ops(self, req: dict) -> "AttachStructOpsReply":
        """bpf_map__attach_struct_ops on each named struct_ops map of a loaded object; the links go with the object.
        A map that will not attach is a result ({"failed": name, "errno": n}), as test_loader's PRINT_FAIL."""
        bpf = self._bpf()
        _declare(bpf)
        from .libbpf import Link
        from .messages import AttachStructOpsReply

        lo = self._object(req)
        done = []
        for name in arg(req, "maps", list):
            m = _need(bpf, "bpf_object__find_map_by_name")(lo.obj, str(name).encode())
            if not m:
                raise OpFailed(f"no struct_ops map named {name} in handle {lo.handle}")
            ptr = _need(bpf, "bpf_map__attach_struct_ops")(m)
            if not ptr:
                err = bpf.ct.get_errno()
                return AttachStructOpsReply(id=None, ok=True, attached=done, failed=name, errno=err,
                                            libbpf_log=bpf.take_lines())
            handle = self.next_handle
            self.next_handle += 1
            self.links[handle] = Link(handle, ptr, lo.handle, f"struct_ops:{name}")
            lo.links.add(handle)
            done.append(handle)
        return AttachStructOpsReply(id=None, ok=True, attached=done, errno=0, libbpf_log=bpf.take_lines())

    def op_stream_read(self, req: dict) -> "StreamReadReply":
        """bpf_prog_stream_read(fd, stream, buf, 2 MiB - 1): what a program wrote to its BPF stdout (1) or
        stderr (2); `ret` is the byte count or -errno, as test_loader checks it."""
        from .messages import StreamReadReply

        bpf, lo, name, prog = self._loaded_program(req)
        _declare(bpf)
        stream = arg(req, "stream", int)
        buf = bpf.ct.create_string_buffer(STREAM_BUF)
        ret = _need(bpf, "bpf_prog_stream_read")(bpf.lib.bpf_program__fd(prog), stream, buf, STREAM_BUF - 1, None)
        if ret < 0:
            return StreamReadReply(id=None, ok=True, ret=-bpf.ct.get_errno() or ret, text="")
        return StreamReadReply(id=None, ok=True, ret=ret, text=buf.raw[:ret].decode("utf-8", "backslashreplace"))

    def op_kmsg(self, req: dict) -> "Empty":
        """Write one line to /dev/kmsg (a console barrier: no shell is started for it)."""
        from .messages import Empty

        text = arg(req, "text", str)
        if "\n" in text or len(text) > 900:
            raise BadRequest("argument 'text' must be one line of at most 900 characters")
        fd = os.open("/dev/kmsg", os.O_WRONLY)  # its own open: /dev/kmsg rate-limits per open file
        try:
            os.write(fd, text.encode() + b"\n")  # as echo writes it: the console ends the line at once
        finally:
            os.close(fd)
        return Empty(id=None, ok=True)

    def op_load_module(self, req: dict) -> "LoadModuleReply":
        """finit_module() of a .ko file in the guest (bpf_testmod.ko, as test_progs loads it); one already loaded
        (EEXIST) is fine."""
        import ctypes

        from .messages import LoadModuleReply

        path = arg(req, "path", str)
        nr = {"x86_64": 313, "aarch64": 273}.get(os.uname().machine)
        if nr is None:
            raise OpFailed(f"no finit_module syscall number known for {os.uname().machine}")
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            ret = libc.syscall(ctypes.c_long(nr), ctypes.c_int(fd), ctypes.c_char_p(b""), ctypes.c_int(0))
            err = ctypes.get_errno() if ret < 0 else 0
        finally:
            os.close(fd)
        if err and err != 17:  # EEXIST
            raise OpFailed(f"finit_module({path}) failed: {os_error(err)}", errno=err)
        return LoadModuleReply(id=None, ok=True, errno=err)
