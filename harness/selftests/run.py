# SPDX-License-Identifier: GPL-2.0
"""Run one selftest subtest in a guest as test_loader's run_subtest() does: load with its plan, judge, test run."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import AgentExitedError, GuestCommandError, HarnessError, LostVMError
from harness.machine.messages import msg
from harness.machine.ssh import AgentSession, R
from harness.selftests.discover import SELFTESTS, Skeleton
from harness.selftests.evidence import KernelEvidence
from harness.selftests.judge import (
    ERROR,
    FAIL,
    PASS,
    SKIP,
    GuestTraits,
    RunOutcome,
    StreamText,
    judge,
    precheck,
    run_failed,
    should_execute,
)
from harness.selftests.spec import PROG_FLAGS, TESTING_PROG_FLAGS, UNPRIV
from harness.selftests.suite import FileSpecs, Subtest
from harness.settings import CacheLayout
from harness.status import Status

BPF_PROG_TYPE_SYSCALL = 31  # test_loader runs it with empty test-run options
LOG_SIZE = 2 * 1024 * 1024  # TEST_LOADER_LOG_BUF_SZ: one buffer, no retry with a bigger one
LOAD_TIMEOUT = 600.0
# testing_prog_flags() (testing_helpers.c, 6.12 and 7.3) loads its probe as "flag-test": the kernel refuses that name
# (bpf_obj_name_cpy() takes letters, digits, '_' and '.'), so test_progs never sets BPF_F_TEST_RND_HI32 nor
# BPF_F_TEST_REG_INVARIANTS. The harness probes the same way, so it sets the same flags: none. (With them, 6.12's
# and 7.3's verifier_sdiv __xlated expectations fail: the verifier randomizes the upper halves of 32-bit defs.)
TESTING_PROBE_NAME = "flag-test"  # a verifier scale test at log level 2 under TCG takes minutes


@dataclass
class SubtestResult:
    """One subtest's verdict and what it was judged on."""

    file: str
    name: str
    program: str
    mode: str
    status: Status  # the judge's PASS | FAIL | SKIP | ERROR
    reason: str
    load: dict[str, Any] | None = None
    run: dict[str, Any] | None = None
    seconds: float = 0.0
    target: GuestTraits | None = None  # what the guest was when it was judged
    console: str = ""  # the first kernel report on the console during it, if any

    @property
    def verifier_log(self) -> str:
        if not self.load:
            return ""
        prog = next((p for p in self.load.get("programs") or () if p.get("name") == self.program), None)
        return (prog or {}).get("verifier_log") or self.load.get("verifier_log") or ""


@dataclass
class SelftestSession:
    """What the runner keeps per machine: the case runner's GuestSession (pushed objects, private directory) and
    the agent it loads with: one running on `libbpf` (a path the guest sees; None: the guest's own), or the
    guest's own when that one cannot be loaded there (said in `notes`). The probe (test_loader's checks of the
    kernel) is made once."""

    guest: Any  # harness.cases.session.GuestSession
    libbpf: str | None = None
    notes: list[str] = field(default_factory=list)
    libbpf_used: str = "(no agent started)"  # what the agent said it loaded: path (version)
    mitigations_config: bool = False  # the tree's get_unpriv_disabled() reads the kernel config (7.x)
    _probe: msg.ProbeReply | None = None
    _checked: bool = False

    @property
    def machine(self):
        return self.guest.machine

    def agent(self) -> AgentSession:
        agent = self.machine.guest.agent(libbpf=self.libbpf)
        if not self._checked:
            self._checked = True
            if self.libbpf is not None and not agent.hello.libbpf:
                self.notes.append(f"the guest could not load {self.libbpf} ({agent.hello.libbpf_error}): "
                                  "the guest's own libbpf is used instead")
                self.machine.guest.forget_agent(self.libbpf)
                self.libbpf = None
                agent = self.machine.guest.agent()
            self.libbpf_used = f"{agent.hello.libbpf} ({agent.hello.libbpf_version or '?'})"
        return agent

    def call(self, req: msg.Request[R], timeout: float = LOAD_TIMEOUT) -> R | msg.Failure:
        return self.agent().call(req, timeout=timeout)

    def request(self, op: str, timeout: float = LOAD_TIMEOUT, **args: Any) -> dict[str, Any]:
        """An untyped request (the kmsg writes of the console check)."""
        return self.agent().request(op, timeout=timeout, **args)

    def probe(self) -> msg.ProbeReply:
        if self._probe is None:
            res = self.call(msg.Probe(prog_flags={n: PROG_FLAGS[n] for n in TESTING_PROG_FLAGS},
                                      mitigations_config=self.mitigations_config, prog_name=TESTING_PROBE_NAME),
                            timeout=60)
            if isinstance(res, msg.Failure):
                raise GuestCommandError(f"the guest agent's probe failed: {res.error}")
            self._probe = res
        return self._probe

    def target(self) -> GuestTraits:
        p = self.probe()
        unaligned = p.efficient_unaligned_access
        return GuestTraits(arch=p.machine or "x86_64",
                      efficient_unaligned_access=unaligned if unaligned is not None else p.machine in (
                          "x86_64", "aarch64", "s390x", "ppc64le"),
                      unpriv_disabled=bool(p.unpriv_disabled_reason),
                      jit_enabled=p.jit_enabled)

    def unpriv_reason(self) -> str | None:
        return self.probe().unpriv_disabled_reason

    def testing_flags(self) -> int:
        """testing_prog_flags(): the TESTING_PROG_FLAGS the guest's kernel accepts."""
        accepted = self.probe().prog_flags
        return sum(PROG_FLAGS[n] for n in TESTING_PROG_FLAGS if accepted.get(n) is True)

    def push(self, obj: Path) -> str:
        return self.guest.files.push(obj)

    def load_modules(self, modules) -> None:
        """Load the test modules into this machine once (test_progs loads bpf_testmod.ko at start)."""
        loaded = self.guest.modules
        for ko in modules:
            if ko in loaded:
                continue
            res = self.call(msg.LoadModule(path=self.guest.files.push(ko, bpf=False)), timeout=120)
            if isinstance(res, msg.Failure):
                raise GuestCommandError(f"loading {ko.name} into the guest failed: {res.error}")
            loaded.add(ko)

    def forget_agent(self) -> None:
        self.machine.guest.forget_agent(self.libbpf)
        self._checked = False


_LIBBPF: dict[Path, tuple[str | None, tuple[str, ...]]] = {}


def libbpf_for(skeleton: Skeleton, cache_root: Path, *, remote: bool = False) -> tuple[str | None, tuple[str, ...]]:
    """The libbpf the agent runs on for `skeleton`'s tree: that tree's own tools/lib/bpf, built once into the cache
    (test_progs links the libbpf of its own tree; Debian's 1.1 cannot open some 6.12 objects and does not know
    newer section names). (None, notes) when it cannot be: a --target machine does not see the host's cache, or
    the build failed; the guest's own libbpf is used then."""
    tree = discovery_tree(skeleton)
    if remote:
        return None, (f"libbpf: the guest's own (a --target machine does not see {tree}'s libbpf build on this "
                      "host)",)
    if tree not in _LIBBPF:
        from harness.kernel.libbpf import build_libbpf

        try:
            built = build_libbpf(tree, CacheLayout(cache_root))
            _LIBBPF[tree] = (str(built.path), ())
        except HarnessError as e:
            _LIBBPF[tree] = (None, (f"libbpf: the guest's own, since {tree}'s tools/lib/bpf could not be built: "
                                    f"{str(e).splitlines()[0]}",))
    return _LIBBPF[tree]


def discovery_tree(skeleton: Skeleton) -> Path:
    """The kernel tree a skeleton's source is in (<tree>/tools/testing/selftests/bpf/progs/<name>.c)."""
    if skeleton.source is None:
        raise ValueError(f"{skeleton.name} has no source in a tree")
    return skeleton.source.parents[len((SELFTESTS / "progs").parts)]


def load_request(fs: FileSpecs, sub: Subtest, remote: str, testing_flags: int, min_log_level: int = 0, *,
                 btf_paths: dict[str, str] | None = None, mitigations_config: bool = False) -> msg.Load:
    """The agent's `load` arguments for one subtest: prepare_case() for the tested program (its log level and
    flags), the file's auxiliary programs of the mode beside it, the maps an unprivileged loader may not create
    left alone, test_progs' capability changes (less the __caps_unpriv ones given back), the custom BTF files
    (`btf_paths`: the tag's file name -> its path in the guest), the xlated/JITed dumps its __xlated/__jited
    need, and the skeleton's name for the object."""
    spec = sub.spec
    req: dict[str, Any] = {
        "path": remote, "programs": list(sub.autoload), "log_level": 0,
        "log_levels": {sub.prog_name: sub.log_level(min_log_level)}, "log_size": LOG_SIZE, "log_retry": False,
        "object_name": fs.name, "program_logs": True, "drop_caps": list(sub.drop_caps),
    }
    flags = spec.prog_flags(testing_flags)
    if flags:
        req["prog_flags"] = {sub.prog_name: flags}  # (built as the wire dict: the order of its keys is kept)
    sub_spec = spec.subspec(sub.mode)
    dump = [k for k, pats in (("xlated", sub_spec.xlated), ("jited", sub_spec.jited)) if pats]
    if dump:
        req["dump"] = {sub.prog_name: dump}
    for key, path in (("btf_custom_path", spec.btf_path), ("btf_func_path", spec.btf_func_path)):
        if path is not None:
            req[key] = (btf_paths or {}).get(path, path)
    if sub.mode == UNPRIV:
        req["unpriv"] = True
        req["mitigations_config"] = mitigations_config
        if sub.no_autocreate_maps:
            req["no_autocreate_maps"] = list(sub.no_autocreate_maps)
        if sub_spec.caps:
            req["keep_caps"] = [c for c in range(64) if sub_spec.caps >> c & 1]
    return msg.Load.from_dict(req)


def run_subtest(session: SelftestSession, fs: FileSpecs, sub: Subtest,
                evidence: KernelEvidence | None = None, *, min_log_level: int = 0) -> SubtestResult:
    """One subtest, judged by harness.selftests.judge (with `evidence` of what the kernel lacks). A lost machine or
    agent is an `error` (no verdict)."""
    t0 = time.monotonic()
    result = SubtestResult(fs.name, sub.name, sub.prog_name, sub.mode, ERROR, "not run")
    try:
        _run(session, fs, sub, result, evidence, min_log_level)
    except AgentExitedError as e:
        session.forget_agent()
        result.status, result.reason = ERROR, f"the guest agent died during this subtest (no verdict): {e}"
    except (GuestCommandError, LostVMError) as e:
        result.status, result.reason = ERROR, f"the guest did not answer (no verdict): {e}"
    result.seconds = time.monotonic() - t0
    return result


def _run(session: SelftestSession, fs: FileSpecs, sub: Subtest, result: SubtestResult,
         evidence: KernelEvidence | None, min_log_level: int = 0) -> None:
    spec = sub.spec
    if fs.obj is None:
        result.status, result.reason = ERROR, fs.error or "no object"
        return
    target = result.target = session.target()
    early = precheck(spec, sub.mode, target)
    if early is not None:
        if sub.mode == UNPRIV and early[0] == SKIP and target.unpriv_disabled:
            early = (SKIP, f"unprivileged subtest not run: {session.unpriv_reason()}")
        result.status, result.reason = early
        return
    btf_paths = {}
    for tag_path in (spec.btf_path, spec.btf_func_path):
        if tag_path is None:
            continue
        local = fs.btf_objects.get(tag_path)
        if local is None:
            result.status, result.reason = ERROR, (f"{tag_path} (__btf_path/__btf_func_path) was not built: "
                                                   f"{fs.btf_errors.get(tag_path, 'no source for it in progs/')}")
            return
        btf_paths[tag_path] = session.push(local)
    remote = session.push(fs.obj)
    reply = session.call(load_request(fs, sub, remote, session.testing_flags(), min_log_level,
                                      btf_paths=btf_paths, mitigations_config=session.mitigations_config))
    if isinstance(reply, msg.LoadReply) and reply.loaded and not reply.skipped:
        add_disassembly(reply.programs, fs.helpers)
    result.load = reply.to_dict()  # what the record keeps
    if isinstance(reply, msg.Failure):
        result.status, result.reason = judge(spec, sub.mode, reply, None, target=target, evidence=evidence)
        return
    if reply.skipped:
        result.status, result.reason = SKIP, f"unprivileged subtest not run: {reply.skipped}"
        return
    handle = reply.handle
    try:
        run: RunOutcome | None = None
        if reply.loaded and should_execute(spec, sub.mode, target) and not spec.exec_unsupported:
            if sub.pre_execution_error:
                result.status, result.reason = ERROR, (f"pre-execution callback {fs.skeleton.pre_execution}: "
                                                       f"{sub.pre_execution_error} (no verdict on the test run)")
                return
            ran = _test_run(session, fs, sub, reply)
            result.run = ran.to_dict()  # what the record keeps
            if isinstance(ran, msg.Failure):
                result.status, result.reason = run_failed(ran)
                return
            run = ran
        result.status, result.reason = judge(spec, sub.mode, reply, run, target=target, evidence=evidence)
    finally:
        if handle is not None:
            session.call(msg.Unload(handle=handle), timeout=60)


def add_disassembly(programs: list[dict[str, Any]], helpers: dict[int, str]) -> None:
    """The dumps the agent returned (a load reply's `programs` entries) as the text test_loader matches: xlated_text,
    jited_text (or jited_unsupported when the JIT image cannot be disassembled here: test_loader's "jited programs
    disassembly is not supported")."""
    from harness.selftests.disasm import xlated_text
    from harness.selftests.jitdisasm import JitDisasmError, jited_text

    for prog in programs or ():
        if "xlated_insns" in prog:
            prog["xlated_text"] = xlated_text(bytes.fromhex(prog["xlated_insns"]), helpers)
        if "jited_image" in prog:
            try:
                prog["jited_text"] = jited_text(bytes.fromhex(prog["jited_image"]), prog.get("jited_func_lens") or [])
            except JitDisasmError as e:
                prog["jited_unsupported"] = str(e)


SK_BUFF_SIZE, SK_BUFF_DATA_END = 192, 80  # struct __sk_buff (uapi): its size and data_end's offset


def _test_run(session: SelftestSession, fs: FileSpecs, sub: Subtest,
              load: msg.LoadReply) -> RunOutcome | msg.Failure:
    """run_subtest()'s test run: the struct_ops maps attached, the pre-execution callback's map writes,
    BPF_PROG_TEST_RUN (with a __sk_buff whose data_end is __linear_size's), then the streams __stderr/__stdout
    read. A step test_loader PRINT_FAILs on is `setup_error` in the result."""
    spec, handle = sub.spec, load.handle
    assert handle is not None
    if sub.struct_ops_maps:
        ops = session.call(msg.AttachStructOps(handle=handle, maps=list(sub.struct_ops_maps)), timeout=60)
        if isinstance(ops, msg.Failure):
            return ops
        if ops.failed:
            return RunOutcome(setup_error=f"bpf_map__attach_struct_ops failed for map {ops.failed}: err=-{ops.errno}")
    for write in sub.pre_execution:
        upd = session.call(msg.MapUpdate(handle=handle, map=write.map, key=write.key.hex(), value=write.value.hex()),
                           timeout=60)
        if isinstance(upd, msg.Failure):
            return upd
        if upd.errno:
            return RunOutcome(setup_error=f"pre_execution_cb failed: {upd.error}")
    ptype = next((p.get("type") for p in load.programs if p.get("name") == sub.prog_name), 0)
    ctx_in = None
    if spec.linear_size:
        ctx = bytearray(SK_BUFF_SIZE)
        ctx[SK_BUFF_DATA_END:SK_BUFF_DATA_END + 4] = spec.linear_size.to_bytes(4, "little", signed=True)
        ctx_in = ctx.hex()
    # test_loader restores what it dropped for an unprivileged subtest before the test run; what test_progs dropped
    # around the whole file (verifier.c: CAP_SYS_ADMIN) stays dropped.
    reply = session.call(msg.TestRun(handle=handle, program=sub.prog_name, empty=ptype == BPF_PROG_TYPE_SYSCALL,
                                     drop_caps=list(fs.skeleton.caps.disable), ctx_in=ctx_in), timeout=120)
    if isinstance(reply, msg.Failure) or reply.errno:
        return reply if isinstance(reply, msg.Failure) else RunOutcome(reply)
    sub_spec = spec.subspec(sub.mode)
    streams = {}
    for name, stream_id, patterns in (("stderr", 2, sub_spec.stderr), ("stdout", 1, sub_spec.stdout)):
        if patterns:
            res = session.call(msg.StreamRead(handle=handle, program=sub.prog_name, stream=stream_id), timeout=60)
            if isinstance(res, msg.Failure):
                return res
            streams[name] = StreamText(res.ret, res.text)
    return RunOutcome(reply, streams=streams)


def apply_console(result: SubtestResult, check, policy: str, props: list) -> None:
    """What the kernel console showed during the subtest (harness.cases.console_check.check_console), applied as to
    a case: a WARNING/BUG/Oops fails a subtest that passed (or skipped after loading), unless `policy` is "warn"; a
    console not read to the subtest's end gives a pass no verdict."""
    if check.findings:
        result.console = check.first
        props.append(("kernel console", check.details()))
        if check.console_log:
            props.append(("console log", str(check.console_log)))
        if policy == "warn":
            props.append(("warning", check.first + " (warn-only)"))
        elif result.status == PASS or (result.status == SKIP and result.load is not None):
            result.status, result.reason = FAIL, f"{check.first}\n{check.details()}"
    if check.unsure and result.status == PASS:
        result.status = ERROR
        result.reason = f"the kernel console could not be read to the end of the subtest ({check.unsure})"


def record(root: Path, fs: FileSpecs, sub: Subtest, result: SubtestResult) -> Path:
    """The agent's answers for one subtest as JSON (<root>/<file>/<n>.json, n its place in test_loader's order),
    and once per file what judging them needs besides (<root>/<file>/_file.json: harness.selftests.replay): what
    tests/unit/test_selftests_compare.py replays through the spec, match and judge code."""
    import json

    from harness.selftests.replay import file_record, subtest_record

    out = root / fs.name
    out.mkdir(parents=True, exist_ok=True)
    meta = out / "_file.json"
    if not meta.is_file():
        meta.write_text(json.dumps(file_record(fs), indent=1, sort_keys=True) + "\n")
    order = [(s.prog_name, s.mode) for s in fs.subtests()].index((sub.prog_name, sub.mode))
    path = out / f"{order:04d}.json"
    path.write_text(json.dumps(subtest_record(sub, result), indent=1, sort_keys=True) + "\n")
    return path
