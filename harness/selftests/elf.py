# SPDX-License-Identifier: GPL-2.0
"""A compiled BPF object read as libbpf reads it: ELF sections and symbols, its programs, maps, externs and BTF."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from harness import btf as btfmod
from harness.btf import BTFError

ELF_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
SECTION_HEADER = struct.Struct("<IIQQQQIIQQ")
SYMBOL = struct.Struct("<IBBHQQ")
EM_BPF = 247
SHT_PROGBITS, SHT_SYMTAB = 1, 2
SHF_EXECINSTR = 0x4
STT_FUNC = 2
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
SHN_UNDEF = 0
STRUCT_OPS_SECTIONS = (".struct_ops", ".struct_ops.link")


class ElfError(BTFError):
    """Not a BPF ELF object, or one libbpf would refuse to open."""

    stage = "object"


@dataclass(frozen=True)
class Section:
    index: int
    name: str
    type: int
    flags: int
    offset: int
    size: int
    link: int


@dataclass(frozen=True)
class Symbol:
    name: str
    type: int
    bind: int
    shndx: int
    value: int
    size: int


@dataclass(frozen=True)
class Program:
    """One BPF program as libbpf lists it (bpf_object__for_each_program): a global function in an executable
    section other than .text. `autoload` is False for a `SEC("?...")` program."""

    name: str
    section: str
    section_index: int
    offset: int
    size: int

    @property
    def autoload(self) -> bool:
        return not self.section.startswith("?")

    @property
    def sec_name(self) -> str:
        """The section name without the leading "?" (what libbpf matches its SEC definitions against)."""
        return self.section.removeprefix("?")

    @property
    def is_struct_ops(self) -> bool:
        return self.sec_name.split("/", 1)[0] in ("struct_ops", "struct_ops.s")

    @property
    def attach_target(self) -> str:
        """What the section names after its first "/" (a function, tracepoint or struct_ops member), or ""."""
        return self.sec_name.split("/", 1)[1] if "/" in self.sec_name else ""


@dataclass(frozen=True)
class BtfMap:
    """A map of the .maps section as its BTF defines it (libbpf's BTF-defined maps): type and flags as numbers."""

    name: str
    type: int
    flags: int


@dataclass(frozen=True)
class Extern:
    """An extern the object needs resolved at load: a kfunc (`kind` "func") or a ksym/kconfig variable."""

    name: str
    kind: str  # "func" | "var"
    section: str  # the DATASEC naming it: ".ksyms" or ".kconfig"
    weak: bool


class BpfObject:
    """A BPF ELF relocatable object (EM_BPF, ELF64 little-endian), parsed lazily from its bytes."""

    def __init__(self, data: bytes, path: Path | None = None) -> None:
        self.data = data
        self.path = path
        where = path or "object"
        if data[:4] != b"\x7fELF" or len(data) < ELF_HEADER.size:
            raise ElfError(f"{where} is not an ELF file")
        if data[4] != 2 or data[5] != 1:
            raise ElfError(f"{where} is not ELF64 little-endian (class {data[4]}, data {data[5]})")
        fields = ELF_HEADER.unpack_from(data)
        machine, shoff, shentsize, shnum, shstrndx = fields[2], fields[6], fields[11], fields[12], fields[13]
        if machine != EM_BPF:
            raise ElfError(f"{where} is an ELF file for machine {machine}, not BPF ({EM_BPF})")
        if shentsize != SECTION_HEADER.size or shoff + shnum * shentsize > len(data):
            raise ElfError(f"{where}: the section header table is malformed or cut short")
        raw = [SECTION_HEADER.unpack_from(data, shoff + i * shentsize) for i in range(shnum)]
        if not 0 < shstrndx < shnum:
            raise ElfError(f"{where}: no section name table")
        names = self._bytes(raw[shstrndx][4], raw[shstrndx][5])
        self.sections = tuple(Section(i, _cstr(names, r[0]), r[1], r[2], r[4], r[5], r[6]) for i, r in enumerate(raw))

    @classmethod
    def read(cls, path: Path) -> BpfObject:
        return cls(Path(path).read_bytes(), Path(path))

    def _bytes(self, offset: int, size: int) -> bytes:
        if offset + size > len(self.data):
            raise ElfError(f"{self.path or 'object'}: a section runs past the end of the file")
        return self.data[offset:offset + size]

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def section_bytes(self, sec: Section) -> bytes:
        return self._bytes(sec.offset, sec.size)

    @cached_property
    def symbols(self) -> tuple[Symbol, ...]:
        symtab = next((s for s in self.sections if s.type == SHT_SYMTAB), None)
        if symtab is None:
            return ()
        names = self.section_bytes(self.sections[symtab.link])
        blob = self.section_bytes(symtab)
        out = []
        for off in range(0, len(blob) - SYMBOL.size + 1, SYMBOL.size):
            name_off, info, _other, shndx, value, size = SYMBOL.unpack_from(blob, off)
            out.append(Symbol(_cstr(names, name_off), info & 0xF, info >> 4, shndx, value, size))
        return tuple(out)

    @cached_property
    def btf(self) -> btfmod.Btf | None:
        """The object's .BTF, or None when it has none (test_loader then cannot read any spec)."""
        sec = self.section(".BTF")
        return btfmod.parse(self.section_bytes(sec)) if sec is not None else None

    @cached_property
    def text_index(self) -> int | None:
        sec = self.section(".text")
        return sec.index if sec is not None else None

    @cached_property
    def programs(self) -> tuple[Program, ...]:
        """libbpf's program list: every STT_FUNC symbol of each non-empty executable PROGBITS section except
        .text (whose functions are subprograms), sorted by section index and then offset, as libbpf sorts them.
        A static (STB_LOCAL) function in such a section is an error libbpf refuses the object for."""
        progs = []
        for sec in self.sections:
            if sec.type != SHT_PROGBITS or not sec.flags & SHF_EXECINSTR or sec.size == 0:
                continue
            if sec.index == self.text_index:
                continue
            for sym in self.symbols:
                if sym.shndx != sec.index or sym.type != STT_FUNC:
                    continue
                if sym.bind == STB_LOCAL:
                    raise ElfError(f"sec '{sec.name}': program '{sym.name}' is static and not supported "
                                   "(libbpf refuses the object)")
                progs.append(Program(sym.name, sec.name, sec.index, sym.value, sym.size))
        return tuple(sorted(progs, key=lambda p: (p.section_index, p.offset)))

    def externs(self) -> list[Extern]:
        """The .ksyms and .kconfig externs from BTF (FUNCs with extern linkage, extern VARs); weak when the
        ELF symbol is STB_WEAK (libbpf then lets a missing one resolve to zero)."""
        if self.btf is None:
            return []
        weak = {s.name for s in self.symbols if s.shndx == SHN_UNDEF and s.bind == STB_WEAK}
        out = []
        for secname in (".ksyms", ".kconfig"):
            for t, _off, _size in self.btf.datasec(secname):
                if t.kind == btfmod.FUNC or t.kind == btfmod.VAR:
                    kind = "func" if t.kind == btfmod.FUNC else "var"
                    out.append(Extern(t.name, kind, secname, t.name in weak))
        return out

    def struct_ops_maps(self) -> list[tuple[str, str]]:
        """(map name, struct type name) for each variable of a .struct_ops/.struct_ops.link section."""
        if self.btf is None:
            return []
        out = []
        for secname in STRUCT_OPS_SECTIONS:
            for t, _off, _size in self.btf.datasec(secname):
                if t.kind == btfmod.VAR:
                    out.append((t.name, self.btf.resolve(t.size_or_type).name))
        return out

    def maps(self) -> list[BtfMap]:
        """The BTF-defined maps of .maps: `__uint(type, X)` is a pointer to an array of X elements, as is every
        __uint field (libbpf's get_map_field_int)."""
        if self.btf is None:
            return []
        out = []
        for t, _off, _size in self.btf.datasec(".maps"):
            if t.kind != btfmod.VAR:
                continue
            fields = {}
            st = self.btf.resolve(t.size_or_type)
            for m in st.members if st.kind == btfmod.STRUCT else ():
                name = self.btf.string(m[0])
                ptr = self.btf.resolve(m[1])
                if ptr.kind == btfmod.PTR:
                    arr = self.btf.resolve(ptr.size_or_type)
                    if arr.kind == btfmod.ARRAY:
                        fields[name] = arr.extra[2]
            out.append(BtfMap(t.name, fields.get("type", 0), fields.get("map_flags", 0)))
        return out


def _cstr(blob: bytes, offset: int) -> str:
    end = blob.find(b"\0", offset)
    return blob[offset:(len(blob) if end < 0 else end)].decode("utf-8", errors="replace")
