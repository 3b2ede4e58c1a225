# SPDX-License-Identifier: GPL-2.0
"""The one BTF reader (pure Python): a blob's types by id, names, FUNCs and their DECL_TAGs, from raw BTF
(/sys/kernel/btf/vmlinux) or the .BTF section of an ELF file (a vmlinux, a BPF object)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from harness.errors import HarnessError

BTF_MAGIC = 0xEB9F
HEADER = struct.Struct("<HBBIIIII")  # magic, version, flags, hdr_len, type_off, type_len, str_off, str_len

# enum btf_kind (include/uapi/linux/btf.h)
KIND_NAMES = ("UNKN", "INT", "PTR", "ARRAY", "STRUCT", "UNION", "ENUM", "FWD", "TYPEDEF", "VOLATILE", "CONST",
              "RESTRICT", "FUNC", "FUNC_PROTO", "VAR", "DATASEC", "FLOAT", "DECL_TAG", "TYPE_TAG", "ENUM64")
INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT = range(1, 12)
FUNC, FUNC_PROTO, VAR, DATASEC, FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = range(12, 20)
MODIFIERS = frozenset({TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG})
# enum btf_func_linkage
FUNC_STATIC, FUNC_GLOBAL, FUNC_EXTERN = 0, 1, 2

# Bytes after the 12-byte common header: a fixed part, plus vlen records of a fixed size.
_FIXED = {INT: 4, ARRAY: 12, VAR: 4, DECL_TAG: 4}
_PER_MEMBER = {STRUCT: 12, UNION: 12, ENUM: 8, FUNC_PROTO: 8, DATASEC: 12, ENUM64: 12}


class BTFError(HarnessError):
    """A blob that is not BTF, or is cut short: the object's .BTF cannot be read."""

    stage = "btf"


@dataclass(frozen=True)
class BtfType:
    """One type: `size_or_type` is the common header's third word (a size for INT/STRUCT/..., a type id for
    PTR/TYPEDEF/FUNC/VAR/DECL_TAG...). `members` holds the vlen records as tuples of ints (name_off first where
    the record has a name); `extra` the fixed part (INT's encoding, VAR's linkage, DECL_TAG's component_idx,
    ARRAY's (type, index_type, nelems))."""

    id: int
    kind: int
    name: str
    vlen: int
    kind_flag: bool
    size_or_type: int
    extra: tuple[int, ...] = ()
    members: tuple[tuple[int, ...], ...] = ()

    @property
    def kind_name(self) -> str:
        return KIND_NAMES[self.kind] if self.kind < len(KIND_NAMES) else f"kind{self.kind}"

    @property
    def linkage(self) -> int:
        """FUNC: vlen holds the linkage (static, global, extern); VAR: the fixed part does."""
        return self.vlen if self.kind == FUNC else (self.extra[0] if self.kind == VAR and self.extra else 0)

    @property
    def component_idx(self) -> int:
        """DECL_TAG: -1 for a tag on the declaration itself, else the member or argument index."""
        return self.extra[0] if self.kind == DECL_TAG else -1


@dataclass(frozen=True)
class Btf:
    """Every type of a blob; types[0] is the implicit void."""

    types: tuple[BtfType, ...]
    strings: bytes

    def __len__(self) -> int:
        return len(self.types)

    def __getitem__(self, type_id: int) -> BtfType:
        return self.types[type_id]

    def string(self, offset: int) -> str:
        return _cstr(self.strings, offset)

    def find(self, name: str, kind: int) -> BtfType | None:
        """The first type (lowest id) of `kind` named `name`, as libbpf's btf__find_by_name_kind finds it."""
        for t in self.types[1:]:
            if t.kind == kind and t.name == name:
                return t
        return None

    def decl_tags(self, type_id: int) -> list[str]:
        """The values of the DECL_TAGs on type `type_id` itself (component_idx == -1), in BTF order: what
        test_loader's parse_test_spec walks for a program's FUNC."""
        return list(self._tags.get(type_id, ()))

    @cached_property
    def _tags(self) -> dict[int, list[str]]:
        tags: dict[int, list[str]] = {}
        for t in self.types[1:]:
            if t.kind == DECL_TAG and t.component_idx == -1:
                tags.setdefault(t.size_or_type, []).append(t.name)
        return tags

    def resolve(self, type_id: int) -> BtfType:
        """Follow typedefs and modifiers (const, volatile, restrict, type tags) to the underlying type."""
        t = self.types[type_id]
        for _ in range(64):
            if t.kind not in MODIFIERS:
                return t
            t = self.types[t.size_or_type]
        raise BTFError(f"BTF type {type_id}: a modifier chain longer than 64 (a loop?)")

    def funcs(self) -> list[BtfType]:
        return [t for t in self.types[1:] if t.kind == FUNC]

    def func_names(self) -> frozenset[str]:
        """The names of every FUNC: a kernel's BTF lists its kfuncs and the functions BPF programs can attach to."""
        return frozenset(t.name for t in self.types[1:] if t.kind == FUNC)

    def has_type_tag(self, value: str) -> bool:
        """Whether any TYPE_TAG says `value` (clang keeps `__kptr` as TYPE_TAG 'kptr'; clang 14 drops it)."""
        return any(t.kind == TYPE_TAG and t.name == value for t in self.types[1:])

    def datasec(self, name: str) -> list[tuple[BtfType, int, int]]:
        """The variables of DATASEC `name` as (VAR or FUNC type, offset, size); [] when there is none."""
        sec = self.find(name, DATASEC)
        if sec is None:
            return []
        return [(self.types[m[0]], m[1], m[2]) for m in sec.members if 0 < m[0] < len(self.types)]


def _cstr(blob: bytes, offset: int) -> str:
    if offset >= len(blob):
        raise BTFError(f"string offset {offset} is past the string section ({len(blob)} bytes)")
    end = blob.find(b"\0", offset)
    return blob[offset:(len(blob) if end < 0 else end)].decode("utf-8", errors="replace")


def parse(blob: bytes) -> Btf:
    """Parse a raw BTF blob (either byte order, as the magic says). Raise BTFError when it is not BTF or is
    truncated, or holds a kind this reader does not know (its size would be unknown, so the rest unreadable)."""
    if len(blob) < HEADER.size:
        raise BTFError(f"BTF blob of {len(blob)} bytes is shorter than its header")
    endian = "<"
    magic = struct.unpack_from("<H", blob)[0]
    if magic != BTF_MAGIC:
        if struct.unpack_from(">H", blob)[0] != BTF_MAGIC:
            raise BTFError(f"not BTF: magic {magic:#06x}, expected {BTF_MAGIC:#06x}")
        endian = ">"
    _magic, version, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
        endian + HEADER.format[1:], blob)
    if version != 1:
        raise BTFError(f"BTF version {version} (this reader knows version 1)")
    types_start, strs_start = hdr_len + type_off, hdr_len + str_off
    if types_start + type_len > len(blob) or strs_start + str_len > len(blob):
        raise BTFError(f"BTF sections run past the blob ({len(blob)} bytes): types {types_start}+{type_len}, "
                       f"strings {strs_start}+{str_len}")
    strings = blob[strs_start:strs_start + str_len]
    word, three = struct.Struct(endian + "I"), struct.Struct(endian + "III")
    signed = struct.Struct(endian + "i")
    types: list[BtfType] = [BtfType(0, 0, "void", 0, False, 0)]
    pos, end = types_start, types_start + type_len
    while pos < end:
        if pos + 12 > end:
            raise BTFError(f"BTF type {len(types)} is cut short at byte {pos}")
        name_off, info, size_or_type = three.unpack_from(blob, pos)
        kind, vlen, kind_flag = (info >> 24) & 0x1F, info & 0xFFFF, bool(info >> 31)
        pos += 12
        if kind == 0 or kind >= len(KIND_NAMES):
            raise BTFError(f"BTF type {len(types)} has unknown kind {kind}")
        extra: tuple[int, ...] = ()
        fixed = _FIXED.get(kind, 0)
        if pos + fixed + vlen * _PER_MEMBER.get(kind, 0) > end:
            raise BTFError(f"BTF type {len(types)} ({KIND_NAMES[kind]}) runs past the type section")
        if kind == ARRAY:
            extra = three.unpack_from(blob, pos)
        elif kind == DECL_TAG:
            extra = signed.unpack_from(blob, pos)
        elif fixed:
            extra = word.unpack_from(blob, pos)
        pos += fixed
        members: list[tuple[int, ...]] = []
        per = _PER_MEMBER.get(kind, 0)
        if per:
            fmt = struct.Struct(endian + "I" * (per // 4))
            for _ in range(vlen):
                members.append(fmt.unpack_from(blob, pos))
                pos += per
        types.append(BtfType(len(types), kind, _cstr(strings, name_off) if name_off else "", vlen,
                             kind_flag, size_or_type, extra, tuple(members)))
    return Btf(tuple(types), strings)


ELF_MAGIC = b"\x7fELF"
_ELF64_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
_ELF64_SECTION = struct.Struct("<IIQQQQIIQQ")


def elf_section(data: bytes, name: str, where: object = "file") -> bytes | None:
    """The bytes of section `name` of an ELF64 little-endian file (any machine: a vmlinux or a BPF object), or
    None when it has no such section. BTFError when it is not such an ELF file or its tables are cut short."""
    if data[:4] != ELF_MAGIC or len(data) < _ELF64_HEADER.size or data[4] != 2 or data[5] != 1:
        raise BTFError(f"{where} is not an ELF64 little-endian file")
    fields = _ELF64_HEADER.unpack_from(data)
    shoff, shentsize, shnum, shstrndx = fields[6], fields[11], fields[12], fields[13]
    if shentsize != _ELF64_SECTION.size or shoff + shnum * shentsize > len(data) or not 0 < shstrndx < shnum:
        raise BTFError(f"{where}: the ELF section header table is malformed or cut short")
    headers = [_ELF64_SECTION.unpack_from(data, shoff + i * shentsize) for i in range(shnum)]
    names_off, names_size = headers[shstrndx][4], headers[shstrndx][5]
    names = data[names_off:names_off + names_size]
    for h in headers:
        if _cstr(names, h[0]) == name:
            if h[4] + h[5] > len(data):
                raise BTFError(f"{where}: section {name} runs past the end of the file")
            return data[h[4]:h[4] + h[5]]
    return None


def read_file(path: Path) -> Btf:
    """The BTF of a file: raw BTF (what /sys/kernel/btf/vmlinux holds) or an ELF file's .BTF section."""
    data = Path(path).read_bytes()
    if data[:4] == ELF_MAGIC:
        blob = elf_section(data, ".BTF", path)
        if blob is None:
            raise BTFError(f"{path} has no .BTF section (a kernel built without CONFIG_DEBUG_INFO_BTF, or an object "
                           "compiled without -g)")
        return parse(blob)
    return parse(data)
