# SPDX-License-Identifier: GPL-2.0
"""harness.btf on BTF blobs built here byte by byte: every kind's layout, DECL_TAG order and
component_idx, both byte orders, and blobs that are not BTF or are cut short."""

from __future__ import annotations

import struct

import pytest

from harness import btf
from harness.btf import BTFError, parse


class Blob:
    """A BTF blob under construction: add strings and types, then bytes() with the header."""

    def __init__(self, endian: str = "<") -> None:
        self.endian = endian
        self.strings = b"\0"
        self.types = b""
        self.count = 0

    def s(self, text: str) -> int:
        off = len(self.strings)
        self.strings += text.encode() + b"\0"
        return off

    def add(self, kind: int, name: str, vlen: int, size_or_type: int, tail: bytes = b"", kflag: bool = False) -> int:
        info = (kind << 24) | vlen | (1 << 31 if kflag else 0)
        self.types += struct.pack(self.endian + "III", self.s(name) if name else 0, info, size_or_type) + tail
        self.count += 1
        return self.count

    def words(self, *values: int, signed_last: bool = False) -> bytes:
        fmt = self.endian + "I" * (len(values) - 1) + ("i" if signed_last else "I")
        return struct.pack(fmt, *values)

    def bytes(self, version: int = 1) -> bytes:
        hdr = struct.pack(self.endian + "HBBIIIII", 0xEB9F, version, 0, 24, 0, len(self.types), len(self.types),
                          len(self.strings))
        return hdr + self.types + self.strings


def _program_blob(endian: str = "<") -> tuple[bytes, dict[str, int]]:
    b = Blob(endian)
    ids = {}
    ids["int"] = b.add(btf.INT, "int", 0, 4, b.words(0x01000020))
    ids["proto"] = b.add(btf.FUNC_PROTO, "", 1, ids["int"], b.words(b.s("ctx"), ids["int"]))
    ids["tag_before"] = b.add(btf.DECL_TAG, "comment:test_expect_failure", 0, 4, b.words(-1, signed_last=True))
    ids["prog"] = b.add(btf.FUNC, "prog", btf.FUNC_GLOBAL, ids["proto"])
    ids["tag_msg"] = b.add(btf.DECL_TAG, "comment:test_expect_msg=1=first", 0, ids["prog"],
                           b.words(-1, signed_last=True))
    ids["tag_arg"] = b.add(btf.DECL_TAG, "arg:ctx", 0, ids["prog"], b.words(0, signed_last=True))
    ids["tag_msg2"] = b.add(btf.DECL_TAG, "comment:test_expect_msg=0=second", 0, ids["prog"],
                            b.words(-1, signed_last=True))
    ids["kfunc"] = b.add(btf.FUNC, "bpf_kfunc", btf.FUNC_EXTERN, ids["proto"])
    ids["ptr"] = b.add(btf.PTR, "", 0, ids["int"])
    ids["arr"] = b.add(btf.ARRAY, "", 0, 0, b.words(ids["int"], ids["int"], 7))
    ids["struct"] = b.add(btf.STRUCT, "s", 2, 16, b.words(b.s("a"), ids["int"], 0) + b.words(b.s("b"), ids["ptr"], 64))
    ids["enum"] = b.add(btf.ENUM, "e", 2, 4, b.words(b.s("A"), 1) + b.words(b.s("B"), 2))
    ids["enum64"] = b.add(btf.ENUM64, "e64", 1, 8, b.words(b.s("C"), 1, 2))
    ids["const"] = b.add(btf.CONST, "", 0, ids["struct"])
    ids["typedef"] = b.add(btf.TYPEDEF, "s_t", 0, ids["const"])
    ids["var"] = b.add(btf.VAR, "v", 0, ids["typedef"], b.words(1))
    ids["float"] = b.add(btf.FLOAT, "double", 0, 8)
    ids["type_tag"] = b.add(btf.TYPE_TAG, "user", 0, ids["int"])
    ids["fwd"] = b.add(btf.FWD, "f", 0, 0, kflag=True)
    ids["sec"] = b.add(btf.DATASEC, ".ksyms", 2, 0, b.words(ids["kfunc"], 0, 0) + b.words(ids["var"], 8, 16))
    return b.bytes(), ids


@pytest.mark.parametrize("endian", ["<", ">"])
def test_every_kind_parses_in_either_byte_order(endian: str) -> None:
    blob, ids = _program_blob(endian)
    t = parse(blob)
    assert len(t) == max(ids.values()) + 1 and t[0].name == "void"
    assert t[ids["int"]].extra == (0x01000020,) and t[ids["int"]].kind_name == "INT"
    assert t[ids["arr"]].extra == (ids["int"], ids["int"], 7)
    assert t[ids["struct"]].members == ((t.strings.index(b"a\0"), ids["int"], 0),
                                        (t.strings.index(b"b\0"), ids["ptr"], 64))
    assert t[ids["enum64"]].members[0][1:] == (1, 2)
    assert t[ids["fwd"]].kind_flag and not t[ids["struct"]].kind_flag
    assert t[ids["kfunc"]].linkage == btf.FUNC_EXTERN and t[ids["prog"]].linkage == btf.FUNC_GLOBAL
    assert t[ids["var"]].linkage == 1
    assert t.resolve(ids["typedef"]).name == "s" and t.resolve(ids["type_tag"]).name == "int"
    assert [(v.name, off, size) for v, off, size in t.datasec(".ksyms")] == [("bpf_kfunc", 0, 0), ("v", 8, 16)]
    assert t.datasec(".kconfig") == []


def test_decl_tags_on_the_function_in_btf_order_only_component_minus_one() -> None:
    t = parse(_program_blob()[0])
    prog = t.find("prog", btf.FUNC)
    assert prog is not None
    # the tag with type_id 4 before the FUNC points at it too (ids are what count, not position); arg tags not
    assert t.decl_tags(prog.id) == ["comment:test_expect_failure", "comment:test_expect_msg=1=first",
                                    "comment:test_expect_msg=0=second"]
    assert t[prog.id + 2].component_idx == 0
    assert t.find("prog", btf.STRUCT) is None and t.find("nope", btf.FUNC) is None


def test_find_returns_the_lowest_id_of_a_duplicate_name() -> None:
    b = Blob()
    first = b.add(btf.FUNC, "dup", 0, 0)
    b.add(btf.FUNC, "dup", 0, 0)
    assert parse(b.bytes()).find("dup", btf.FUNC).id == first


@pytest.mark.parametrize(("mangle", "message"), [
    (lambda blob: blob[:10], "shorter than its header"),
    (lambda blob: b"\x00\x00" + blob[2:], "not BTF: magic"),
    (lambda blob: blob[:2] + b"\x02" + blob[3:], "BTF version 2"),
    (lambda blob: blob[:-5], "run past the blob"),
])
def test_a_blob_that_is_not_btf_is_refused(mangle, message) -> None:
    with pytest.raises(BTFError, match=message):
        parse(mangle(_program_blob()[0]))


def test_a_type_cut_short_or_of_unknown_kind_is_refused() -> None:
    b = Blob()
    b.add(btf.STRUCT, "s", 3, 12, b.words(0, 0, 0))  # says 3 members, has 1
    with pytest.raises(BTFError, match="runs past the type section"):
        parse(b.bytes())
    b = Blob()
    b.add(25, "x", 0, 0)
    with pytest.raises(BTFError, match="unknown kind 25"):
        parse(b.bytes())
    b = Blob()
    b.add(btf.INT, "int", 0, 4, b.words(0))
    blob = b.bytes()
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 10, 10, len(b.strings))
    with pytest.raises(BTFError, match="cut short"):
        parse(hdr + b.types[:10] + b.strings)
    assert parse(blob)[1].name == "int"


def test_a_modifier_loop_is_refused() -> None:
    b = Blob()
    b.add(btf.TYPEDEF, "a", 0, 2)
    b.add(btf.CONST, "", 0, 1)
    with pytest.raises(BTFError, match="loop"):
        parse(b.bytes()).resolve(1)


def _elf(sections: dict[str, bytes], machine: int = 62) -> bytes:
    """An ELF64 little-endian file holding `sections` (plus the null section and .shstrtab), byte by byte."""
    names = b"\0"
    offsets = {}
    for name in [*sections, ".shstrtab"]:
        offsets[name] = len(names)
        names += name.encode() + b"\0"
    body, pos = b"", 64
    placed = []
    for name, data in [*sections.items(), (".shstrtab", names)]:
        placed.append((name, pos, len(data)))
        body += data
        pos += len(data)
    shoff = pos
    headers = struct.pack("<IIQQQQIIQQ", *([0] * 10))
    for name, off, size in placed:
        headers += struct.pack("<IIQQQQIIQQ", offsets[name], 1, 0, 0, off, size, 0, 0, 1, 0)
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    head = struct.pack("<16sHHIQQQIHHHHHH", ident, 1, machine, 1, 0, 0, shoff, 0, 64, 0, 0, 64, len(placed) + 1,
                       len(placed))
    return head + body + headers


def test_read_file_takes_raw_btf_or_an_elf_files_btf_section(tmp_path) -> None:
    """One reader for every BTF the harness reads: a kernel's raw BTF (a prebuilt image's, read in the guest), a
    vmlinux (x86-64 ELF) and a BPF object (EM_BPF) alike."""
    b = Blob()
    i = b.add(btf.INT, "int", 0, 4, b.words(0x01000020))
    p = b.add(btf.FUNC_PROTO, "", 0, i)
    b.add(btf.FUNC, "bpf_audit_log_start", btf.FUNC_GLOBAL, p)
    s = b.add(btf.STRUCT, "task_struct", 0, 0)
    b.add(btf.TYPE_TAG, "kptr", 0, s)
    blob = b.bytes()
    raw, vmlinux, obj = tmp_path / "vmlinux.btf", tmp_path / "vmlinux", tmp_path / "probe.o"
    raw.write_bytes(blob)
    vmlinux.write_bytes(_elf({".text": b"\x90" * 8, ".BTF": blob}))
    obj.write_bytes(_elf({".BTF": blob}, machine=247))
    for path in (raw, vmlinux, obj):
        read = btf.read_file(path)
        assert read.func_names() == frozenset({"bpf_audit_log_start"}) and read.has_type_tag("kptr")
        assert not read.has_type_tag("percpu_kptr")


def test_read_file_says_what_is_wrong(tmp_path) -> None:
    nobtf = tmp_path / "vmlinux"
    nobtf.write_bytes(_elf({".text": b"\x90"}))
    with pytest.raises(BTFError, match="no .BTF section .*CONFIG_DEBUG_INFO_BTF"):
        btf.read_file(nobtf)
    cut = tmp_path / "cut"
    cut.write_bytes(_elf({".BTF": Blob().bytes()})[:80])
    with pytest.raises(BTFError, match="malformed or cut short"):
        btf.read_file(cut)
