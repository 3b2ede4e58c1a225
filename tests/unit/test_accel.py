# SPDX-License-Identifier: GPL-2.0
"""KVM/TCG choice: real probes with QEMU (one that boots, one that hangs), a missing /dev/kvm, caching."""

import os
import uuid
from pathlib import Path

import pytest
from helpers import processes_with

from harness.machine import accel


@pytest.mark.vm
def test_probe_succeeds_when_the_kernel_prints(kernel_artifact):
    ok, detail, seconds = accel.probe("tcg", kernel_artifact.bzimage, timeout=120)
    assert ok, detail
    assert detail == "probe kernel started"


@pytest.mark.vm
def test_probe_of_a_hung_guest_times_out_and_reaps_qemu(kernel_artifact):
    # -S starts QEMU with the CPU stopped: exactly what a hung KVM guest looks like from outside.
    # A name of its own: other xdist workers' sessions probe KVM at the same time, with the same kernel line.
    name = f"bah-hung-probe-{uuid.uuid4().hex[:12]}"
    ok, detail, seconds = accel.probe("tcg", kernel_artifact.bzimage, timeout=2, extra_args=("-S", "-name", name))
    assert not ok
    assert "printed nothing within 2s" in detail
    assert processes_with(name) == [], "the probe left its QEMU running"


def test_missing_dev_kvm_falls_back_to_tcg_with_a_warning(tmp_path: Path):
    """No device, no probe: the kernel image is never read (nor booted)."""
    warnings = []
    choice = accel.choose("auto", tmp_path, tmp_path / "no-bzImage", kvm_device=str(tmp_path / "kvm"),
                          warn=warnings.append)
    assert choice.accel == "tcg"
    assert "does not exist" in choice.reason
    assert len(warnings) == 1 and "using TCG" in warnings[0]


def test_verdict_is_cached_per_device(tmp_path: Path):
    kernel = tmp_path / "no-bzImage"
    first = accel.choose("auto", tmp_path, kernel, kvm_device=str(tmp_path / "kvm"), warn=lambda m: None)
    again = accel.choose("auto", tmp_path, kernel, kvm_device=str(tmp_path / "kvm"), warn=lambda m: None)
    assert again == first  # same probed_at: no second probe
    other = accel.choose("auto", tmp_path, kernel, kvm_device=str(tmp_path / "kvm2"),
                         warn=lambda m: None)
    assert other.probed_at >= first.probed_at and "kvm2" in other.reason


@pytest.mark.vm
@pytest.mark.skipif(not os.path.exists("/dev/kvm"), reason="host has no /dev/kvm: the KVM probe path cannot run")
def test_auto_probe_of_this_hosts_kvm_matches_a_real_kvm_boot(tmp_path: Path, kernel_artifact):
    """Whatever this host's KVM does, `auto` must agree with an actual KVM boot of the kernel."""
    choice = accel.choose("auto", tmp_path, kernel_artifact.bzimage, warn=lambda m: None)
    ok, detail, _ = accel.probe("kvm", kernel_artifact.bzimage)
    assert choice.accel == ("kvm" if ok else "tcg"), (choice, detail)


def test_explicit_choice_is_taken_as_given(tmp_path: Path):
    assert accel.choose("tcg", tmp_path, Path("/nonexistent")).accel == "tcg"
    assert accel.choose("kvm", tmp_path, Path("/nonexistent")).accel == "kvm"
    with pytest.raises(ValueError, match="--accel must be"):
        accel.choose("xen", tmp_path, Path("/nonexistent"))
