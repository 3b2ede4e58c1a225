# SPDX-License-Identifier: GPL-2.0
"""Run one selftest subtest in a guest as test_loader's run_subtest() does: load with its plan, judge, test run."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import AgentExitedError, GuestCommandError, HarnessError, LostVMError
from harness.selftests.discover import SELFTESTS, Skeleton
from harness.selftests.evidence import KernelEvidence
from harness.selftests.judge import ERROR, SKIP, GuestTraits, judge, precheck, should_execute
from harness.selftests.spec import PROG_FLAGS, TESTING_PROG_FLAGS, UNPRIV
from harness.selftests.suite import FileSpecs, Subtest
from harness.settings import CacheLayout

BPF_PROG_TYPE_SYSCALL = 31  # test_loader runs it with empty test-run options
LOG_SIZE = 2 * 1024 * 1024  # TEST_LOADER_LOG_BUF_SZ: one buffer, no retry with a bigger one
LOAD_TIMEOUT = 600.0  # a verifier scale test at log level 2 under TCG takes minutes


@dataclass
class SubtestResult:
    """One subtest's verdict and what it was judged on."""

    file: str
    name: str
    program: str
    mode: str
    status: str  # judge's pass | fail | skip | error
    reason: str
    load: dict[str, Any] | None = None
    run: dict[str, Any] | None = None
    seconds: float = 0.0

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

    guest: Any  # harness.cases.run.GuestSession
    libbpf: str | None = None
    notes: list[str] = field(default_factory=list)
    libbpf_used: str = "(no agent started)"  # what the agent said it loaded: path (version)
    _probe: dict[str, Any] | None = None
    _checked: bool = False

    @property
    def machine(self):
        return self.guest.machine

    def agent(self):
        agent = self.machine.guest.agent(libbpf=self.libbpf)
        if not self._checked:
            self._checked = True
            if self.libbpf is not None and not agent.hello.get("libbpf"):
                self.notes.append(f"the guest could not load {self.libbpf} ({agent.hello.get('libbpf_error')}): "
                                  "the guest's own libbpf is used instead")
                self.machine.guest.forget_agent(self.libbpf)
                self.libbpf = None
                agent = self.machine.guest.agent()
            self.libbpf_used = f"{agent.hello.get('libbpf')} ({agent.hello.get('libbpf_version', '?')})"
        return agent

    def request(self, op: str, timeout: float = LOAD_TIMEOUT, **args: Any) -> dict[str, Any]:
        return self.agent().request(op, timeout=timeout, **args)

    def probe(self) -> dict[str, Any]:
        if self._probe is None:
            res = self.request("probe", timeout=60, prog_flags={n: PROG_FLAGS[n] for n in TESTING_PROG_FLAGS})
            if not res.get("ok"):
                raise GuestCommandError(f"the guest agent's probe failed: {res.get('error')}")
            self._probe = res
        return self._probe

    def target(self) -> GuestTraits:
        p = self.probe()
        unaligned = p.get("efficient_unaligned_access")
        return GuestTraits(arch=p.get("machine") or "x86_64",
                      efficient_unaligned_access=unaligned if unaligned is not None else p.get("machine") in (
                          "x86_64", "aarch64", "s390x", "ppc64le"),
                      unpriv_disabled=bool(p.get("unpriv_disabled_reason")))

    def unpriv_reason(self) -> str | None:
        return self.probe().get("unpriv_disabled_reason")

    def testing_flags(self) -> int:
        """testing_prog_flags(): the TESTING_PROG_FLAGS the guest's kernel accepts."""
        accepted = self.probe().get("prog_flags") or {}
        return sum(PROG_FLAGS[n] for n in TESTING_PROG_FLAGS if accepted.get(n) is True)

    def push(self, obj: Path) -> str:
        return self.guest.push(obj)

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


def load_request(fs: FileSpecs, sub: Subtest, remote: str, testing_flags: int,
                 min_log_level: int = 0) -> dict[str, Any]:
    """The agent's `load` arguments for one subtest: prepare_case() for the tested program (its log level and
    flags), the file's auxiliary programs of the mode beside it, the maps an unprivileged loader may not create
    left alone, test_progs' capability changes, and the skeleton's name for the object."""
    spec = sub.spec
    req: dict[str, Any] = {
        "path": remote, "programs": list(sub.autoload), "log_level": 0,
        "log_levels": {sub.prog_name: sub.log_level(min_log_level)}, "log_size": LOG_SIZE, "log_retry": False,
        "object_name": fs.name, "program_logs": True, "drop_caps": list(sub.drop_caps),
    }
    flags = spec.prog_flags(testing_flags)
    if flags:
        req["prog_flags"] = {sub.prog_name: flags}
    if sub.mode == UNPRIV:
        req["unpriv"] = True
        if sub.no_autocreate_maps:
            req["no_autocreate_maps"] = list(sub.no_autocreate_maps)
    return req


def run_subtest(session: SelftestSession, fs: FileSpecs, sub: Subtest,
                evidence: KernelEvidence | None = None) -> SubtestResult:
    """One subtest, judged by harness.selftests.judge (with `evidence` of what the kernel lacks). A lost machine or
    agent is an `error` (no verdict)."""
    t0 = time.monotonic()
    result = SubtestResult(fs.name, sub.name, sub.prog_name, sub.mode, ERROR, "not run")
    try:
        _run(session, fs, sub, result, evidence)
    except AgentExitedError as e:
        session.forget_agent()
        result.status, result.reason = ERROR, f"the guest agent died during this subtest (no verdict): {e}"
    except (GuestCommandError, LostVMError) as e:
        result.status, result.reason = ERROR, f"the guest did not answer (no verdict): {e}"
    result.seconds = time.monotonic() - t0
    return result


def _run(session: SelftestSession, fs: FileSpecs, sub: Subtest, result: SubtestResult,
         evidence: KernelEvidence | None) -> None:
    spec = sub.spec
    if fs.obj is None:
        result.status, result.reason = ERROR, fs.error or "no object"
        return
    target = session.target()
    early = precheck(spec, sub.mode, target)
    if early is not None:
        if sub.mode == UNPRIV and early[0] == SKIP and target.unpriv_disabled:
            early = (SKIP, f"unprivileged subtest not run: {session.unpriv_reason()}")
        result.status, result.reason = early
        return
    remote = session.push(fs.obj)
    load = session.request("load", **load_request(fs, sub, remote, session.testing_flags()))
    result.load = load
    if load.get("skipped"):
        result.status, result.reason = SKIP, f"unprivileged subtest not run: {load['skipped']}"
        return
    handle = load.get("handle")
    try:
        run = None
        if load.get("loaded") and should_execute(spec, sub.mode, target) and not spec.exec_unsupported:
            ptype = next((p.get("type") for p in load.get("programs") or () if p.get("name") == sub.prog_name), 0)
            # test_loader restores what it dropped for an unprivileged subtest before the test run; what
            # test_progs dropped around the whole file (verifier.c: CAP_SYS_ADMIN) stays dropped.
            run = session.request("test_run", timeout=120, handle=handle, program=sub.prog_name,
                                  empty=ptype == BPF_PROG_TYPE_SYSCALL, drop_caps=list(fs.skeleton.caps.disable))
            if not run.get("ok"):
                result.run = run
                result.status, result.reason = ERROR, f"the agent's test_run failed: {run.get('error')}"
                return
            result.run = run
        result.status, result.reason = judge(spec, sub.mode, load, run, target=target, evidence=evidence)
    finally:
        if handle is not None:
            session.request("unload", timeout=60, handle=handle)
