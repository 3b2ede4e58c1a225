# SPDX-License-Identifier: GPL-2.0
"""A failing case is named by its node id (cases/x/y.bpf.c::prog) in pytest's JUnit, its terminal and the matrix
reports, not by pytest's dotted module path (.main.cases.x.y.bpf.c.prog). A case that does not compile fails
without a kernel build or a VM: the kernel fixtures are replaced by a stand-in with an empty vmlinux.h."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from helpers import SCRATCH_CASE

from harness.campaigns.matrix import formats as mf
from harness.campaigns.matrix import report as mr
from harness.campaigns.results import parse_junit
from harness.status import Status

pytest_plugins = ["pytester"]

NODE = "cases/tmpx/broken.bpf.c::typo_body"
BROKEN = (SCRATCH_CASE.format(description="a body with a typo", verdict="__success")
          .replace("scratch_prog", "typo_body").replace("\treturn 0;", "\tretrun 0;"))
STAND_IN = """
import types

import pytest


@pytest.fixture(scope="session")
def kernel_under_test(tmp_path_factory):
    vmlinux_h = tmp_path_factory.mktemp("kernel") / "vmlinux.h"
    vmlinux_h.write_text("/* a stand-in: no kernel was built */\\n")
    return types.SimpleNamespace(release="stand-in", vmlinux_h=vmlinux_h)


@pytest.fixture(scope="session")
def case_log_root(tmp_path_factory):
    return tmp_path_factory.mktemp("logs")
"""


@pytest.fixture
def broken_case(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """cases/tmpx/broken.bpf.c in a scratch project whose kernel is a stand-in (the plugin prepares none)."""
    from harness import run_kernel

    monkeypatch.setattr(run_kernel, "selects_cases", lambda config: False)
    monkeypatch.setattr(run_kernel, "item_needs_kernel", lambda item: False)
    pytester.makeconftest(STAND_IN)
    case = pytester.path / "cases" / "tmpx" / "broken.bpf.c"
    case.parent.mkdir(parents=True)
    case.write_text(BROKEN)
    return case


@pytest.mark.parametrize("family", ["xunit1", "xunit2"])
def test_a_failing_case_is_named_by_its_path(pytester, broken_case, family):
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest("-p", "no:cacheprovider", "-v", "--harness-cache", str(pytester.path / "cache"),
                                f"--junitxml={junit}", "-o", f"junit_family={family}", "cases")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([f"{NODE} FAILED*", "*_ typo_body _*", f"FAILED {NODE} - *"])
    assert ".bpf.c.typo_body" not in out and "tmpx.broken" not in out, out  # pytest's dotted headline is gone
    (tc,) = ET.parse(junit).iter("testcase")
    assert (tc.get("classname"), tc.get("name")) == ("cases/tmpx/broken.bpf.c", "typo_body")
    if family == "xunit1":  # the case file and its program's line, not where harness/cases/collect.py is
        assert (tc.get("file"), tc.get("line")) == ("cases/tmpx/broken.bpf.c", "9")
    assert "does not compile against stand-in's vmlinux.h" in tc.find("failure").get("message")
    # The reader gets the node id from the nodeid property, and from the classname without it.
    (r,) = parse_junit(junit.read_text())
    assert (r.nodeid, r.status) == (NODE, Status.FAIL)
    for props in tc.iter("properties"):
        tc.remove(props)
    (bare,) = parse_junit(ET.tostring(tc))
    assert bare.nodeid == NODE
    # ... and so do the matrix's reports.
    cells, _ = mr.judge("6.12-series", [r])
    report = mr.Report((mr.KernelRun("6.12-series", cells=tuple(cells)),))
    assert f"  FAIL   6.12-series  {NODE}\n" in mf.to_summary(report)
    (mtc,) = ET.fromstring(mf.to_junit(report)).iter("testcase")
    assert (mtc.get("classname"), mtc.get("name")) == ("cases/tmpx/broken.bpf.c", "typo_body")
    assert f'data-case="{NODE}"' in mf.to_html(report)


def test_a_case_file_that_does_not_parse_is_named_by_its_path(pytester, broken_case):
    """A collection error: pytest names the file, dotted, in the testcase's name; the plugin writes the path."""
    broken_case.write_text(SCRATCH_CASE.format(description="x", verdict='__failure __msg("Unreleased reference)'))
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest("-p", "no:cacheprovider", "--collect-only", f"--junitxml={junit}", "cases")
    result.assert_outcomes(errors=1)
    (tc,) = ET.parse(junit).iter("testcase")
    assert (tc.get("classname"), tc.get("name")) == ("", "cases/tmpx/broken.bpf.c")
    (r,) = parse_junit(junit.read_text())
    assert (r.nodeid, r.status, r.rerunnable) == ("cases/tmpx/broken.bpf.c", Status.ERROR, False)
