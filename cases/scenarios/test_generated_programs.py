# SPDX-License-Identifier: GPL-2.0
"""Property: every generated BPF LSM program does in a real guest exactly what the reference model predicts.

Profiles (harness/gen/profiles.py): ci (default, derandomized) or --hypothesis-profile nightly.
A failure is shrunk by hypothesis and written to cases/found/<name>.bpf.c as a ready case file.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import example, given, note, seed

from harness.gen import profiles, strategy
from harness.plugin import harness_cache_root
from harness.settings import REPO_ROOT
from harness.status import Status

pytestmark = [pytest.mark.vm, pytest.mark.slow]

FOUND_ENV = "BPF_AUDIT_FOUND_DIR"


class LostVM(BaseException):
    """A guest lost twice in a row: no verdict on any program. A BaseException, so hypothesis does not take
    it for a failing example (nothing to shrink, no case file to write) and the test stops at once."""


@dataclass
class Failure:
    prog: object
    prediction: object
    observed: str
    report: str


def found_dir() -> Path:
    return Path(os.environ.get(FOUND_ENV) or REPO_ROOT / "cases" / "found")


def write_found_case(fail: Failure, where: Path, kernel: str, how: str) -> Path:
    from harness.gen import render

    where.mkdir(parents=True, exist_ok=True)
    path = where / f"{fail.prog.setup.name}.bpf.c"
    path.write_text(render.found_case(fail.prog, fail.prediction, fail.observed, fail.report, kernel, how))
    return path


def _observed(outcome) -> str:
    """What the kernel did, in one line for a case description: the summary, or the first problem in full
    (a record mismatch shows the record that was seen)."""
    problems = dict(outcome.details).get("problems") or dict(outcome.details).get("records")
    text = problems.split("\n\n")[0] if problems else outcome.summary
    if "records seen:" in text:  # the expectation is in the annotations already: show what came instead
        text = "emitted" + text.partition("records seen:")[2]
    text = " ".join(text.split())
    return text if len(text) <= 600 else text[:597] + "..."


def _read_records(outcome, kut) -> list:
    """The records the runner saved for one case (audit.log, as auditd writes its log)."""
    from harness.cases import audit

    path = outcome.files.get("audit records")
    if path is None:
        return []
    return audit.parse_log(Path(path).read_text(), kut.audit_types)


@dataclass
class Profile:
    """The hypothesis profile this run uses: its name, its settings and the seed (None: derandomized)."""

    name: str
    chosen: object
    rand_seed: int | None
    forced: int | None


def choose_profile(pytestconfig, capsys, request, cache: Path) -> Profile:
    """The profile and seed of this run, printed and kept as the test's JUnit properties."""
    name = profiles.selected_name(pytestconfig.getoption("hypothesis_profile", None))
    forced = pytestconfig.getoption("hypothesis_seed", None)
    chosen, rand_seed = profiles.selected(cache, name, forced)
    with capsys.disabled():
        extra = f", seed {rand_seed} (replay: --hypothesis-seed {rand_seed})" if rand_seed is not None else ""
        print(f"\n[property] hypothesis profile {name}: {chosen.max_examples} examples{extra}", flush=True)
    request.node.user_properties.append(("hypothesis_profile", name))
    if rand_seed is not None:
        request.node.user_properties.append(("hypothesis_seed", str(rand_seed)))
    return Profile(name, chosen, rand_seed, forced)


class PropertyRun:
    """One run of the property on this worker's machine: each program generated, compiled, run in the guest
    (again on a fresh guest when the guest is lost) and judged against the model; the failures and the figures."""

    def __init__(self, kernel_under_test, pool, case_log_root: Path, case_objects, gen_dir: Path, case_timeout: float,
                 capsys) -> None:
        self.kut = kernel_under_test
        self.pool = pool
        self.case_log_root = case_log_root
        self.case_objects = case_objects
        self.gen_dir = gen_dir
        self.case_timeout = case_timeout
        self.capsys = capsys
        self.session = None
        self.failures: list[Failure] = []
        self.stats = {"examples": 0, "accepted": 0, "compile_s": 0.0, "run_s": 0.0, "lost": 0}

    def use_machine(self) -> None:
        """This worker's machine and its runner state, shared with case items like the case_session fixture."""
        from harness.cases.session import GuestSession
        from harness.errors import LostVMError

        try:
            machine = self.pool.get()
        except LostVMError as e:
            raise LostVM(f"lost VM: {e}") from None
        sessions = self.pool.case_sessions
        if id(machine) not in sessions:
            sessions.clear()
            sessions[id(machine)] = GuestSession(machine)
        self.session = sessions[id(machine)]

    def run_case(self, case, obj, log_dir):
        from harness.cases import run as runner
        from harness.machine.pool import Watchdog

        machine = self.session.machine
        case_timeout = self.case_timeout
        watchdog = Watchdog(machine, case_timeout) if case_timeout > 0 else None
        try:
            outcome = runner.run_case(case, obj, self.kut, self.session, log_dir)
        except Exception as e:  # a guest killed mid-transfer fails in paramiko, not as a LostVMError
            if not (watchdog is not None and watchdog.fired) and machine.alive():
                raise
            outcome = runner.Outcome(Status.LOST, f"lost VM during {case.name}: {type(e).__name__}: {e}")
        finally:
            if watchdog is not None:
                watchdog.cancel()
        if outcome.status == Status.LOST and watchdog is not None and watchdog.fired:
            outcome.summary += f" (killed after --case-timeout={case_timeout:g}s)"
        return outcome

    def run_once(self, case, obj, log_dir):
        outcome = self.run_case(case, obj, log_dir)
        if outcome.status != Status.LOST:
            return outcome
        # a lost guest is infrastructure, not a verdict: boot a fresh one and run the program again
        self.stats["lost"] += 1
        with self.capsys.disabled():
            print(f"\n[property] {outcome.summary}; booting a fresh VM and running {case.name} again", flush=True)
        self.pool.discard(f"lost during the property ({case.name})")
        self.use_machine()
        outcome = self.run_case(case, obj, log_dir.with_name(log_dir.name + "-again"))
        if outcome.status == Status.LOST:
            self.pool.discard(f"lost twice during the property ({case.name})")
            raise LostVM(f"LOST VM twice in a row (not a verdict on the programs): {outcome.report()}")
        return outcome

    def check(self, prog) -> None:
        """One example: the program rendered as a case file, compiled, run and judged."""
        from harness.cases import compile as bpfobj
        from harness.cases.parse import parse_case_text
        from harness.gen import model, render

        pred = model.predict(prog)
        text = render.render(prog, pred)
        path = self.gen_dir / f"{prog.setup.name}.bpf.c"
        path.write_text(text)
        note(f"program:\n{prog.describe()}\nexpected: {pred.summary()}\ncase file: {path}")
        case = parse_case_text(text, path).programs[0]
        t0 = time.monotonic()
        compiled = bpfobj.compile_case(path, self.kut.vmlinux_h, self.case_objects)
        t1 = time.monotonic()
        assert compiled.ok and compiled.obj is not None, f"generated program does not compile:\n{compiled.stderr}"
        outcome = self.run_once(case, compiled.obj, self.case_log_root / "property" / prog.setup.name)
        self.stats["compile_s"] += t1 - t0
        self.stats["run_s"] += time.monotonic() - t1
        self.stats["examples"] += 1
        self.stats["accepted"] += pred.accepted
        self.judge(prog, pred, outcome, path)

    def judge(self, prog, pred, outcome, path: Path) -> None:
        """The kernel's outcome against the model's prediction, the records' field order included."""
        from harness.cases import run as runner
        from harness.gen import model

        if outcome.status == Status.PASS and pred.run is not None:
            problem = model.field_sequence_mismatch(pred.run, _read_records(outcome, self.kut))
            if problem:
                outcome = runner.Outcome(Status.FAIL, problem.split("\n", 1)[0], [("records", problem)], outcome.files)
        if outcome.status != Status.PASS:
            self.failures.append(Failure(prog, pred, _observed(outcome), outcome.report()))
            raise AssertionError(f"kernel and model disagree on {path}:\nexpected {pred.summary()}\n"
                                 f"{outcome.report()}")

    def report_failure(self, pytestconfig, profile: Profile) -> None:
        """The smallest failing program, written as a case file with the command that replays it."""
        args = [a for a in pytestconfig.invocation_params.args if not a.startswith("--hypothesis-")]
        rand_seed = profile.rand_seed
        opts = [f"--hypothesis-profile={profile.name}"] + ([f"--hypothesis-seed={rand_seed}"] if rand_seed else [])
        how = "pytest " + " ".join([*args, *opts])
        mutant = pytestconfig.getoption("--mutant", None)
        kernel = self.kut.release + (f" with mutant {mutant}" if mutant else "")
        # the shrunk example is replayed last; explicit examples all run: take the smallest, the latest on ties
        smallest = min(reversed(self.failures), key=lambda f: len(f.prog.ops))
        path = write_found_case(smallest, found_dir(), kernel, how)
        with self.capsys.disabled():
            print(f"\n[property] smallest failing program written to {path}\n{smallest.prog.describe()}",
                  flush=True)

    def report_stats(self, request, wall: float) -> None:
        """The run's figures, printed and kept as the test's JUnit property."""
        stats = self.stats
        summary = (f"{stats['examples']} programs ({stats['accepted']} predicted to load) in {wall:.0f} s: "
                   f"compile {stats['compile_s']:.0f} s, guest {stats['run_s']:.0f} s, lost VMs {stats['lost']}")
        request.node.user_properties.append(("property_stats", summary))
        with self.capsys.disabled():
            print(f"\n[property] {summary}", flush=True)


def property_test(run: PropertyRun, profile: Profile):
    """The run's check as a hypothesis test: the generated programs, every logger once as an explicit example,
    the profile's settings and seed."""

    def check(prog) -> None:  # a plain function, as hypothesis names it in a falsifying example: check(prog=...)
        run.check(prog)

    hooks = profiles.selected_hooks()
    test = given(strategy.programs(hooks=hooks))(check)
    for prog in reversed(strategy.EXPLICIT):  # every logger once, whatever the profile
        if hooks is None or prog.hook in hooks:
            test = example(prog)(test)
    test = profile.chosen(test)
    if profile.rand_seed is not None and profile.forced is None:  # a forced seed hypothesis applies itself
        test = seed(profile.rand_seed)(test)
    return test


def test_generated_programs_match_the_model(kernel_under_test, vm_pool, case_log_root, case_objects, pytestconfig,
                                            capsys, request):
    """One test, hundreds of programs: it takes the worker's machine from vm_pool itself (not the `vm` fixture,
    whose --case-timeout watchdog would kill the guest minutes into the run) and gives each program its own
    --case-timeout instead; a guest lost on one program is replaced and the program run again."""
    missing = kernel_under_test.features.missing("bpf_audit")
    if missing:
        pytest.skip(missing)
    cache = harness_cache_root(pytestconfig)
    profile = choose_profile(pytestconfig, capsys, request, cache)
    gen_dir = cache / "generated"
    gen_dir.mkdir(parents=True, exist_ok=True)
    run = PropertyRun(kernel_under_test, vm_pool, case_log_root, case_objects, gen_dir,
                      pytestconfig.getoption("--case-timeout", 0) or 0, capsys)
    run.use_machine()
    test = property_test(run, profile)
    t_start = time.monotonic()
    try:
        test()
    except LostVM as e:
        pytest.fail(str(e), pytrace=False)
    except BaseException:
        if run.failures:
            run.report_failure(pytestconfig, profile)
        raise
    finally:
        run.report_stats(request, time.monotonic() - t_start)
