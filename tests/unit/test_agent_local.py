# SPDX-License-Identifier: GPL-2.0
"""The guest agent run on this host over a pipe, as the zipapp the guest runs: real libbpf loads, verifier logs,
attach, triggers and audit."""

from __future__ import annotations

import errno
import io
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from helpers import DATA, group_gone

from harness.machine.ssh import AGENT_PACKAGE, agent_zipapp, build_agent_zipapp
from harness.settings import REPO_ROOT

PYTHON = "/usr/bin/python3"  # what the guest runs: Debian's python, no site-packages
CLANG = "clang-19"
BTF_VMLINUX = Path("/sys/kernel/btf/vmlinux")
FIXTURES = ("agent-sk-ref", "agent-task-ref", "agent-observe", "agent-kptr", "agent-testrun")
AUDIT_USER_AVC = 1107  # accepted by the kernel even with audit disabled: no host setting changes


class AgentClient:
    """Starts the agent as the host will (the zipapp, interpreter path, -S) and speaks its JSON-lines protocol."""

    def __init__(self, workdir: Path, *args: str) -> None:
        stamp = time.monotonic_ns()
        self.pyz = workdir / f"agent-{stamp}.pyz"
        self.pyz.write_bytes(agent_zipapp())
        self.stderr_path = workdir / f"agent-{stamp}.stderr"
        self._stderr = open(self.stderr_path, "wb")  # closed in close()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [PYTHON, "-S", str(self.pyz), *(args or ("--no-kmsg",))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            bufsize=0,
        )
        self._buf = b""
        self._next_id = 1
        self.hello = self.read(timeout=60)
        self.startup = time.monotonic() - self.started

    @property
    def pid(self) -> int:
        return self.proc.pid

    def read(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"agent sent no line in {timeout}s; stderr: {self.stderr()}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise EOFError(f"agent closed stdout (rc {self.proc.poll()}); stderr: {self.stderr()}")
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError:
            raise AssertionError(f"agent printed a non-JSON line on stdout: {line[:200]!r}") from None

    def send_raw(self, line: bytes) -> None:
        self.proc.stdin.write(line + b"\n")
        self.proc.stdin.flush()

    def request(self, op: str, reply_within: float = 60, **args: object) -> dict:
        rid = self._next_id
        self._next_id += 1
        self.send_raw(json.dumps({"id": rid, "op": op, **args}).encode())
        res = self.read(reply_within)
        assert res["id"] == rid, res
        assert isinstance(res["ok"], bool)
        if not res["ok"]:
            assert res.get("error"), res
        return res

    def ok(self, op: str, **args: object) -> dict:
        res = self.request(op, **args)
        assert res["ok"], res
        return res

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")[-2000:]

    def close(self, timeout: float = 30) -> int:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._stderr.close()
        return rc


@pytest.fixture
def agent(tmp_path: Path):
    client = AgentClient(tmp_path)
    yield client
    if client.proc.poll() is None:
        assert client.request("ping")["ok"], "agent no longer answers"
        assert client.close() == 0, client.stderr()


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (CAP_BPF, CAP_SYS_ADMIN, CAP_AUDIT_CONTROL) to load BPF and talk to audit")


@pytest.fixture(scope="session")
def bpf_objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """vmlinux.h from this kernel's BTF, then every tests/data/agent-*.bpf.c compiled with clang-19."""
    need_root()
    if not BTF_VMLINUX.exists():
        pytest.skip(f"{BTF_VMLINUX} missing: the host kernel has no BTF (CONFIG_DEBUG_INFO_BTF)")
    for tool in (CLANG, "bpftool"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    if not Path("/usr/include/bpf/bpf_helpers.h").exists():
        pytest.skip("libbpf headers missing (/usr/include/bpf, Debian package libbpf-dev)")
    out = tmp_path_factory.mktemp("bpf")
    with open(out / "vmlinux.h", "wb") as f:
        subprocess.run(["bpftool", "btf", "dump", "file", str(BTF_VMLINUX), "format", "c"], stdout=f, check=True)
    objs = {}
    for name in FIXTURES:
        obj = out / f"{name}.o"
        cmd = [CLANG, "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86", f"-I{out}"]
        subprocess.run([*cmd, "-c", str(DATA / f"{name}.bpf.c"), "-o", str(obj)], check=True)
        objs[name] = obj
    return objs


def prog_exists(prog_id: int) -> bool:
    return subprocess.run(["bpftool", "prog", "show", "id", str(prog_id)], capture_output=True).returncode == 0


def wait_prog_gone(prog_id: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not prog_exists(prog_id):
            return True
        time.sleep(0.05)
    return False


def read_bss(prog_id: int) -> dict:
    """The formatted .bss of a loaded program, read with bpftool (the test's own process, not the agent)."""
    show = json.loads(
        subprocess.run(["bpftool", "-j", "prog", "show", "id", str(prog_id)], capture_output=True, check=True).stdout
    )
    for map_id in show.get("map_ids", []):
        dump = json.loads(
            subprocess.run(["bpftool", "-j", "map", "dump", "id", str(map_id)], capture_output=True, check=True).stdout
        )
        for entry in dump:
            fields = entry.get("formatted", {}).get("value", {}).get(".bss")
            if fields is not None:
                merged: dict = {}
                for item in fields:
                    merged.update(item)
                return merged
    raise AssertionError(f"no .bss map found for prog id {prog_id}")


def lsm_active() -> bool | None:
    try:
        return "bpf" in Path("/sys/kernel/security/lsm").read_text().split(",")
    except OSError:
        return None


@pytest.fixture(scope="session")
def lsm_loadable(bpf_objects: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip LSM cases where this kernel refuses BPF_PROG_TYPE_LSM before the verifier runs."""
    client = AgentClient(tmp_path_factory.mktemp("lsm-probe"))
    try:
        res = client.ok("load", path=str(bpf_objects["agent-observe"]), programs=["observe_open"])
        if res["loaded"]:
            client.ok("unload", handle=res["handle"])
            return
        if not res["verifier_log"]:
            pytest.skip(
                f"this kernel refuses BPF_PROG_TYPE_LSM programs before verification "
                f"(errno {res['errno']}: {os.strerror(res['errno'])}; no BPF LSM support here)"
            )
        raise AssertionError(f"the allow-all LSM probe program was rejected: {res['verifier_log'][-2000:]}")
    finally:
        client.close()


# ---------------------------------------------------------------------------------------------------------------------
# Protocol basics


def test_hello_then_ping(agent: AgentClient) -> None:
    hello = agent.hello
    assert hello["id"] == 0 and hello["ok"] is True and hello["op"] == "hello"
    assert hello["pid"] == agent.pid
    assert hello["kernel"] == os.uname().release
    assert hello["libbpf"] and "libbpf.so" in hello["libbpf"] and Path(hello["libbpf"]).exists()
    res = agent.ok("ping")
    assert set(res) == {"id", "ok", "elapsed"}


# What the guest runs: one zipapp; from bytecode when its Python matches the host's, else from source.
HELLO_FIELDS = {"id", "ok", "op", "pid", "kernel", "libbpf", "libbpf_version", "python", "startup"}


def _with_foreign_bytecode(pyz: bytes) -> bytes:
    """The archive as a guest with another Python sees it: every .pyc has a magic number it does not know."""
    src, out = zipfile.ZipFile(io.BytesIO(pyz)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for info in src.infolist():
            data = src.read(info)
            z.writestr(info, b"\0\0\r\n" + data[4:] if info.filename.endswith(".pyc") else data)
    return out.getvalue()


ZIPAPPS = {  # variant: (archive, the file agent.dispatch is loaded from)
    "bytecode": (agent_zipapp, "dispatch.pyc"),
    "source-only": (lambda: build_agent_zipapp(bytecode=False), "dispatch.py"),
    "foreign-python": (lambda: _with_foreign_bytecode(agent_zipapp()), "dispatch.py"),
}


@pytest.mark.parametrize("variant", ZIPAPPS)
def test_zipapp_under_python_s_says_hello_without_importing_re_or_json(tmp_path: Path, variant: str) -> None:
    build, loaded_from = ZIPAPPS[variant]
    pyz = tmp_path / "agent.pyz"
    pyz.write_bytes(build())
    proc = subprocess.run([PYTHON, "-S", "-X", "importtime", str(pyz), "--no-kmsg"], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, lines
    hello = json.loads(lines[0])
    assert set(hello) == HELLO_FIELDS, hello
    assert (hello["id"], hello["ok"], hello["op"]) == (0, True, "hello")
    assert hello["kernel"] == os.uname().release and hello["pid"] > 0 and hello["startup"] >= 0
    assert hello["python"] == subprocess.run([PYTHON, "-c", "import platform; print(platform.python_version())"],
                                             capture_output=True, text=True, check=True).stdout.strip()
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.decode().splitlines()
                if line.startswith("import time:")}
    assert "agent.dispatch" in imported and "_json" in imported, sorted(imported)
    assert not imported & {"re", "json", "json.decoder", "enum"}, sorted(imported)
    where = "import sys; sys.path.insert(0, sys.argv[1]); import agent.dispatch as d; print(d.__file__)"
    probe = subprocess.run([PYTHON, "-S", "-c", where, str(pyz)], capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == f"{pyz}/agent/{loaded_from}"


def test_zipapp_build_is_deterministic(tmp_path: Path) -> None:
    first = build_agent_zipapp()
    assert build_agent_zipapp() == first
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert names[0] == "__main__.py" and "agent/__main__.py" in names and "agent/dispatch.pyc" in names
    # Another checkout (other mtimes and modes) and another process (an xdist worker) build the same bytes.
    copy = tmp_path / "agent"
    shutil.copytree(AGENT_PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for path in copy.iterdir():
        path.chmod(0o600)
        os.utime(path, (1e9, 1e9))
    assert build_agent_zipapp(copy) == first
    other = subprocess.run([sys.executable, "-c", "import sys; from harness.machine.ssh import build_agent_zipapp; "
                            "sys.stdout.buffer.write(build_agent_zipapp())"], cwd=REPO_ROOT, capture_output=True,
                           check=True)
    assert other.stdout == first


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"op": "ping"}', "integer 'id'"),
        (b'{"id": 7, "op": "frobnicate"}', "unknown op 'frobnicate'"),
        (b'{"id": 7, "op": "load"}', "missing argument 'path'"),
        (b'{"id": 7, "op": "load", "path": 5}', "'path' must be a string"),
        (b'{"id": 7, "op": "load", "path": "/nonexistent.o"}', "no such object file"),
        (b'{"id": 7, "op": "load", "path": "/etc/hostname", "log_size": 1}', "log_size"),
        (b'{"id": 7, "op": "unload", "handle": 99}', "no loaded object with handle 99"),
        (b'{"id": 7, "op": "attach", "handle": 99, "program": "x"}', "no loaded object"),
        (b'{"id": 7, "op": "detach", "link": 99}', "no link with handle 99"),
        (b'{"id": 7, "op": "trigger"}', "exactly one of 'shell' or 'action'"),
        (b'{"id": 7, "op": "trigger", "action": "teleport"}', "unknown action 'teleport'"),
        (b'{"id": 7, "op": "trigger", "action": "open"}', "missing argument 'path'"),
        (b'{"id": 7, "op": "trigger", "action": "open", "path": "/x", "flags": "q"}', "'flags'"),
        (b'{"id": 7, "op": "trigger", "shell": "true", "timeout": -1}', "'timeout'"),
        (b'{"id": 7, "op": "trigger", "shell": "true", "comm": "x"}', "only to built-in actions"),
        (b'{"id": 7, "op": "audit_read"}', "audit is not open"),
        (b'{"id": 7, "op": "audit_set"}', "at least one of"),
        (b'{"id": 7, "op": "audit_set", "enabled": 5}', "0, 1 or 2"),
    ],
)
def test_bad_request_is_answered_and_agent_survives(agent: AgentClient, line: bytes, fragment: str) -> None:
    agent.send_raw(line)
    res = agent.read(timeout=30)
    assert res["ok"] is False, res
    assert fragment in res["error"], res
    assert res["id"] == (7 if b'"id": 7' in line else None)
    assert agent.request("ping")["ok"]


def test_missing_libbpf_is_reported_and_other_ops_work(tmp_path: Path) -> None:
    client = AgentClient(tmp_path, "--no-kmsg", "--libbpf", str(tmp_path / "no-libbpf.so.1"))
    try:
        assert client.hello["ok"] is True and client.hello["libbpf"] is None
        assert "no-libbpf.so.1" in client.hello["libbpf_error"]
        res = client.request("load", path="/etc/hostname")
        assert res["ok"] is False and "libbpf is not available" in res["error"]
        assert client.ok("trigger", shell="true")["rc"] == 0
    finally:
        assert client.close() == 0


def test_exit_op_answers_then_exits(tmp_path: Path) -> None:
    client = AgentClient(tmp_path)
    assert client.ok("exit")["ok"]
    assert client.proc.wait(30) == 0


# ---------------------------------------------------------------------------------------------------------------------
# Loading: real verifier verdicts on this kernel

# (object, leaking program, releasing program, program type id). tc runs on any host; lsm needs BPF LSM.
REF_CASES = {
    "tc": ("agent-sk-ref", "leak_sk", "release_sk", 3),
    "lsm": ("agent-task-ref", "leak_task", "release_task", 29),
}


def _ref_case(request: pytest.FixtureRequest, kind: str, bpf_objects: dict[str, Path]) -> tuple:
    if kind == "lsm":
        request.getfixturevalue("lsm_loadable")
    obj, leak, release, ptype = REF_CASES[kind]
    return bpf_objects[obj], leak, release, ptype


@pytest.mark.parametrize("kind", sorted(REF_CASES))
def test_leaked_reference_is_rejected_with_verifier_log(
    request: pytest.FixtureRequest, agent: AgentClient, bpf_objects: dict[str, Path], kind: str
) -> None:
    path, leak, _, ptype = _ref_case(request, kind, bpf_objects)
    res = agent.ok("load", path=str(path), programs=[leak])
    assert res["loaded"] is False
    assert res["errno"] == errno.EINVAL
    assert "Unreleased reference" in res["verifier_log"], res["verifier_log"][-2000:]
    assert res["failed_program"] == leak
    assert "handle" not in res
    assert any(f"prog '{leak}': failed to load" in line for line in res["libbpf_log"]), res["libbpf_log"]
    assert [p["name"] for p in res["programs"] if p["autoload"]] == [leak]
    assert all(p["id"] == 0 and p["fd"] == -1 for p in res["programs"])
    assert {p["type"] for p in res["programs"]} == {ptype}


@pytest.mark.parametrize("kind", sorted(REF_CASES))
def test_accepted_twin_loads_with_prog_id_and_unloads(
    request: pytest.FixtureRequest, agent: AgentClient, bpf_objects: dict[str, Path], kind: str
) -> None:
    path, leak, release, ptype = _ref_case(request, kind, bpf_objects)
    res = agent.ok("load", path=str(path), programs=[release])
    assert res["loaded"] is True and res["errno"] == 0, res["verifier_log"][-2000:]
    progs = {p["name"]: p for p in res["programs"]}
    assert progs[leak]["autoload"] is False and progs[leak]["id"] == 0
    loaded = progs[release]
    assert loaded["id"] > 0 and loaded["fd"] >= 0 and loaded["type"] == ptype
    assert loaded["section"] in ("tc", "lsm/file_open")
    assert "processed" in res["verifier_log"]  # log_level 1 keeps the verifier's summary for accepted programs
    assert prog_exists(loaded["id"])
    unload = agent.ok("unload", handle=res["handle"])
    assert unload["detached"] == []
    assert wait_prog_gone(loaded["id"]), f"prog id {loaded['id']} still exists after unload"
    assert agent.request("unload", handle=res["handle"])["ok"] is False


def test_pinned_program_outlives_unload_and_the_agent(tmp_path: Path, bpf_objects: dict[str, Path]) -> None:
    """The `pin` op (a VM kept for inspection): the program stays loaded after unload and after the agent exits,
    until its pin file is removed."""
    bpffs = tmp_path / "bpffs"
    bpffs.mkdir()
    if subprocess.run(["mount", "-t", "bpf", "bpf", str(bpffs)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a bpffs here")
    try:
        client = AgentClient(tmp_path)
        res = client.ok("load", path=str(bpf_objects["agent-sk-ref"]), programs=["release_sk"])
        prog_id = next(p["id"] for p in res["programs"] if p["name"] == "release_sk")
        bad = client.request("pin", handle=res["handle"], program="leak_sk", path=str(bpffs / "x"))
        assert bad["ok"] is False and "no loaded program named leak_sk" in bad["error"], bad
        client.ok("pin", handle=res["handle"], program="release_sk", path=str(bpffs / "release_sk"))
        client.ok("unload", handle=res["handle"])
        assert client.close() == 0
        assert not wait_prog_gone(prog_id, timeout=1), "the pinned program went with the agent"
        (bpffs / "release_sk").unlink()
        assert wait_prog_gone(prog_id), f"prog id {prog_id} still exists after its pin was removed"
    finally:
        subprocess.run(["umount", str(bpffs)], capture_output=True)


def test_whole_object_load_names_the_failing_program(agent: AgentClient, bpf_objects: dict[str, Path]) -> None:
    res = agent.ok("load", path=str(bpf_objects["agent-sk-ref"]), program_logs=True)
    assert res["loaded"] is False and res["failed_program"] == "leak_sk"
    assert "Unreleased reference" in res["verifier_log"]
    logs = {p["name"]: p["verifier_log"] for p in res["programs"]}
    assert logs["leak_sk"] == res["verifier_log"]
    assert logs["release_sk"] == ""  # libbpf stops at the first program that fails


def test_not_an_elf_file_is_a_failed_open(agent: AgentClient, tmp_path: Path) -> None:
    need_root()
    junk = tmp_path / "junk.o"
    junk.write_bytes(b"not an ELF file\n")
    res = agent.ok("load", path=str(junk))
    assert res["loaded"] is False and res["stage"] == "open" and res["errno"] > 0
    assert any("elf" in line.lower() for line in res["libbpf_log"]), res["libbpf_log"]


def test_unknown_program_name_is_a_clear_error(agent: AgentClient, bpf_objects: dict[str, Path]) -> None:
    res = agent.request("load", path=str(bpf_objects["agent-sk-ref"]), programs=["nope"])
    assert res["ok"] is False and "no program named nope" in res["error"] and "leak_sk" in res["error"]


def test_verifier_log_enospc_is_retried_with_a_bigger_buffer(agent: AgentClient, bpf_objects: dict[str, Path]) -> None:
    res = agent.ok("load", path=str(bpf_objects["agent-sk-ref"]), programs=["release_sk"], log_level=2, log_size=1024)
    assert res["loaded"] is True, res
    assert res["log_retries"] >= 1 and res["log_size"] > 1024
    assert "processed" in res["verifier_log"] and len(res["verifier_log"]) > 1024
    agent.ok("unload", handle=res["handle"])


def test_kptr_without_destructor_btf_refusal_is_visible(agent: AgentClient, bpf_objects: dict[str, Path]) -> None:
    """DESIGN.md: the kernel refuses the object's BTF and libbpf goes on without it; both must be reported."""
    res = agent.ok("load", path=str(bpf_objects["agent-kptr"]), programs=["stash_nothing"])
    if res["loaded"]:
        agent.ok("unload", handle=res["handle"])
        pytest.skip("this kernel accepts a struct file __kptr (it has a destructor for it now)")
    assert "libbpf: Error loading .BTF into kernel: -2. BTF is optional, ignoring." in res["libbpf_log"]
    assert "map 'm' has to have BTF in order to use bpf_kptr_xchg" in res["verifier_log"]
    assert res.get("btf_log"), "the kernel's BTF log should come back too"


def test_drop_caps_during_load_then_restored(agent: AgentClient, bpf_objects: dict[str, Path]) -> None:
    path = str(bpf_objects["agent-sk-ref"])
    res = agent.ok("load", path=path, programs=["release_sk"], drop_caps=["CAP_BPF", "CAP_SYS_ADMIN", "net_admin"])
    assert res["loaded"] is False and res["errno"] == errno.EPERM
    res = agent.ok("load", path=path, programs=["release_sk"])
    assert res["loaded"] is True, "capabilities were not restored after the load"
    agent.ok("unload", handle=res["handle"])


# ---------------------------------------------------------------------------------------------------------------------
# Attach: only programs that allow everything


def _attach_observe(agent: AgentClient, bpf_objects: dict[str, Path], program: str) -> tuple[dict, int]:
    res = agent.ok("load", path=str(bpf_objects["agent-observe"]), programs=[program])
    assert res["loaded"], res["verifier_log"][-2000:]
    prog_id = next(p["id"] for p in res["programs"] if p["name"] == program)
    att = agent.request("attach", handle=res["handle"], program=program)
    if not att["ok"]:
        agent.ok("unload", handle=res["handle"])
        pytest.skip(f"this kernel cannot attach {program}: {att['error']}; libbpf: {att.get('libbpf_log')}")
    assert att["link"] > 0 and att["errno"] == 0 and att.get("prog_id") == prog_id
    return {"handle": res["handle"], "link": att["link"]}, prog_id


def test_attach_trigger_with_comm_detach_raw_tp(agent: AgentClient, bpf_objects: dict[str, Path]) -> None:
    h, prog_id = _attach_observe(agent, bpf_objects, "observe_sys_enter")
    trig = agent.ok("trigger", action="open", path="/etc/hostname", comm='hx "q s')
    assert trig["errno"] == 0 and trig["rc"] == 0 and trig["comm"] == 'hx "q s'
    bss = read_bss(prog_id)
    assert bss["hits"] > 0 and bss["last_comm"] == 'hx "q s'
    assert agent.ok("detach", link=h["link"])["errno"] == 0
    before = read_bss(prog_id)["hits"]
    agent.ok("trigger", action="open", path="/etc/hostname", comm="hx after")
    assert read_bss(prog_id)["hits"] == before, "the program still runs after detach"
    agent.ok("unload", handle=h["handle"])
    assert wait_prog_gone(prog_id)


def test_attach_lsm_file_open(agent: AgentClient, bpf_objects: dict[str, Path], lsm_loadable: None) -> None:
    h, prog_id = _attach_observe(agent, bpf_objects, "observe_open")
    trig = agent.ok("trigger", action="open", path="/etc/hostname", comm="hx lsm")
    assert trig["errno"] == 0
    bss = read_bss(prog_id)
    unload = agent.ok("unload", handle=h["handle"])  # also destroys the link
    assert unload["detached"] == [h["link"]]
    if bss["hits"] == 0 and not lsm_active():
        pytest.skip("the LSM program attached but never ran: bpf is not in this kernel's active LSM list")
    assert bss["hits"] > 0 and bss["last_comm"] == "hx lsm"


def test_eof_exits_zero_and_releases_everything(tmp_path: Path, bpf_objects: dict[str, Path]) -> None:
    client = AgentClient(tmp_path)
    res = client.ok("load", path=str(bpf_objects["agent-sk-ref"]), programs=["release_sk"])
    prog_id = res["programs"][1]["id"]
    assert prog_exists(prog_id)
    assert client.close() == 0
    assert wait_prog_gone(prog_id), "objects must be closed when stdin reaches EOF"


# ---------------------------------------------------------------------------------------------------------------------
# What test_loader does per subtest: log level, prog flags, maps not created, object name, unprivileged mode, test run

BPF_F_TEST_RND_HI32, BPF_F_SLEEPABLE, BPF_F_TEST_REG_INVARIANTS = 1 << 2, 1 << 4, 1 << 7


def test_log_level_zero_logs_only_a_failure(agent: AgentClient, bpf_objects: dict[str, Path]) -> None:
    """test_loader's default (no __log_level): no log for a program that loads; libbpf retries a failed load at
    level 1 into the program's own buffer, so a rejection still comes with the verifier's reason."""
    path = str(bpf_objects["agent-sk-ref"])
    ok = agent.ok("load", path=path, programs=["release_sk"], log_level=0, program_logs=True)
    assert ok["loaded"] and ok["verifier_log"] == ""
    assert [p["verifier_log"] for p in ok["programs"] if p["name"] == "release_sk"] == [""]
    agent.ok("unload", handle=ok["handle"])
    bad = agent.ok("load", path=path, programs=["leak_sk"], log_level=0, program_logs=True)
    assert bad["loaded"] is False and "Unreleased reference" in bad["verifier_log"]
    assert next(p for p in bad["programs"] if p["name"] == "leak_sk")["verifier_log"] == bad["verifier_log"]


def test_log_levels_per_program(agent: AgentClient, bpf_objects: dict[str, Path]) -> None:
    res = agent.ok("load", path=str(bpf_objects["agent-testrun"]), programs=["skb_len", "minus_one"], log_level=0,
                   log_levels={"minus_one": 2}, program_logs=True)
    logs = {p["name"]: p["verifier_log"] for p in res["programs"]}
    assert res["loaded"] and logs["skb_len"] == "" and "processed" in logs["minus_one"], logs
    agent.ok("unload", handle=res["handle"])
    bad = agent.request("load", path=str(bpf_objects["agent-testrun"]), log_levels={"nope": 1})
    assert bad["ok"] is False and "no program named nope" in bad["error"], bad


def test_prog_flags_are_added_to_the_programs_own(agent: AgentClient, bpf_objects: dict[str, Path]) -> None:
    path = str(bpf_objects["agent-testrun"])
    res = agent.ok("load", path=path, programs=["skb_len"], prog_flags={"skb_len": BPF_F_TEST_RND_HI32})
    assert res["loaded"], res["verifier_log"][-2000:]
    assert next(p for p in res["programs"] if p["name"] == "skb_len")["flags"] == BPF_F_TEST_RND_HI32
    agent.ok("unload", handle=res["handle"])
    # The flags reach the kernel: a tc program cannot be sleepable.
    bad = agent.ok("load", path=path, programs=["skb_len"], prog_flags={"skb_len": BPF_F_SLEEPABLE}, log_level=1)
    assert bad["loaded"] is False and bad["errno"] == errno.EINVAL, bad
    assert agent.request("load", path=path, prog_flags={"skb_len": -1})["ok"] is False


def test_maps_left_uncreated_and_the_object_name(agent: AgentClient, bpf_objects: dict[str, Path]) -> None:
    path = str(bpf_objects["agent-testrun"])
    res = agent.ok("load", path=path, programs=["skb_len"], no_autocreate_maps=["zero_seed"], object_name="renamed")
    assert res["loaded"], res["verifier_log"][-2000:]
    maps = {m["name"]: m for m in res["maps"]}
    assert maps["zero_seed"]["created"] is False and maps["zero_seed"]["type"] == 1  # BPF_MAP_TYPE_HASH
    internal = [name for name in maps if name != "zero_seed"]
    assert internal and all(name.startswith("renamed") and maps[name]["created"] for name in internal), maps
    agent.ok("unload", handle=res["handle"])
    res = agent.ok("load", path=path, programs=["skb_len"])
    assert {m["name"]: m["created"] for m in res["maps"]}["zero_seed"] is True
    assert any(m["name"].startswith("agent_te") for m in res["maps"]), res["maps"]  # from the file name
    agent.ok("unload", handle=res["handle"])
    bad = agent.request("load", path=path, no_autocreate_maps=["nope"])
    assert bad["ok"] is False and "no map named nope" in bad["error"] and "zero_seed" in bad["error"], bad


def test_test_run_with_test_loaders_input(agent: AgentClient, bpf_objects: dict[str, Path]) -> None:
    path = str(bpf_objects["agent-testrun"])
    res = agent.ok("load", path=path, programs=["skb_len", "minus_one", "syscall_42"])
    assert res["loaded"], res["verifier_log"][-2000:]
    run = agent.ok("test_run", handle=res["handle"], program="skb_len")
    assert (run["errno"], run["retval"], run["data_size_out"]) == (0, 64, 64)  # 64 zero bytes in, as test_loader
    assert run["data_out"] == "00" * 64
    assert agent.ok("test_run", handle=res["handle"], program="skb_len", data_in="ab" * 20)["retval"] == 20
    assert agent.ok("test_run", handle=res["handle"], program="minus_one")["retval"] == 0xFFFFFFFF  # a u32
    # A syscall program takes no packet: test_loader passes empty options; with data the kernel refuses the run,
    # which is a result (errno), not a failed request.
    assert agent.ok("test_run", handle=res["handle"], program="syscall_42", empty=True)["retval"] == 42
    refused = agent.ok("test_run", handle=res["handle"], program="syscall_42")
    assert refused["errno"] == errno.EINVAL
    assert agent.request("test_run", handle=res["handle"], program="use_zero_seed")["ok"] is False  # not loaded
    assert agent.request("test_run", handle=res["handle"], program="skb_len", data_in="xyz")["ok"] is False
    agent.ok("unload", handle=res["handle"])
    assert agent.request("test_run", handle=res["handle"], program="skb_len")["ok"] is False


def test_probe_reports_what_test_loader_checks(agent: AgentClient) -> None:
    need_root()
    res = agent.ok("probe", prog_flags={"BPF_F_TEST_RND_HI32": BPF_F_TEST_RND_HI32, "bogus": 1 << 30})
    sysctl = int(Path("/proc/sys/kernel/unprivileged_bpf_disabled").read_text())
    assert res["unprivileged_bpf_disabled"] == sysctl
    assert res["prog_flags"]["BPF_F_TEST_RND_HI32"] is True
    assert res["prog_flags"]["bogus"].startswith("refused: Invalid argument"), res
    if sysctl:
        assert res["unpriv_disabled_reason"] == (f"kernel.unprivileged_bpf_disabled = {sysctl}: unprivileged BPF "
                                                 "is disabled")
    assert res["machine"] == os.uname().machine
    assert res["efficient_unaligned_access"] in (True, False, None)


def test_unprivileged_load_as_test_loader_does_it(agent: AgentClient, bpf_objects: dict[str, Path]) -> None:
    """unpriv: skipped with the sysctl's name where unprivileged BPF is disabled (this host: 2, Debian's default);
    elsewhere a load without CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_PERFMON and CAP_BPF, after the same programs were
    loaded once with them (libbpf's feature probes), and every capability back afterwards."""
    path = str(bpf_objects["agent-testrun"])
    res = agent.ok("load", path=path, programs=["minus_one"], unpriv=True)
    if int(Path("/proc/sys/kernel/unprivileged_bpf_disabled").read_text()):
        assert res["loaded"] is False and "kernel.unprivileged_bpf_disabled" in res["skipped"], res
    else:
        assert "skipped" not in res
        assert res["loaded"], res["verifier_log"][-2000:]  # a socket filter is an unprivileged program type
        agent.ok("unload", handle=res["handle"])
        denied = agent.ok("load", path=path, programs=["skb_len"], unpriv=True)  # tc needs CAP_NET_ADMIN
        assert denied["loaded"] is False and denied["errno"] == errno.EPERM, denied
    again = agent.ok("load", path=path, programs=["skb_len"])
    assert again["loaded"], "capabilities were not restored after the unprivileged load"
    agent.ok("unload", handle=again["handle"])


# ---------------------------------------------------------------------------------------------------------------------
# Triggers


def test_shell_trigger_timeout_kills_the_whole_group(agent: AgentClient) -> None:
    t0 = time.monotonic()
    res = agent.ok("trigger", shell="sleep 30 & sleep 30; echo never", timeout=0.5)
    assert time.monotonic() - t0 < 10
    assert res["timed_out"] is True and res["rc"] == -9
    assert "never" not in res["stdout"]
    assert group_gone(res["pid"]) == []


def test_action_trigger_timeout_kills_the_child(agent: AgentClient, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    res = agent.ok("trigger", action="open", path=str(fifo), timeout=0.5)  # blocks: no writer ever comes
    assert time.monotonic() - t0 < 10
    assert res["timed_out"] is True and res["rc"] == -9
    assert group_gone(res["pid"]) == []


def test_shell_trigger_output_and_exit_code(agent: AgentClient) -> None:
    res = agent.ok("trigger", shell="echo out; echo err >&2; exit 3")
    assert (res["rc"], res["stdout"], res["stderr"], res["timed_out"]) == (3, "out\n", "err\n", False)
    assert res["pid"] != agent.pid


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_action_triggers_report_errno(agent: AgentClient, tmp_path: Path) -> None:
    target = tmp_path / "victim"
    cases = [
        ({"action": "open", "path": "/etc/hostname"}, 0),
        ({"action": "open", "path": str(tmp_path / "missing")}, errno.ENOENT),
        ({"action": "open", "path": str(tmp_path / "new"), "flags": "w"}, 0),
        ({"action": "open", "path": str(tmp_path / "missing2"), "thread": 1}, errno.ENOENT),  # from the thread
        ({"action": "read", "path": "/etc/hostname"}, 0),
        ({"action": "mprotect"}, 0),
        ({"action": "connect", "family": "inet", "port": _refused_port()}, errno.ECONNREFUSED),
        ({"action": "connect", "family": "unix", "path": str(tmp_path / "nosock")}, errno.ENOENT),
        ({"action": "ioctl", "path": "/etc/hostname", "cmd": 0x5401}, errno.ENOTTY),  # TCGETS on a file
        ({"action": "unlink", "path": str(target)}, 0),
        ({"action": "kill", "signal": 15, "target_comm": "hx target"}, 0),
        ({"action": "sethostname", "drop_caps": ["sys_admin"]}, errno.EPERM),  # capable(CAP_SYS_ADMIN) refuses
    ]
    for args, want in cases:
        res = agent.ok("trigger", comm="hx trig", **args)
        assert res["errno"] == want, (args, res)
        assert res["rc"] == 0 and res["timed_out"] is False and res["comm"] == "hx trig", (args, res)
        assert res["pid"] not in (agent.pid, 0)
    assert not target.exists() and (tmp_path / "new").exists()


def test_socket_link_and_task_triggers(agent: AgentClient, tmp_path: Path) -> None:
    """bind alone, getsockopt on a bound or self-connected socket, readlink, getpgid: each runs its syscall in the
    child (errno 0 when it worked, the failing syscall's errno and step when not) and cleans up after itself."""
    port = _refused_port()
    sock_path = tmp_path / "b.sock"
    cases = [
        ({"action": "bind", "family": "inet", "addr": "127.0.0.1", "port": port}, 0, None),
        ({"action": "bind", "family": "inet6", "addr": "::1", "port": port, "type": "dgram"}, 0, None),
        ({"action": "bind", "family": "unix", "path": str(sock_path)}, 0, None),
        ({"action": "bind", "family": "inet", "addr": "192.0.2.1", "port": port}, errno.EADDRNOTAVAIL, "bind"),
        ({"action": "getsockopt", "family": "inet", "addr": "127.0.0.1", "port": port}, 0, None),
        ({"action": "getsockopt", "family": "inet", "addr": "127.0.0.1", "port": port, "connect": "self"}, 0, None),
        ({"action": "getsockopt", "family": "inet6", "addr": "::1", "port": port, "connect": "self"}, 0, None),
        ({"action": "getsockopt", "family": "unix", "path": str(sock_path)}, 0, None),
        ({"action": "readlink", "path": "/proc/self/exe"}, 0, None),
        ({"action": "readlink", "path": "/etc/hostname"}, errno.EINVAL, "readlink"),  # not a link
        ({"action": "getpgid"}, 0, None),
    ]
    for args, want, step in cases:
        res = agent.ok("trigger", comm="hx sock", **args)
        assert (res["errno"], res.get("step")) == (want, step), (args, res)
        assert res["rc"] == 0 and res["comm"] == "hx sock", (args, res)
    assert not sock_path.exists()  # a unix socket's file is removed after the action
    # a self-connected socket is reset on close: the same port connects to itself again at once
    again = agent.ok("trigger", action="getsockopt", family="inet", addr="127.0.0.1", port=port, connect="self")
    assert again["errno"] == 0, again
    link = agent.ok("trigger", action="readlink", path="/proc/self/exe")
    assert link["target"] == os.path.realpath(PYTHON) and link["ino"] > 0
    pg = agent.ok("trigger", action="getpgid")
    assert pg["pgid"] == pg["pid"]  # the child leads its own process group
    refused = (({"action": "getsockopt", "family": "unix", "path": "/x", "connect": "self"}, "connect=self"),
               ({"action": "bind", "family": "unix", "path": "rel.sock"}, "absolute"),
               ({"action": "getsockopt", "family": "inet", "port": 1, "connect": "peer"}, "'connect'"))
    for args, fragment in refused:
        bad = agent.request("trigger", **args)
        assert not bad["ok"] and fragment in bad["error"], (args, bad)


def test_file_triggers_report_the_inode_they_used(agent: AgentClient, tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    ino = f.stat().st_ino
    for args in ({"action": "open", "path": str(f)}, {"action": "read", "path": str(f)},
                 {"action": "ioctl", "path": str(f), "cmd": 0x541B}):
        res = agent.ok("trigger", **args)
        assert res["ino"] == ino, (args, res)
    gone = agent.ok("trigger", action="unlink", path=str(tmp_path / "u"))
    assert gone["errno"] == 0 and gone["ino"] > 0 and not (tmp_path / "u").exists()


def test_open_from_a_second_thread_reports_a_tid_that_is_not_the_pid(agent: AgentClient, tmp_path: Path) -> None:
    plain = agent.ok("trigger", action="open", path="/etc/hostname", comm="hx main")
    assert plain["errno"] == 0 and plain["tid"] == plain["pid"]
    threaded = agent.ok("trigger", action="open", path="/etc/hostname", comm="hx thread", thread=1)
    assert threaded["errno"] == 0 and threaded["comm"] == "hx thread", threaded
    assert threaded["tid"] not in (threaded["pid"], 0, None), threaded
    kill = agent.ok("trigger", action="kill", signal=15)
    assert kill["target_status"] == -15 and kill["target_pid"] > 0


# ---------------------------------------------------------------------------------------------------------------------
# Audit: register as the audit daemon (never enabling audit on the host) and always unregister


@pytest.fixture
def audit_free(agent: AgentClient):
    need_root()
    st = agent.request("audit_status")
    if not st["ok"]:
        pytest.skip(f"no NETLINK_AUDIT here: {st['error']}")
    if st["pid"]:
        pytest.skip(f"pid {st['pid']} is this host's audit daemon; not taking its place")
    yield st
    agent.request("audit_close")
    after = agent.ok("audit_status")
    assert after["pid"] == 0 and after["enabled"] == st["enabled"], "host audit state changed"


def test_audit_daemon_receives_records(agent: AgentClient, audit_free: dict) -> None:
    opened = agent.ok("audit_open", enable=False)
    assert opened["status"]["pid"] == agent.pid and opened["mode"] == "daemon"
    mark = agent.ok("audit_mark")["mark"]
    text = f"harness-agent-test mark={mark} t={time.time_ns()}"
    agent.ok("audit_user", type=AUDIT_USER_AVC, text=text)
    res = agent.ok("audit_read", since=mark, wait=0.3)
    mine = [r for r in res["records"] if text in r["text"]]
    assert len(mine) == 1, res["records"]
    assert mine[0]["type"] == AUDIT_USER_AVC
    assert mine[0]["text"].startswith("audit(") and f"pid={agent.pid}" in mine[0]["text"]
    assert mine[0]["text"].endswith(f"msg='{text}'")  # the unicast nlmsg_len quirk did not cut the payload
    for key in ("enabled", "pid", "lost", "backlog", "backlog_limit"):
        assert key in res["status"]
    assert agent.ok("audit_read", since=res["mark"], wait=0)["records"] == []
    same = agent.ok("audit_set", backlog_limit=audit_free["backlog_limit"])  # a no-op AUDIT_SET
    assert same["status"]["backlog_limit"] == audit_free["backlog_limit"]
    closed = agent.ok("audit_close")
    assert closed["was_open"] is True and closed["status"]["pid"] == 0


def test_second_audit_daemon_is_refused_with_the_pid(agent: AgentClient, audit_free: dict, tmp_path: Path) -> None:
    agent.ok("audit_open", enable=False)
    other = AgentClient(tmp_path)
    try:
        res = other.request("audit_open", enable=False)
        assert res["ok"] is False
        assert f"auditd pid {agent.pid} is the audit daemon" in res["error"]
        assert res["auditd_pid"] == agent.pid
    finally:
        assert other.close() == 0


def test_audit_daemon_unregistered_at_eof(audit_free: dict, tmp_path: Path, agent: AgentClient) -> None:
    client = AgentClient(tmp_path)
    assert client.ok("audit_open", enable=False)["status"]["pid"] == client.pid
    assert client.close() == 0
    assert agent.ok("audit_status")["pid"] == 0


def test_audit_multicast_reader(agent: AgentClient, audit_free: dict) -> None:
    agent.ok("audit_open", mode="multicast")
    mark = agent.ok("audit_mark")["mark"]
    text = f"harness-agent-test multicast t={time.time_ns()}"
    agent.ok("audit_user", type=AUDIT_USER_AVC, text=text)
    res = agent.ok("audit_read", since=mark, wait=0.3)
    assert [r["type"] for r in res["records"] if r["text"].endswith(f"msg='{text}'")] == [AUDIT_USER_AVC]
    assert res["status"]["pid"] == 0  # a multicast reader does not register as the daemon


# ---------------------------------------------------------------------------------------------------------------------
# Diagnostics go to /dev/kmsg with the prefix, never to stdout


def test_diagnostics_reach_kmsg(tmp_path: Path) -> None:
    need_root()
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        pytest.skip(f"/dev/kmsg not readable: {e}")
    try:
        os.lseek(fd, 0, os.SEEK_END)
        client = AgentClient(tmp_path, "--kmsg-level", "6")
        client.ok("ping")
        assert client.close() == 0
        lines = []
        while True:
            try:
                lines.append(os.read(fd, 8192).decode(errors="replace"))
            except BlockingIOError:
                break
            except OSError as e:  # EPIPE: records were overwritten while reading
                if e.errno != errno.EPIPE:
                    raise
    finally:
        os.close(fd)
    assert any(f"harness-agent: started pid {client.pid}" in line for line in lines), lines[-5:]


def test_startup_and_round_trip_times(tmp_path: Path, bpf_objects: dict[str, Path]) -> None:
    """Not a benchmark gate (the host is shared with kernel builds): records the figures in the report."""
    client = AgentClient(tmp_path)
    try:
        path = str(bpf_objects["agent-sk-ref"])
        t0 = time.monotonic()
        rejected = client.ok("load", path=path, programs=["leak_sk"])
        t_rej = time.monotonic() - t0
        t0 = time.monotonic()
        accepted = client.ok("load", path=path, programs=["release_sk"])
        t_acc = time.monotonic() - t0
        assert not rejected["loaded"] and accepted["loaded"]
        client.ok("unload", handle=accepted["handle"])
    finally:
        client.close()
    print(
        f"\nagent: hello after {client.startup * 1000:.0f} ms; rejected load {t_rej * 1000:.1f} ms "
        f"(agent {rejected['elapsed'] * 1000:.1f}); accepted load {t_acc * 1000:.1f} ms "
        f"(agent {accepted['elapsed'] * 1000:.1f})"
    )
    assert client.startup < 30
