# SPDX-License-Identifier: GPL-2.0
"""What each signal does to the VMs of the process that gets it (harness.machine.lifetime), with real processes
and real signals: a stand-in VM (a `sleep` under the real reaper, in a session of its own, as vm.py starts QEMU),
an owner whose teardown is stuck (as a guest request on a loaded machine is), and an xdist-like worker child."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import alive, group_members

from harness.settings import REPO_ROOT

# The owner: starts a stand-in VM (and, with --worker, a child in its own process group that starts one too, as an
# xdist worker is), installs the harness's handlers, says which groups it started, then waits "on a guest" and,
# when interrupted, spends a minute in teardown. Whatever the owner is doing, SIGHUP/SIGTERM must end the VMs.
OWNER = textwrap.dedent("""\
    import json, os, subprocess, sys, time
    sys.path.insert(0, {repo!r})
    from harness.machine import lifetime
    lifetime.GRACEFUL_DEADLINE = {grace!r}
    groups = []
    vm = subprocess.Popen(lifetime.owned(["sleep", "300"]), start_new_session=True)
    lifetime.own_group(vm.pid, "vm-" + sys.argv[1])
    groups.append(vm.pid)
    if sys.argv[1] == "controller" and "--worker" in sys.argv:
        worker = subprocess.Popen([sys.executable, __file__, "worker"], stdout=subprocess.PIPE, text=True)
        groups += json.loads(worker.stdout.readline())
    lifetime.exit_on_hangup_and_term()
    try:  # entered before the line that lets the test signal: a signal must always find the teardown
        print(json.dumps(groups), flush=True)
        time.sleep(300)  # waiting on a guest
    finally:
        print("teardown", flush=True)
        time.sleep(60)  # a teardown that a loaded machine makes slow
""")


def _start(tmp_path: Path, *args: str, grace: float = 2.0) -> tuple[subprocess.Popen, list[int]]:
    """The owner, with Ctrl-C's graceful deadline at `grace` seconds. The windows the tests give each signal are
    wide (a loaded machine is slow to schedule) but shorter than what they must be told apart from: the 60 s
    teardown, or a graceful deadline set long on purpose."""
    script = tmp_path / "owner.py"
    script.write_text(OWNER.format(repo=str(REPO_ROOT), grace=grace))
    proc = subprocess.Popen([sys.executable, str(script), "controller", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout is not None
    groups = json.loads(proc.stdout.readline())
    for g in groups:
        assert group_members(g), f"stand-in VM group {g} did not start"
    return proc, groups


def _gone_within(groups: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(group_members(g) for g in groups):
        time.sleep(0.05)
    return [g for g in groups if group_members(g)]


def _stderr_until(proc: subprocess.Popen, *needles: str, seconds: float = 60.0) -> str:
    """The owner's stderr (and its worker's) until it holds every one of `needles`: a handler says what it did
    only after doing it (killing comes first), and a loaded machine can leave the words a moment behind."""
    import select

    assert proc.stderr is not None
    fd, got, deadline = proc.stderr.fileno(), b"", time.monotonic() + seconds
    while not all(n.encode() in got for n in needles) and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            got += chunk
    return got.decode(errors="replace")


def _cleanup(proc: subprocess.Popen, groups: list[int]) -> None:
    for g in [proc.pid, *groups]:
        try:
            os.killpg(g, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM], ids=lambda s: s.name)
@pytest.mark.parametrize("worker", [False, True], ids=["alone", "with-worker"])
def test_hangup_and_term_end_every_vm_before_a_stuck_teardown(sig, worker, tmp_path):
    proc, groups = _start(tmp_path, *(["--worker"] if worker else []), grace=45.0)
    try:
        os.kill(proc.pid, sig)  # to the owner only, as a closed terminal or a CI timeout may send it
        left = _gone_within(groups, 20.0)  # not the teardown (60 s), not a graceful deadline (45 s)
        assert not left, f"{sig.name}: VM groups {left} still run although the owner's teardown is what is slow"
        assert alive(proc.pid), "the owner should still be in its (slow) teardown: this test proves nothing"
        err = _stderr_until(proc, "the run stops (in ", *(["SIGTERM: ended 1 VM(s) at once: vm-worker"] if worker
                                                          else []))
        os.killpg(proc.pid, signal.SIGKILL)  # the owner and its worker, still in their slow teardowns
        assert f"{sig.name}: ended 1 VM(s) at once: vm-controller" in err, err
        assert "the run stops (in " in err, err  # where the owner was when the signal landed
        if worker:
            assert "passed SIGTERM to 1 worker(s)" in err, err
            assert "SIGTERM: ended 1 VM(s) at once: vm-worker" in err, err
    finally:
        _cleanup(proc, groups)


def test_ctrl_c_is_graceful_but_bounded_and_a_second_one_is_immediate(tmp_path):
    proc, groups = _start(tmp_path)
    try:
        os.kill(proc.pid, signal.SIGINT)
        assert proc.stdout.readline() == "teardown\n"
        assert all(group_members(g) for g in groups), "Ctrl-C killed the VM at once: the graceful path was skipped"
        left = _gone_within(groups, 2.0 + 25.0)  # GRACEFUL_DEADLINE = 2 s; the teardown would take 60 s
        assert not left, "the VM outlived Ctrl-C's graceful deadline"
        err = _stderr_until(proc, "teardown did not stop vm-controller within 2s; ended them")
        os.killpg(proc.pid, signal.SIGKILL)  # the owner and its worker, still in their slow teardowns
        assert "teardown did not stop vm-controller within 2s; ended them" in err, err
    finally:
        _cleanup(proc, groups)

    proc, groups = _start(tmp_path, grace=45.0)  # so the graceful deadline cannot be what ends the VM here
    try:
        os.kill(proc.pid, signal.SIGINT)
        assert proc.stdout.readline() == "teardown\n"  # the first one was handled: two signals are not one
        os.kill(proc.pid, signal.SIGINT)
        assert not _gone_within(groups, 20.0), "a second Ctrl-C did not end the VM at once"
        err = _stderr_until(proc, "second Ctrl-C: ended 1 VM(s) at once: vm-controller")
        os.killpg(proc.pid, signal.SIGKILL)  # the owner and its worker, still in their slow teardowns
        assert "second Ctrl-C: ended 1 VM(s) at once: vm-controller" in err, err
    finally:
        _cleanup(proc, groups)


def test_a_handler_someone_else_installed_is_left_alone(tmp_path):
    script = tmp_path / "mine.py"
    script.write_text(textwrap.dedent(f"""\
        import signal, sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from harness.machine import lifetime
        mine = lambda s, f: None
        signal.signal(signal.SIGTERM, mine)
        lifetime.exit_on_hangup_and_term()
        print(signal.getsignal(signal.SIGTERM) is mine, signal.getsignal(signal.SIGHUP) is lifetime._end_now)
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["True", "True"]
