# SPDX-License-Identifier: GPL-2.0
"""harness.campaigns.selftests: an inner run's JUnit file as the per-file table and JSON summary, the known
differences list (counted apart, never a pass; a stale entry is said), exit codes, and the CLI's usage errors."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from helpers import USAGE, cli
from selftests_tree import BPF, make_tree

from harness.campaigns.known_differences import KNOWN_DIFFERENCES, KnownDifference, load_known_differences
from harness.campaigns.results import parse_junit
from harness.campaigns.selftests import SelftestsRun, exit_code, format_table, inner_argv, summarize
from harness.errors import EXIT_FAILED, EXIT_HARNESS, EXIT_OK, UsageError
from harness.settings import CACHE_ENV, FORBID_ENV


def tc(file: str, subtest: str, mode: str, body: str = "", status: str = "", time: float = 0.5,
       failure: str = "", kernel: str = "6.12.118") -> str:
    props = [("nodeid", f"progs/{file}.c::{subtest}"), ("selftest_file", file), ("subtest", subtest),
             ("mode", mode), ("kernel", kernel)]
    if status:
        props.append(("status", status))
    if failure or (body.startswith("<failure") and not status):
        props.append(("failure", failure or "unexpected_load_failure"))
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
KNOWN = [KnownDifference("verifier_b", "known", "unexpected_load_failure", "needs CONFIG_X, left out here",
                         "errno 22"),
         KnownDifference("verifier_b", "listed but passes", "expect_msg", "was broken once")]


def test_outcomes_by_file_with_known_differences_apart() -> None:
    s = summarize(parse_junit(JUNIT), ["verifier_a", "verifier_b", "verifier_c", "verifier_d"], KNOWN,
                  {"seconds": 13.0, "workers": 2})
    j = s.to_json()
    assert (j["passed"], j["failed"], j["skipped"], j["errors"], j["known_differences"]) == (3, 1, 1, 3, 1)
    # the whole-file items (verifier_c's collection error, verifier_d with no result) count as privileged
    # subtests without a pass (was: left out of the figures)
    assert j["privileged"] == {"subtests": 8, "passed": 2, "pass_rate": 0.25, "failed": 1, "skipped": 1,
                               "error": 3, "known_difference": 1}
    assert j["files"]["verifier_a"]["passed"] == 2 and j["files"]["verifier_a"]["skip_reasons"] == {
        "unsupported: __xlated": 1}
    known = next(t for t in j["files"]["verifier_b"]["subtests"] if t["name"] == "known")
    assert known["status"] == "known_difference" and known["reason"].startswith("needs CONFIG_X")
    assert j["files"]["verifier_c"]["error"] == 1  # a collection error is the harness's: no verdict
    assert "broken BTF" in j["files"]["verifier_c"]["subtests"][0]["reason"]
    assert j["files"]["verifier_d"]["error"] == 1  # nothing came back for it
    assert j["stale_known_differences"] == [{"file": "verifier_b", "subtest": "listed but passes",
                                             "outcome": "expect_msg", "reason": "was broken once", "message": "",
                                             "lines": ()}]
    table = format_table(s)
    assert table.splitlines()[0].split()[:6] == ["FILE", "PASS", "FAIL", "SKIP", "KNOWN", "ERR"]
    assert "verifier_a: bad: verifier_a/bad: unexpected_load_failure" in table
    assert "privileged: 2/8 passed (25.0%)" in table and "listed as a known difference but passed" in table
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
    assert exit_code(summarize(parse_junit(known_only), ["verifier_b"], KNOWN[:1])) == EXIT_OK


def junit(*cases: str) -> list:
    return parse_junit("<testsuites><testsuite>" + "".join(cases) + "</testsuite></testsuites>")


UNPRIV_SUCCESS = '<failure message="f/s @unpriv: unexpected_load_success: the verifier accepted a program">x</failure>'
MSG_FAIL = ('<failure message="f/s @unpriv: expect_msg&#10;EXPECTED   SUBSTR: &apos;R1 has pointer with unsupported '
            'alu operation&apos;">f/s @unpriv: expect_msg\nEXPECTED   SUBSTR: &apos;R1 has pointer with unsupported '
            'alu operation&apos;</failure>')
LISTED = KnownDifference("f", "s @unpriv", "expect_msg", "sanitize_err names the other register here",
                         "R1 has pointer with unsupported alu operation", ("6.12",))


def test_a_known_difference_absorbs_only_the_failure_it_names() -> None:
    """Was: matched on file and subtest only, so an unexpected_load_success of a listed unpriv subtest was absorbed
    and the run exited 0."""
    s = summarize(junit(tc("f", "s @unpriv", "unpriv", MSG_FAIL, failure="expect_msg")), ["f"], [LISTED])
    assert s.count("known_difference") == 1 and exit_code(s) == EXIT_OK and not s.unmatched
    s = summarize(junit(tc("f", "s @unpriv", "unpriv", UNPRIV_SUCCESS, failure="unexpected_load_success")), ["f"],
                  [LISTED])
    assert s.count("failed") == 1 and s.count("known_difference") == 0 and s.unmatched == [LISTED]
    assert exit_code(s) == EXIT_FAILED and "no such failure happened: f: s @unpriv (expect_msg" in format_table(s)
    # the same kind of failure on another message is not the one listed either
    other = MSG_FAIL.replace("R1 has pointer", "R9 is invalid")
    s = summarize(junit(tc("f", "s @unpriv", "unpriv", other, failure="expect_msg")), ["f"], [LISTED])
    assert s.count("failed") == 1 and s.unmatched == [LISTED]


def test_a_stale_or_unmatched_entry_fails_the_run() -> None:
    """Was: a listed subtest that passed was said but the run exited 0; an entry matching nothing was never said."""
    s = summarize(junit(tc("f", "s @unpriv", "unpriv")), ["f"], [LISTED])
    assert s.stale == [LISTED] and exit_code(s) == EXIT_FAILED
    assert "listed as a known difference but passed" in format_table(s)
    s = summarize(junit(tc("f", "other", "priv")), ["f"], [LISTED])  # its subtest is not in the run at all
    assert s.unmatched == [LISTED] and exit_code(s) == EXIT_FAILED
    s = summarize(junit(tc("f", "s @unpriv", "unpriv", SKIP)), ["f"], [LISTED])  # skipped: it explained nothing
    assert s.unmatched == [LISTED] and exit_code(s) == EXIT_FAILED
    # out of scope: its file did not run, or the kernel is of another line
    assert exit_code(summarize(junit(tc("g", "x", "priv")), ["g"], [LISTED])) == EXIT_OK
    s = summarize(junit(tc("f", "s @unpriv", "unpriv", kernel="7.3.4")), ["f"], [LISTED])
    assert not s.stale and not s.unmatched and exit_code(s) == EXIT_OK


@pytest.mark.parametrize("text, says", [
    ('[[difference]]\nfile = "a"\nsubtest = "*"\noutcome = "expect_msg"\nreason = "r"\n', "no wildcards"),
    ('[[differences]]\nfile = "a"\nsubtest = "b"\noutcome = "expect_msg"\nreason = "r"\n', "differences"),
    ('[[difference]]\nfile = "a"\nsubtest = "b"\nreason = "r"\n', "needs outcome"),
    ('[[difference]]\nfile = "a"\nsubtest = "b"\noutcome = "wrong"\nreason = "r"\n', "outcome 'wrong'"),
    ('[[difference]]\nfile = "a"\nsubtest = "b"\noutcome = "expect_msg"\nreason = "r"\nextra = 1\n',
     "unknown key(s) extra"),
    ('[[difference]]\nfile = "a"\nsubtest = "b"\noutcome = "expect_msg"\nreason = "r"\nlines = ["6"]\n',
     "lines must be"),
    ('difference = "not tables"\n', "array of tables"),
    ('difference = [1, 2]\n', "array of tables"),
    ("not toml [", "cannot be read as TOML"),
    ('[[difference]]\nfile = "a"\nsubtest = "b"\noutcome = "expect_msg"\nreason = "r"\n' * 2, "repeats"),
])
def test_a_bad_table_is_a_usage_error_naming_it(tmp_path: Path, text: str, says: str) -> None:
    """Was: a misspelled [[differences]] was ignored, `subtest = "*"` absorbed a whole file, and a table of the
    wrong shape was an AttributeError traceback."""
    path = tmp_path / "kd.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=re.escape(says)):
        load_known_differences(path)


def test_known_differences_file(tmp_path: Path) -> None:
    path = tmp_path / "kd.toml"
    path.write_text('[[difference]]\nfile = "a"\nsubtest = "b"\noutcome = "retval"\nmessage = "!= 0"\n'
                    'lines = ["6.12", "7.3"]\nreason = """needs\n  X"""\n')
    assert load_known_differences(path) == [KnownDifference("a", "b", "retval", "needs X", "!= 0", ("6.12", "7.3"))]
    with pytest.raises(UsageError):
        load_known_differences(tmp_path / "missing.toml")
    for k in load_known_differences(KNOWN_DIFFERENCES):  # the repository's own list: every entry explained
        assert len(k.reason) > 40, k


def test_inner_argv_keeps_a_files_subtests_on_one_worker(tmp_path: Path) -> None:
    run = SelftestsRun(tmp_path, (tmp_path / BPF / "progs/a.c",), tmp_path / "out", workers=2,
                       kernel=tmp_path / "entry", extra_pytest=("-x",))
    argv = inner_argv(run, tmp_path / "out/junit.xml")
    assert argv[argv.index("--dist") + 1] == "loadfile" and argv[argv.index("-n") + 1] == "2"
    assert argv[argv.index("--rootdir") + 1] == str(tmp_path / BPF) and argv[-1] == "-x"
    assert argv[argv.index("--kernel") + 1] == str(tmp_path / "entry")
    one = SelftestsRun(tmp_path, (), tmp_path, kernel=tmp_path / "entry", workers=1)
    assert "-n" not in inner_argv(one, tmp_path / "j.xml")


@pytest.mark.parametrize("args", [["--vmlinux-h", "x.h"], ["-n", "0"], ["not_in_the_set"],
                                  ["--known-differences", "missing.toml"]])
def test_run_usage_errors(tmp_path: Path, args: list[str]) -> None:
    tree = make_tree(tmp_path)
    env = {**os.environ, FORBID_ENV: "build,boot", CACHE_ENV: str(tmp_path / "cache")}
    res = cli("selftests", "--kernel-src", str(tree), *args, env=env)
    assert res.returncode == USAGE, res.stderr


def test_the_inner_run_gets_the_artifact_not_a_recipe(tmp_path: Path) -> None:
    """The CLI acquired the kernel: the inner pytest is handed its cache entry, never the options to build it again
    (was: --kernel-src/--no-patches/--kernel-target for the inner session to re-derive, which could differ)."""
    argv = inner_argv(SelftestsRun(tmp_path, (), tmp_path, kernel=tmp_path / "entry"), tmp_path / "j.xml")
    assert argv[argv.index("--kernel") + 1] == str(tmp_path / "entry")
    for recipe in ("--kernel-src", "--kernel-ref", "--no-patches", "--patches", "--fragment", "--kernel-target"):
        assert recipe not in argv
