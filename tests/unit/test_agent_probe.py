# SPDX-License-Identifier: GPL-2.0
"""The guest agent's probe of what test_loader may run: exactly get_unpriv_disabled() of the tree's test_loader.
6.12's reads the sysctl and the command line only; 7.3's also wants CONFIG_CPU_MITIGATIONS=y in the kernel config."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "guests"))

from agent import probe  # noqa: E402

DATA = ROOT / "tests" / "data"
WITHOUT = DATA / "kconfig-6.12-harness-without-cpu-mitigations.config"


@pytest.fixture
def guest(monkeypatch):
    """A guest with unprivileged BPF allowed, no mitigations=off, and the recorded config without mitigations."""
    state = {"config": b"\n" + WITHOUT.read_bytes(), "cmdline_off": False}
    monkeypatch.setattr(probe, "unpriv_sysctl", lambda: 0)
    monkeypatch.setattr(probe, "mitigations_off", lambda: state["cmdline_off"])
    monkeypatch.setattr(probe, "_test_loader_config", lambda: state["config"])
    return state


def test_6_12s_test_loader_reads_no_config(guest):
    """Was: a kernel built without CONFIG_CPU_MITIGATIONS got every unprivileged subtest skipped, though 6.12's
    test_loader (sysctl and cmdline only) runs them there."""
    assert b"# CONFIG_CPU_MITIGATIONS is not set" in guest["config"]
    assert probe.unpriv_disabled_reason(mitigations_config=False) is None
    guest["cmdline_off"] = True
    assert "mitigations=off" in probe.unpriv_disabled_reason(mitigations_config=False)


def test_7_3s_test_loader_wants_the_config_line(guest):
    assert "no CONFIG_CPU_MITIGATIONS=y" in probe.unpriv_disabled_reason(mitigations_config=True)
    guest["config"] = guest["config"].replace(b"# CONFIG_CPU_MITIGATIONS is not set\n", b"CONFIG_CPU_MITIGATIONS=y\n")
    assert probe.unpriv_disabled_reason(mitigations_config=True) is None
    guest["config"] = None  # nothing to read: test_loader cannot tell, so it runs no unprivileged subtest
    assert "no kernel config to read" in probe.unpriv_disabled_reason(mitigations_config=True)


def test_the_sysctl_decides_first(monkeypatch, guest):
    monkeypatch.setattr(probe, "unpriv_sysctl", lambda: 2)
    assert "unprivileged_bpf_disabled = 2" in probe.unpriv_disabled_reason()
    monkeypatch.setattr(probe, "unpriv_sysctl", lambda: None)
    assert "cannot be read" in probe.unpriv_disabled_reason()


def test_the_testing_flags_probe_is_named_as_test_progs_names_it():
    """testing_prog_flags() loads its probe program as "flag-test", a name the kernel refuses: test_progs never sets
    BPF_F_TEST_RND_HI32 (with it, verifier_sdiv's __xlated lines get the verifier's random upper halves and fail;
    recorded in tests/data/selftests-compare-6.12.118). Tried on this host's kernel."""
    ok, err = probe.prog_flag_accepted(1 << 2, "")
    if not ok:
        pytest.skip(f"this host refuses even a plain socket filter (errno {err})")
    assert probe.prog_flag_accepted(1 << 2, "flag-test") == (False, 22)
    from harness.selftests.run import TESTING_PROBE_NAME

    assert TESTING_PROBE_NAME == "flag-test"
