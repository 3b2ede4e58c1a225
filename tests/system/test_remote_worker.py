# SPDX-License-Identifier: GPL-2.0
"""pytest-xdist worker over SSH (--tx ssh=...): the worker uses its own host's cache and boots its own VM."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.settings import REPO_ROOT, run_files

pytestmark = [pytest.mark.vm, pytest.mark.slow]
SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class Loopback:
    """A throwaway sshd on 127.0.0.1 and the ssh_config that reaches it as host `harness-remote`."""

    port: int
    ssh_config: Path
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bah-remote-test", "-f", str(path)],
                   check=True)


@pytest.fixture
def loopback_sshd(tmp_path: Path) -> Iterator[Loopback]:
    if not os.access(SSHD, os.X_OK):
        pytest.skip("openssh-server (sshd) is not installed: `make deps` installs it")
    if os.geteuid() != 0:
        pytest.skip("a throwaway sshd that logs in as the current user needs root here (sshd privilege separation)")
    d = tmp_path / "sshd"
    d.mkdir()
    _keygen(d / "host_key")
    _keygen(d / "client_key")
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    port = _free_port()
    (d / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1:{port}\nHostKey {d / 'host_key'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nStrictModes no\nPidFile none\nLogLevel VERBOSE\n"
    )
    host_pub = (d / "host_key.pub").read_text().split()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    cfg = d / "ssh_config"
    cfg.write_text(
        f"Host harness-remote\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  IdentityFile {d / 'client_key'}\n"
        f"  IdentitiesOnly yes\n  UserKnownHostsFile {d / 'known_hosts'}\n  StrictHostKeyChecking yes\n"
        "  BatchMode yes\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    log = d / "sshd.log"
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config"), "-E", str(log)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"throwaway sshd did not start: {log.read_text() if log.exists() else '(no log)'}")
                time.sleep(0.2)
        yield Loopback(port, cfg, log)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _remote_host_disk(tmp_path: Path, kernel_artifact, kernel_options) -> tuple[Path, Path]:
    """What the other host would have on its own disk: the project's config and a harness cache with this kernel.

    The cases themselves are not there: xdist ships them (--rsyncdir)."""
    checkout = tmp_path / "remote" / "checkout"
    checkout.mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "pyproject.toml", checkout / "pyproject.toml")
    ours = kernel_options.layout()
    cache = tmp_path / "remote" / "cache"
    (cache / "kernels").mkdir(parents=True)
    # Hard links: cheap, and the harness never writes into a source tree or a published entry.
    subprocess.run(["cp", "-al", str(ours.sources), str(cache / "src")], check=True)
    subprocess.run(["cp", "-al", str(ours.kernels / kernel_artifact.key), str(cache / "kernels")], check=True)
    return checkout, cache


def test_xdist_worker_over_ssh_uses_its_own_cache_and_vm(loopback_sshd, kernel_artifact, kernel_options, tmp_path):
    checkout, cache = _remote_host_disk(tmp_path, kernel_artifact, kernel_options)
    python = Path(sys.executable)
    tx = (f"ssh=harness-remote//ssh_config={loopback_sshd.ssh_config}//python={python}//chdir={checkout}"
          f"//env:BPF_AUDIT_HARNESS_CACHE={cache}")
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-d", "--tx", tx,
            "--rsyncdir", str(REPO_ROOT / "cases"),
            str(REPO_ROOT / "cases/baseline/lsm_deny.bpf.c"), str(REPO_ROOT / "cases/audit/record.bpf.c")]
    res = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200,
                         env={**os.environ, "BPF_AUDIT_HARNESS_CACHE": str(tmp_path / "controller-cache-unused")})
    out = "\n".join(line for line in (res.stdout + res.stderr).splitlines() if " <= cases/" not in line)  # rsync
    assert res.returncode == 0, out[-4000:]
    assert (checkout / "cases" / "harness.h").is_file(), "xdist did not rsync cases/ to the worker"
    assert "[gw0]" in out and " failed" not in out and "7 passed" in out, out[-2000:]
    sshd_log = loopback_sshd.log.read_text()
    assert "Accepted publickey for root from 127.0.0.1" in sshd_log, sshd_log[-2000:]
    # The worker resolved the kernel through the remote cache (a hit: no build) and kept its VM's files there.
    assert not (cache / "work").exists() or not any((cache / "work").glob("build-*")), "the remote worker built"
    consoles = run_files(cache / "runs", "-console.log")  # other runs may be pruned meanwhile
    assert consoles, f"no console log under the remote cache {cache}/runs: the worker did not boot its own VM"
    assert not (tmp_path / "controller-cache-unused").exists(), "the controller touched a cache: it should not"
