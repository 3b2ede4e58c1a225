# SPDX-License-Identifier: GPL-2.0
"""Run one case program in a guest: load, (attach, trigger, capture audit), judge; return an Outcome."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from harness.cases import audit, expect, verifier_log
from harness.cases.annotations import NO_CREATE_ACTIONS
from harness.cases.auditd_log import to_auditd_log
from harness.cases.console_check import check_console
from harness.cases.features import KernelFeatures
from harness.cases.model import CaseProgram
from harness.cases.needs import BTF, COMPILER, LSM, NEEDS
from harness.cases.session import GuestSession, call
from harness.cases.window import Capture, read_window
from harness.errors import AgentExitedError, GuestCommandError, LostVMError
from harness.machine.messages import msg
from harness.status import Status

# How long a case's trigger may run in the guest (the agent kills it then; its default would be 10 s).
TRIGGER_SECONDS = 30.0


@dataclass(frozen=True)
class KernelUnderTest:
    """What the runner needs to know about the kernel: features, audit type names, where its files are."""

    release: str
    features: KernelFeatures
    audit_types: dict[int, str]
    vmlinux_h: Path
    type_tags: bool  # the BPF compiler emits btf_type_tag


@dataclass
class Outcome:
    status: Status  # PASS | FAIL | SKIP | LOST (the VM or its agent) | ERROR (no verdict: e.g. records lost)
    summary: str
    details: list[tuple[str, str]] = field(default_factory=list)  # (title, text) report sections
    files: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # reported, not failing (e.g. --console-findings=warn)

    def report(self) -> str:
        parts = [self.summary]
        for title, text in self.details:
            parts.append(f"--- {title} ---\n{text.rstrip()}")
        for name, path in self.files.items():
            parts.append(f"{name}: {path}")
        return "\n".join(parts)


def skip_reason(prog: CaseProgram, kut: KernelUnderTest, active_lsms: tuple[str, ...]) -> str | None:
    """Why `prog` cannot run on this kernel (its first __needs the kernel, its LSMs or the compiler lack), or None."""
    for name in prog.needs:
        evidence = NEEDS[name].evidence if name in NEEDS else BTF
        if evidence == COMPILER:
            if not kut.type_tags:
                return "compiler drops btf_type_tag (__kptr needs clang >= 15; install clang-19)"
        elif evidence == LSM:
            if "bpf" not in active_lsms:
                return f"BPF LSM not active (active LSMs: {','.join(active_lsms) or 'none'})"
        else:
            reason = kut.features.missing(name)
            if reason:
                return reason
    return None


CONSOLE_POLICIES = ("fail", "warn")


def run_case(prog: CaseProgram, obj: Path, kut: KernelUnderTest, session: GuestSession, log_dir: Path,
             console_policy: str = "fail") -> Outcome:
    """Run one case. A kernel report (WARNING:, BUG:, ...) on the console fails a case that otherwise passed,
    unless `console_policy` is "warn": then it stays passed and the report is in `details` (and `warnings`)."""
    reason = skip_reason(prog, kut, session.lsms() if "bpf_lsm" in prog.needs else ())
    if reason:
        return Outcome(Status.SKIP, reason)
    log_dir.mkdir(parents=True, exist_ok=True)
    console_start = len(session.machine.console_text()) if hasattr(session.machine, "console_text") else 0
    try:
        outcome = _run(prog, obj, kut, session, log_dir)
    except AgentExitedError as e:
        silent = "its VM exited" if not session.machine.alive() else unanswered(session.machine)
        if silent is None:  # the guest is fine: its agent died
            return Outcome(Status.LOST, f"lost the guest agent during {prog.name}: {e}\n{_guest_view(session)}",
                           files={"console log": session.machine.console_log}
                           if getattr(session.machine, "console_log", None) else {})
        # The whole guest went (a panic, a killed QEMU, a dead sshd): its console says why.
        lost = session.machine.lost(f"{e}; then {silent}")
        return Outcome(Status.LOST, f"lost VM during {prog.name}: {lost}",
                       files={"console log": lost.console_log} if lost.console_log else {})
    except (GuestCommandError, LostVMError) as e:
        if isinstance(e, LostVMError) or not session.machine.alive() or not answers(session.machine):
            # The machine's own report carries the console findings (panic excerpt) and the console log path.
            lost = e if isinstance(e, LostVMError) and e.console_log else session.machine.lost(str(e))
            return Outcome(Status.LOST, f"lost VM during {prog.name}: {lost}",
                           files={"console log": lost.console_log} if lost.console_log else {})
        raise
    _add_console_findings(outcome, session, console_start, log_dir, console_policy)
    return outcome


def keep_program(prog: CaseProgram, obj: Path, session: GuestSession, pin_dir: str) -> list[str]:
    """For a VM kept for inspection after `prog` failed: load the program again from the same object and pin it
    under `pin_dir` (bpffs), so it stays loaded when the agent is gone. The case's own load was unloaded before
    the verdict (its op=UNLOAD audit record ends the case's window), so this is a second load of the same code.
    Returns what was done, for the report."""
    remote = session.files.push(obj)
    pin = f"{pin_dir}/{prog.name}"
    session.link.shell(f"mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf; mkdir -p {shlex.quote(pin_dir)} && "
                  f"rm -f {shlex.quote(pin)}")
    load = call(session, msg.Load(path=remote, programs=[prog.name], log_level=1))
    if isinstance(load, msg.Failure) or not load.loaded or load.handle is None:
        return [f"{prog.name} does not load (errno {load.errno}), so nothing is pinned; its object is "
                f"{remote} in the guest (e.g. `bpftool prog load {remote} /sys/fs/bpf/x` shows the verifier's "
                "answer)"]
    try:
        res = call(session, msg.Pin(handle=load.handle, program=prog.name, path=pin))
    finally:
        session.link.unload(load.handle)  # the pin holds the program now
    if isinstance(res, msg.Failure):
        return [f"{prog.name} was loaded again but could not be pinned: {res.error}"]
    prog_id = load.program_id(prog.name)
    return [f"{prog.name} loaded again from {remote} and pinned at {pin} (prog id {prog_id}; not attached): "
            f"`bpftool prog show pinned {pin}`; `rm {pin}` unloads it"]


def _guest_view(session: GuestSession) -> str:
    """What the guest says about an agent that died under it (the kernel's last lines: an OOM kill, a BUG)."""
    try:
        res = session.machine.guest.run("dmesg | tail -n 15", timeout=20)
    except (LostVMError, GuestCommandError) as e:
        return f"the guest did not answer either: {e}"
    return "the guest's last kernel messages:\n" + res.stdout.rstrip()


def answers(machine, timeout: float = 20.0) -> bool:
    """Whether the machine still runs a command (over a new connection if the old one died)."""
    return unanswered(machine, timeout) is None


def unanswered(machine, timeout: float = 20.0) -> str | None:
    """None if the machine still runs a command (over a new connection if the old one died), else why not."""
    if getattr(machine, "guest", None) is None:
        return "it has no connection"
    return machine.guest.unanswered(timeout)


def _add_console_findings(outcome: Outcome, session: GuestSession, start: int, log_dir: Path,
                          policy: str = "fail") -> None:
    if not hasattr(session.machine, "console_text"):
        return
    check = check_console(session, start)
    if check.findings:
        found = check.findings
        outcome.details.append(("kernel console during the case", check.details()))
        outcome.files["console log"] = session.machine.console_log
        if policy == "warn":
            outcome.warnings.append(f"kernel reported {found[0].kind} during the case (warn-only): "
                                    f"{found[0].first_line}\n{found[0].excerpt[-2000:]}")
        elif outcome.status is Status.PASS:
            outcome.status = Status.FAIL
            outcome.summary = f"kernel reported {found[0].kind} during the case: {found[0].first_line}"
    if check.unsure and outcome.status is Status.PASS:
        # The console was not read to the case's end: a report still in flight would be missed here and land on
        # the next case. A pass cannot be given on that.
        outcome.status = Status.ERROR
        outcome.summary = f"no verdict: the kernel console could not be read to the end of the case ({check.unsure})"
        outcome.files["console log"] = session.machine.console_log


def _run(prog: CaseProgram, obj: Path, kut: KernelUnderTest, session: GuestSession, log_dir: Path) -> Outcome:
    remote = session.files.push(obj)
    if not prog.load_only:
        session.audit.ensure()
        _prepare_paths(prog, session)
    start = msg.AuditMarkReply(id=None, ok=True, mark=0, overruns=0, lost=0)  # load-only: no window is read
    if session.audit.ready:
        start = session.agent.must(msg.AuditMark(), timeout=120)
    load = call(session, msg.Load(path=remote, programs=[prog.name], log_level=1, drop_caps=list(prog.drop_caps)))
    if isinstance(load, msg.Failure):
        return Outcome(Status.FAIL, f"the agent could not run the load: {load.error}")
    logs = _save_logs(load, log_dir)
    if prog.expect == "failure":
        return _judge_rejection(prog, load, logs, kut.release)
    if not load.loaded or load.handle is None:
        return Outcome(Status.FAIL, f"expected {prog.name} to load; the kernel rejected it (errno {load.errno}): "
                       f"{verifier_log.last_error(load.verifier_log)}",
                       [("verifier log (tail)", _tail(load.verifier_log))], logs)
    handle = load.handle
    prog_id = load.program_id(prog.name)
    if prog.load_only:
        session.link.unload(handle)
        return Outcome(Status.PASS, f"{prog.name} loaded (prog id {prog_id})", files=logs)
    try:
        return _run_loaded(prog, kut, session, handle, prog_id, start, logs, log_dir)
    finally:
        session.link.unload(handle)


def _judge_rejection(prog: CaseProgram, load: msg.LoadReply, logs: dict[str, Path], release: str) -> Outcome:
    if load.loaded:
        ids = [p["id"] for p in load.programs if p.get("id")]
        return Outcome(Status.FAIL, f"expected the verifier to reject {prog.name}, but it loaded (prog ids {ids})",
                       files=logs)
    chosen = prog.messages_for(release)
    if not chosen:  # only conditional messages, and the release has no version to choose by
        return Outcome(Status.ERROR, f"cannot tell which of {prog.name}'s messages kernel {release!r} must print: its "
                       "release has no major.minor version", [("messages", "\n".join(m.describe()
                                                                                     for m in prog.messages))], logs)
    vlog = load.verifier_log
    libbpf = "\n".join(load.libbpf_log)
    if not vlog.strip():
        return Outcome(Status.FAIL, f"the load failed before the verifier ran (errno {load.errno}): a "
                       "rejection is judged by the verifier's log, and there is none",
                       [("libbpf log", libbpf or "(empty)")], logs)
    expected = "\n".join(m.describe() for m in chosen)
    if any(m.conditional for m in prog.messages):
        expected += f"\n(chosen for kernel {release}; the case names: " + "; ".join(
            m.describe() for m in prog.messages) + ")"
    for log_name, text in (("libbpf", libbpf), ("verifier", vlog)):
        wanted = tuple(m.text for m in chosen if m.log == log_name)
        if not wanted:
            continue
        result = verifier_log.match_messages(text, wanted)
        if not result.ok:
            return Outcome(Status.FAIL, f"rejected (errno {load.errno}) but the {log_name} log lacks the "
                           "expected message(s)",
                           [("expected", expected), (f"{log_name} log vs expectation", result.explain())], logs)
    msgs = ", ".join(m.describe() for m in chosen)
    return Outcome(Status.PASS, f"rejected (errno {load.errno}) with {msgs}", files=logs)


def _prepare_paths(prog: CaseProgram, session: GuestSession) -> None:
    trig = prog.trigger
    if trig is None or trig.action in NO_CREATE_ACTIONS:
        return
    path = trig.get("path")
    if path:
        parent = str(PurePosixPath(path).parent)
        quoted = shlex.quote(path)
        session.link.shell(f"mkdir -p {shlex.quote(parent)} && {{ [ -e {quoted} ] || : > {quoted}; }}")


def _trigger_request(prog: CaseProgram) -> msg.Trigger:
    trig = prog.trigger
    assert trig is not None
    args = trig.as_dict()
    if trig.action == "shell":
        return msg.Trigger(shell=args["cmd"], timeout=TRIGGER_SECONDS)
    params: dict = {}
    renamed = {"sig": "signal", "name": "hostname"}
    for key, value in args.items():
        params[renamed.get(key, key)] = int(value, 0) if key in _INT_ARGS and _is_int(value) else value
    known = {k: params.pop(k) for k in ("comm", "drop_caps", "cwd", "input") if k in params}
    return msg.Trigger(action=trig.action, timeout=TRIGGER_SECONDS, extra=params, **known)


_INT_ARGS = frozenset({"port", "bind_port", "cmd", "arg", "size", "sig", "thread"})


def _is_int(text: str) -> bool:
    try:
        int(text, 0)
        return True
    except ValueError:
        return False


def _run_loaded(prog: CaseProgram, kut: KernelUnderTest, session: GuestSession, handle: int, prog_id: int,
                start: msg.AuditMarkReply, logs: dict[str, Path], log_dir: Path) -> Outcome:
    attach = call(session, msg.Attach(handle=handle, program=prog.name))
    if isinstance(attach, msg.Failure):
        return Outcome(Status.FAIL, f"attach of {prog.name} failed (errno {attach.errno}): {attach.error}",
                       [("libbpf log", "\n".join(attach.extra.get("libbpf_log", [])))], logs)
    variables = {"prog_id": str(prog_id)}
    trig: msg.TriggerReply | None = None
    was_enabled = None
    if prog.audit_disabled:
        status = session.agent.must(msg.AuditStatusRequest(), 120)
        was_enabled = 1 if status.enabled is None else status.enabled
        call(session, msg.AuditSet(enabled=0))
    try:
        if prog.trigger is not None:
            res = call(session, _trigger_request(prog))
            if isinstance(res, msg.Failure):
                return Outcome(Status.FAIL, f"the agent could not run the trigger {prog.trigger.action}: "
                               f"{res.error}", [("trigger request", repr(_trigger_request(prog).to_dict()))], logs)
            trig = res
    finally:
        if not session.link.interrupted():
            if was_enabled is not None:
                call(session, msg.AuditSet(enabled=was_enabled))
            call(session, msg.Detach(link=attach.link))
    trig_res = trig.to_dict() if trig is not None else {}
    if trig is not None:
        variables.update(pid=str(trig.pid), comm=str(trig.comm or ""))
        for key in ("target_pid", "ino"):
            if key in trig.extra:
                variables[key] = str(trig.extra[key])
    capture = _records_until_unload(session, start, prog_id, handle)
    records = audit.parse_records(capture.records, kut.audit_types)
    rec_file = log_dir / "audit.log"  # auditd's format: `ausearch -if audit.log -i` reads it
    rec_file.write_text(to_auditd_log(records))
    logs["audit records"] = rec_file
    incomplete = capture.problem()
    if incomplete:  # an expectation met (or a record "absent") in a window that lost records proves nothing
        return Outcome(Status.ERROR, f"audit capture incomplete, not a verdict on the case: {incomplete}",
                       [("trigger", _brief(trig_res))] if trig_res else [], logs)
    problems = []
    if prog.expect_errno is not None and (trig.errno if trig else None) != prog.expect_errno:
        problems.append(f"trigger errno {trig.errno if trig else None} ({trig.strerror or '' if trig else ''}), "
                        f"expected {prog.expect_errno}")
    if trig is not None and trig.timed_out:
        problems.append("the trigger timed out")
    if prog.trigger is not None and prog.trigger.get("thread") == "1" and not (
            trig and trig.tid and trig.tid != trig.pid):
        problems.append(f"thread=1, but the trigger's syscall did not run in a second thread "
                        f"(pid {trig and trig.pid}, tid {trig and trig.tid}): the case would prove nothing")
    verdict = expect.judge(records, prog.expect_records, prog.expect_no_records, variables)
    problems.extend(verdict.problems)
    details = [("trigger", _brief(trig_res))] if trig_res else []
    if problems:
        return Outcome(Status.FAIL, problems[0].split("\n", 1)[0], details + [("problems", "\n".join(problems))], logs)
    return Outcome(Status.PASS, f"{len(prog.expect_records)} record expectation(s) met", details, logs)


def _records_until_unload(session: GuestSession, start: msg.AuditMarkReply, prog_id: int, handle: int) -> Capture:
    """Records since the mark in `start`, waiting (bounded) for the program's AUDIT_BPF op=UNLOAD to arrive, with
    the loss counters over the same window."""
    session.link.unload(handle)
    return read_window(session.agent, start, f"prog-id={prog_id} op=UNLOAD")


def _save_logs(load: msg.LoadReply, log_dir: Path) -> dict[str, Path]:
    files = {}
    vlog = log_dir / "verifier.log"
    vlog.write_text(load.verifier_log)
    files["verifier log"] = vlog
    llog = log_dir / "libbpf.log"
    llog.write_text("\n".join(load.libbpf_log) + "\n")
    files["libbpf log"] = llog
    return files


def _tail(text: str, n: int = 25) -> str:
    return "\n".join(text.splitlines()[-n:])


def _brief(res: dict) -> str:
    keys = ("action", "pid", "tid", "comm", "rc", "errno", "strerror", "step", "timed_out", "target_pid", "ino",
            "stdout", "stderr")
    return ", ".join(f"{k}={res[k]!r}" for k in keys if k in res and res[k] not in ("", None))

