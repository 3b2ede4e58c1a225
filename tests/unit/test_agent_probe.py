# SPDX-License-Identifier: GPL-2.0
"""The guest agent's probe of what test_loader may run: a kernel built without CPU mitigations is mitigations=off."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "guests"))

from agent import probe  # noqa: E402

DATA = ROOT / "tests" / "data"
WITHOUT = DATA / "kconfig-6.12-harness-without-cpu-mitigations.config"


def test_the_harness_kernel_built_without_cpu_mitigations_is_recognised():
    config = b"\n" + WITHOUT.read_bytes()
    assert b"# CONFIG_CPU_MITIGATIONS is not set" in config
    assert probe.built_without_mitigations(config)


def test_the_same_kernel_with_cpu_mitigations_is_not():
    config = b"\n" + WITHOUT.read_bytes().replace(b"# CONFIG_CPU_MITIGATIONS is not set\n",
                                                   b"CONFIG_CPU_MITIGATIONS=y\n")
    assert not probe.built_without_mitigations(config)


def test_an_arch_without_the_option_or_an_unreadable_config_is_not_called_unmitigated():
    config = b"\n" + WITHOUT.read_bytes().replace(b"CONFIG_ARCH_CONFIGURES_CPU_MITIGATIONS=y\n", b"")
    assert not probe.built_without_mitigations(config)
    assert not probe.built_without_mitigations(None)
