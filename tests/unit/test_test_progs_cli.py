# SPDX-License-Identifier: GPL-2.0
"""`selftests --test-progs`: options refused before anything is built (exit 2, real CLI processes), and the table,
JSON and exit code of a campaign judged from a recorded run (tests/data/testprogs-6.12.118-*)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import USAGE, cli, one_paragraph_error

from harness.campaigns.test_progs import Outcome, exit_code, format_table
from harness.errors import EXIT_FAILED, EXIT_HARNESS, EXIT_OK
from harness.selftests.testprogs.collect import is_prog_tests_file, prog_tests_source
from harness.selftests.testprogs.results import judge
from harness.settings import CACHE_ENV, FORBID_ENV
from harness.status import Status

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.mark.parametrize("args, says", [
    (["--test-progs", "test_lsm", "--test-progs-verbose", "--list"], "--test-progs-verbose is for a run"),
    (["--test-progs", "test_lsm", "--timeout", "0"], "--timeout must be in (0, 3600]"),
    (["--test-progs", "test_lsm", "--timeout", "7200"], "--timeout must be in (0, 3600]"),
    (["--test-progs", "test_lsm", "--vmlinux-h", "/dev/null"], "--vmlinux-h is for the RUN_TESTS --list"),
    (["verifier_and", "--test-progs", "test_lsm"], "name RUN_TESTS files or --test-progs tests, not both"),
])
def test_bad_combinations_are_usage_errors(tmp_path: Path, args: list[str], says: str) -> None:
    env = {**os.environ, FORBID_ENV: "build,boot", CACHE_ENV: str(tmp_path / "cache")}
    message = one_paragraph_error(cli("selftests", *args, env=env), "usage", USAGE)
    assert says in message


def outcome(scenario: str, **kw) -> Outcome:
    d = DATA / f"testprogs-6.12.118-{scenario}"
    run = json.loads((d / "run.json").read_text())
    js = d / "test_progs.json"
    o = Outcome(Path("/linux"), tuple(run["tests"]), d, {f"{t}.c": [t] for t in run["tests"]}, tuple(run["tests"]),
                **kw)
    o.report = judge((d / "test_progs.log").read_text(), js.read_text() if js.is_file() else None, run["exit_code"],
                     run["tests"])
    return o


def test_the_table_lists_every_subtest_and_the_totals() -> None:
    o = outcome("mixed")
    o.meta["kernel"] = {"release": "6.12.118", "key": "k"}
    table = format_table(o)
    lines = table.splitlines()
    assert lines[0].split() == ["TEST/SUBTEST", "RESULT", "MESSAGE"]
    assert any(ln.split()[:2] == ["task_local_storage/exit_creds", "FAIL"] and "test_exit_creds:FAIL:" in ln
               for ln in lines)
    assert any(ln.split()[:2] == ["task_local_storage/nodeadlock", "skip"] for ln in lines)
    row = next(ln for ln in lines if ln.startswith("task_local_storage ") and ln.rstrip().endswith(".c"))
    assert row.split() == ["task_local_storage", "2", "1", "1", "0", "task_local_storage.c"]
    assert "subtests: 10: 8 passed, 1 failed, 1 skipped, 0 errors (no verdict)" in table
    assert exit_code(o) == EXIT_FAILED
    js = o.to_json()
    assert (js["passed"], js["failed"], js["skipped"], js["errors"]) == (8, 1, 1, 0)
    assert js["test_progs_json"] == {"success": 3, "success_subtest": 7, "skipped": 1, "failed": 1}
    assert js["subtests"][6]["log"][2].startswith("test_exit_creds:FAIL:sync_rcu")


def test_exit_codes_pass_fail_and_no_verdict() -> None:
    assert exit_code(outcome("test_lsm")) == EXIT_OK
    assert exit_code(outcome("crash")) == EXIT_FAILED  # the crashed test is test_progs' own FAIL
    lost = Outcome(Path("/linux"), ("test_lsm",), Path("/out"), error="LOST VM (no verdict): boot", error_stage="vm")
    assert exit_code(lost) == EXIT_HARNESS and lost.to_json()["errors"] == 1
    assert format_table(lost).startswith("NO VERDICT (vm): LOST VM")


def test_prog_tests_files_are_recognised(tmp_path: Path) -> None:
    d = tmp_path / "linux/tools/testing/selftests/bpf/prog_tests"
    d.mkdir(parents=True)
    (d / "test_lsm.c").write_text("void test_test_lsm(void)\n{\n}\n")
    (d / "helpers.c").write_text("int helper(void) { return 0; }\n")
    (tmp_path / "prog_tests").mkdir()
    (tmp_path / "prog_tests/x.c").write_text("void test_x(void) {}\n")
    assert is_prog_tests_file(d / "test_lsm.c") and prog_tests_source(d / "test_lsm.c") == (tmp_path / "linux",
                                                                                           "test_lsm")
    assert not is_prog_tests_file(d / "helpers.c")  # defines no test
    assert not is_prog_tests_file(tmp_path / "prog_tests/x.c")  # not in a kernel tree's selftests


def test_a_file_that_does_not_build_fails_each_of_its_tests() -> None:
    from harness.campaigns.test_progs import build_failures

    why = "does not compile:\nx.c: In function 'test_a':\nx.c:7:9: error: expected ';' before 'y'\n$ gcc ..."
    out = build_failures({"x.c": ["a", "b"], "ok.c": ["c"]}, {"x.c": why})
    assert [(v.name, v.status) for v in out] == [("a", Status.FAIL), ("b", Status.FAIL)]
    assert out[0].message == "prog_tests/x.c does not build: x.c:7:9: error: expected ';' before 'y'"
    assert out[0].log == tuple(why.splitlines())
    o = Outcome(Path("/linux"), ("x", "ok"), Path("/out"), {"x.c": ["a", "b"], "ok.c": ["c"]})
    from harness.selftests.testprogs.results import Report
    o.report = Report(tuple(out), None)
    assert exit_code(o) == EXIT_FAILED  # the test's failure, not "no verdict"
