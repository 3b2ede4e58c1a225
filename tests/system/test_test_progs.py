# SPDX-License-Identifier: GPL-2.0
"""The kernel tree's own test_progs for named prog_tests, for real on the default kernel: `selftests --test-progs`
(built once, a rerun builds nothing), prog_tests/*.c as pytest items (one per subtest, xdist workers too), and a VM
lost while test_progs runs (no verdict, exit 3, never a pass)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.errors import EXIT_HARNESS

pytestmark = [pytest.mark.vm, pytest.mark.slow]
PROG_TESTS = Path("tools/testing/selftests/bpf/prog_tests")


def _cli(cache: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", "selftests", "--cache-dir", str(cache), *args],
                          capture_output=True, text=True, timeout=1800)


def test_cli_runs_test_lsm_and_a_rerun_builds_nothing(kernel_artifact, kernel_options, tmp_path: Path) -> None:
    cache = kernel_options.layout().root
    runs = []
    for n in (1, 2):
        out = tmp_path / f"run{n}"
        res = _cli(cache, "--test-progs", "test_lsm", "--out", str(out), "--json", str(tmp_path / f"{n}.json"))
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        runs.append(json.loads((tmp_path / f"{n}.json").read_text()))
        assert "test_lsm/lsm_basic" in res.stdout and "subtests: 2: 2 passed, 0 failed" in res.stdout
        assert (out / "test_progs.log").is_file() and (out / "build.log").is_file()
    first, second = runs
    for run in runs:
        assert [(s["name"], s["status"]) for s in run["subtests"]] == [("test_lsm/lsm_basic", "passed"),
                                                                       ("test_lsm/lsm_tailcall", "passed")]
        assert run["exit_code"] == 0 and run["kernel"]["key"] == kernel_artifact.key
        counts = run["test_progs_json"]  # test_progs' own summary (7.x adds failed_subtest)
        assert {k: counts[k] for k in ("success", "success_subtest", "skipped", "failed")} == {
            "success": 1, "success_subtest": 2, "skipped": 0, "failed": 0}
        assert counts.get("failed_subtest", 0) == 0
        assert run["selectors"] == ["test_lsm"] and run["files"] == {"test_lsm.c": ["test_lsm"]}
    assert second["test_progs"]["cached"] and second["test_progs"]["key"] == first["test_progs"]["key"]
    assert second["test_progs"]["build_seconds"] < 10, second["test_progs"]  # tree hashing, no compiler


def test_prog_tests_files_are_pytest_items(kernel_artifact, kernel_options, tmp_path: Path) -> None:
    tree = Path(kernel_artifact.meta["tree"])
    files = [str(tree / PROG_TESTS / f) for f in ("test_lsm.c", "d_path.c")]
    junit = tmp_path / "junit.xml"
    res = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--harness-cache",
                          str(kernel_options.layout().root), "-n", "2", f"--junitxml={junit}", *files],
                         capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-3000:]
    cases = {(tc.get("classname"), tc.get("name")): tc for tc in ET.parse(junit).getroot().iter("testcase")}
    names = sorted(name for _cls, name in cases)
    # The oracle is each file's own subtests, as its source names them (7.3's d_path.c has one more than 6.12's).
    expected = sorted(f"{Path(f).stem}/{sub}" for f in files
                      for sub in re.findall(r'test__start_subtest\("([^"]+)"\)', Path(f).read_text()))
    assert {"d_path/basic", "test_lsm/lsm_basic", "test_lsm/lsm_tailcall"} <= set(expected)
    assert names == expected
    assert all(tc.find("failure") is None and tc.find("skipped") is None for tc in cases.values())
    props = {p.get("name"): p.get("value") for tc in cases.values() for p in tc.iter("property")}
    assert props["test"] in ("test_lsm", "d_path") and Path(props["test_progs log"]).is_file()
    assert f"test_progs: {len(expected)} passed, 0 failed, 0 skipped, 0 without a verdict" in res.stderr + res.stdout


BROKEN = """\
// SPDX-License-Identifier: GPL-2.0
/* A prog_tests file with a syntax error, written by tests/system/test_test_progs.py. */
#include <test_progs.h>
#include "lsm.skel.h"

void test_broken(void)
{
	struct lsm *skel = lsm__open_and_load();

	ASSERT_OK_PTR(skel, "load")
	lsm__destroy(skel);
}
"""


def test_a_file_that_does_not_compile_fails_alone(kernel_artifact, kernel_options, tmp_path: Path) -> None:
    """Its test is a failure with the compiler's message (the test's, not the harness's); the other file runs."""
    src = Path(kernel_artifact.meta["tree"])
    tree = tmp_path / "linux"  # what a test_progs build reads of a tree, hard-linked: tools/, disasm.[ch], bpf_doc.py
    tree.mkdir()
    subprocess.run(["cp", "-al", str(src / "tools"), str(tree / "tools")], check=True)
    for rel in ("kernel/bpf/disasm.c", "kernel/bpf/disasm.h", "scripts/bpf_doc.py"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).hardlink_to(src / rel)
    (tree / PROG_TESTS / "broken.c").write_text(BROKEN)
    junit = tmp_path / "junit.xml"
    res = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--harness-cache",
                          str(kernel_options.layout().root), f"--junitxml={junit}",
                          str(tree / PROG_TESTS / "broken.c"), str(tree / PROG_TESTS / "test_lsm.c")],
                         capture_output=True, text=True, timeout=1800)
    assert res.returncode == 1, res.stdout[-4000:] + res.stderr[-3000:]
    cases = {tc.get("name"): tc for tc in ET.parse(junit).getroot().iter("testcase")}
    assert sorted(cases) == ["broken", "test_lsm/lsm_basic", "test_lsm/lsm_tailcall"]
    failure = cases["broken"].find("failure")
    assert failure is not None and "prog_tests/broken.c does not build" in failure.get("message", "")
    assert "expected ‘;’ before ‘lsm__destroy’" in failure.text and "NO VERDICT" not in failure.text
    assert cases["test_lsm/lsm_basic"].find("failure") is None


def test_a_vm_lost_while_test_progs_runs_is_no_verdict(kernel_artifact, kernel_options, tmp_path: Path,
                                                       monkeypatch) -> None:
    """The guest is killed (QEMU SIGKILLed) while test_progs runs: every test it did not finish is an error."""
    from harness.campaigns import test_progs as campaign
    from harness.machine.pool import PoolConfig, VMPool
    from harness.selftests.testprogs import run as tp_run

    layout = kernel_options.layout()
    tree = Path(kernel_artifact.meta["tree"])
    slow = tp_run.shell_command
    monkeypatch.setattr(tp_run, "shell_command", lambda *a, **kw: "sleep 600; " + slow(*a, **kw))
    real_get = VMPool.get
    timers = []

    def get_then_kill_later(self):
        machine = real_get(self)
        timers.append(threading.Timer(25.0, machine.kill))  # after the push, while `sleep; test_progs` runs
        timers[-1].start()
        return machine

    monkeypatch.setattr(VMPool, "get", get_then_kill_later)
    pool = PoolConfig(kernel=kernel_artifact.bzimage, accel="auto", run_dir=tmp_path, state_dir=layout.state,
                      worker="lost")
    outcome = campaign.run_test_progs(tree, ["test_lsm"], kernel_artifact, layout, tmp_path / "out", pool)
    for t in timers:
        t.cancel()
    assert outcome.report is not None and outcome.count("passed") == 0
    [lost] = [v for v in outcome.verdicts if v.status == "error"]
    assert lost.name == "test_lsm" and lost.message.startswith("LOST VM: the VM was lost while test_progs ran")
    assert campaign.exit_code(outcome) == EXIT_HARNESS
    assert "NO VERDICT" not in campaign.format_table(outcome) and "ERROR" in campaign.format_table(outcome)
