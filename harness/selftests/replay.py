# SPDX-License-Identifier: GPL-2.0
"""Recorded agent answers replayed through the spec, match and judge code: what the test_progs comparison runs."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from harness.machine.messages import msg
from harness.selftests.dialect import Dialect
from harness.selftests.evidence import KernelEvidence
from harness.selftests.judge import ERROR, FAIL, PASS, SKIP, GuestTraits, RunOutcome, judge, precheck, run_failed
from harness.selftests.spec import Reason, TestSpec, parse_spec
from harness.selftests.test_progs_log import name_of_test
from harness.status import Status

DERIVED = ("xlated_text", "jited_text", "jited_unsupported")  # computed from the dumps: never recorded
_NOT_FOUND = re.compile(r"failed to create|not found in kernel")
LIBBPF_TAIL = 20


def _reasons(reasons) -> list[list[str]]:
    return [[r.feature, r.detail] for r in reasons]


def file_record(fs) -> dict[str, Any]:
    """Of a FileSpecs: the dialect its tree's test_loader has, every program's decl tags as its BTF holds them (and
    the harness's own reasons it cannot run it), the helper names, the subtests in order and the test that runs
    them in test_progs."""
    from harness.btf import FUNC
    from harness.selftests.elf import BpfObject
    from harness.selftests.suite import prog_type_of

    obj = BpfObject.read(fs.obj)
    btf = obj.btf
    programs = {}
    for prog, spec in zip(obj.programs, fs.specs, strict=True):
        func = btf.find(prog.name, FUNC) if btf is not None else None
        programs[prog.name] = {"section": prog.section, "prog_type": prog_type_of(prog.sec_name),
                               "tags": (btf.decl_tags(func.id) if btf is not None and func is not None
                                        else None),
                               "unsupported": _reasons(spec.unsupported),
                               "exec_unsupported": _reasons(spec.exec_unsupported)}
    return {"file": fs.name, "test": name_of_test(fs.skeleton.test), "group": fs.skeleton.group,
            "dialect": {**dataclasses.asdict(fs.dialect), "tags": sorted(fs.dialect.tags)},
            "helpers": {str(k): v for k, v in fs.helpers.items()},
            "programs": programs, "pre_execution_error": fs.pre_execution_error,
            "subtests": [[s.prog_name, s.mode, s.name, list(s.autoload[1:])] for s in fs.subtests()]}


def _trim_load(load: Mapping[str, Any] | None, program: str) -> dict[str, Any] | None:
    """A load answer without what judging never reads: other programs' verifier logs, the derived texts, the
    middle of libbpf's log (its map-creation and ksym lines, and its last lines, are kept)."""
    if load is None:
        return None
    out = {k: v for k, v in load.items() if k not in ("elapsed", "id")}
    progs = []
    for p in load.get("programs") or ():
        q = {k: v for k, v in p.items() if k not in DERIVED}
        if q.get("name") != program:
            q.pop("verifier_log", None)
        progs.append(q)
    out["programs"] = progs
    lines = list(load.get("libbpf_log") or [])
    out["libbpf_log"] = [x for x in lines[:-LIBBPF_TAIL] if _NOT_FOUND.search(str(x))] + lines[-LIBBPF_TAIL:]
    if out.get("loaded"):
        out.pop("verifier_log", None)  # the program's own entry holds it
    return out


def load_reply(record: Mapping[str, Any]) -> msg.LoadReply | msg.Failure:
    """A recorded load answer as the agent's reply again, with what _trim_load left out that the reply class
    requires restored: the request's id (None), and the top-level verifier_log of a loaded object ("": its program's
    own entry holds it). ProtocolError when anything else it requires is missing."""
    data = json.loads(json.dumps(record))  # add_disassembly adds to its programs: never to the record's
    data.setdefault("id", None)
    if data.get("ok") is not False:
        data.setdefault("verifier_log", "")
    reply = msg.parse_reply("load", data)
    assert isinstance(reply, (msg.LoadReply, msg.Failure))
    return reply


def run_outcome(record: Mapping[str, Any]) -> RunOutcome | msg.Failure:
    """A recorded test run as harness.selftests.run had it: the agent's failure, or what the judge reads."""
    if record.get("ok") is False:
        return msg.Failure.from_dict(dict(record))
    return RunOutcome.from_dict(record)


def subtest_record(sub, result) -> dict[str, Any]:
    return {"file": sub.file, "subtest": sub.name, "program": sub.prog_name, "mode": sub.mode,
            "status": result.status, "reason": result.reason, "console": result.console,
            "target": None if result.target is None else dataclasses.asdict(result.target),
            "load": _trim_load(result.load, sub.prog_name), "run": result.run}


def dialect_of(record: Mapping[str, Any]) -> Dialect:
    d = dict(record)
    return Dialect(d["name"], d["encoding"], frozenset(d["tags"]), tuple(d["arches"]),
                   tuple(tuple(x) for x in d["retval_names"]), d["pointer_value"], d.get("mitigations_config", False),
                   d.get("subtest_desc", False))


def spec_of(meta: Mapping[str, Any], program: str, auxiliaries: list[str], mode: str) -> TestSpec:
    """A subtest's spec as the harness builds it (harness.selftests.suite), from the recorded tags: parsed by the
    spec code with the tree's dialect, with the recorded reasons (its own and its auxiliary programs')."""
    dialect = dialect_of(meta["dialect"])
    p = meta["programs"][program]
    spec = parse_spec(p["tags"], program, section=p["section"], dialect=dialect, prog_type=p["prog_type"]) \
        if p["tags"] is not None else TestSpec(program, p["section"], program, modes=(), error="no FUNC in the BTF")
    spec = spec.with_unsupported(*(Reason(*r) for r in p["unsupported"]))
    spec = spec.with_unsupported(*(Reason(*r) for r in p["exec_unsupported"]), execution=True)
    for aux in auxiliaries:
        a = meta["programs"][aux]
        spec = spec.with_unsupported(*(Reason(f, f"auxiliary program {aux}: {d or f}") for f, d in a["unsupported"]))
    return spec


def replay_subtest(meta: Mapping[str, Any], rec: Mapping[str, Any], auxiliaries: list[str],
                   evidence: KernelEvidence | None = None) -> tuple[Status, str]:
    """The verdict the harness's code gives on a recorded subtest: the precheck, or the judge on the recorded load
    and test run with the disassembly made again from the recorded dumps (harness.selftests.run.add_disassembly)."""
    from harness.selftests.run import add_disassembly

    spec = spec_of(meta, rec["program"], auxiliaries, rec["mode"])
    target = GuestTraits(**rec["target"]) if rec.get("target") else GuestTraits()
    if rec.get("load") is None:
        early = precheck(spec, rec["mode"], target)
        return early if early is not None else (Status(rec["status"]), rec["reason"])  # no load: the machine's answer
    try:
        load = load_reply(rec["load"])
        run = None if rec.get("run") is None else run_outcome(rec["run"])
    except msg.ProtocolError as e:
        return ERROR, f"the recorded answer is not the agent's: {e}"
    if isinstance(load, msg.LoadReply) and load.skipped:
        return SKIP, f"unprivileged subtest not run: {load.skipped}"
    if isinstance(load, msg.LoadReply) and load.loaded:
        add_disassembly(load.programs, {int(k): v for k, v in meta["helpers"].items()})
    if isinstance(run, msg.Failure):
        return run_failed(run)
    status, reason = judge(spec, rec["mode"], load, run, target=target, evidence=evidence)
    if rec.get("console") and status in (PASS, SKIP):
        return FAIL, rec["console"]
    return status, reason


def replay_dir(root: Path, evidence: KernelEvidence | None = None) -> Iterator[tuple[dict, list[dict]]]:
    """Each recorded file: its _file.json and its subtests' verdicts, replayed ({"name", "status", "reason",
    "recorded": the status the run gave}) in test_loader's order."""
    for d in sorted(p for p in Path(root).iterdir() if (p / "_file.json").is_file()):
        meta = json.loads((d / "_file.json").read_text())
        aux = {(prog, mode): a for prog, mode, _name, a in meta["subtests"]}
        rows = []
        for path in sorted(d.glob("[0-9]*.json")):
            rec = json.loads(path.read_text())
            status, reason = replay_subtest(meta, rec, aux.get((rec["program"], rec["mode"]), []), evidence)
            rows.append({"name": rec["subtest"], "status": status.past, "reason": reason,
                         "recorded": Status(rec["status"]).past, "program": rec["program"],
                         "mode": rec["mode"]})
        yield meta, rows
