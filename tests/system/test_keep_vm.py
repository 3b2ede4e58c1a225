# SPDX-License-Identifier: GPL-2.0
"""pytest --keep-vm-on-failure for real: the first failing case's VM outlives pytest with its program pinned,
`bpf-audit-harness ssh RUN -- CMD` reaches it, every other VM is stopped as usual, and `--stop` ends it."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import SCRATCH_CASE, cli, group_gone, wait_dead

from harness.machine import keep, lifetime
from harness.machine.vm import qemu_pids_in_group
from harness.settings import listdir

pytestmark = [pytest.mark.vm, pytest.mark.slow]

PIN = f"{keep.PIN_DIR}/scratch_prog"


def _write_cases(root: Path) -> None:
    cases = root / "cases"
    cases.mkdir()
    # Both claim a rejection that does not happen: the program loads, so each case fails. Only one VM is kept.
    for name in ("first", "second"):
        (cases / f"{name}.bpf.c").write_text(SCRATCH_CASE.format(
            description=f"{name}: claims a rejection that does not happen",
            verdict='__failure __msg("Unreleased reference")'))
    (cases / "fine.bpf.c").write_text(SCRATCH_CASE.format(description="loads, as it says", verdict="__success"))


def test_the_first_failing_cases_vm_is_kept_until_stop(kernel_artifact, kernel_options, tmp_path):
    layout = kernel_options.layout()
    root = str(layout.root)
    _write_cases(tmp_path)
    before = set(listdir(layout.runs))
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "cases", "-n", "2",
                          "--harness-cache", root, "--keep-vm-on-failure=5"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=1800)
    out = res.stdout + res.stderr
    kept = None
    try:
        assert res.returncode == 1, out[-5000:]
        assert "2 failed, 1 passed" in res.stdout, out[-5000:]
        assert "VM kept for inspection (--keep-vm-on-failure)" in res.stdout, out[-5000:]
        m = re.search(r"^ +shell: +bpf-audit-harness ssh (\S+)$", res.stdout, re.M)
        assert m, out[-5000:]
        run = m.group(1)
        assert f"pinned at {PIN}" in res.stdout, out[-5000:]
        assert f"bpf-audit-harness ssh {run} --stop" in res.stdout

        # pytest has exited: the kept VM runs on, handed over to its reaper with a deadline; all others are gone.
        kept = keep.find(run, layout.runs)
        pgid = kept.pgid()
        assert pgid and kept.running() and qemu_pids_in_group(pgid), "the kept VM did not outlive pytest"
        assert 0 < kept.deadline() < float("inf"), "the reaper set no deadline when pytest exited"
        new_runs = [d for d in listdir(layout.runs) if d not in before]
        others = [(d.name, name, g) for d in new_runs for name, g in lifetime.recorded_groups(d).items()
                  if (d, name) != (Path(kept.run_dir), kept.name)]
        assert others, "expected the other worker's VM (and the replacement VM) to be recorded"
        for run_name, name, group in others:
            assert group_gone(group, timeout=30) == [], f"{run_name}/{name} outlived pytest without being kept"
        assert len([f for d in new_runs for f in d.glob("*.kept.json")]) == 1, "more than one VM kept"

        # A shell command in it sees the failing case's program, pinned and loaded.
        show = cli("ssh", run, "--cache-dir", root, "--", "bpftool", "prog", "show", "pinned", PIN, timeout=300)
        assert show.returncode == 0, show.stdout + show.stderr
        assert "name scratch_prog" in show.stdout and "lsm" in show.stdout, show.stdout
        listing = cli("ssh", run, "--cache-dir", root, "--", "bpftool", "prog", "show", timeout=300)
        assert listing.returncode == 0 and "name scratch_prog" in listing.stdout, listing.stdout + listing.stderr
        # So does the exact ssh command line the summary printed.
        m = re.search(r"^ +or ssh: +(ssh .*)$", res.stdout, re.M)
        assert m, res.stdout[-3000:]
        direct = subprocess.run([*shlex.split(m.group(1)), "cat", "/proc/sys/kernel/osrelease"],
                                capture_output=True, text=True, timeout=300)
        assert direct.returncode == 0 and direct.stdout.strip() == kernel_artifact.release, direct.stderr
        failed = cli("ssh", run, "--cache-dir", root, "--", "false", timeout=300)
        assert failed.returncode == 1, failed.stderr  # a failing command in the guest: 1

        # --stop: the QEMU is gone, the keep file too.
        qemus = qemu_pids_in_group(pgid)
        stop = cli("ssh", run, "--cache-dir", root, "--stop", timeout=120)
        assert stop.returncode == 0 and "stopped the kept VM" in stop.stdout, stop.stderr
        assert group_gone(pgid, timeout=30) == [], "the kept VM's group outlived --stop"
        assert qemus and wait_dead(qemus) == [], "QEMU outlived --stop"
        assert not kept.keep_file.exists()
        gone = cli("ssh", run, "--cache-dir", root, timeout=60)
        assert gone.returncode == 3 and "no VM is kept in" in gone.stderr, gone.stderr
        kept = None
    finally:
        if kept is not None:
            keep.stop(kept)
