# SPDX-License-Identifier: GPL-2.0
"""KVM/TCG choice on a real kernel: a QEMU probe that boots, one that hangs, and `auto` against a real KVM boot."""

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


@pytest.mark.vm
@pytest.mark.skipif(not os.path.exists("/dev/kvm"), reason="host has no /dev/kvm: the KVM probe path cannot run")
def test_auto_probe_of_this_hosts_kvm_matches_a_real_kvm_boot(tmp_path: Path, kernel_artifact):
    """Whatever this host's KVM does, `auto` must agree with an actual KVM boot of the kernel."""
    choice = accel.choose("auto", tmp_path, kernel_artifact.bzimage, warn=lambda m: None)
    ok, detail, _ = accel.probe("kvm", kernel_artifact.bzimage)
    assert choice.accel == ("kvm" if ok else "tcg"), (choice, detail)
