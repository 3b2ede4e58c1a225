# SPDX-License-Identifier: GPL-2.0
"""harness.campaigns.selftests: an inner run's JUnit file as the per-file table and JSON summary, the known
differences list (counted apart, never a pass; a stale entry is said), exit codes, and the CLI's usage errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import USAGE, cli
from selftests_tree import BPF, make_tree

from harness.campaigns.results import parse_junit
from harness.campaigns.selftests import (
    KNOWN_DIFFERENCES,
    KnownDifference,
    SelftestsRun,
    exit_code,
    format_table,
    inner_argv,
    load_known_differences,
    summarize,
)
from harness.errors import EXIT_FAILED, EXIT_HARNESS, EXIT_OK, UsageError
from harness.settings import CACHE_ENV, FORBID_ENV


def tc(file: str, subtest: str, mode: str, body: str = "", status: str = "", time: float = 0.5) -> str:
    props = [("nodeid", f"progs/{file}.c::{subtest}"), ("selftest_file", file), ("subtest", subtest),
             ("mode", mode)]
    if status:
        props.append(("status", status))
    xml_props = "".join(f'<property name="{k}" value="{v}"/>' for k, v in props)
    return (f'<testcase classname="progs.{file}.c" name="{subtest}" time="{time}"><properties>{xml_props}'
            f"</properties>{body}</testcase>")


FAIL = '<failure message="verifier_a/bad: unexpected_load_failure: errno 22">details</failure>'
SKIP = '<skipped message="unsupported: __xlated (needs the xlated program\'s disassembly)">x</skipped>'
NO_VERDICT = '<failure message="NO VERDICT (a harness or machine problem): the guest agent died">x</failure>'
JUNIT = ('<testsuites><testsuite name="pytest" time="12.5">'
         + tc("verifier_a", "good", "priv")
         + tc("verifier_a", "good @unpriv", "unpriv")
         + tc("verifier_a", "bad", "priv", FAIL)
         + tc("verifier_a", "xl", "priv", SKIP)
         + tc("verifier_b", "known", "priv", FAIL)
         + tc("verifier_b", "dead", "priv", NO_VERDICT, status="no verdict")
         + tc("verifier_b", "listed but passes", "priv")
         + '<testcase classname="" name="progs/verifier_c.c"><error message="collection failure">'
           "Traceback\nValueError: broken BTF</error></testcase>"
         + "</testsuite></testsuites>")
KNOWN = [KnownDifference("verifier_b", "known", "needs CONFIG_X, which kernel-config/ leaves out"),
         KnownDifference("verifier_b", "listed but passes", "was broken once")]


def test_outcomes_by_file_with_known_differences_apart() -> None:
    s = summarize(parse_junit(JUNIT), ["verifier_a", "verifier_b", "verifier_c", "verifier_d"], KNOWN,
                  {"seconds": 13.0, "workers": 2})
    j = s.to_json()
    assert (j["passed"], j["failed"], j["skipped"], j["errors"], j["known_differences"]) == (3, 1, 1, 3, 1)
    assert j["privileged"] == {"subtests": 6, "passed": 2, "pass_rate": 0.3333, "failed": 1, "skipped": 1,
                               "error": 1, "known_difference": 1}
    assert j["files"]["verifier_a"]["passed"] == 2 and j["files"]["verifier_a"]["skip_reasons"] == {
        "unsupported: __xlated": 1}
    known = next(t for t in j["files"]["verifier_b"]["subtests"] if t["name"] == "known")
    assert known["status"] == "known_difference" and known["reason"].startswith("needs CONFIG_X")
    assert j["files"]["verifier_c"]["error"] == 1  # a collection error is the harness's: no verdict
    assert "broken BTF" in j["files"]["verifier_c"]["subtests"][0]["reason"]
    assert j["files"]["verifier_d"]["error"] == 1  # nothing came back for it
    assert j["stale_known_differences"] == [{"file": "verifier_b", "subtest": "listed but passes",
                                             "reason": "was broken once"}]
    table = format_table(s)
    assert table.splitlines()[0].split()[:6] == ["FILE", "PASS", "FAIL", "SKIP", "KNOWN", "ERR"]
    assert "verifier_a: bad: verifier_a/bad: unexpected_load_failure" in table
    assert "privileged: 2/6 passed (33.3%)" in table and "listed as a known difference but passed" in table
    assert exit_code(s) == EXIT_FAILED
    json.dumps(j)  # serializable


def test_exit_codes() -> None:
    only_errors = ('<testsuites><testsuite>' + tc("f", "a", "priv") +
                   tc("f", "b", "priv", NO_VERDICT, status="no verdict") + "</testsuite></testsuites>")
    assert exit_code(summarize(parse_junit(only_errors), ["f"])) == EXIT_HARNESS
    clean = '<testsuites><testsuite>' + tc("f", "a", "priv") + tc("f", "b", "priv", SKIP) + \
        "</testsuite></testsuites>"
    assert exit_code(summarize(parse_junit(clean), ["f"])) == EXIT_OK
    known_only = '<testsuites><testsuite>' + tc("verifier_b", "known", "priv", FAIL) + \
        "</testsuite></testsuites>"
    assert exit_code(summarize(parse_junit(known_only), ["verifier_b"], KNOWN)) == EXIT_OK


def test_known_differences_file(tmp_path: Path) -> None:
    path = tmp_path / "kd.toml"
    path.write_text('[[difference]]\nfile = "a"\nsubtest = "*"\nreason = """needs\n  X"""\n')
    assert load_known_differences(path) == [KnownDifference("a", "*", "needs X")]
    assert KnownDifference("a", "*", "r").matches("a", "anything @unpriv")
    for bad in ('[[difference]]\nfile = "a"\nsubtest = "b"\n', '[[difference]]\nfile = "a"\nsubtest = "b"\n'
                'reason = "r"\nextra = 1\n', "not toml ["):
        path.write_text(bad)
        with pytest.raises(UsageError):
            load_known_differences(path)
    with pytest.raises(UsageError):
        load_known_differences(tmp_path / "missing.toml")
    for k in load_known_differences(KNOWN_DIFFERENCES):  # the repository's own list: every entry explained
        assert len(k.reason) > 40, k


def test_inner_argv_keeps_a_files_subtests_on_one_worker(tmp_path: Path) -> None:
    run = SelftestsRun(tmp_path, (tmp_path / BPF / "progs/a.c",), tmp_path / "out", workers=2,
                       kernel_src=str(tmp_path), extra_pytest=("-x",))
    argv = inner_argv(run, tmp_path / "out/junit.xml")
    assert argv[argv.index("--dist") + 1] == "loadfile" and argv[argv.index("-n") + 1] == "2"
    assert argv[argv.index("--rootdir") + 1] == str(tmp_path / BPF) and argv[-1] == "-x"
    assert argv[argv.index("--kernel-src") + 1] == str(tmp_path)
    assert "-n" not in inner_argv(SelftestsRun(tmp_path, (), tmp_path, workers=1), tmp_path / "j.xml")


@pytest.mark.parametrize("args", [["--vmlinux-h", "x.h"], ["-n", "0"], ["not_in_the_set"],
                                  ["--known-differences", "missing.toml"]])
def test_run_usage_errors(tmp_path: Path, args: list[str]) -> None:
    tree = make_tree(tmp_path)
    env = {**os.environ, FORBID_ENV: "build,boot", CACHE_ENV: str(tmp_path / "cache")}
    res = cli("selftests", "--kernel-src", str(tree), *args, env=env)
    assert res.returncode == USAGE, res.stderr
