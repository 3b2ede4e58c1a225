# SPDX-License-Identifier: GPL-2.0
"""test_loader's verdict on one subtest, from what the guest agent's `load` op (and a test run) returned."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.machine.messages import msg
from harness.selftests.evidence import KernelEvidence
from harness.selftests.match import match_in_order
from harness.selftests.spec import JITED_MODE, PRIV, PROG_FLAGS, UNPRIV, TestSpec
from harness.status import Status

PASS, FAIL, SKIP, ERROR = Status.PASS, Status.FAIL, Status.SKIP, Status.ERROR  # test_loader's verdicts
LOG_TAIL = 2000  # characters of the verifier log a failure's reason quotes
ANY_ALIGNMENT = PROG_FLAGS["BPF_F_ANY_ALIGNMENT"]


@dataclass(frozen=True)
class GuestTraits:
    """What test_loader asks of the machine it runs on (the guest): its arch (for __arch_*), whether it has
    CONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS (else BPF_F_ANY_ALIGNMENT programs are neither run unprivileged nor
    executed), whether test_loader would run unprivileged subtests (get_unpriv_disabled(): the sysctl and
    mitigations=off on the command line) and whether the BPF JIT is on (__load_if_JITed)."""

    arch: str = "x86_64"
    efficient_unaligned_access: bool = True
    unpriv_disabled: bool = False
    jit_enabled: bool = True


X86_64 = GuestTraits()


@dataclass(frozen=True)
class StreamText:
    """What reading a program's stderr or stdout stream gave: bytes read (or -errno), and the text."""

    ret: int
    text: str


@dataclass(frozen=True)
class RunOutcome:
    """run_subtest()'s test run as the judge reads it: the step before BPF_PROG_TEST_RUN that test_loader PRINT_FAILs
    on (`setup_error`: the struct_ops attach or the pre-execution callback's map write), else the agent's `test_run`
    reply and the streams read after it ("stderr"/"stdout", only those the subtest matches)."""

    reply: msg.TestRunReply | None = None
    setup_error: str | None = None
    streams: Mapping[str, StreamText] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """As the record keeps it: {"setup_error": ...}, or the reply's fields with "streams" when any was read."""
        if self.reply is None:
            return {"setup_error": self.setup_error}
        out = self.reply.to_dict()
        if self.streams:
            out["streams"] = {name: {"ret": s.ret, "text": s.text} for name, s in self.streams.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunOutcome:
        """The inverse of to_dict(); ProtocolError when the reply lacks a field (a missing retval is no 0)."""
        if "setup_error" in data:
            return cls(setup_error=data["setup_error"])
        streams = {name: StreamText(s["ret"], s["text"]) for name, s in (data.get("streams") or {}).items()}
        return cls(reply=msg.TestRunReply.from_dict({k: v for k, v in data.items() if k != "streams"}),
                   streams=streams)


def run_failed(failure: msg.Failure) -> tuple[Status, str]:
    """No verdict when the agent could not do the test run or a step before it (its answer was ok: false)."""
    return ERROR, f"the agent's test run failed: {failure.error}"


def precheck(spec: TestSpec, mode: str, target: GuestTraits = X86_64) -> tuple[Status, str] | None:
    """The verdict before anything is loaded, or None when the subtest must be loaded: an invalid spec fails, a tag
    the tree's test_loader does not parse is no verdict, a program for another arch or runtime (__load_if_JITed),
    an unpriv subtest the target cannot run and an unsupported feature skip."""
    if not spec.valid:
        return FAIL, f"can't parse test spec for program '{spec.prog_name}': {spec.error}"
    if mode not in spec.subtests:
        raise ValueError(f"{spec.prog_name} has no {mode} subtest (its subtests: {', '.join(spec.subtests) or 'none'})")
    if spec.unknown_tags:
        return ERROR, (f"unknown tag{'s' if len(spec.unknown_tags) > 1 else ''} "
                       f"{', '.join(repr(t) for t in spec.unknown_tags)}: the tree's test_loader "
                       f"({spec.dialect or 'unknown'}) does not parse {'them' if len(spec.unknown_tags) > 1 else 'it'},"
                       " so the harness cannot say what the subtest expects")
    if not spec.runs_on(target.arch):
        return SKIP, f"for {', '.join(spec.arches)} only (__arch_*), not {target.arch}"
    if spec.load_mode is not None and (spec.load_mode == JITED_MODE) != target.jit_enabled:
        return SKIP, f"__load_if_{'JITed' if spec.load_mode == JITED_MODE else 'no_JITed'}: the BPF JIT is " \
                     f"{'off' if target.jit_enabled is False else 'on'} here"
    if mode == UNPRIV:
        if target.unpriv_disabled:
            return SKIP, "unprivileged BPF is disabled (kernel.unprivileged_bpf_disabled)"
        if spec.prog_flags() & ANY_ALIGNMENT and not target.efficient_unaligned_access:
            return SKIP, "BPF_F_ANY_ALIGNMENT without efficient unaligned access: not run unprivileged"
    reasons = spec.unsupported_reasons(mode)
    if reasons:
        return SKIP, "unsupported: " + "; ".join(map(str, reasons))
    return None


def program_log(load: msg.LoadReply, prog_name: str) -> str:
    """The verifier log of `prog_name`, the only log test_loader matches (its own log buffer): its entry in
    `programs` when the load asked for program_logs, else the top-level verifier_log when that is its log (the
    failing program's, or on success the first autoloaded program's, which is it when it loads alone)."""
    for prog in load.programs or ():
        if prog.get("name") == prog_name and "verifier_log" in prog:
            return prog.get("verifier_log") or ""
    log = load.verifier_log or ""
    if not load.loaded:
        return log if load.failed_program in (None, prog_name) else ""
    autoloaded = [p.get("name") for p in load.programs or () if p.get("autoload", True)]
    return log if not autoloaded or autoloaded[0] == prog_name else ""


def judge(spec: TestSpec, mode: str, load: msg.LoadReply | msg.Failure | None,
          run: RunOutcome | None = None, *, target: GuestTraits = X86_64,
          evidence: KernelEvidence | None = None) -> tuple[Status, str]:
    """run_subtest()'s verdict: (status, reason), status one of pass, fail, skip, error.

    `load` is the agent's `load` reply for the file's object with this program and the file's auxiliary programs
    of this mode autoloaded (see guests/README.md); `run`, for a subtest that executes (__retval), is the test
    run's outcome (the BPF_PROG_TEST_RUN reply). Without one, a subtest that should execute is no verdict (its
    load verdict alone is no pass).

    A load libbpf gave up on before the verifier saw the program (a map it could not create, a ksym it did not find)
    is a skip only when `evidence` shows the kernel lacks that (the map type absent from its BTF's enum or its config,
    the kfunc absent from its BTF), naming it; otherwise it is judged as test_loader judges it."""
    early = precheck(spec, mode, target)
    if early is not None:
        return early
    sub = spec.subspec(mode)
    if load is None:
        return ERROR, "no load result"
    if isinstance(load, msg.Failure):
        return ERROR, f"the agent's load failed: {load.error or 'no error message'}"
    verdict = _judge_load(spec, mode, load, evidence) or _judge_dumps(spec, mode, load)
    if verdict is not None:
        return verdict
    if should_execute(spec, mode, target):
        return _judge_run(spec, mode, run)
    return PASS, "load failed as expected" if sub.expect_failure else "loaded as expected"


def _judge_load(spec: TestSpec, mode: str, load: msg.LoadReply,
                evidence: KernelEvidence | None) -> tuple[Status, str] | None:
    """The load's part of run_subtest(), in test_loader's order: the agent's or libbpf's failure to open, what
    the kernel provably lacks, the load's success against __failure/__success, then __msg. None: the load is as
    expected."""
    sub = spec.subspec(mode)
    if load.stage == "open":
        return ERROR, f"libbpf could not open the object: {_last_lines(load.libbpf_log)}"
    loaded = bool(load.loaded)
    missing = None if loaded or evidence is None else evidence.explain_load_failure(
        _lines(load.libbpf_log), load.maps or ())
    if missing:  # the object never reached the verifier, and the kernel provably lacks what it needs
        return SKIP, "the kernel lacks what the object needs: " + "; ".join(missing)
    log = program_log(load, spec.prog_name)
    if sub.expect_failure and loaded:
        return FAIL, "unexpected_load_success: the verifier accepted a program expected to fail"
    if not sub.expect_failure and not loaded:
        who = load.failed_program
        other = f" (program {who} failed)" if who and who != spec.prog_name else ""
        return FAIL, (f"unexpected_load_failure: errno {load.errno}{other}\n"
                      f"{_tail(log) or _last_lines(load.libbpf_log)}")
    miss = match_in_order(log, sub.msgs)
    if miss is not None:
        return FAIL, f"expect_msg\n{miss.describe(sub.msgs)}\nVERIFIER LOG:\n{_tail(log)}"
    return None


def _judge_dumps(spec: TestSpec, mode: str, load: msg.LoadReply) -> tuple[Status, str] | None:
    """__xlated then __jited against the loaded program's disassembly. None: both match (or none is asked)."""
    sub = spec.subspec(mode)
    loaded = bool(load.loaded)
    prog: Mapping[str, Any] = next((p for p in load.programs or () if p.get("name") == spec.prog_name), {})
    for key, patterns in (("xlated", sub.xlated), ("jited", sub.jited)):
        if not patterns:
            continue
        if not loaded:
            return FAIL, f"get_{key}_program_text: the program is not loaded, there is nothing to dump"
        if key == "jited" and prog.get("jited_unsupported"):
            return SKIP, f"jited programs disassembly is not supported here ({prog['jited_unsupported']})"
        if prog.get(f"{key}_error"):
            return FAIL, f"get_{key}_program_text: {prog[f'{key}_error']}"
        text = prog.get(f"{key}_text")
        if text is None:
            return ERROR, f"__{key}: the program's {key} disassembly was not fetched"
        miss = match_in_order(text, patterns)
        if miss is not None:
            return FAIL, f"expect_{key}\n{miss.describe(patterns)}\n{key.upper()}:\n{_tail(text)}"
    return None


def _lines(text: Any) -> list[str]:
    return [str(x) for x in text] if isinstance(text, (list, tuple)) else str(text or "").splitlines()


_KINDS = (("Unexpected retval", "retval"), ("Unexpected bpf_prog_test_run error", "test_run"),
          ("can't parse test spec", "invalid_spec"), ("kernel reported", "console"))


def failure_kind(reason: str) -> str:
    """The kind of a failure the judge reported (what a known difference names as its `outcome`): the first word
    of its reason (unexpected_load_success, unexpected_load_failure, expect_msg, expect_xlated, ...) or the kind
    test_loader's own wording stands for (retval, test_run, invalid_spec, console)."""
    for prefix, kind in _KINDS:
        if reason.startswith(prefix):
            return kind
    word = reason.split(":", 1)[0].split("\n", 1)[0].strip()
    return word if word.replace("_", "").isalpha() and " " not in word else "other"


def should_execute(spec: TestSpec, mode: str, target: GuestTraits = X86_64) -> bool:
    """should_do_test_run(): a __retval subtest that is expected to load, unless BPF_F_ANY_ALIGNMENT on a
    machine without efficient unaligned access."""
    sub = spec.subspec(mode)
    if not sub.execute or sub.expect_failure:
        return False
    return not (spec.prog_flags() & ANY_ALIGNMENT and not target.efficient_unaligned_access)


def _judge_run(spec: TestSpec, mode: str, run: RunOutcome | None) -> tuple[Status, str]:
    """The test run's part of run_subtest(): the struct_ops maps attached and the pre-execution callback run first
    (`setup_error`: one failed), BPF_PROG_TEST_RUN, its return value, then the program's stderr and stdout streams
    (`streams`) against __stderr/__stdout."""
    sub = spec.subspec(mode)
    reasons = spec.exec_unsupported
    if reasons:
        return SKIP, "loaded as expected; unsupported for __retval: " + "; ".join(map(str, reasons))
    if run is None:
        return ERROR, f"loaded as expected; __retval({sub.retval}) needs BPF_PROG_TEST_RUN, which was not run"
    if run.reply is None:
        return FAIL, str(run.setup_error)
    if run.reply.errno:
        return FAIL, f"Unexpected bpf_prog_test_run error: errno {run.reply.errno}"
    if not isinstance(run.reply.retval, int):
        return ERROR, f"the test run's result has no retval: {run.reply.to_dict()}"
    got = to_int32(run.reply.retval)
    if got != sub.retval and not sub.any_retval:
        return FAIL, f"Unexpected retval: {got} != {sub.retval}"
    for name, patterns in (("stderr", sub.stderr), ("stdout", sub.stdout)):
        if not patterns:
            continue
        stream = run.streams.get(name)
        if stream is None:
            return ERROR, f"__{name}: the program's {name} stream was not read"
        if stream.ret <= 0:
            return FAIL, f"expect_{name}: reading the {name} stream gave {stream.ret} (nothing to match)"
        miss = match_in_order(stream.text or "", patterns)
        if miss is not None:
            return FAIL, f"expect_{name}\n{miss.describe(patterns)}\n{name.upper()}:\n{_tail(stream.text)}"
    return PASS, f"loaded as expected, retval {got}"


def to_int32(value: int) -> int:
    """A test run's return value as test_loader compares it: a C int."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _tail(log: str) -> str:
    return log if len(log) <= LOG_TAIL else "..." + log[-LOG_TAIL:]


def _last_lines(lines: Any, count: int = 8) -> str:
    if isinstance(lines, str):
        lines = lines.splitlines()
    return "\n".join(list(lines or [])[-count:])


__all__ = ["ERROR", "FAIL", "PASS", "PRIV", "SKIP", "UNPRIV", "GuestTraits", "RunOutcome", "StreamText", "judge",
           "precheck", "program_log", "run_failed", "should_execute"]
