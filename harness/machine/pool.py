# SPDX-License-Identifier: GPL-2.0
"""One machine per pytest worker: a local VM booted on demand, or a remote SSH target; replaced when lost."""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import GuestCommandError, LostVMError
from harness.machine import lifetime
from harness.machine.ssh import Guest, Target
from harness.machine.vm import LocalVM, VMConfig


class RemoteMachine:
    """A test machine reached over SSH (--target ssh://user@host:port): same interface as a LocalVM."""

    def __init__(self, target: Target, run_dir: Path, name: str) -> None:
        self.target = target
        self.run_dir = run_dir
        self.name = name
        self.console_log: Path | None = None
        self.boot_seconds: float | None = None
        self.guest: Guest | None = None

    def start(self) -> RemoteMachine:
        self.guest = Guest(self.target, describe=f"target {self.target.host}:{self.target.port}")
        try:
            self.guest.connect(timeout=15)
        except Exception as e:
            raise LostVMError(f"cannot reach {self.guest.describe}: {e}") from e
        return self

    def alive(self) -> bool:
        if self.guest is None:
            return False
        try:
            self.guest.run("true", timeout=15)
            return True
        except (LostVMError, GuestCommandError):
            return False

    def findings(self) -> tuple:
        return ()

    def lost(self, why: str) -> LostVMError:
        return LostVMError(f"{self.name} lost: {why}")

    def kill(self) -> None:
        """Cut the connection (a remote machine is not ours to kill): a command waiting on it ends."""
        if self.guest is not None:
            self.guest.close()

    def stop(self) -> None:
        if self.guest is not None:
            self.guest.remove_private_dir()  # the machine is not ours: leave nothing of the session on it
            self.guest.close()


@dataclass
class PoolConfig:
    kernel: Path | None
    accel: str
    run_dir: Path
    state_dir: Path
    worker: str
    target: str | None = None
    target_key: Path | None = None
    target_known_hosts: Path | None = None
    memory: str = "1G"
    append: tuple[str, ...] = ()  # extra kernel command line (a matrix target's `append`, then --append)
    cpus: int = 1
    gdb_port: int | None = None  # QEMU's gdb stub of this pool's VM (--gdb); a replacement VM reuses the port


class VMPool:
    """The machine of one worker. `get()` returns a live one, booting or replacing as needed."""

    def __init__(self, cfg: PoolConfig) -> None:
        self.cfg = cfg
        self.machine: LocalVM | RemoteMachine | None = None
        self.generation = 0
        self.replaced: list[str] = []
        # The layers above keep their per-machine state here (dropped with the machine by their fixtures):
        self.case_sessions: dict[int, Any] = {}  # id(machine) -> its harness.cases.session.GuestSession
        self.selftest_sessions: dict[Any, Any] = {}  # libbpf -> its harness.selftests.run.SelftestSession
        lifetime.exit_on_hangup_and_term()
        # The safety net: VMs a killed run left behind (its reaper should have ended them already).
        lifetime.reap_orphans(cfg.run_dir.parent, say=lambda msg: print(msg, file=sys.stderr, flush=True))

    def get(self) -> LocalVM | RemoteMachine:
        if self.machine is not None and not self.machine.alive():
            self.discard("found dead before use")
        if self.machine is None:
            self.machine = self._new()
        return self.machine

    def _new(self) -> LocalVM | RemoteMachine:
        self.generation += 1
        name = f"{self.cfg.worker}-{self.generation}"
        if self.cfg.target:
            key = self.cfg.target_key or Path.home() / ".ssh" / "id_ed25519"
            target = Target.parse(self.cfg.target, key, self.cfg.target_known_hosts)
            return RemoteMachine(target, self.cfg.run_dir, name).start()
        assert self.cfg.kernel is not None
        vm = LocalVM(VMConfig(kernel=self.cfg.kernel, accel=self.cfg.accel, memory=self.cfg.memory,
                              cpus=self.cfg.cpus, append=self.cfg.append, gdb_port=self.cfg.gdb_port),
                     self.cfg.run_dir, name=name, state_dir=self.cfg.state_dir)
        try:
            return vm.start()
        except BaseException:
            vm.stop()
            raise

    def responsive(self, timeout: float = 20.0) -> bool:
        """Whether the current machine still runs a command; used after a failed test to spot a wedged guest."""
        if self.machine is None or self.machine.guest is None:
            return False
        try:
            return self.machine.guest.run("true", timeout=timeout).rc == 0
        except (LostVMError, GuestCommandError):
            return False

    def discard(self, why: str) -> None:
        """Throw the current machine away (it is lost or wedged); the next get() boots a fresh one."""
        if self.machine is not None:
            self.replaced.append(f"{self.machine.name}: {why}")
            self.machine.stop()
            self.machine = None

    def release(self) -> LocalVM | RemoteMachine | None:
        """Forget the current machine without stopping it (it was kept for inspection); the next get() boots a
        fresh one."""
        machine, self.machine = self.machine, None
        return machine

    def close(self) -> None:
        if self.machine is not None:
            self.machine.stop()
            self.machine = None


class Watchdog:
    """Per-test time limit: when it expires the machine is killed, so whatever waits on the guest ends with a
    lost VM; the vm fixture then discards the machine and the next test boots a fresh one."""

    def __init__(self, machine, seconds: float) -> None:
        self.machine = machine
        self.seconds = seconds
        self.fired = False  # set before the kill: whoever sees the lost VM can tell it was this
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        self.fired = True
        self.machine.kill()

    def cancel(self) -> None:
        self._timer.cancel()
