# SPDX-License-Identifier: GPL-2.0
"""Which clang compiles BPF programs (--clang, $CLANG, found on PATH), tried with real compilers: a plain `clang`
is taken and said with its version; clang 14 (too old), one that drops btf_type_tag and a non-clang are refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cases import clang
from harness.errors import MissingToolError, UsageError

LLVM19_CLANG = Path("/usr/lib/llvm-19/bin/clang")  # Debian's clang-19 under its plain name
CLANG14 = shutil.which("clang-14")
BPFTOOL_DIRS = "/usr/sbin:/sbin"
needs_19 = pytest.mark.skipif(not LLVM19_CLANG.is_file(), reason="clang-19 not installed (make deps)")
needs_14 = pytest.mark.skipif(CLANG14 is None, reason="clang-14 not installed (make test-deps)")


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch):
    """Every check from scratch, with no $CLANG from the caller's environment."""
    monkeypatch.delenv(clang.CLANG_ENV, raising=False)
    clang._check.cache_clear()
    clang._found_on_path.cache_clear()
    monkeypatch.setattr(clang, "_USED", [])
    yield
    clang._check.cache_clear()
    clang._found_on_path.cache_clear()


def only_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **links: str) -> Path:
    """PATH holds a directory of these names (symlinks to real compilers) and bpftool's, nothing else."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, target in links.items():
        (bin_dir / name).symlink_to(target)
    monkeypatch.setenv("PATH", f"{bin_dir}:{BPFTOOL_DIRS}")
    return bin_dir


@needs_19
def test_a_plain_clang_is_found_and_said_with_its_version(monkeypatch, tmp_path):
    bin_dir = only_on_path(monkeypatch, tmp_path, clang=str(LLVM19_CLANG))
    chosen = clang.select()
    assert chosen.path == str(bin_dir / "clang")
    assert chosen.major == 19 and chosen.origin == "found on PATH"
    assert chosen.describe() == f"{bin_dir / 'clang'} (clang {chosen.version}; found on PATH)"
    from harness.cases.compile import find_clang

    assert find_clang() == str(bin_dir / "clang")


@needs_19
def test_clang_by_name_and_by_environment(monkeypatch, tmp_path):
    bin_dir = only_on_path(monkeypatch, tmp_path, clang=str(LLVM19_CLANG))
    assert clang.select("clang").origin == "--clang"
    monkeypatch.setenv(clang.CLANG_ENV, str(bin_dir / "clang"))
    assert clang.select().origin == "$CLANG"
    chosen = clang.use("clang")  # --clang: checked, then named in $CLANG for the workers and inner runs
    assert os.environ[clang.CLANG_ENV] == chosen.path == str(bin_dir / "clang")
    assert clang.select() == chosen and chosen.origin == "--clang"  # and said as given in this process


@needs_19
@needs_14
def test_newest_suitable_one_is_taken_and_an_old_plain_clang_passed_over(monkeypatch, tmp_path):
    """clang-19 first; a plain `clang` that is Debian's default 14 is never taken."""
    bin_dir = only_on_path(monkeypatch, tmp_path, clang=CLANG14 or "", **{"clang-19": str(LLVM19_CLANG)})
    assert clang.select().path == str(bin_dir / "clang-19")
    (bin_dir / "clang-19").unlink()
    clang._found_on_path.cache_clear()  # a process searches once; a new one would see this PATH
    with pytest.raises(MissingToolError) as e:
        clang.select()
    msg = str(e.value)
    assert "is clang 14." in msg and "need clang >= 16" in msg and "--clang PATH" in msg, msg


@needs_14
def test_clang14_named_is_refused_with_why(monkeypatch):
    with pytest.raises(UsageError) as e:
        clang.select(CLANG14)
    msg = str(e.value)
    assert msg.startswith(f"--clang {CLANG14}: ") and "is clang 14." in msg and ">= 16" in msg, msg
    assert "btf_type_tag" in msg, msg
    monkeypatch.setenv(clang.CLANG_ENV, "clang-14")
    with pytest.raises(UsageError, match=r"^\$CLANG clang-14: .* is clang 14\."):
        clang.select()


@needs_14
def test_one_that_drops_type_tags_is_refused(tmp_path):
    """A wrapper that says it is clang 19 but compiles with clang 14: only the type-tag probe can tell."""
    fake = tmp_path / "clang-pretend"
    fake.write_text(f'#!/bin/sh\n[ "$1" = --version ] && {{ echo "clang version 19.1.7"; exit 0; }}\n'
                    f'exec {CLANG14} "$@"\n')
    fake.chmod(0o755)
    with pytest.raises(UsageError) as e:
        clang.select(str(fake))
    msg = str(e.value)
    assert "does not keep btf_type_tag" in msg and "no TYPE_TAG 'kptr'" in msg, msg


def test_not_clang_and_not_there(tmp_path):
    with pytest.raises(UsageError, match="does not say it is clang"):
        clang.select(sys.executable)
    with pytest.raises(UsageError, match="no such executable on PATH"):
        clang.select("clang-does-not-exist")
    with pytest.raises(UsageError, match="no such executable"):
        clang.select(str(tmp_path / "missing" / "clang"))


@pytest.mark.parametrize("banner, version", [
    ("Debian clang version 19.1.7 (3~deb12u1)", "19.1.7"),
    ("Ubuntu clang version 18.1.3 (1ubuntu1)", "18.1.3"),
    ("clang version 21.0.0git (https://github.com/llvm/llvm-project abc)", "21.0.0"),
    ("Apple clang version 15.0.0 (clang-1500.3.9.4)", "15.0.0"),
    ("gcc (Debian 12.2.0-14) 12.2.0", None),
])
def test_versions_read_from_the_banner(banner, version):
    assert clang.parse_version(banner) == version


@needs_14
def test_the_cli_and_pytest_refuse_a_bad_clang_before_anything_runs(tmp_path):
    cli = Path(sys.executable).parent / "bpf-audit-harness"
    res = subprocess.run([str(cli), "doctor", "--clang", str(CLANG14)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "usage error: --clang" in res.stderr and "is clang 14." in res.stderr, res.stderr
    res = subprocess.run([sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", "--clang",
                          str(CLANG14), str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 4, (res.stdout, res.stderr)
    assert "is clang 14." in res.stderr, res.stderr
