# SPDX-License-Identifier: GPL-2.0
"""The harness as a normal package: a wheel built from the checkout, installed into a fresh venv in a temporary
directory outside it, runs `doctor`, `build` (a cache hit: the shipped kernel-config/ and patches/ give the same
key), `selftests --list`, `selftests --kernel-src debian-7.3` (a real run in a guest) and `report` (without
matplotlib: what to install), with the checkout out of reach; a plain pytest session in that venv shows no sign of
the plugin."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import check_inert, plain_session

from harness.settings import REPO_ROOT


def run(argv: list[str], cwd: Path, env: dict, timeout: float = 1200) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A wheel of the checkout, installed (with its dependencies from the package index) in a fresh venv."""
    where = tmp_path_factory.mktemp("wheel")
    assert not where.is_relative_to(REPO_ROOT)
    wheels = where / "dist"
    built = run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO_ROOT)],
                where, dict(os.environ))
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("bpf_audit_harness-*.whl")
    venv = where / "venv"
    assert run([sys.executable, "-m", "venv", str(venv)], where, dict(os.environ)).returncode == 0
    installed = run([str(venv / "bin/pip"), "install", "-q", str(wheel)], where, dict(os.environ))
    assert installed.returncode == 0, installed.stderr[-3000:]
    return venv


@pytest.mark.vm  # doctor may boot the cached kernel once to probe KVM
def test_installed_wheel_runs_without_the_checkout(venv, kernel_artifact, tmp_path):
    cache = kernel_artifact.dir.parent.parent  # the session's harness cache: the kernel is there already
    work = tmp_path / "elsewhere"
    work.mkdir()
    # Only the venv's commands and the system's: no checkout on PATH, none importable, HOME elsewhere.
    env = {"PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(tmp_path),
           "BPF_AUDIT_HARNESS_CACHE": str(cache), "BPF_AUDIT_HARNESS_FORBID": "build", "LANG": "C.UTF-8"}
    where = run([str(venv / "bin/python"), "-c", "import harness.settings as s, json; print(json.dumps("
                 "[s.FROM_CHECKOUT, str(s.DATA_ROOT), str(s.DEFAULT_CONFIG_DIR), str(s.GUESTS_DIR)]))"], work, env)
    from_checkout, data_root, config_dir, guests = json.loads(where.stdout)
    assert not from_checkout and Path(data_root).is_relative_to(venv), where.stdout
    assert (Path(config_dir) / "matrix.toml").is_file() and (Path(guests) / "boot-sshd.sh").is_file()
    assert (Path(data_root) / "cases" / "harness.h").is_file() and (Path(guests) / "agent" / "__main__.py").is_file()

    cli = str(venv / "bin" / "bpf-audit-harness")
    doctor = run([cli, "doctor", "--json", str(tmp_path / "doctor.json")], work, env)
    report = json.loads((tmp_path / "doctor.json").read_text())
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert report["version"] == "0.1.0", report["version"]  # installed: no git commit to name
    assert {e["name"] for e in report["source_lines"]} >= {"debian-7.3", "debian-6.12"}, report["source_lines"]
    assert report["default_kernel"]["bzimage"] == str(kernel_artifact.bzimage), report["default_kernel"]

    build = run([cli, "build"], work, env)  # BPF_AUDIT_HARNESS_FORBID=build: only a hit can pass
    assert build.returncode == 0, build.stdout + build.stderr
    assert build.stdout.startswith("cache hit") and f"key={kernel_artifact.key}" in build.stdout, build.stdout

    listing = run([cli, "selftests", "--list", "verifier_and", "--json", str(tmp_path / "list.json")], work, env)
    assert listing.returncode == 0, listing.stdout + listing.stderr[-3000:]
    data = json.loads((tmp_path / "list.json").read_text())
    assert "verifier_and" in json.dumps(data) and "verifier_and" in listing.stdout, listing.stdout

    ran = run([cli, "selftests", "--kernel-src", "debian-7.3", "-n", "1", "verifier_and"], work, env)
    # An inner pytest of the venv, a VM, a verdict on every subtest (which verdict is the selftests' business here:
    # 6 of 6 passed on 7.3.4, priv and unpriv).
    assert ran.returncode in (0, 1), ran.stdout + ran.stderr[-3000:]
    # verifier_and: 3 programs, each privileged and unprivileged where test_loader runs both
    counted = re.search(r"^subtests: (\d+): \d+ passed, \d+ failed, 0 skipped, .* 0 errors \(no verdict\)$", ran.stdout,
                        re.M)
    assert counted and int(counted.group(1)) >= 3, ran.stdout

    results = tmp_path / "results"
    results.mkdir()
    (results / "r.json").write_text(json.dumps({"date": "2026-12-06", "commit": "x", "sections": {}}))
    plot = run([cli, "report", "--results", str(results), "--out", str(tmp_path / "plots")], work, env)
    assert plot.returncode == 3, plot.stdout + plot.stderr
    assert "pip install 'bpf-audit-harness[plots]'" in plot.stderr and "Traceback" not in plot.stderr, plot.stderr
    assert not (tmp_path / "plots").exists()

    res, unused_cache, handlers = plain_session(tmp_path / "plain", "-n", "2", python=str(venv / "bin/python"))
    check_inert(res, unused_cache, handlers, {"main", "gw0", "gw1"})
