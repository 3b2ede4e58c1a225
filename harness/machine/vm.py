# SPDX-License-Identifier: GPL-2.0
"""Boot a kernel artifact under virtme-ng/QEMU with the run's own sshd; stop it; never leak a QEMU."""

from __future__ import annotations

import atexit
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import LostVMError, MissingToolError
from harness.machine import accel, lifetime
from harness.machine.options import GDB_APPEND
from harness.machine.ssh import Guest, KeyPair, Target
from harness.settings import GUESTS_DIR, refuse_if_forbidden
from harness.tools import quoted, require

BOOT_SCRIPT = GUESTS_DIR / "boot-sshd.sh"
DEFAULT_APPEND = (
    "audit=1",  # every task gets an audit context at fork (audit_alloc needs audit_ever_enabled)
    "audit_backlog_limit=8192",
    "log_buf_len=16M",
    "net.ifnames=0",
    "hung_task_timeout_secs=30",
    "printk.devkmsg=on",  # the agent's /dev/kmsg lines must not be rate-limited away
    "printk.time=1",  # timestamps in the console log (the lean config has no CONFIG_PRINTK_TIME)
)
# sshd -e prints this on the console once it listens: connecting earlier only meets QEMU's user-mode
# network, which accepts the host side at once and leaves the SSH client waiting for a banner.
SSHD_READY = "Server listening on 10.0.2.15 port 22"

_LIVE: set[LocalVM] = set()


@dataclass(frozen=True)
class VMConfig:
    kernel: Path  # bzImage
    accel: str = "auto"  # auto | kvm | tcg
    memory: str = "1G"
    cpus: int = 1
    append: tuple[str, ...] = ()
    boot_timeout: float = 240.0
    gdb_port: int | None = None  # QEMU's gdb stub on 127.0.0.1:PORT (and the kernel booted with nokaslr)
    vng: str = field(default_factory=lambda: _find_vng())


def _find_vng() -> str:
    for candidate in (shutil.which("vng"), str(Path(sys.executable).parent / "vng")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return "vng"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SSHD_CONFIG = """\
# sshd for one bpf-audit-harness guest: key-only root login, reachable only through QEMU's
# loopback-only forward (hostfwd=tcp:127.0.0.1:PORT-:22).
ListenAddress 10.0.2.15:22
HostKey "{host_key}"
AuthorizedKeysFile "{authorized_keys}"
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
AllowTcpForwarding no
AllowStreamLocalForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTunnel no
PidFile /run/harness-sshd.pid
Subsystem sftp internal-sftp
MaxSessions 64
MaxStartups 64
"""


class LocalVM:
    """One guest: vng -> virtme-run -> qemu, in its own process group, with a console log on disk."""

    def __init__(self, config: VMConfig, run_dir: Path, *, name: str = "vm", state_dir: Path | None = None) -> None:
        self.config = config
        self.run_dir = run_dir
        self.name = name
        self.state_dir = state_dir or run_dir
        self.console_log = run_dir / f"{name}-console.log"
        # virtme-run's own temp files (its exit-code file, made with mkstemp) go here, not in the user's
        # TMPDIR: it only removes them at exit, which a killed virtme-run never reaches. stop() removes it.
        self.tmp_dir = run_dir / f"{name}-tmp"
        if _splits(self.tmp_dir):  # virtme-run hands its temp files to QEMU unquoted
            self.tmp_dir = Path(tempfile.mkdtemp(prefix=f"bpf-audit-harness-{name}-"))
        self.proc: subprocess.Popen | None = None
        self.guest: Guest | None = None
        self.port: int | None = None
        self.accel: accel.AccelChoice | None = None
        self.boot_seconds: float | None = None

    # -- lifecycle --------------------------------------------------------------------------------------------
    def start(self) -> LocalVM:
        if not self.config.kernel.is_file():
            raise LostVMError(f"kernel image {self.config.kernel} does not exist")
        if shutil.which(self.config.vng) is None and not os.access(self.config.vng, os.X_OK):
            raise MissingToolError("vng (virtme-ng) not found: run `make venv` (it is a pip package of the project)")
        require("qemu-system-x86_64")  # vng would only say it found no QEMU; this names the Debian package
        refuse_if_forbidden("boot", f"booting {self.name} ({self.config.kernel})")
        self.accel = accel.choose(self.config.accel, self.state_dir, self.config.kernel)
        keys = KeyPair.generate(self.run_dir / f"{self.name}-ssh")
        sshd_config = keys.dir / "sshd_config"
        authorized = keys.dir / "authorized_keys"
        authorized.write_text(keys.client_key.with_suffix(".pub").read_text())
        sshd_config.write_text(SSHD_CONFIG.format(host_key=keys.host_key, authorized_keys=authorized))
        shutil.copyfile(BOOT_SCRIPT, keys.dir / BOOT_SCRIPT.name)
        last_error: LostVMError | None = None
        for _attempt in range(3):  # a port taken between free_port() and QEMU's bind: try another
            self.port = free_port()
            try:
                self._launch(keys)
                return self
            except LostVMError as e:
                last_error = e
                self.stop()
                if "Could not set up host forwarding rule" not in self.console_text():
                    raise
        assert last_error is not None
        raise last_error

    def _kernel_path(self) -> Path:
        """The kernel image as vng can take it: vng pastes --run into virtme-run's command line unquoted, so a
        path with a space reaches it through a link to its directory (the image's neighbours, e.g. a distro
        kernel's modules, stay beside it)."""
        kernel = self.config.kernel
        if not _splits(kernel):
            return kernel
        link = self.tmp_dir / "kernel-dir"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(kernel.parent)
        return link / kernel.name

    def argv(self, sshdir: Path) -> list[str]:
        assert self.port is not None and self.accel is not None
        gdb = self.config.gdb_port
        append = " ".join(DEFAULT_APPEND + (GDB_APPEND if gdb is not None else ()) + self.config.append)
        # --force-9p: the host root reaches the guest over read-only 9p on every machine. virtme would
        # otherwise try virtiofsd first, which (a) shares the root read-write when that virtiofsd lacks
        # --readonly, so the guest could write the run's key directory, and (b) on Debian 12's legacy
        # virtiofsd fails after ~3 s of polling before virtme falls back to 9p anyway (every boot).
        argv = [self.config.vng, "--run", str(self._kernel_path()), "--verbose", "--user", "root", "--cwd", "/",
                "--force-9p", "--memory", self.config.memory, "--cpus", str(self.config.cpus), "--append", append]
        if self.accel.accel == "tcg":
            argv.append("--disable-kvm")
        if not _splits(sshdir):
            # The run's keys and sshd_config mounted read-only over whatever the guest sees there: the root is
            # read-only in the guest, but virtme overlays /tmp (and others) writable, and a cache may live there.
            # (vng pastes --rodir into virtme-run's command line unquoted: a path with a space cannot be given.)
            argv.append(f"--rodir={sshdir}")
        # restrict=on: the guest reaches nothing (not the host's loopback services, not the world); the one
        # forward into it still works. Paths are quoted: a cache directory may have spaces in its name.
        # The boot script runs from the run's key directory (a copy put there by start()): that directory reaches
        # the guest wherever it is, an installed package's data (say in a venv under /tmp, the guest's own) may not.
        # gdb: QEMU's stub listens on the host's loopback only, like the ssh forward.
        argv += ["--exec", shlex.join(["/bin/sh", str(sshdir / BOOT_SCRIPT.name), str(sshdir)]),
                 f"--qemu-opts=-device virtio-net-pci,netdev=hs "
                 f"-netdev user,id=hs,restrict=on,hostfwd=tcp:127.0.0.1:{self.port}-10.0.2.15:22"
                 + (f" -gdb tcp:127.0.0.1:{gdb}" if gdb is not None else "")]
        return argv

    def _launch(self, keys: KeyPair) -> None:
        argv = self.argv(keys.dir)
        t0 = time.monotonic()
        env = dict(os.environ)
        # vng runs virtme-run (same venv) by name: make sure that venv is on PATH.
        env["PATH"] = f"{Path(self.config.vng).parent}:{env.get('PATH', '/usr/bin:/bin')}"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        env["TMPDIR"] = str(self.tmp_dir)
        # Under the reaper, in a session of its own: the group holds vng, virtme-run and QEMU, and ends when
        # this process does, however it ends (unless the VM was kept for inspection: harness.machine.keep).
        # The console goes straight to its log file, not through this process: a kept VM outlives it.
        with self.console_log.open("ab") as log:
            log.write(f"$ {quoted(argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(lifetime.owned(argv, keep_file=lifetime.kept_file(self.run_dir, self.name)),
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, cwd="/", env=env)
        _LIVE.add(self)
        lifetime.own_group(self.proc.pid, self.name, self.console_log)  # SIGHUP/SIGTERM end it at once
        lifetime.write_record(self.run_dir, self.name, self.proc.pid, kernel=str(self.config.kernel),
                              port=self.port)
        assert self.port is not None
        target = Target("127.0.0.1", self.port, "root", keys.client_key, keys.host_public)
        self.guest = Guest(target, describe=f"guest {self.name} (console: {self.console_log})")
        deadline = t0 + self.config.boot_timeout
        try:
            self._wait_console(SSHD_READY, deadline)
            self.guest.wait_ready(deadline, alive=self.alive)
        except LostVMError as e:
            raise self.lost(str(e)) from e
        self.boot_seconds = time.monotonic() - t0

    def _wait_console(self, marker: str, deadline: float) -> None:
        """Wait for `marker` on the console; a VM that exits or panics first is lost."""
        seen = 0
        while time.monotonic() < deadline:
            text = self.console_text()
            if marker in text[max(0, seen - len(marker)):]:
                return
            seen = len(text)
            if not self.alive():
                raise LostVMError(f"{self.name} exited before sshd started")
            time.sleep(0.05)
        raise LostVMError(f"sshd did not start within {self.config.boot_timeout:.0f}s")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def console_text(self) -> str:
        try:
            return self.console_log.read_text(errors="replace")
        except OSError:
            return ""

    def findings(self) -> tuple:
        from harness.machine import console

        return tuple(console.scan(self.console_text()))

    def lost(self, why: str) -> LostVMError:
        """A LostVMError for this VM with the console findings and log path."""
        findings = self.findings()
        excerpt = ""
        if findings:
            excerpt = "\n" + "\n".join(f"[{f.kind}] {f.excerpt}" for f in findings[:3])[-3000:]
        else:
            excerpt = "\nLast console lines:\n" + "\n".join(self.console_text().splitlines()[-15:])
        return LostVMError(f"VM {self.name} lost: {why}{excerpt}", console_log=self.console_log, findings=findings)

    def kill(self) -> None:
        """SIGKILL the process group now, from any thread (a watchdog); stop() later reaps and cleans up."""
        proc = self.proc
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 5.0) -> None:
        """Kill the whole process group (vng, virtme-run, qemu); the guest is disposable."""
        if self.guest is not None:
            self.guest.close()
        proc, self.proc = self.proc, None
        if proc is not None:
            _kill_group(proc, timeout)
            lifetime.disown_group(proc.pid)
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        _LIVE.discard(self)

    def release(self) -> None:
        """Stop managing this VM without stopping it (it is kept for inspection: its reaper, told by the keep file,
        ends it later). Only the connection goes; stop() and exit no longer touch the VM."""
        if self.guest is not None:
            self.guest.close()
        if self.proc is not None:
            lifetime.disown_group(self.proc.pid)  # kept: a signal to this process must not end it
        self.proc = None
        _LIVE.discard(self)

    def qemu_pids(self) -> list[int]:
        """PIDs of QEMU processes in this VM's process group (for leak checks)."""
        if self.proc is None:
            return []
        return qemu_pids_in_group(self.proc.pid)

    def __enter__(self) -> LocalVM:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _splits(path: Path) -> bool:
    return any(c.isspace() for c in str(path))


def qemu_pids_in_group(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) == pgid and (entry / "comm").read_text().startswith("qemu-system"):
                pids.append(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
    return pids


def _kill_group(proc: subprocess.Popen, timeout: float) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=timeout)
            # the leader exited; make sure no member (qemu) of the group survives it
            if not qemu_pids_in_group(proc.pid):
                break
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    # SIGKILL is delivered at once but a dying QEMU takes a moment to go (its memory is freed first): stop()
    # returns when the group is really empty.
    deadline = time.monotonic() + 10
    while lifetime.group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)


@atexit.register
def _stop_all() -> None:
    for vm in list(_LIVE):
        vm.stop(timeout=2)
