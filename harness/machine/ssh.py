# SPDX-License-Identifier: GPL-2.0
"""SSH to a guest with paramiko: pinned host key, one reused connection, commands, SFTP, the agent."""

from __future__ import annotations

import json
import logging
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import paramiko

from harness.errors import GuestCommandError, LostVMError

AGENT_SOURCE = Path(__file__).resolve().parent.parent / "guests" / "agent.py"
# While a guest boots, connection attempts fail by design; paramiko would print each one's traceback from
# its transport thread. The harness reports connection failures itself.
logging.getLogger("paramiko.transport").setLevel(logging.CRITICAL)

GUEST_PYTHON = "/usr/bin/python3"  # Debian's, explicitly: PATH may hold a slow pyenv shim


@dataclass(frozen=True)
class KeyPair:
    """A per-run client key and guest host key, generated on the host in a directory the guest cannot write."""

    dir: Path
    client_key: Path
    host_key: Path

    @property
    def host_public(self) -> str:
        return (self.host_key.with_suffix(".pub")).read_text().split()[1]

    @classmethod
    def generate(cls, directory: Path) -> KeyPair:
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        client, host = directory / "client_ed25519", directory / "host_ed25519"
        for path, comment in ((client, "bpf-audit-harness-client"), (host, "bpf-audit-harness-guest")):
            if not path.exists():
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                               check=True, capture_output=True)
        return cls(directory, client, host)


@dataclass(frozen=True)
class Target:
    """Where a guest is reached: host, port, user, client key and (optionally) the pinned host key."""

    host: str
    port: int
    user: str
    key: Path
    host_key_b64: str | None  # None: take the key from known_hosts (remote targets)
    known_hosts: Path | None = None  # extra known_hosts file for a remote target (else ~/.ssh/known_hosts)

    @classmethod
    def parse(cls, url: str, key: Path, known_hosts: Path | None = None) -> Target:
        """ssh://user@host:port as given to --target."""
        u = urlparse(url)
        if u.scheme != "ssh" or not u.hostname:
            raise ValueError(f"--target must look like ssh://user@host:port, not {url!r}")
        return cls(u.hostname, u.port or 22, u.username or "root", key, None, known_hosts)


@dataclass(frozen=True)
class CommandResult:
    argv: str
    rc: int
    stdout: str
    stderr: str
    seconds: float

    def check(self) -> CommandResult:
        if self.rc != 0:
            raise GuestCommandError(
                f"guest command failed (exit {self.rc}): {self.argv}\nstdout: {self.stdout[-1500:]}\n"
                f"stderr: {self.stderr[-1500:]}",
                output=self.stdout + self.stderr,
            )
        return self


class Guest:
    """One SSH connection to one guest, reused for every command, file and the agent channel."""

    def __init__(self, target: Target, *, describe: str = "guest") -> None:
        self.target = target
        self.describe = describe
        self._client: paramiko.SSHClient | None = None
        self._agent: AgentSession | None = None

    # -- connection -------------------------------------------------------------------------------------------
    def connect(self, timeout: float = 10.0) -> None:
        client = paramiko.SSHClient()
        if self.target.host_key_b64 is not None:
            name = self.target.host if self.target.port == 22 else f"[{self.target.host}]:{self.target.port}"
            client.get_host_keys().add(name, "ssh-ed25519", paramiko.Ed25519Key(data=_b64(self.target.host_key_b64)))
        else:
            client.load_system_host_keys()
            if self.target.known_hosts is not None:
                client.load_host_keys(str(self.target.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(
            self.target.host, port=self.target.port, username=self.target.user, key_filename=str(self.target.key),
            timeout=timeout, banner_timeout=timeout, auth_timeout=timeout,
            allow_agent=False, look_for_keys=False,
        )
        transport = client.get_transport()
        assert transport is not None
        transport.set_keepalive(5)
        self._client = client

    def wait_ready(self, deadline: float, alive=lambda: True) -> None:
        """Connect, retrying until `deadline` (monotonic) while `alive()` says the VM is still running."""
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not alive():
                raise LostVMError(f"{self.describe} exited before SSH came up")
            try:
                self.connect(timeout=min(10.0, max(1.0, deadline - time.monotonic())))
                return
            except (OSError, paramiko.SSHException, EOFError) as e:
                last = e
                time.sleep(0.5)
        raise LostVMError(f"SSH to {self.describe} never came up ({last})")

    @property
    def connected(self) -> bool:
        t = self._client.get_transport() if self._client else None
        return bool(t and t.is_active())

    def _transport_alive_after(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self.connected:
                return False
            time.sleep(0.1)
        return self.connected

    def reconnect(self) -> None:
        """After a dropped connection: one new connection, or LostVMError if the guest does not answer."""
        self.close()
        try:
            self.connect(timeout=10.0)
        except (OSError, paramiko.SSHException, EOFError) as e:
            raise LostVMError(f"{self.describe} does not answer a reconnect: {e}") from e

    def close(self) -> None:
        if self._agent is not None:
            self._agent.close()
            self._agent = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def _ssh(self) -> paramiko.SSHClient:
        if not self.connected:
            self.reconnect()
        assert self._client is not None
        return self._client

    # -- commands and files -----------------------------------------------------------------------------------
    def run(self, command: str, timeout: float = 60.0, *, check: bool = False) -> CommandResult:
        """Run one command (a shell string by nature: sshd hands it to the guest's shell)."""
        t0 = time.monotonic()
        try:
            _, out, err = self._ssh().exec_command(command, timeout=timeout)
            channel = out.channel
            stdout = out.read().decode(errors="replace")
            stderr = err.read().decode(errors="replace")
            rc = channel.recv_exit_status()
        except TimeoutError as e:  # socket.timeout is TimeoutError
            raise GuestCommandError(f"guest command timed out after {timeout:.0f}s: {command}") from e
        except (paramiko.SSHException, EOFError, OSError) as e:
            self.reconnect()  # raises LostVMError when the guest is gone
            raise GuestCommandError(f"connection dropped during: {command} ({e}); reconnected") from e
        if rc == -1 and not self._transport_alive_after(2.0):
            # No exit status and a dead transport: the connection (or the guest) went away mid-command.
            # (-1 on a live transport is a command killed by a signal: reported as is.)
            self.reconnect()  # raises LostVMError when the guest is gone
            raise GuestCommandError(f"connection dropped during: {command}; reconnected")
        result = CommandResult(command, rc, stdout, stderr, time.monotonic() - t0)
        return result.check() if check else result

    def put(self, local: Path, remote: str, mode: int | None = None) -> None:
        sftp = self._ssh().open_sftp()
        try:
            sftp.put(str(local), remote)
            if mode is not None:
                sftp.chmod(remote, mode)
        finally:
            sftp.close()

    def get(self, remote: str, local: Path) -> None:
        sftp = self._ssh().open_sftp()
        try:
            sftp.get(remote, str(local))
        finally:
            sftp.close()

    # -- the resident agent -----------------------------------------------------------------------------------
    def agent(self, timeout: float = 60.0) -> AgentSession:
        """The one resident agent process of this guest (pushed and started on first use)."""
        if self._agent is None or not self._agent.alive:
            remote = "/tmp/harness-agent.py"
            self.put(AGENT_SOURCE, remote)
            self._agent = AgentSession.start(self._ssh(), f"exec {GUEST_PYTHON} -S {remote}", timeout)
        return self._agent


class AgentSession:
    """JSON lines over one long-lived SSH channel to guests/agent.py."""

    def __init__(self, channel: paramiko.Channel, hello: dict) -> None:
        self.channel = channel
        self.hello = hello
        self._next_id = 1
        self._buf = b""
        self.stderr_tail = b""  # drained continuously: a full stderr pipe would block the agent

    @classmethod
    def start(cls, client: paramiko.SSHClient, command: str, timeout: float) -> AgentSession:
        transport = client.get_transport()
        assert transport is not None
        channel = transport.open_session()
        channel.exec_command(command)
        session = cls(channel, {})
        hello = session._read_line(timeout)
        if not hello.get("ok"):
            raise GuestCommandError(f"guest agent did not start: {hello}")
        session.hello = hello
        return session

    @property
    def alive(self) -> bool:
        return not self.channel.closed and not self.channel.exit_status_ready()

    def request(self, op: str, timeout: float = 60.0, *, guest_timeout: float | None = None, **args) -> dict:
        """Send one op and wait (host side) up to `timeout` for its answer. `guest_timeout` is the op's own
        `timeout` argument (e.g. how long a trigger may run in the guest), which `timeout` would shadow."""
        if guest_timeout is not None:
            args["timeout"] = guest_timeout
        req_id = self._next_id
        self._next_id += 1
        self.channel.sendall((json.dumps({"id": req_id, "op": op, **args}) + "\n").encode())
        while True:
            reply = self._read_line(timeout)
            if reply.get("id") == req_id:
                return reply

    def _read_line(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GuestCommandError(f"guest agent gave no answer within {timeout:.0f}s")
            self._drain_stderr()
            self.channel.settimeout(min(remaining, 1.0))
            try:
                chunk = self.channel.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                self._drain_stderr()
                raise GuestCommandError(f"guest agent exited: {self.stderr_tail.decode(errors='replace')[-1500:]}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError as e:
            raise GuestCommandError(f"guest agent printed a non-JSON line: {line[:500]!r}") from e

    def _drain_stderr(self) -> None:
        while self.channel.recv_stderr_ready():
            self.stderr_tail = (self.stderr_tail + self.channel.recv_stderr(65536))[-16384:]

    def close(self) -> None:
        try:
            if not self.channel.closed:
                self.channel.shutdown_write()
                self.channel.close()
        except (OSError, paramiko.SSHException, EOFError):
            pass


def _b64(text: str) -> bytes:
    import base64

    return base64.b64decode(text)
