# SPDX-License-Identifier: GPL-2.0
"""What the harness pushes into a guest: a BPF object is checked first, a kernel module (bpf_testmod.ko, an x86-64
ELF) is not (a 7.3-series-testmod run once failed every subtest on that check). A real gcc-built ELF, no guest."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.cases.session import ObjectFiles
from harness.errors import CaseError


class _Guest:
    def __init__(self) -> None:
        self.put_calls: list[tuple[Path, str]] = []

    def private_dir(self) -> str:
        return "/run/bah-private"

    def put(self, local: Path, remote: str) -> None:
        self.put_calls.append((local, remote))


@pytest.fixture
def module(tmp_path: Path) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("no gcc to make an x86-64 ELF relocatable (what a .ko is)")
    src = tmp_path / "m.c"
    src.write_text("int init_module(void) { return 0; }\n")
    ko = tmp_path / "bpf_testmod.ko"
    subprocess.run(["gcc", "-c", str(src), "-o", str(ko)], check=True)
    return ko


def test_a_module_is_pushed_unchecked_and_a_bpf_object_is_checked(module):
    guest = _Guest()
    shells: list[str] = []
    files = ObjectFiles(SimpleNamespace(machine=SimpleNamespace(guest=guest), shell=shells.append))
    with pytest.raises(CaseError, match="not a BPF object"):
        files.push(module)  # as a BPF object: refused on the host, with the reason
    assert guest.put_calls == []
    remote = files.push(module, bpf=False)
    assert guest.put_calls == [(module, remote)] and remote.startswith("/run/bah-private/cases/")
    assert files.push(module, bpf=False) == remote and len(guest.put_calls) == 1  # once per content
