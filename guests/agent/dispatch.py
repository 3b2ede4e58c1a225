# SPDX-License-Identifier: GPL-2.0
"""The agent: request dispatch, one `op_<name>` method per op (load: load.py, selftests: selftest.py)."""

import os
import sys
import time

from . import probe
from .audit import AUDIT_USER, Audit
from .caps import parse_caps
from .codec import json_loads
from .libbpf import Libbpf, Link, LoadedObject, u32
from .load import LoadOps
from .loadargs import _hex_arg, _name_map
from .protocol import DIAG, MIB, BadRequest, OpFailed, arg, os_error
from .selftest import SelftestOps
from .triggers import Triggers

TYPE_CHECKING = False
if TYPE_CHECKING:  # the ops import them when first run: start-up does not pay for messages.py
    from .messages import (
        AttachReply,
        AuditCloseReply,
        AuditMarkReply,
        AuditOpenReply,
        AuditReadReply,
        AuditSetReply,
        AuditStatusReply,
        DetachReply,
        Empty,
        Failure,
        PinReply,
        ProbeReply,
        Reply,
        TestRunReply,
        TriggerReply,
        UnloadReply,
    )

_T0 = time.monotonic()

TEST_DATA_LEN = 64  # test_loader's BPF_PROG_TEST_RUN input: 64 zero bytes, 4x that room for the output


class Agent(LoadOps, SelftestOps):
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
        self._warm: set[tuple[str, tuple]] = set()  # (path, programs) loaded once with every capability
        self._audit: Audit | None = None
        self.exiting = False

    @property
    def audit(self) -> Audit:
        if self._audit is None:
            self._audit = Audit()
        return self._audit

    def hello(self) -> dict:
        """The first line the agent sends, unasked: who it is (messages.Hello)."""
        from .messages import Hello

        hello = Hello(id=0, ok=True, pid=os.getpid(), kernel=os.uname().release,
                      libbpf=self.libbpf.path if self.libbpf else None,
                      libbpf_version=self.libbpf.version if self.libbpf else None,
                      libbpf_error=None if self.libbpf else self.libbpf_error,
                      python=sys.version.split()[0], startup=round(_process_age(), 3))
        return _on_the_wire(hello)

    def handle(self, line: bytes) -> dict:
        """The answer to one request line, as the dict sent. An op_<name> returns its reply class (messages.py)
        built with id=None: the id and the elapsed time are the dispatcher's to fill in. A request that fails is
        answered with a messages.Failure."""
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
            reply = fn(req)
            _check_reply(op, reply)
        except BadRequest as e:
            reply = _failure(f"bad request: {e}")
        except OpFailed as e:
            reply = _failure(str(e), **e.fields)
        except OSError as e:
            reply = _failure(str(e), errno=e.errno or 0)
        except Exception as e:  # noqa: BLE001 - answered as an internal error, the agent carries on
            import traceback

            DIAG.log(f"internal error: {type(e).__name__}: {e}", kmsg=True)
            traceback.print_exc(file=sys.stderr)
            reply = _failure(f"internal error: {type(e).__name__}: {e}")
        reply.id = rid
        reply.elapsed = round(time.monotonic() - t0, 6)
        return _on_the_wire(reply)

    def ops(self) -> list[str]:
        return sorted(n[3:] for n in dir(self) if n.startswith("op_"))

    # -- simple ops -------------------------------------------------------------------------------------------------
    def op_ping(self, req: dict) -> "Empty":
        from .messages import Empty

        return Empty(id=None, ok=True)

    def op_exit(self, req: dict) -> "Empty":
        from .messages import Empty

        self.exiting = True
        return Empty(id=None, ok=True)

    # -- BPF --------------------------------------------------------------------------------------------------------
    def _bpf(self) -> Libbpf:
        if self.libbpf is None:
            raise OpFailed(f"libbpf is not available in the guest: {self.libbpf_error}")
        return self.libbpf


    def _object(self, req: dict) -> LoadedObject:
        handle = arg(req, "handle", int)
        if handle not in self.objects:
            raise OpFailed(f"no loaded object with handle {handle}")
        return self.objects[handle]

    def _loaded_program(self, req: dict):
        """(libbpf, the object, the program's name, the program) for a request naming a loaded object's program
        (`handle`, `program`); OpFailed when that program is not loaded."""
        bpf = self._bpf()
        lo = self._object(req)
        name = arg(req, "program", str)
        prog = bpf.lib.bpf_object__find_program_by_name(lo.obj, name.encode())
        if not prog or bpf.lib.bpf_program__fd(prog) < 0:
            raise OpFailed(f"no loaded program named {name} in handle {lo.handle}")
        return bpf, lo, name, prog

    def op_attach(self, req: dict) -> "AttachReply":
        from .messages import AttachReply

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
        link_id = prog_id = None
        fd = bpf.lib.bpf_link__fd(ptr)
        if fd >= 0:
            try:
                raw = bpf.info(fd)
                link_id, prog_id = u32(raw, 4), u32(raw, 8)
            except OSError:
                pass
        DIAG.log(f"attach {name}: link {handle} (link id {link_id})")
        return AttachReply(id=None, ok=True, link=handle, errno=0, libbpf_log=lines, link_id=link_id, prog_id=prog_id)

    def _destroy_link(self, handle: int) -> int:
        link = self.links.pop(handle)
        lo = self.objects.get(link.obj_handle)
        if lo is not None:
            lo.links.discard(handle)
        ret = self.libbpf.lib.bpf_link__destroy(link.ptr)
        return -ret if ret < 0 else 0

    def op_detach(self, req: dict) -> "DetachReply":
        from .messages import DetachReply

        bpf = self._bpf()
        handle = arg(req, "link", int)
        if handle not in self.links:
            raise OpFailed(f"no link with handle {handle}")
        bpf.take_lines()
        err = self._destroy_link(handle)
        DIAG.log(f"detach link {handle}")
        return DetachReply(id=None, ok=True, errno=err, libbpf_log=bpf.take_lines())

    def op_unload(self, req: dict) -> "UnloadReply":
        from .messages import UnloadReply

        bpf = self._bpf()
        lo = self._object(req)
        bpf.take_lines()
        links = sorted(lo.links)
        for handle in links:
            self._destroy_link(handle)
        bpf.lib.bpf_object__close(lo.obj)
        del self.objects[lo.handle]
        DIAG.log(f"unload handle {lo.handle} ({lo.path})")
        return UnloadReply(id=None, ok=True, detached=links, libbpf_log=bpf.take_lines())

    def op_pin(self, req: dict) -> "PinReply":
        """Pin a loaded program in bpffs: it stays loaded after unload, and after the agent exits (a VM kept for
        inspection). Removing the pin file unloads it."""
        from .messages import PinReply

        bpf, lo, name, prog = self._loaded_program(req)
        path = arg(req, "path", str)
        bpf.take_lines()
        ret = bpf.lib.bpf_program__pin(prog, path.encode())
        lines = bpf.take_lines()
        if ret < 0:
            raise OpFailed(f"pin {name} at {path} failed: {os_error(-ret)}", errno=-ret, libbpf_log=lines)
        DIAG.log(f"pin {name} (handle {lo.handle}) at {path}")
        return PinReply(id=None, ok=True, path=path, libbpf_log=lines)

    def op_test_run(self, req: dict) -> "TestRunReply":
        """BPF_PROG_TEST_RUN of a loaded program (bpf_prog_test_run_opts), with test_loader's input by default: 64
        zero bytes in, room for 256 out, repeat 1. `empty: true` passes only `sz` (test_loader does so for
        BPF_PROG_TYPE_SYSCALL). A run the kernel refuses is a result (`errno`), not a failed request."""
        from .messages import TestRunReply

        bpf, lo, name, prog = self._loaded_program(req)
        data_in = _hex_arg(req, "data_in", bytes(TEST_DATA_LEN))
        ctx_in = _hex_arg(req, "ctx_in", None)
        out_size = arg(req, "data_size_out", int, TEST_DATA_LEN * 4)
        ctx_out_size = arg(req, "ctx_size_out", int, 0)
        repeat = arg(req, "repeat", int, 1)
        empty = arg(req, "empty", bool, False)
        if not 0 <= out_size <= MIB or not 0 <= ctx_out_size <= MIB or not 0 <= repeat <= 1 << 20:
            raise BadRequest("test_run sizes must be 0..1 MiB and repeat 0..2^20")
        drop = parse_caps(req["drop_caps"]) if req.get("drop_caps") is not None else []
        ct = bpf.ct
        opts = bpf.TestRunOpts()
        opts.sz = ct.sizeof(opts)
        keep = []  # the buffers live until the call returns
        out_buf = ct.create_string_buffer(max(out_size, 1))
        ctx_out = ct.create_string_buffer(max(ctx_out_size, 1))
        if not empty:
            inp = ct.create_string_buffer(data_in, len(data_in))
            keep.append(inp)
            opts.data_in, opts.data_size_in = ct.addressof(inp), len(data_in)
            opts.data_out, opts.data_size_out = ct.addressof(out_buf), out_size
            if ctx_in is not None:
                cin = ct.create_string_buffer(ctx_in, len(ctx_in))
                keep.append(cin)
                opts.ctx_in, opts.ctx_size_in = ct.addressof(cin), len(ctx_in)
            if ctx_out_size:
                opts.ctx_out, opts.ctx_size_out = ct.addressof(ctx_out), ctx_out_size
            opts.repeat = repeat
        bpf.take_lines()
        old_caps = self.triggers.libc.caps.drop(drop, permitted=False) if drop else None
        try:
            ret = bpf.lib.bpf_prog_test_run_opts(bpf.lib.bpf_program__fd(prog), ct.byref(opts))
            err = ct.get_errno() if ret < 0 else 0
        finally:
            if old_caps is not None:
                self.triggers.libc.caps.set(old_caps)
        data_out = out_buf.raw[:min(opts.data_size_out, out_size)].hex() if not err and not empty else None
        DIAG.log(f"test_run {name} (handle {lo.handle}): " + (f"retval {opts.retval}" if not err else os_error(err)))
        return TestRunReply(id=None, ok=True, errno=err, retval=opts.retval, duration=opts.duration,
                            data_size_out=opts.data_size_out, libbpf_log=bpf.take_lines(), data_out=data_out)

    def op_probe(self, req: dict) -> "ProbeReply":
        """What test_loader checks of the kernel before it runs subtests: whether unprivileged BPF may run
        (kernel.unprivileged_bpf_disabled, mitigations=off), CONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS, and which of
        `prog_flags` (name -> value) a trivial socket filter may be loaded with (testing_prog_flags())."""
        from .messages import ProbeReply

        flags = _name_map(req, "prog_flags")
        accepted = {}
        for name, value in flags.items():
            ok, err = probe.prog_flag_accepted(value, arg(req, "prog_name", str, ""))
            accepted[name] = ok if ok else f"refused: {os_error(err)}"
        return ProbeReply(
            id=None, ok=True, unprivileged_bpf_disabled=probe.unpriv_sysctl(), mitigations_off=probe.mitigations_off(),
            unpriv_disabled_reason=probe.unpriv_disabled_reason(arg(req, "mitigations_config", bool, False)),
            jit_enabled=probe.jit_enabled(), efficient_unaligned_access=probe.efficient_unaligned_access(),
            machine=os.uname().machine, prog_flags=accepted)

    # -- triggers ---------------------------------------------------------------------------------------------------
    def op_trigger(self, req: dict) -> "TriggerReply":
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
        DIAG.log(f"trigger {what}: pid {res.pid} rc {res.rc} errno {res.errno}"
                 + (" TIMED OUT" if res.timed_out else ""))
        return res

    # -- audit ------------------------------------------------------------------------------------------------------
    def op_audit_open(self, req: dict) -> "AuditOpenReply":
        enable = arg(req, "enable", bool, False)
        backlog = arg(req, "backlog_limit", int, None)
        mode = arg(req, "mode", str, "daemon")
        if mode not in ("daemon", "multicast"):
            raise BadRequest("argument 'mode' must be 'daemon' or 'multicast'")
        return self.audit.open(enable, backlog, mode)

    def op_audit_close(self, req: dict) -> "AuditCloseReply":
        from .messages import AuditCloseReply

        was_open, unregister_error = self.audit.close()
        return AuditCloseReply(id=None, ok=True, was_open=was_open, status=self.audit.status(),
                               unregister_error=unregister_error)

    def op_audit_mark(self, req: dict) -> "AuditMarkReply":
        from .messages import AuditMarkReply

        if self.audit.mode is None:
            raise OpFailed("audit is not open (send audit_open first)")
        # With what was lost so far, so a capture window can tell that records were lost inside it.
        return AuditMarkReply(id=None, ok=True, mark=self.audit.next_seq, overruns=self.audit.overruns,
                              lost=self.audit.status().lost)

    def op_audit_read(self, req: dict) -> "AuditReadReply":
        since = arg(req, "since", int, 0)
        wait = arg(req, "wait", float, 0.3)
        if not 0 <= wait <= 600:
            raise BadRequest("argument 'wait' must be 0..600 seconds")
        types = arg(req, "types", list, None)
        if types is not None and not all(isinstance(t, int) for t in types):
            raise BadRequest("argument 'types' must be a list of record type numbers")
        return self.audit.read(since, wait, types)

    def op_audit_status(self, req: dict) -> "AuditStatusReply":
        from .messages import AuditStatusReply

        return AuditStatusReply(id=None, ok=True, agent_mode=self.audit.mode, **self.audit.status().to_dict())

    def op_audit_set(self, req: dict) -> "AuditSetReply":
        from .messages import AuditSetReply

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
        return AuditSetReply(id=None, ok=True, status=self.audit.status())

    def op_audit_user(self, req: dict) -> "Empty":
        from .messages import Empty

        text = arg(req, "text", str)
        mtype = arg(req, "type", int, AUDIT_USER)
        if not 1100 <= mtype <= 1199 and not 2100 <= mtype <= 2999:
            raise BadRequest("argument 'type' must be a user message type (1100-1199 or 2100-2999)")
        self.audit.user_message(mtype, text)
        return Empty(id=None, ok=True)

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


def _check_reply(op: str, reply: object) -> None:
    """The op answered with the class messages.py declares for it (the host reads it as that class): another is the
    agent's bug, answered as an internal error here rather than misread there. A missing or misspelled field fails
    already where the reply is built. messages.py is imported on the first request (here and in each op), after
    the hello, so start-up does not pay for it."""
    from .messages import REPLIES

    cls = REPLIES.get(op)
    if cls is None or type(reply) is not cls:
        raise TypeError(f"op_{op} answered with {type(reply).__name__}; messages.py declares {cls and cls.__name__}")
    if reply.ok is not True:  # a failure is raised (OpFailed, BadRequest, OSError), never returned
        raise TypeError(f"op_{op} answered with ok={reply.ok!r}")


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


def _failure(error: str, errno: object = None, **fields: object) -> "Failure":
    """ok: false, with what the failed op said besides its error (libbpf_log, ...) kept in `extra`."""
    from .messages import Failure

    return Failure(id=None, ok=False, error=error, errno=errno if isinstance(errno, int) else None, extra=fields)


def _on_the_wire(reply: "Reply") -> dict:
    """A reply as the JSON object sent: id and ok first, elapsed last (the order the agent has always used)."""
    wire = {"id": reply.id, "ok": reply.ok}
    wire.update(reply.to_dict())
    elapsed = wire.pop("elapsed", None)
    if elapsed is not None:
        wire["elapsed"] = elapsed
    return wire

