# SPDX-License-Identifier: GPL-2.0
"""--kernel PATH: where a kernel built elsewhere keeps its files, and what it is refused for (issue 22 item 1)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from harness.errors import SourceError
from harness.kernel import given


def _image(path: Path, release: str = "7.3.4-dev") -> Path:
    """A file with an x86 boot header naming `release`, as a bzImage's setup header does."""
    head = bytearray(0x400)
    head[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", head, 0x20E, 0x100)  # kernel_version: 0x200 + 0x100
    text = f"{release} (dev@box) #1 SMP".encode()
    head[0x300:0x300 + len(text)] = text
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(head))
    return path


def test_an_out_of_tree_build_directory(tmp_path):
    build = tmp_path / "build"
    _image(build / "arch/x86/boot/bzImage")
    (build / "vmlinux").write_text("elf")
    src = tmp_path / "linux"
    (src / "include/uapi/linux").mkdir(parents=True)
    (src / "include/uapi/linux/audit.h").write_text("#define AUDIT_BPF 1334\n")
    (build / "source").symlink_to(src)
    found = given.locate(build)
    assert found.bzimage == build / "arch/x86/boot/bzImage" and found.vmlinux == build / "vmlinux"
    assert found.build_dir == build and found.source_tree == src
    assert given.image_release(found.bzimage) == "7.3.4-dev"


def test_a_bzimage_finds_the_vmlinux_of_its_build_above_it(tmp_path):
    tree = tmp_path / "linux"
    image = _image(tree / "arch/x86/boot/bzImage")
    (tree / "vmlinux").write_text("elf")
    (tree / "include/uapi/linux").mkdir(parents=True)
    (tree / "include/uapi/linux/audit.h").write_text("")
    found = given.locate(image)
    assert found.vmlinux == tree / "vmlinux" and found.source_tree == tree


def test_a_harness_cache_entry_is_used_as_it_is(tmp_path):
    entry = tmp_path / "kernels" / "k1"
    entry.mkdir(parents=True)
    (entry / "meta.json").write_text('{"key": "k1", "release": "7.3.4"}')
    (entry / "bzImage").write_text("x")
    assert given.locate(entry).entry == entry
    image = tmp_path / "kernels" / "k2"  # a prebuilt Debian image's entry: its bzImage inside the package root
    (image / "root/boot").mkdir(parents=True)
    (image / "meta.json").write_text('{"key": "k2", "release": "6.1.0-57-amd64", "kind": "prebuilt-deb"}')
    found = given.locate(image)
    assert found.entry == image and found.bzimage == image / "root/boot/vmlinuz-6.1.0-57-amd64"


def test_a_build_directory_with_a_meta_json_of_its_own_is_a_build_directory(tmp_path):
    build = tmp_path / "build"
    _image(build / "arch/x86/boot/bzImage")
    (build / "vmlinux").write_text("elf")
    (build / "meta.json").write_text('{"key": "something else", "release": "7.3.4"}')  # not named by its key
    found = given.locate(build)
    assert found.entry is None and found.build_dir == build


@pytest.mark.parametrize("layout, message", [
    ({}, "does not exist"),
    ({"build/vmlinux": "elf"}, "no arch/x86/boot/bzImage"),
    ({"build/arch/x86/boot/bzImage": "img"}, "is missing: build vmlinux too"),
    ({"img/bzImage": "img"}, "no vmlinux beside it"),
])
def test_what_is_missing_is_named(tmp_path, layout, message):
    for rel, text in layout.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    target = tmp_path / ("img/bzImage" if "img/bzImage" in layout else "build")
    with pytest.raises(SourceError, match=message) as e:
        given.locate(target)
    assert e.value.exit_code == 2


def test_an_image_without_a_boot_header_has_no_release(tmp_path):
    (tmp_path / "x").write_bytes(b"\0" * 4096)
    assert given.image_release(tmp_path / "x") is None
