# SPDX-License-Identifier: GPL-2.0
"""The agent: request dispatch, one `op_<name>` method per op of the protocol."""

import os
import sys
import time

from .audit import AUDIT_USER, Audit
from .caps import parse_caps
from .codec import json_loads
from .libbpf import Libbpf, Link, LoadedObject, u32
from .protocol import DIAG, MIB, BadRequest, OpFailed, arg, os_error
from .triggers import Triggers

_T0 = time.monotonic()

DEFAULT_LOG_SIZE = 2 * MIB
MAX_LOG_SIZE = 64 * MIB
MIN_LOG_SIZE = 1024
ENOSPC = 28


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
        except Exception as e:  # noqa: BLE001 - answered as an internal error, the agent carries on
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
            DIAG.log(f"load {path}: rejected, {os_error(res['errno'])}")
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
                    info["id"] = u32(raw, 4)
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
            DIAG.log(f"attach {name}: failed, {os_error(err)}")
            raise OpFailed(f"attach {name} failed: {os_error(err)}", errno=err, libbpf_log=lines)
        handle = self.next_handle
        self.next_handle += 1
        self.links[handle] = Link(handle, ptr, lo.handle, name)
        lo.links.add(handle)
        res: dict = {"link": handle, "errno": 0, "libbpf_log": lines}
        fd = bpf.lib.bpf_link__fd(ptr)
        if fd >= 0:
            try:
                raw = bpf.info(fd)
                res["link_id"] = u32(raw, 4)
                res["prog_id"] = u32(raw, 8)
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

    def op_pin(self, req: dict) -> dict:
        """Pin a loaded program in bpffs: it stays loaded after unload, and after the agent exits (a VM kept for
        inspection). Removing the pin file unloads it."""
        bpf = self._bpf()
        lo = self._object(req)
        name = arg(req, "program", str)
        path = arg(req, "path", str)
        prog = bpf.lib.bpf_object__find_program_by_name(lo.obj, name.encode())
        if not prog or bpf.lib.bpf_program__fd(prog) < 0:
            raise OpFailed(f"no loaded program named {name} in handle {lo.handle}")
        bpf.take_lines()
        ret = bpf.lib.bpf_program__pin(prog, path.encode())
        lines = bpf.take_lines()
        if ret < 0:
            raise OpFailed(f"pin {name} at {path} failed: {os_error(-ret)}", errno=-ret, libbpf_log=lines)
        DIAG.log(f"pin {name} (handle {lo.handle}) at {path}")
        return {"path": path, "libbpf_log": lines}

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
        # With what was lost so far, so a capture window can tell that records were lost inside it.
        return {"mark": self.audit.next_seq, "overruns": self.audit.overruns,
                "lost": self.audit.status().get("lost")}

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
            except Exception as e:  # noqa: BLE001 - cleanup goes on with the links and objects
                DIAG.log(f"cleanup: audit close failed: {e}")
        if self.libbpf is not None:
            for handle in list(self.links):
                try:
                    self._destroy_link(handle)
                except Exception as e:  # noqa: BLE001 - cleanup goes on with the other links
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
