# SPDX-License-Identifier: GPL-2.0
"""The agent's load op: open and load a BPF object with test_loader's log levels, flags and capabilities."""

import os

from . import probe
from .caps import parse_caps
from .libbpf import Libbpf, LoadedObject, u32
from .loadargs import LoadOpts, _name_lists, _name_map
from .protocol import DIAG, MIB, BadRequest, OpFailed, arg, os_error
from .selftest import dumps, fixup_btf_from_path

DEFAULT_LOG_SIZE = 2 * MIB
MAX_LOG_SIZE = 64 * MIB
MIN_LOG_SIZE = 1024
ENOSPC = 28

TYPE_CHECKING = False
if TYPE_CHECKING:  # imported where used, after the hello (start-up does not pay for messages.py)
    from .messages import LoadReply


class LoadOps:
    """The load op and its retries (mixed into the agent)."""

    def op_load(self, req: dict) -> "LoadReply":
        from .messages import LoadReply

        bpf = self._bpf()
        path = arg(req, "path", str)
        programs, level, levels, size, flags, no_create = _load_limits(req)
        object_name = arg(req, "object_name", str, None)
        drop = parse_caps(req["drop_caps"]) if req.get("drop_caps") is not None else []
        unpriv = arg(req, "unpriv", bool, False)
        program_logs = arg(req, "program_logs", bool, False)
        log_retry = arg(req, "log_retry", bool, True)
        dump = _name_lists(req, "dump")
        if not os.path.exists(path):
            raise OpFailed(f"no such object file in the guest: {path}", errno=2)
        keep = parse_caps(req["keep_caps"]) if req.get("keep_caps") is not None else []
        if unpriv:
            why = probe.unpriv_disabled_reason(arg(req, "mitigations_config", bool, False))
            if why is not None:
                DIAG.log(f"load {path}: unprivileged subtest skipped, {why}")
                return LoadReply(id=None, ok=True, loaded=False, errno=0, skipped=why, programs=[], verifier_log="",
                                 libbpf_log=[], log_size=size, log_retries=0)
        drop = [c for c in drop if c not in keep]  # __caps_unpriv: given back after test_loader's drop
        opts = LoadOpts(programs, level, levels, flags, no_create, object_name, drop,
                        arg(req, "btf_custom_path", str, None), arg(req, "btf_func_path", str, None))
        if unpriv and (path, tuple(programs or ())) not in self._warm:
            self._warm_up(bpf, path, opts)
        res = self._load_retrying(bpf, path, opts, size, log_retry)
        if not program_logs:
            for info in res.programs:
                info.pop("verifier_log", None)
        if res.loaded and dump:  # after the capabilities are back, as test_loader restores them first
            self._dump(bpf, res, dump)
        if res.loaded:
            ids = ",".join(f"{p['name']}={p['id']}" for p in res.programs if p["fd"] >= 0)
            DIAG.log(f"load {path}: handle {res.handle} prog ids {ids}")
        else:
            DIAG.log(f"load {path}: rejected, {os_error(res.errno)}")
        return res

    def _load_retrying(self, bpf: Libbpf, path: str, opts: "LoadOpts", size: int, log_retry: bool) -> "LoadReply":
        """Load, again with a four times larger log buffer while the log does not fit (ENOSPC) and `log_retry`;
        the reply with the log size used, the retries and libbpf's own log lines of the request."""
        bpf.take_lines()
        retries = 0
        while True:
            res = self._load_once(bpf, path, opts, size)
            if not log_retry or res.errno != ENOSPC or size >= MAX_LOG_SIZE or res.stage == "open":
                break
            size = min(size * 4, MAX_LOG_SIZE)
            retries += 1
        res.log_size, res.log_retries, res.libbpf_log = size, retries, bpf.take_lines()
        return res

    def _dump(self, bpf: Libbpf, res: "LoadReply", dump: dict) -> None:
        """The dumps `dump` asks of each loaded program, added to its entry in the reply."""
        lo = self.objects[res.handle]
        for info in res.programs:
            if info["name"] in dump and info["fd"] >= 0:
                prog = bpf.lib.bpf_object__find_program_by_name(lo.obj, info["name"].encode())
                info.update(dumps(bpf, bpf.lib.bpf_program__fd(prog), dump[info["name"]]))

    def _warm_up(self, bpf: Libbpf, path: str, o: "LoadOpts") -> None:
        """Load the same programs once with every capability, result unused. libbpf probes kernel features on
        first use and caches the answers for the whole process: probed without CAP_BPF (an unprivileged load),
        BTF would be "unsupported" for every later load too. test_progs always loads a program privileged
        before its unprivileged subtest; this does the same when a caller asks for the unprivileged one first."""
        warm = LoadOpts(o.programs, 0, {}, o.prog_flags, o.no_autocreate, o.object_name, [], o.btf_custom_path,
                        o.btf_func_path)
        bpf.take_lines()
        res = self._load_once(bpf, path, warm, MIN_LOG_SIZE)
        if res.handle is not None:
            bpf.lib.bpf_object__close(self.objects.pop(res.handle).obj)
        self._warm.add((path, tuple(o.programs or ())))

    def _load_once(self, bpf: Libbpf, path: str, o: "LoadOpts", size: int) -> "LoadReply":
        """One open and load of the object at `path`: the reply (without the retry's fields)."""
        from .messages import LoadReply

        btf_buf = bpf.ct.create_string_buffer(size)
        obj, failure = _open(bpf, path, o, btf_buf, size)
        if failure is not None:
            return failure
        progs, names, maps = _check_names(bpf, obj, path, o)
        for name in o.no_autocreate:
            bpf.lib.bpf_map__set_autocreate(maps[name], False)
        bufs = _set_programs(bpf, progs, names, o, size)
        err = self._load_object(bpf, obj, o.drop)
        infos, failed = _program_infos(bpf, progs, names, bufs, err)
        # libbpf reads the log buffers only inside bpf_object__load (and cannot reset them once loaded:
        # bpf_program__set_log_buf returns -EBUSY), so they can go away with this request.
        map_infos = [_map_info(bpf, n, m) for n, m in maps.items()]
        btf_log = btf_buf.value.decode("utf-8", "backslashreplace")
        if err:
            bpf.lib.bpf_object__close(obj)
            if failed is None:
                failed = next((i for i in infos if i["autoload"] and i["fd"] < 0), None)
            for info in infos:
                info["fd"] = -1
                info["id"] = 0
            return LoadReply(id=None, ok=True, loaded=False, errno=err, programs=infos, maps=map_infos,
                             btf_log=btf_log or None, verifier_log=failed["verifier_log"] if failed else btf_log,
                             failed_program=failed["name"] if failed else None)
        first = next((i for i in infos if i["autoload"]), None)
        handle = self.next_handle
        self.next_handle += 1
        self.objects[handle] = LoadedObject(handle, path, obj)
        return LoadReply(id=None, ok=True, loaded=True, errno=0, programs=infos, maps=map_infos,
                         btf_log=btf_log or None, verifier_log=first["verifier_log"] if first else "", handle=handle)

    def _load_object(self, bpf: Libbpf, obj: int, drop: list) -> int:
        """bpf_object__load with the capabilities in `drop` dropped meanwhile (test_loader's unprivileged
        subtest): 0 or the errno."""
        old_caps = None
        if drop:
            old_caps = self.triggers.libc.caps.drop(drop, permitted=False)
        try:
            ret = bpf.lib.bpf_object__load(obj)
        finally:
            if old_caps is not None:
                self.triggers.libc.caps.set(old_caps)
        return -ret if ret < 0 else 0


def _load_limits(req: dict) -> tuple:
    """The load request's program names, log levels, log size, program flags and maps not to create, each
    checked (in this order) against what the kernel takes."""
    programs = arg(req, "programs", list, None)
    if programs is not None and not all(isinstance(p, str) for p in programs):
        raise BadRequest("argument 'programs' must be a list of program names")
    level = arg(req, "log_level", int, 1)
    levels = _name_map(req, "log_levels")
    size = arg(req, "log_size", int, DEFAULT_LOG_SIZE)
    if not all(0 <= v <= 0xFFFF for v in (level, *levels.values())):
        raise BadRequest("argument 'log_level' out of range")
    if not MIN_LOG_SIZE <= size <= MAX_LOG_SIZE:
        raise BadRequest(f"argument 'log_size' must be {MIN_LOG_SIZE}..{MAX_LOG_SIZE}")
    flags = _name_map(req, "prog_flags")
    if not all(0 <= v <= 0xFFFFFFFF for v in flags.values()):
        raise BadRequest("argument 'prog_flags' values must be u32")
    no_create = arg(req, "no_autocreate_maps", list, [])
    if not all(isinstance(m, str) for m in no_create):
        raise BadRequest("argument 'no_autocreate_maps' must be a list of map names")
    return programs, level, levels, size, flags, no_create


def _open(bpf: Libbpf, path: str, o: LoadOpts, btf_buf, size: int) -> tuple:
    """bpf_object__open_file with the object name, the BTF log buffer and custom BTF asked for, then the
    __btf_func_path fixup: (the object, None), or (None, the failure's reply)."""
    from .messages import LoadReply

    ct, lib = bpf.ct, bpf.lib
    opts = bpf.OpenOpts()
    opts.sz = ct.sizeof(opts)
    name_buf = o.object_name.encode() if o.object_name is not None else None
    opts.object_name = name_buf
    opts.kernel_log_buf = ct.addressof(btf_buf)
    opts.kernel_log_size = size
    opts.kernel_log_level = 0  # BTF load: log only on failure (libbpf retries with level 1 into btf_buf)
    # test_loader: btf_custom_path is __btf_path's file, else __btf_func_path's (kfunc resolution)
    custom = o.btf_custom_path or o.btf_func_path
    opts.btf_custom_path = custom.encode() if custom else None
    obj = lib.bpf_object__open_file(path.encode(), ct.byref(opts))
    if not obj:
        err = ct.get_errno() or 22
        return None, LoadReply(id=None, ok=True, loaded=False, errno=err, stage="open", verifier_log="", programs=[])
    if o.btf_func_path:
        try:
            fixup_btf_from_path(bpf, obj, o.btf_func_path)
        except OpFailed as e:
            lib.bpf_object__close(obj)
            return None, LoadReply(id=None, ok=True, loaded=False, errno=22, stage="btf_fixup", error=str(e),
                                   verifier_log="", programs=[])
    return obj, None


def _check_names(bpf: Libbpf, obj: int, path: str, o: LoadOpts) -> tuple:
    """The object's programs, their names and its maps by name; OpFailed (the object closed) when the request
    names a program or map the object does not have."""
    progs = list(bpf.programs(obj))
    names = [bpf.prog_name(p) for p in progs]
    unknown = [n for n in (*(o.programs or ()), *o.log_levels, *o.prog_flags) if n not in names]
    maps = {bpf.map_name(m): m for m in bpf.maps(obj)}
    unknown_maps = [m for m in o.no_autocreate if m not in maps]
    if unknown or unknown_maps:
        bpf.lib.bpf_object__close(obj)
        if unknown:
            raise OpFailed(f"no program named {', '.join(dict.fromkeys(unknown))} in {path}; it has: "
                           f"{', '.join(names)}")
        raise OpFailed(f"no map named {', '.join(unknown_maps)} in {path}; it has: {', '.join(maps)}")
    return progs, names, maps


def _set_programs(bpf: Libbpf, progs: list, names: list, o: LoadOpts, size: int) -> dict:
    """Autoload the programs asked for (all when none is named); each one autoloaded gets its log buffer, log
    level and extra flags. The log buffers by program."""
    ct, lib = bpf.ct, bpf.lib
    bufs: dict[int, object] = {}
    for prog, name in zip(progs, names, strict=True):
        if o.programs is not None:
            lib.bpf_program__set_autoload(prog, name in o.programs)
        if lib.bpf_program__autoload(prog):
            buf = ct.create_string_buffer(size)
            bufs[prog] = buf
            lib.bpf_program__set_log_buf(prog, buf, size)
            lib.bpf_program__set_log_level(prog, o.log_levels.get(name, o.log_level))
            if name in o.prog_flags:
                lib.bpf_program__set_flags(prog, lib.bpf_program__flags(prog) | o.prog_flags[name])
    return bufs


def _program_infos(bpf: Libbpf, progs: list, names: list, bufs: dict, err: int) -> tuple:
    """Each program's entry in the reply (name, section, type, id, fd, autoload, its verifier log, flags, tag),
    and on a failed load the first autoloaded program that has no fd and a log (the one the verifier refused)."""
    lib = bpf.lib
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
        if prog in bufs:
            info["flags"] = lib.bpf_program__flags(prog)
        if fd >= 0:
            try:
                raw = bpf.info(fd)
                info["id"] = u32(raw, 4)
                info["tag"] = raw[8:16].hex()
            except OSError as e:
                info["info_error"] = str(e)
        elif err and prog in bufs and failed is None and log:
            failed = info
        infos.append(info)
    return infos, failed


def _map_info(bpf: Libbpf, name: str, m: int) -> dict:
    """A map's name, type and whether the kernel has it: its fd names a BPF map (libbpf >= 1.3 gives a map it
    did not create a placeholder fd, so a valid fd alone says nothing)."""
    info = {"name": name, "type": bpf.lib.bpf_map__type(m), "created": False, "id": 0}
    fd = bpf.lib.bpf_map__fd(m)
    if fd >= 0:
        try:
            info["id"] = u32(bpf.info(fd), 4)
            info["created"] = True
        except OSError:
            pass
    return info
