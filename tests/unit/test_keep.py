# SPDX-License-Identifier: GPL-2.0
"""--keep-vm-on-failure's handover without a VM: the reaper keeps a kept group past its owner until the deadline
or --stop, the safety net spares it, `bpf-audit-harness ssh` finds it; the plugin's option checks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import CLI, alive, fake_kept_vm, group_gone

from harness.machine import keep, lifetime
from harness.settings import _owner_alive

pytest_plugins = ["pytester"]


def _owner() -> subprocess.Popen:
    return subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL)


def _end(owner: subprocess.Popen) -> None:
    owner.kill()
    owner.wait()


def _wait(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    d = tmp_path / "runs" / "20260101-000000-vm-gw0-12345"
    d.mkdir(parents=True)
    return d


def test_a_vm_without_keep_file_ends_with_its_owner(run_dir):
    owner = _owner()
    reaper = fake_kept_vm(run_dir, owner=owner.pid, minutes=None)
    try:
        time.sleep(1)
        assert alive(reaper.pid)
        _end(owner)
        assert group_gone(reaper.pid, timeout=60) == []
    finally:
        _kill(reaper)


def test_a_kept_vm_outlives_its_owner_until_stop(run_dir):
    owner = _owner()
    reaper = fake_kept_vm(run_dir, owner=owner.pid, minutes=10)
    kept_file = lifetime.kept_file(run_dir, "gw0-1")
    try:
        assert lifetime.kept_until(kept_file) == float("inf")  # no deadline while the owner runs
        t0 = time.time()
        _end(owner)
        assert _wait(lambda: "deadline" in json.loads(kept_file.read_text())), kept_file.read_text()
        deadline = lifetime.kept_until(kept_file)
        assert t0 + 590 < deadline < time.time() + 610
        time.sleep(1.5)
        assert alive(reaper.pid), "the kept VM's group ended with its owner"
        assert lifetime.reap_orphans(run_dir.parent) == [], "the safety net killed a kept VM before its deadline"
        assert _owner_alive(run_dir), "a kept VM's run directory must not be pruned"
        kept = keep.find(run_dir.name, run_dir.parent)
        assert (kept.name, kept.port, kept.case) == ("gw0-1", 9, "cases/x.bpf.c::prog") and kept.running()
        assert "min from now" in kept.describe_deadline()
        keep.stop(kept)
        assert group_gone(reaper.pid, timeout=60) == []
        assert not kept_file.exists()
        assert not _owner_alive(run_dir)
    finally:
        _kill(reaper)


def test_a_kept_vm_ends_at_its_deadline_and_keep_moves_it(run_dir):
    owner = _owner()
    reaper = fake_kept_vm(run_dir, owner=owner.pid, minutes=10)
    try:
        _end(owner)
        kept = keep.find(str(run_dir), run_dir.parent / "elsewhere")  # a path works as well as a name
        assert _wait(lambda: lifetime.kept_until(kept.keep_file) < float("inf"))
        keep.extend(kept, 2 / 60)  # two seconds from now
        time.sleep(0.5)
        assert alive(reaper.pid)
        assert group_gone(reaper.pid, timeout=60) == [], "the kept VM outlived its deadline"
        assert not kept.keep_file.exists()
    finally:
        _kill(reaper)


def test_the_safety_net_ends_a_kept_vm_whose_deadline_passed(run_dir):
    """A reaper that cannot act (stopped here) leaves the group to reap_orphans once the deadline is past."""
    owner = _owner()
    reaper = fake_kept_vm(run_dir, owner=owner.pid, minutes=10)
    kept_file = lifetime.kept_file(run_dir, "gw0-1")
    try:
        _end(owner)
        assert _wait(lambda: lifetime.kept_until(kept_file) < float("inf"))
        os.kill(reaper.pid, signal.SIGSTOP)
        kept_file.write_text(json.dumps({"minutes": 10, "deadline": time.time() - 1}) + "\n")
        assert len(lifetime.reap_orphans(run_dir.parent)) == 1
        assert group_gone(reaper.pid, timeout=60) == []
        assert not kept_file.exists()
    finally:
        _kill(reaper)


def test_ssh_subcommand_prints_the_command_line(run_dir):
    owner = _owner()
    reaper = fake_kept_vm(run_dir, owner=owner.pid, minutes=10)
    try:
        res = subprocess.run([CLI, "ssh", run_dir.name, "--print-command", "--cache-dir", str(run_dir.parent.parent)],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        keys = run_dir / "gw0-1-ssh"
        assert f"ssh -i {keys / 'client_ed25519'} -p 9 -o UserKnownHostsFile={keys / 'known_hosts'}" in res.stdout
        assert "root@127.0.0.1" in res.stdout and "after the pytest run that kept it ends" in res.stdout
        assert (keys / "known_hosts").read_text() == "[127.0.0.1]:9 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeHostKey\n"
    finally:
        _end(owner)
        _kill(reaper)


def _kill(reaper: subprocess.Popen) -> None:
    try:
        os.kill(reaper.pid, signal.SIGCONT)
        os.killpg(reaper.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    reaper.wait()


@pytest.mark.parametrize("args, message", [
    (["--keep-vm-on-failure=soon"], "'soon' is not a number of minutes"),
    (["--keep-vm-on-failure=0"], "give 0 < MINUTES <= 1440"),
    (["--keep-vm-on-failure", "--target", "ssh://root@127.0.0.1:9"], "with --target the machine is yours already"),
])
def test_keep_vm_option_checks(pytester, args, message):
    result = pytester.runpytest("--collect-only", "-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_keep_vm_option_takes_minutes_or_defaults_to_30(pytester):
    for args, minutes in ((["--keep-vm-on-failure"], 30.0), (["--keep-vm-on-failure=5"], 5.0)):
        pytester.makepyfile(test_opt=f"""
            from harness.plugin import run_session


            def test_opt(pytestconfig):
                assert run_session(pytestconfig).keeper.minutes == {minutes}
        """)
        result = pytester.runpytest("-p", "no:cacheprovider", "test_opt.py", *args)
        result.assert_outcomes(passed=1)


@pytest.mark.faults  # issue 21: provokes the fault for real
def test_a_stale_keep_file_pins_nothing(run_dir):
    """Issue 21 item 11: a keep file whose deadline passed, or that has no deadline while its owner and VM are gone
    (a reaper killed before it wrote one), neither keeps the run directory from pruning nor survives reap_orphans."""
    owner = _owner()
    reaper = fake_kept_vm(run_dir, owner=owner.pid, minutes=10)
    kept_file = lifetime.kept_file(run_dir, "gw0-1")
    _kill(reaper)
    _end(owner)
    assert group_gone(reaper.pid, timeout=60) == []
    assert lifetime.kept_until(kept_file) == 0.0, "no deadline and a dead owner: not kept"
    assert not _owner_alive(run_dir), "a stale keep file pinned its run directory"
    kept_file.write_text(json.dumps({"minutes": 10, "deadline": time.time() - 60, "owner_pid": owner.pid}) + "\n")
    assert not _owner_alive(run_dir), "a keep file past its deadline pinned its run directory"
    assert lifetime.reap_orphans(run_dir.parent) == []
    assert not kept_file.exists(), "reap_orphans left the keep file of a VM that is gone"


@pytest.mark.faults  # issue 21: provokes the fault for real
def test_a_recycled_pid_is_not_our_reaper(run_dir, tmp_path):
    """Issue 21 item 11: a record whose pid now belongs to another live reaper (another session's, started later)
    must not let reap_orphans or `ssh RUN --stop` end that group: the reaper is identified by pid and start time."""
    owner = _owner()
    other_owner = _owner()
    other_run = tmp_path / "other" / "20260101-000000-vm-gw0-1"
    other = fake_kept_vm(other_run, owner=other_owner.pid, minutes=None)
    try:
        record = {"pgid": other.pid, "leader_start": lifetime.start_ticks(other.pid) - 1, "owner_pid": owner.pid,
                  "started": time.time(), "port": 9}
        (run_dir / f"gw0-1{lifetime.RECORD_SUFFIX}").write_text(json.dumps(record) + "\n")
        (run_dir / "gw0-1-ssh").mkdir()
        lifetime.kept_file(run_dir, "gw0-1").write_text(json.dumps({"minutes": 10, "owner_pid": owner.pid}) + "\n")
        _end(owner)  # the recorded owner is dead: its VM would be an orphan if the group were still its
        assert lifetime.reap_orphans(run_dir.parent) == []
        time.sleep(0.5)
        assert alive(other.pid), "reap_orphans killed another session's reaper through a recycled pid"
        lifetime.kept_file(run_dir, "gw0-1").write_text(json.dumps({"minutes": 10, "owner_pid": owner.pid}) + "\n")
        with pytest.raises(Exception, match="not running any more"):
            keep.find(str(run_dir), run_dir.parent)
        assert alive(other.pid)
    finally:
        _end(other_owner)
        _kill(other)
