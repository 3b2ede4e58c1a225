# SPDX-License-Identifier: GPL-2.0
"""KVM/TCG choice without a kernel: a missing /dev/kvm, the cached verdict, an explicit choice (real probes:
tests/system/test_accel_probe.py)."""

from pathlib import Path

import pytest

from harness.machine import accel


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


def test_explicit_choice_is_taken_as_given(tmp_path: Path):
    assert accel.choose("tcg", tmp_path, Path("/nonexistent")).accel == "tcg"
    assert accel.choose("kvm", tmp_path, Path("/nonexistent")).accel == "kvm"
    with pytest.raises(ValueError, match="--accel must be"):
        accel.choose("xen", tmp_path, Path("/nonexistent"))
