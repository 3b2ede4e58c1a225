# SPDX-License-Identifier: GPL-2.0
"""The test_progs campaign's outputs on the recorded runs (tests/data/testprogs-*), pinned byte for byte: the
summary JSON, the table, and the JUnit testcases (outcome, properties, message) its prog_tests items report. The
pinned file (tests/data/testprogs-pinned.json) was written by the code before its statuses became harness.status's
Status (main at 4db4b8a): the enum is internal, the words are the outputs'. Re-pin deliberately with
`PIN_TESTPROGS=1 pytest tests/unit/test_testprogs_output_pinned.py`."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.campaigns.test_progs import Outcome, build_failures, format_table
from harness.selftests.testprogs.results import judge

pytest_plugins = ["pytester"]
DATA = Path(__file__).resolve().parent.parent / "data"
PINNED = DATA / "testprogs-pinned.json"
SCENARIOS = sorted(p.name for p in DATA.glob("testprogs-*") if (p / "run.json").is_file())


def outcome(name: str, tree: Path) -> Outcome:
    d = DATA / name
    run = json.loads((d / "run.json").read_text())
    js = d / "test_progs.json"
    o = Outcome(tree, tuple(run["tests"]), Path("/out"), {f"{t}.c": [t] for t in run["tests"]}, tuple(run["tests"]))
    report = judge((d / "test_progs.log").read_text(), js.read_text() if js.is_file() else None, run["exit_code"],
                   run["tests"])
    # a file that does not build, after the run's verdicts (as run_test_progs adds them)
    o.files["broken.c"] = ["broken"]
    extra = build_failures(o.files, {"broken.c": "x.c:7:9: error: expected ';' before 'y'"})
    o.report = type(report)((*report.verdicts, *extra), report.exit_code, report.summary, report.counts,
                            report.json_results, report.preamble, report.problems)
    o.meta["kernel"] = run["kernel"]
    o.paths["log"] = Path("/out/test_progs.log")
    return o


def campaign_outputs(name: str) -> dict[str, str]:
    o = outcome(name, Path("/linux"))
    lost = Outcome(Path("/linux"), o.names, Path("/out"), dict(o.files), o.selectors, error="LOST VM (no verdict): x",
                   error_stage="vm")
    return {"summary": json.dumps(o.to_json(), indent=1) + "\n", "table": format_table(o),
            "lost_summary": json.dumps(lost.to_json(), indent=1) + "\n", "lost_table": format_table(lost)}


CONFTEST = """
from pathlib import Path
from harness.selftests.testprogs.collect import TestProgsFileCollector

def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".c" and file_path.parent.name == "prog_tests":
        return TestProgsFileCollector.from_parent(parent, path=file_path, summaries=lambda: [Path({summary!r})])
"""


def junit_outputs(pytester: pytest.Pytester, name: str) -> list[list]:
    """Each testcase of a run of the scenario's prog_tests items: name, outcome, message, properties."""
    tree = pytester.path / "linux"
    progs = tree / "tools/testing/selftests/bpf/prog_tests"
    progs.mkdir(parents=True)
    o = outcome(name, tree)
    for file, tests in o.files.items():
        (progs / file).write_text("".join(f"void test_{t}(void)\n{{\n}}\n" for t in tests))
    summary = pytester.path / "summary.json"
    summary.write_text(json.dumps(o.to_json()))
    pytester.makeconftest(CONFTEST.format(summary=str(summary)))
    junit = pytester.path / "junit.xml"
    pytester.runpytest_inprocess("-p", "no:bpf_audit_harness", "-p", "no:cacheprovider", "-o",
                                 "junit_family=xunit1", f"--junitxml={junit}", *sorted(str(p) for p in progs.iterdir()))
    cases = []
    for tc in ET.parse(junit).getroot().iter("testcase"):
        result = [[c.tag, (c.get("message") or "").replace(str(pytester.path), "<tmp>")] for c in tc
                  if c.tag in ("failure", "skipped", "error")]
        props = [[p.get("name"), p.get("value")] for p in tc.iter("property")]
        cases.append([tc.get("name"), result, props])
    return cases


@pytest.mark.parametrize("name", SCENARIOS)
def test_summary_table_and_junit_are_the_pinned_ones(name: str, pytester: pytest.Pytester) -> None:
    got = {**campaign_outputs(name), "junit": junit_outputs(pytester, name)}
    if os.environ.get("PIN_TESTPROGS"):
        pinned = json.loads(PINNED.read_text()) if PINNED.is_file() else {}
        pinned[name] = got
        PINNED.write_text(json.dumps(pinned, indent=1, sort_keys=True) + "\n")
    pinned = json.loads(PINNED.read_text())[name]
    for key in ("summary", "table", "lost_summary", "lost_table", "junit"):
        assert got[key] == pinned[key], key
