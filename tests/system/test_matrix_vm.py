# SPDX-License-Identifier: GPL-2.0
"""`bpf-audit-harness matrix` end to end on two real kernels (a few cases each): JUnit, JSON, HTML, exit code."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from harness.kernel.targets import default_target

CASES = ["cases/baseline/lsm_deny.bpf.c", "cases/audit/deny.bpf.c"]
SERIES = default_target().name  # the default kernel (7.3-series today): the one a run has built already


@pytest.mark.vm
@pytest.mark.slow
def test_matrix_on_the_default_series_kernel_and_prebuilt_61(kernel_options, tmp_path):
    out = tmp_path / "m"
    argv = [sys.executable, "-m", "harness.cli", "matrix", "--targets", f"{SERIES},6.1-debian", "-n", "1",
            "--out", str(out), "--cache-dir", str(kernel_options.layout().root)]
    for c in CASES:
        argv += ["--cases", c]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]

    suites = {s.get("name"): s for s in ET.parse(out / "matrix.junit.xml").getroot().iter("testsuite")}
    assert list(suites) == [SERIES, "6.1-debian"]
    status = {(k, tc.get("classname") + "::" + tc.get("name")): tc.get("status")
              for k, s in suites.items() for tc in s.iter("testcase")}
    deny = "cases/audit/deny.bpf.c::deny_after_logging"
    base = "cases/baseline/lsm_deny.bpf.c::baseline_file_open_deny"
    assert status[(SERIES, deny)] == "pass" and status[(SERIES, base)] == "pass"
    assert status[("6.1-debian", deny)] == "skip" and status[("6.1-debian", base)] == "pass"

    data = json.loads((out / "matrix.json").read_text())
    k = {x["name"]: x for x in data["kernels"]}
    assert k["6.1-debian"]["release"].startswith("6.1.") and k[SERIES]["counts"]["fail"] == 0
    # The exact packages each kernel came from, in JSON, JUnit properties and HTML.
    image = f"linux-image-{k['6.1-debian']['release']}"
    assert k["6.1-debian"]["packages"][image].startswith("6.1.")
    assert k["6.1-debian"]["packages"]["linux-image-amd64"] == k["6.1-debian"]["packages"][image]
    line = default_target().source.removeprefix("debian-")
    assert k[SERIES]["packages"][f"linux-source-{line}"].startswith(f"{line}.")
    props = {p.get("name"): p.get("value") for p in suites["6.1-debian"].find("properties")}
    assert props[f"package.{image}"] == k["6.1-debian"]["packages"][image]
    html = (out / "matrix.html").read_text()
    assert f"{image} {k['6.1-debian']['packages'][image]}" in html
    assert data["cases"][deny]["6.1-debian"]["reason"] == "kernel lacks bpf_audit_log_start (not in vmlinux BTF)"
    assert 'id="matrix"' in (out / "matrix.html").read_text()
    for target in (SERIES, "6.1-debian"):
        assert (out / target / "junit.xml").is_file() and (out / target / "target.json").is_file()
