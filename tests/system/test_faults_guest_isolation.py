# SPDX-License-Identifier: GPL-2.0
"""The guest sees only what a run needs (issue 21 item 10): from inside a real guest, the host's home
directories, the harness cache (other runs' keys, kernels) and /etc's secrets are not readable; the system
directories and the run's own key directory are."""

from __future__ import annotations

import subprocess

import pytest
from helpers import CLI

pytestmark = [pytest.mark.vm, pytest.mark.slow]

PROBE = """
for p in "$@"; do
  if cat "$p" 2>/dev/null | grep -q harness-isolation-secret; then echo "READABLE $p"; fi
done
echo "kernels: $(ls -A {cache}/kernels 2>/dev/null | wc -l)"
echo "runs: $(ls -A {cache}/runs 2>/dev/null | wc -l)"
echo "root: $(ls -A /root 2>&1 | tr '\\n' ' ')"
echo "gshadow-lines: $(wc -l < /etc/gshadow)"
echo "shadow: $(cat /etc/shadow)"
echo "etc-ssh: $(ls -A /etc/ssh 2>&1 | tr '\\n' ' ')"
echo "python: $(/usr/bin/python3 -S -c 'print(6 * 7)')"
echo "own-keys: $(ls /run/harness-ssh | tr '\\n' ' ')"
"""


def test_the_guest_cannot_read_the_hosts_secrets(kernel_artifact, kernel_options, tmp_path):
    layout = kernel_options.layout()
    other_run = layout.runs / "19990101-000000-vm-gw9-1"
    other_run.mkdir(parents=True, exist_ok=True)
    secret = other_run / "gw9-1-ssh-client_ed25519"
    secret.write_text("harness-isolation-secret: another run's private key\n")
    home_secret = layout.root / "harness-isolation-home-secret"
    home_secret.write_text("harness-isolation-secret: in the cache root\n")
    try:
        probe = PROBE.replace("{cache}", str(layout.root))
        res = subprocess.run([CLI, "boot", "--cache-dir", str(layout.root), "--timeout", "600", "--",
                              "sh", "-c", probe, "probe", str(secret), str(home_secret), "/etc/gshadow"],
                             capture_output=True, text=True, timeout=900)
    finally:
        secret.unlink(missing_ok=True)
        home_secret.unlink(missing_ok=True)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "READABLE" not in out, out[-3000:]
    lines = dict(line.split(": ", 1) for line in res.stdout.splitlines() if ": " in line)
    assert lines.get("kernels") == "0", "the guest sees the cache's kernels"
    assert lines.get("runs") in ("0", "1"), "the guest sees other runs than its own (at most the path to its keys)"
    assert lines.get("shadow") == "root:*:1:0:99999:7:::", out[-2000:]
    assert lines.get("gshadow-lines") == "0", out[-2000:]
    assert lines.get("etc-ssh", "").strip() == "", out[-2000:]
    assert lines.get("python") == "42", "the system directories must stay readable"
    assert "sshd_config" in lines.get("own-keys", ""), "the run's own key directory must stay readable"
