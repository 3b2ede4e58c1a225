# SPDX-License-Identifier: GPL-2.0
"""Keep a failing test's VM for inspection: handed over by its pytest owner, reached with ssh, stopped later.

The VM runs under harness/machine/reaper.py, which ends its process group when the owner (the pytest process that
booted it) exits. A kept VM has a keep file beside its record in the run directory (`<name>.kept.json`, written
by hand_over): when the owner exits, the reaper writes the deadline into it (now + the minutes asked for) and
keeps the VM until then, or until the file is removed (`bpf-audit-harness ssh RUN --stop` does that and ends the
group at once). lifetime.reap_orphans spares a kept VM until its deadline.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.errors import LostVMError, UsageError
from harness.machine import lifetime
from harness.settings import KEPT_SUFFIX

DEFAULT_MINUTES = 30.0
PIN_DIR = "/sys/fs/bpf/bpf-audit-harness"  # where a kept case's program is pinned in the guest


@dataclass
class KeptVM:
    """What the user needs to reach a kept VM; also the content of the run's note for the terminal summary."""

    run_dir: str
    name: str
    port: int
    case: str = ""
    minutes: float = DEFAULT_MINUTES
    notes: list[str] = field(default_factory=list)  # e.g. where the case's program is pinned

    @property
    def key_dir(self) -> Path:
        return Path(self.run_dir) / f"{self.name}-ssh"

    @property
    def known_hosts(self) -> Path:
        return self.key_dir / "known_hosts"

    @property
    def keep_file(self) -> Path:
        return lifetime.kept_file(Path(self.run_dir), self.name)

    def ssh_argv(self, command: Sequence[str] = ()) -> list[str]:
        """The ssh command line into the guest (root, the run's key, its host key pinned)."""
        return ["ssh", "-i", str(self.key_dir / "client_ed25519"), "-p", str(self.port),
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR", "root@127.0.0.1", *command]

    def write_known_hosts(self) -> None:
        host_key = (self.key_dir / "host_ed25519.pub").read_text().split()[1]
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} ssh-ed25519 {host_key}\n")

    def pgid(self) -> int | None:
        return lifetime.recorded_groups(Path(self.run_dir)).get(self.name)

    def running(self) -> bool:
        pgid, start = lifetime.recorded(Path(self.run_dir)).get(self.name, (None, None))
        return pgid is not None and lifetime.group_alive(pgid) and lifetime.is_our_reaper(pgid, start)

    def deadline(self) -> float:
        """lifetime.kept_until of the keep file: 0 not kept, inf while its pytest owner still runs."""
        return lifetime.kept_until(self.keep_file)

    def describe_deadline(self) -> str:
        deadline = self.deadline()
        if deadline == float("inf"):
            return f"kept until {self.minutes:g} min after the pytest run that kept it ends"
        if deadline <= 0:
            return "not kept any more"
        left = max(0.0, deadline - time.time())
        return f"kept until {time.strftime('%H:%M:%S', time.localtime(deadline))} ({left / 60:.0f} min from now)"


@dataclass
class Keeper:
    """One per pytest run (controller and workers alike): the first failing test claims the run's one kept VM."""

    minutes: float
    note_path: Path  # the run directory's kept-vm (harness.run_kernel.session): the claim, then the KeptVM

    def claim(self) -> bool:
        """True for the first caller of the whole run (all xdist workers), False after."""
        path = self.note_path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            return False
        return True

    def note(self, kept: KeptVM) -> None:
        path = self.note_path
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(kept)) + "\n")
        os.replace(tmp, path)

    def kept(self) -> KeptVM | None:
        try:
            return KeptVM(**json.loads(self.note_path.read_text()))
        except (OSError, ValueError, TypeError):
            return None


def parse_minutes(text: str) -> float:
    """--keep-vm-on-failure's value."""
    import argparse

    try:
        minutes = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of minutes (pytest: write --keep-vm-on-failure=MINUTES, or put the option "
            "after the test paths)") from None
    if not 0 < minutes <= 24 * 60:
        raise argparse.ArgumentTypeError(f"{text} minutes: give 0 < MINUTES <= 1440")
    return minutes


def hand_over(vm, minutes: float, case: str, notes: list[str]) -> KeptVM:
    """Keep `vm` (a running LocalVM) after this process exits: write its keep file and known_hosts, and stop
    managing it here (no stop() at the end of the session)."""
    assert vm.port is not None
    kept = KeptVM(str(vm.run_dir), vm.name, vm.port, case, minutes, notes)
    kept.write_known_hosts()
    tmp = kept.keep_file.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"minutes": minutes, "case": case, "kept_at": time.time(), "owner_pid": os.getpid(),
                               "notes": notes}) + "\n")
    os.replace(tmp, kept.keep_file)
    vm.release()
    return kept


def find(run: str, runs_root: Path) -> KeptVM:
    """The kept VM of run directory `run` (a path, or a name under the cache's runs/)."""
    path = Path(run).expanduser()
    if not path.is_dir():
        path = runs_root / run
    if not path.is_dir():
        raise UsageError(f"no run directory {run!r} (looked for it as a path and in {runs_root}); the pytest summary "
                         "of a --keep-vm-on-failure run names it.")
    keep_files = sorted(path.glob(f"*{KEPT_SUFFIX}"))
    if not keep_files:
        raise LostVMError(f"no VM is kept in {path}: it was stopped (`--stop`, or its time ran out), or none was "
                          "kept (pytest --keep-vm-on-failure keeps the first failing case's VM).")
    name = keep_files[0].name.removesuffix(KEPT_SUFFIX)
    try:
        record = json.loads((path / f"{name}{lifetime.RECORD_SUFFIX}").read_text())
        data = json.loads(keep_files[0].read_text())
    except (OSError, ValueError) as e:
        raise LostVMError(f"the kept VM {name} in {path} has no readable record: {e}") from e
    kept = KeptVM(str(path), name, int(record["port"]), data.get("case", ""), data.get("minutes", DEFAULT_MINUTES),
                  data.get("notes", []))
    if not kept.running():
        kept.keep_file.unlink(missing_ok=True)
        raise LostVMError(f"the kept VM {name} in {path} is not running any more (console log: "
                          f"{path / (name + '-console.log')}).")
    return kept


def extend(kept: KeptVM, minutes: float) -> float:
    """Keep the VM `minutes` from now (whether or not its pytest owner still runs); returns the deadline."""
    data = json.loads(kept.keep_file.read_text())
    data.update(deadline=time.time() + 60 * minutes, minutes=minutes)
    tmp = kept.keep_file.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data) + "\n")
    os.replace(tmp, kept.keep_file)
    return data["deadline"]


def stop(kept: KeptVM, timeout: float = 15.0) -> None:
    """End the kept VM now: remove its keep file and end its process group (SIGTERM to the reaper's group, which
    gives QEMU a moment, then SIGKILL)."""
    kept.keep_file.unlink(missing_ok=True)
    pgid = kept.pgid()
    if pgid is not None and kept.running():
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while lifetime.group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if not lifetime.group_alive(pgid):
                break
    shutil.rmtree(Path(kept.run_dir) / f"{kept.name}-tmp", ignore_errors=True)
