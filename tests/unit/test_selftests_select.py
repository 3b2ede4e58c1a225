# SPDX-License-Identifier: GPL-2.0
"""test_progs' selection in `selftests` (issue 22 item 2): -t/-a/-b/-d with globs, test/subtest, @FILE and the tree's
DENYLIST, as test_progs' insert_test()/should_run()/should_run_subtest() select; -J in test_progs' JSON shape;
--lf/--ff through the inner run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from selftests_tree import BPF, make_tree

from harness.campaigns.results import parse_junit
from harness.campaigns.selftests import SelftestsRun, inner_argv, select_files, summarize, to_test_progs_json
from harness.errors import UsageError
from harness.selftests.select import Selector, build_selector, glob_match, parse_list

DATA = Path(__file__).resolve().parents[1] / "data"


def test_glob_match_is_test_progs() -> None:
    assert glob_match("verifier_and", "verifier_*") and glob_match("verifier_and", "*and")
    assert not glob_match("verifier_and", "verifier") and glob_match("x", "*") and not glob_match("x?", "x.")


def test_t_is_a_substring_a_is_a_glob_and_subtests_follow_a_slash() -> None:
    sel = Selector(parse_list("and,verifier_lsm/lsm_*", glob=False), [])
    assert sel.should_run("verifier_and") and sel.should_run("verifier_lsm") and not sel.should_run("iters")
    assert sel.should_run_subtest("verifier_lsm", "x lsm_y x") and not sel.should_run_subtest("verifier_lsm", "z")
    sel = Selector(parse_list("verifier_and", glob=True), parse_list("verifier_and/bad*", glob=True))
    assert sel.should_run("verifier_and") and not sel.should_run("verifier_and2")
    assert not sel.should_run_subtest("verifier_and", "bad one") and sel.should_run_subtest("verifier_and", "ok")
    # 7.x names a subtest by its program and describes it: a pattern may name either
    sel = Selector(parse_list("t/prog_a", glob=True), [])
    assert sel.should_run_subtest("t", "prog_a", "some description")
    assert Selector(parse_list("t/some*", glob=True), []).should_run_subtest("t", "prog_a", "some description")
    # a blacklisted whole test is out, whatever the whitelist says
    assert not Selector(parse_list("t", True), parse_list("t", True)).should_run("t")


def test_list_files_and_the_trees_denylist(tmp_path: Path) -> None:
    """The 7.3.4 tree's own DENYLIST (recorded): it leaves out varlen and stacktrace_build_id; --no-denylist keeps
    them."""
    tree = make_tree(tmp_path)
    (tree / BPF / "DENYLIST").write_text((DATA / "selftests-dialect" / "DENYLIST-7.3.4").read_text())
    sel = build_selector(tree)
    assert not sel.should_run("varlen") and not sel.should_run("stacktrace_build_id")
    assert sel.should_run("verifier_and") and sel.sources == [f"-d @{tree / BPF / 'DENYLIST'}"]
    assert build_selector(tree, use_lists=False).should_run("varlen")
    (tree / BPF / "mine").write_text("# mine\nfoo   # the foo test\n\n")
    sel = build_selector(tree, a=["@mine"], use_lists=False)
    assert sel.should_run("foo") and not sel.should_run("bar")
    with pytest.raises(UsageError, match="Failed to open"):
        build_selector(tree, d=["@nonexistent"])
    chosen = select_files(tree, ["verifier_x", "foo_after"], selector=build_selector(tree, t=["x"], use_lists=False))
    assert chosen.names == ["verifier_x"]  # RUN(verifier_x) is in test_verifier_x


def test_the_json_report_has_test_progs_shape(tmp_path: Path) -> None:
    junit = parse_junit(
        '<testsuites><testsuite>'
        '<testcase classname="p" name="a"><properties><property name="selftest_file" value="f"/>'
        '<property name="subtest" value="a"/><property name="mode" value="priv"/></properties></testcase>'
        '<testcase classname="p" name="b"><properties><property name="selftest_file" value="f"/>'
        '<property name="subtest" value="b"/><property name="mode" value="priv"/></properties>'
        '<failure message="f/b: expect_msg">f/b: expect_msg</failure></testcase>'
        '<testcase classname="p" name="c"><properties><property name="selftest_file" value="g"/>'
        '<property name="subtest" value="c"/><property name="mode" value="priv"/></properties>'
        '<skipped message="unsupported: bpf_testmod">x</skipped></testcase>'
        '</testsuite></testsuites>')
    j = to_test_progs_json(summarize(junit, ["f", "g"]), {"f": "verifier_f", "g": "g"})
    json.dumps(j)
    assert {k: j[k] for k in ("success", "success_subtest", "skipped", "failed", "failed_subtest")} == {
        "success": 1, "success_subtest": 1, "skipped": 1, "failed": 1, "failed_subtest": 1}
    f = j["results"][0]
    assert f["name"] == "verifier_f" and f["number"] == 1 and f["failed"] is True
    assert f["subtests"] == [{"name": "b", "number": 2, "message": "f/b: expect_msg", "failed": True}]
    verbose = to_test_progs_json(summarize(junit, ["f", "g"]), {"f": "verifier_f"}, verbose=True)
    assert [s["name"] for s in verbose["results"][0]["subtests"]] == ["a", "b"]


def test_lf_keeps_a_pytest_cache_for_the_inner_run(tmp_path: Path) -> None:
    run = SelftestsRun(tmp_path, (), tmp_path, kernel=tmp_path / "entry", last_failed="lf",
                       pytest_cache=tmp_path / "pc")
    argv = inner_argv(run, tmp_path / "j.xml")
    assert "--lf" in argv and f"cache_dir={tmp_path / 'pc'}" in argv and "no:cacheprovider" not in argv
    plain = inner_argv(SelftestsRun(tmp_path, (), tmp_path, kernel=tmp_path / "entry"), tmp_path / "j.xml")
    assert "no:cacheprovider" in plain and "--lf" not in plain
