# SPDX-License-Identifier: GPL-2.0
"""Decide KVM or TCG by booting the kernel itself under KVM with a timeout, never by /dev/kvm alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PROBE_TTL_SECONDS = 15 * 60
PROBE_TIMEOUT_SECONDS = 12.0
# Printed by the kernel proper (not the real-mode setup code) once it runs: on this kind of machine a KVM
# guest gets through the BIOS and real-mode setup ("Probing EDD ... ok") and then hangs silently, so a
# probe that only runs real-mode code would wrongly report KVM as working.
MARKER = b"Linux version"


@dataclass(frozen=True)
class AccelChoice:
    accel: str  # "kvm" or "tcg"
    reason: str
    probed_at: float
    probe_seconds: float | None = None


def probe(accel: str, kernel: Path, *, qemu: str = "qemu-system-x86_64", timeout: float = PROBE_TIMEOUT_SECONDS,
          extra_args: tuple[str, ...] = ()) -> tuple[bool, str, float]:
    """Boot `kernel` with `accel` until it prints MARKER. Returns (works, detail, seconds); QEMU is always reaped."""
    from harness.settings import refuse_if_forbidden

    refuse_if_forbidden("boot", f"probing {accel} with {kernel}")
    qemu_path = shutil.which(qemu)
    if qemu_path is None:
        return False, f"{qemu} not found (apt-get install qemu-system-x86)", 0.0
    argv = [qemu_path, "-accel", accel, "-nodefaults", "-display", "none", "-no-reboot", "-m", "256",
            "-serial", "stdio", "-kernel", str(kernel),
            "-append", "console=ttyS0 earlyprintk=serial,ttyS0 panic=-1 root=/dev/harness-probe", *extra_args]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    from harness.machine import lifetime

    lifetime.own_group(proc.pid, f"{accel} probe")  # a SIGHUP/SIGTERM ends it with the VMs
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    seen = b""
    try:
        while time.monotonic() - t0 < timeout:
            chunk = proc.stdout.read(65536)
            if chunk:
                seen = (seen + chunk)[-65536:]
                if MARKER in seen:
                    return True, "probe kernel started", time.monotonic() - t0
            elif proc.poll() is not None:
                err = (proc.stderr.read() if proc.stderr else b"").decode(errors="replace").strip().splitlines()
                return False, f"QEMU exited {proc.returncode}: {err[-1] if err else 'no output'}", time.monotonic() - t0
            else:
                time.sleep(0.05)
        return False, f"kernel printed nothing within {timeout:.0f}s (guest hung)", time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        lifetime.disown_group(proc.pid)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def _state_file(state_dir: Path) -> Path:
    return state_dir / "accel-probe.json"


def choose(requested: str, state_dir: Path, kernel: Path, *, kvm_device: str = "/dev/kvm", warn=None) -> AccelChoice:
    """'kvm'/'tcg' are taken as given; 'auto' probes KVM (cached for PROBE_TTL_SECONDS) and falls back to TCG."""
    if requested in ("kvm", "tcg"):
        return AccelChoice(requested, "requested with --accel", time.time())
    if requested != "auto":
        raise ValueError(f"--accel must be auto, kvm or tcg, not {requested!r}")
    cached = _read_cached(state_dir, kvm_device)
    if cached:
        return cached
    if not os.path.exists(kvm_device):
        choice = AccelChoice("tcg", f"{kvm_device} does not exist", time.time())
    elif not os.access(kvm_device, os.R_OK | os.W_OK):
        choice = AccelChoice("tcg", f"{kvm_device} is not readable and writable by this user", time.time())
    else:
        ok, detail, secs = probe("kvm", kernel)
        choice = AccelChoice("kvm" if ok else "tcg", f"KVM probe: {detail}", time.time(), round(secs, 2))
    if choice.accel == "tcg":
        (warn or _warn)(f"bpf-audit-harness: using TCG (slow, emulated CPU): {choice.reason}. "
                        "Pass --accel kvm to force KVM.")
    _write_cached(state_dir, kvm_device, choice)
    return choice


def _warn(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _read_cached(state_dir: Path, kvm_device: str) -> AccelChoice | None:
    try:
        data = json.loads(_state_file(state_dir).read_text())
    except (OSError, ValueError):
        return None
    if data.get("kvm_device") != kvm_device or time.time() - data.get("probed_at", 0) > PROBE_TTL_SECONDS:
        return None
    data.pop("kvm_device", None)
    return AccelChoice(**data)


def _write_cached(state_dir: Path, kvm_device: str, choice: AccelChoice) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = _state_file(state_dir).with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({**asdict(choice), "kvm_device": kvm_device}))
    os.replace(tmp, _state_file(state_dir))
