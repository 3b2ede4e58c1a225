# SPDX-License-Identifier: GPL-2.0
"""The harness's selftest verdicts against test_progs' own, on recorded runs of both on one kernel of each line
(tests/data/selftests-compare-<release>/, recorded by tests/data/capture/selftests-compare.py). The harness's side
is not a frozen status: every recorded agent answer goes through the spec, match and judge code again
(harness.selftests.replay), so a later change to that code that changes a verdict shows here."""

from __future__ import annotations

import lzma
import tarfile
from pathlib import Path

import pytest

from harness.selftests.dialect import LINUX_6_12, LINUX_7_3
from harness.selftests.replay import dialect_of, replay_dir
from harness.selftests.test_progs_log import compare, disagreements, parse, table

DATA = Path(__file__).resolve().parents[1] / "data"
# The recorded runs, each on its line's *-testmod kernel (bpf_testmod loaded for both test_progs and the harness):
# 6.12.118 (every RUN_TESTS file), 7.3.4 (70 files).
KERNELS = {"6.12.118": LINUX_6_12, "7.3.4": LINUX_7_3}

# Why the harness and test_progs may differ on a subtest. Each rule is narrow (what the harness said, what test_progs
# said, what the recorded spec holds); anything no rule explains fails the test.
NO_LLVM = ("the harness's test_progs is built without the LLVM disassembler (HAVE_LLVM_SUPPORT): test_loader skips a "
           "__jited subtest there (\"jited programs disassembly is not supported\"); the harness disassembles the "
           "JITed image with libLLVM and judges it")
NO_NETNS = ("prog_tests/sock_destroy.c reaches RUN_TESTS(sock_destroy_prog_fail) only after `ip netns add`, which "
            "the recorded kernel (no CONFIG_NET_NS) refused: test_progs never ran the subtest")
# Per file, for one recording: each names what in that run made test_progs say otherwise (checked in its log).
EXPLAINED_BY_FILE: dict[str, dict[str, str]] = {
    "6.12.118": {
        "cpumask_success": ("prog_tests/cpumask.c runs these two programs twice: first its own verify_success() on a "
                            "new task (failed: err 9, bpf_cpumask_set_cpu(1) on a guest without CPU 1), then "
                            "RUN_TESTS(cpumask_success) load-only (#3/26, #3/27: OK), the verdict the harness's subtest"
                            " is; the comparison pairs the first occurrence"),
        "sock_destroy_prog_fail": NO_NETNS,
    },
    "7.3.4": {
        "sock_destroy_prog_fail": NO_NETNS,
        "test_sleepable_tracepoints_fail": ("prog_tests/sleepable_tracepoints.c did not build for test_progs: its other"
                                            " program, progs/test_sleepable_tracepoints.c, needs struct "
                                            "syscall_trace_enter, which the recorded kernel's BTF lacks (no "
                                            "CONFIG_FTRACE_SYSCALLS), so test_progs never reached its "
                                            "RUN_TESTS(test_sleepable_tracepoints_fail); the harness compiles that "
                                            "file alone"),
    },
}


def explain(row, harness: dict, meta: dict, release: str) -> str | None:
    """Why one disagreement is expected, or None."""
    tags = meta["programs"][harness["program"]]["tags"] or []
    if row.test_progs == "skipped" and any("test_jited" in t for t in tags):
        return NO_LLVM
    return EXPLAINED_BY_FILE[release].get(row.file)


def recorded(release: str) -> Path:
    """The recorded run of one kernel: a directory, unpacked once from its .tar.xz."""
    base = DATA / f"selftests-compare-{release}"
    agent = base / "agent"
    archive = base / "agent.tar.xz"
    if not agent.is_dir() and archive.is_file():
        with lzma.open(archive) as xz, tarfile.open(fileobj=xz) as tar:
            tar.extractall(base, filter="data")
    return base


def replayed(release: str):
    base = recorded(release)
    if not (base / "agent").is_dir():
        pytest.skip(f"no recorded run for {release} in {base}")
    files: dict[str, dict] = {}
    tests: dict[str, str] = {}
    metas = {}
    for meta, rows in replay_dir(base / "agent"):
        files[meta["file"]] = {"subtests": rows}
        tests[meta["file"]] = meta["test"]
        metas[meta["file"]] = meta
    log = parse((base / "test_progs.log").read_text(errors="replace"))
    return files, tests, metas, log


@pytest.mark.parametrize("release", sorted(KERNELS))
def test_the_recording_is_of_that_tree_and_large_enough(release: str) -> None:
    files, tests, metas, log = replayed(release)
    assert len(files) >= 60, f"{release}: only {len(files)} files recorded"
    assert {dialect_of(m["dialect"]) for m in metas.values()} == {KERNELS[release]}
    assert log.summary is not None
    kinds = {k for m in metas.values() for p in m["programs"].values() for t in (p["tags"] or ())
             for k in ("xlated", "jited", "btf_path") if k in t}
    assert kinds == {"xlated", "jited", "btf_path"}, kinds
    assert any(m["file"] in ("verifier_array_access", "verifier_value_ptr_arith") for m in metas.values())


@pytest.mark.parametrize("release", sorted(KERNELS))
def test_the_replayed_verdicts_are_the_recorded_runs(release: str) -> None:
    """The judge on the recorded answers gives what the run gave (a change of the harness's code since the
    recording shows here first)."""
    files, *_ = replayed(release)
    changed = [f"{f}: {r['name']}: recorded {r['recorded']}, replayed {r['status']} ({r['reason'][:200]})"
               for f, d in files.items() for r in d["subtests"] if r["status"] != r["recorded"]]
    assert not changed, "\n".join(changed[:30])


@pytest.mark.parametrize("release", sorted(KERNELS))
def test_every_subtest_agrees_with_test_progs_or_is_explained(release: str) -> None:
    files, tests, metas, log = replayed(release)
    rows, _ = compare(log, files, tests)
    by_name: dict[tuple[str, str, int], dict] = {}
    for f, d in files.items():
        seen: dict[str, int] = {}
        for h in d["subtests"]:
            n = seen.get(h["name"], 0)
            seen[h["name"]] = n + 1
            by_name[(f, h["name"], n)] = h
    explained = {r.key: why for r in disagreements(rows)
                 if (why := explain(r, by_name[r.key], metas[r.file], release)) is not None}
    unexplained = [f"{r.file}: {r.subtest!r} (#{r.occurrence}): harness {r.harness}, test_progs {r.test_progs}"
                   for r in disagreements(rows) if r.key not in explained]
    assert not unexplained, f"{len(unexplained)} unexplained:\n" + "\n".join(unexplained[:60])
    stale = [f for f in EXPLAINED_BY_FILE[release] if not any(r.file == f for r in disagreements(rows))]
    assert not stale, f"stale explanations: {stale}"
    summary = table(rows, explained)
    assert sum(r["disagree_unexplained"] for r in summary) == 0
