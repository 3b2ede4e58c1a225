# SPDX-License-Identifier: GPL-2.0
"""Tests of harness.cases.compile with the real compiler: cases compile, errors come back, the type-tag probe works."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.cases import compile as bpfobj
from harness.cases.compile import compile_case, compiler_emits_type_tags
from harness.cases.parse import parse_case_file
from harness.errors import HarnessError
from harness.settings import REPO_ROOT, cache_root

CASE_FILES = sorted((REPO_ROOT / "cases").rglob("*.bpf.c"))
UNRELEASED = REPO_ROOT / "cases" / "verifier" / "unreleased.bpf.c"

needs_clang = pytest.mark.skipif(
    not any(shutil.which(c) for c in bpfobj.CLANG_CANDIDATES), reason="no clang-16..19 installed"
)


def _published_vmlinux_h() -> Path | None:
    """The newest vmlinux.h a harness kernel build published, if any."""
    found = [p for p in (cache_root() / "kernels").glob("*/vmlinux.h") if (p.parent / "meta.json").is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


@pytest.fixture(scope="session")
def vmlinux_h(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """$BPF_AUDIT_VMLINUX_H, else a built kernel's vmlinux.h, else one dumped from the host's BTF."""
    explicit = os.environ.get("BPF_AUDIT_VMLINUX_H")
    if explicit:
        return Path(explicit)
    published = _published_vmlinux_h()
    if published:
        return published
    bpftool = shutil.which("bpftool") or shutil.which("bpftool", path="/usr/sbin:/sbin")
    if not bpftool or not Path("/sys/kernel/btf/vmlinux").is_file():
        pytest.skip("no vmlinux.h: no kernel build published one, and no bpftool or host BTF to dump")
    out = tmp_path_factory.mktemp("vmlinux") / "vmlinux.h"
    dump = subprocess.run(
        [bpftool, "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"],
        capture_output=True,
        text=True,
        check=False,
    )
    if dump.returncode != 0:
        pytest.skip(f"bpftool could not dump the host BTF: {dump.stderr.strip()}")
    out.write_text(dump.stdout)
    return out


@pytest.fixture(scope="session")
def obj_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("objects")


@needs_clang
def test_compile_case_success_and_cache(vmlinux_h: Path, tmp_path: Path) -> None:
    res = compile_case(UNRELEASED, vmlinux_h, tmp_path)
    assert res.ok, res.stderr
    assert res.obj is not None and res.obj.read_bytes()[:4] == b"\x7fELF" and not res.cached
    argv = res.argv
    assert isinstance(argv, list) and Path(argv[0]).name.startswith("clang")
    for flag in ("-g", "-O2", "-mcpu=v3", "-D__TARGET_ARCH_x86", f"-I{vmlinux_h.parent}", f"-I{REPO_ROOT / 'cases'}",
                 "-c"):
        assert flag in argv
    assert argv[argv.index("-target") + 1] == "bpf" and "-I/usr/include/x86_64-linux-gnu" in argv
    assert argv[argv.index("-o") + 1] == str(res.obj) and str(UNRELEASED) in argv
    assert "clang" in res.command and "unreleased.bpf.c" in res.command

    again = compile_case(UNRELEASED, vmlinux_h, tmp_path)
    assert again.cached and again.ok and again.obj == res.obj


@needs_clang
def test_cache_key_follows_the_source(vmlinux_h: Path, tmp_path: Path) -> None:
    case = tmp_path / "copy.bpf.c"
    case.write_text(UNRELEASED.read_text())
    first = compile_case(case, vmlinux_h, tmp_path / "objs")
    case.write_text(UNRELEASED.read_text() + "\n/* changed */\n")
    second = compile_case(case, vmlinux_h, tmp_path / "objs")
    assert first.ok and second.ok and not second.cached and first.obj != second.obj


@needs_clang
def test_compile_error_is_returned_not_raised(vmlinux_h: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.bpf.c"
    broken.write_text(
        '// SPDX-License-Identifier: GPL-2.0\n/* broken */\n#include "harness.h"\n'
        'SEC("lsm/file_open") __description("d") __success\n'
        "int BPF_PROG(p, struct file *file)\n{\n\treturn undeclared_thing;\n}\n"
    )
    res = compile_case(broken, vmlinux_h, tmp_path / "objs")
    assert not res.ok and res.obj is None
    assert "broken.bpf.c:7" in res.stderr and "undeclared_thing" in res.stderr and "error" in res.stderr
    again = compile_case(broken, vmlinux_h, tmp_path / "objs")
    assert again.cached and not again.ok and again.stderr == res.stderr


@needs_clang
def test_missing_case_file_is_a_failed_result(vmlinux_h: Path, tmp_path: Path) -> None:
    res = compile_case(tmp_path / "nope.bpf.c", vmlinux_h, tmp_path)
    assert not res.ok and "cannot read case file" in res.stderr


def test_missing_vmlinux_h_raises(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="vmlinux.h not found"):
        compile_case(UNRELEASED, tmp_path / "vmlinux.h", tmp_path)


@needs_clang
def test_harness_h_compiles_against_a_patched_vmlinux_h(vmlinux_h: Path, tmp_path: Path) -> None:
    """A patched kernel's vmlinux.h defines struct bpf_audit_context; the forward declaration must not clash."""
    patched = tmp_path / "patched" / "vmlinux.h"
    patched.parent.mkdir()
    defined = "struct bpf_audit_context {" in vmlinux_h.read_text()
    extra = "" if defined else "struct bpf_audit_context { int opaque; };\n"
    patched.write_text(f'#include "{vmlinux_h}"\n{extra}')
    res = compile_case(REPO_ROOT / "cases" / "audit" / "record.bpf.c", patched, tmp_path / "objs")
    assert res.ok, res.stderr


@pytest.mark.skipif(not shutil.which("clang-19"), reason="clang-19 not installed")
def test_clang19_emits_type_tags() -> None:
    assert compiler_emits_type_tags("clang-19") is True


def _clang14() -> str | None:
    for name in ("clang-14", "clang"):
        path = shutil.which(name)
        if path:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout
            if "version 14." in out:
                return path
    return None


@pytest.mark.skipif(_clang14() is None, reason="clang-14 not installed")
def test_clang14_drops_type_tags() -> None:
    assert compiler_emits_type_tags(_clang14() or "") is False


@needs_clang
@pytest.mark.parametrize("case", CASE_FILES, ids=[str(p.relative_to(REPO_ROOT)) for p in CASE_FILES])
def test_every_case_parses_and_compiles(case: Path, vmlinux_h: Path, obj_cache: Path) -> None:
    parsed = parse_case_file(case)
    assert parsed.programs
    res = compile_case(case, vmlinux_h, obj_cache)
    assert res.ok, f"{res.command}\n{res.stderr}"
    if any("btf_type_tag" in p.needs for p in parsed.programs):
        dump = subprocess.run(
            [shutil.which("bpftool") or "/usr/sbin/bpftool", "btf", "dump", "file", str(res.obj)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "TYPE_TAG 'kptr'" in dump


def test_a_compile_that_times_out_or_is_killed_is_not_cached(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A compiler that overran its time on a loaded machine, or was killed, says nothing about the source: the
    next run must compile again (it used to be cached as a permanent compile failure)."""
    out = tmp_path / "objs"
    monkeypatch.setattr(bpfobj, "COMPILE_TIMEOUT", 1)
    slow = bpfobj.compile_cached("slow", "k1", lambda obj: ["sleep", "5"], out, compiler="sleep")
    assert not slow.ok and not slow.cached and "did not finish within 1 s (not cached" in slow.stderr
    assert not (out / "slow-k1.json").exists()
    killed = bpfobj.compile_cached("killed", "k2", lambda obj: ["sh", "-c", "kill -9 $$"], out, compiler="sh")
    assert not killed.ok and not (out / "killed-k2.json").exists()
    # The next run compiles again, and a real verdict (a compile error) is cached.
    again = bpfobj.compile_cached("slow", "k1", lambda obj: ["sh", "-c", "echo 'error: nope' >&2; exit 1"], out,
                                  compiler="sh")
    assert not again.cached and not again.ok and "error: nope" in again.stderr
    hit = bpfobj.compile_cached("slow", "k1", lambda obj: ["true"], out, compiler="true")
    assert hit.cached and not hit.ok and "error: nope" in hit.stderr
