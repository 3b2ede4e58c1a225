# SPDX-License-Identifier: GPL-2.0
"""--target ssh://: the plugin runs cases on a machine it did not boot (here a local VM reached as plain SSH)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.machine.vm import LocalVM, VMConfig
from harness.settings import REPO_ROOT

pytestmark = [pytest.mark.vm, pytest.mark.slow]


def _inner(target, known: Path, cache_root: Path, *cases: str, home: Path | None = None) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *cases,
            "--target", f"ssh://{target.user}@{target.host}:{target.port}", "--target-key", str(target.key),
            "--target-known-hosts", str(known), "--harness-cache", str(cache_root)]
    env = {**os.environ, "HOME": str(home)} if home is not None else None
    return subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, env=env)


def test_cases_run_on_a_plain_ssh_target_with_a_pinned_host_key(kernel_artifact, kernel_options, tmp_path):
    with LocalVM(VMConfig(kernel=kernel_artifact.bzimage), tmp_path, name="target") as vm:
        t = vm.guest.target
        known = tmp_path / "known_hosts"
        known.write_text(f"[{t.host}]:{t.port} ssh-ed25519 {t.host_key_b64}\n")
        # The machine's own audit rule: the harness replaces the rules while it runs, and must put this one back.
        vm.guest.run("auditctl -w /etc/hostname -p wa -k owners-rule", timeout=60, check=True)
        res = _inner(t, known, kernel_options.layout().root, "cases/audit/record.bpf.c")
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
        assert " passed" in res.stdout and "failed" not in res.stdout, res.stdout[-2000:]
        assert "using TCG" not in res.stderr and "using TCG" not in res.stdout, "the inner run booted its own VM"
        rules = vm.guest.run("auditctl -l", timeout=60, check=True).stdout
        assert "owners-rule" in rules and "bpf-audit-harness" not in rules, rules

        # --target-known-hosts is the only pin: a ~/.ssh/known_hosts that trusts the key does not override it.
        home = tmp_path / "home"
        (home / ".ssh").mkdir(parents=True)
        (home / ".ssh" / "known_hosts").write_text(known.read_text())
        wrong = tmp_path / "wrong_known_hosts"
        wrong.write_text(f"[{t.host}]:{t.port} ssh-ed25519 {_other_key(tmp_path)}\n")
        res = _inner(t, wrong, kernel_options.layout().root, "cases/verifier/unreleased.bpf.c", home=home)
        assert res.returncode != 0
        assert "cannot reach target" in res.stdout, res.stdout[-2000:]


def _other_key(tmp: Path) -> str:
    path = tmp / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().split()[1]
