# SPDX-License-Identifier: GPL-2.0
"""The text test_loader matches __xlated against: the kernel's BPF disassembler's lines (its print_bpf_insn()), with
disasm_helpers.c's trims ("(85) call foo#12" -> "call foo"), one "N: insn" line per instruction."""

from __future__ import annotations

import re
import struct
from pathlib import Path

INSN = struct.Struct("<BBhi")  # code, dst:4|src:4, off, imm
# classes, ops, sizes, modes (include/uapi/linux/bpf_common.h, bpf.h)
LD, LDX, ST, STX, ALU, JMP, JMP32, ALU64 = range(8)
K, X = 0x00, 0x08
ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, NEG, MOD, XOR, MOV, ARSH, END = (
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0)
W, H, B, DW = 0x00, 0x08, 0x10, 0x18
IMM, ABS, IND, MEM, MEMSX, ATOMIC, PROBE_ATOMIC, NOSPEC = 0x00, 0x20, 0x40, 0x60, 0x80, 0xC0, 0xE0, 0xC0
JA, CALL, EXIT, JCOND = 0x00, 0x80, 0x90, 0xE0
FETCH, XCHG, CMPXCHG, LOAD_ACQ, STORE_REL = 0x01, 0xE1, 0xF1, 0x100, 0x110
PSEUDO_CALL, PSEUDO_KFUNC_CALL, MAY_GOTO = 1, 2, 0
ADDR_SPACE_CAST, ADDR_PERCPU = 1, -1
TO_BE = 0x08

ALU_OPS = {ADD: "+=", SUB: "-=", MUL: "*=", DIV: "/=", OR: "|=", AND: "&=", LSH: "<<=", RSH: ">>=", NEG: "neg",
           MOD: "%=", XOR: "^=", MOV: "=", ARSH: "s>>=", END: "endian"}
ALU_SIGNED = {DIV: "s/=", MOD: "s%="}
MOVSX = {8: "(s8)", 16: "(s16)", 32: "(s32)"}
ATOMIC_ALU = {ADD: "add", AND: "and", OR: "or", XOR: "xor"}
SIZES = {W: "u32", H: "u16", B: "u8", DW: "u64"}
SIGNED_SIZES = {W: "s32", H: "s16", B: "s8"}
JMP_OPS = {0x00: "jmp", 0x10: "==", 0x20: ">", 0xA0: "<", 0x30: ">=", 0xB0: "<=", 0x40: "&", 0x50: "!=",
           0x60: "s>", 0xC0: "s<", 0x70: "s>=", 0xD0: "s<=", 0x80: "call", 0x90: "exit"}
CLASSES = ("ld", "ldx", "st", "stx", "alu", "jmp", "jmp32", "alu64")
_HELPER = re.compile(r"\bFN\((\w+),\s*(\d+),\s*##ctx\)")


def helper_names(bpf_h: str) -> dict[int, str]:
    """func_id_str[]: helper id -> "bpf_<name>" from __BPF_FUNC_MAPPER in include/uapi/linux/bpf.h."""
    return {int(i): f"bpf_{name}" for name, i in _HELPER.findall(bpf_h)}


def helper_names_of_tree(tree: Path) -> dict[int, str]:
    return helper_names((Path(tree) / "include/uapi/linux/bpf.h").read_text(errors="replace"))


def _s32(v: int) -> int:
    return v - (1 << 32) if v >= 1 << 31 else v


def _signed(v: int) -> str:
    return f"{v:+d}"


_Insns = list[tuple[int, int, int, int, int]]  # (code, dst, src, off, imm) per instruction


def _alu(insns: _Insns, i: int, helpers: dict[int, str]) -> str:
    code, dst, src, off, imm = insns[i]
    cls, op = code & 7, code & 0xF0
    r = "w" if cls == ALU else "r"
    if op == END:
        return f"r{dst} = bswap{imm} r{dst}" if cls == ALU64 else \
            f"r{dst} = {'be' if code & TO_BE else 'le'}{imm} r{dst}"
    if op == NEG:
        return f"{r}{dst} = -{r}{dst}"
    if code == ALU64 | MOV | X and off == ADDR_SPACE_CAST:
        return f"r{dst} = addr_space_cast(r{src}, {(imm & 0xFFFFFFFF) >> 16}, {imm & 0xFFFF})"
    if code == ALU64 | MOV | X and off == ADDR_PERCPU:
        return f"r{dst} = &(void __percpu *)(r{src})"
    name = ALU_SIGNED[op] if op in (DIV, MOD) and off == 1 else ALU_OPS.get(op, "")
    if code & X:
        sx = MOVSX.get(off, "") if op == MOV else ""
        return f"{r}{dst} {name} {sx}{r}{src}"
    return f"{r}{dst} {name} {imm}"


def _stx(insns: _Insns, i: int, helpers: dict[int, str]) -> str:
    code, dst, src, off, imm = insns[i]
    mode, size = code & 0xE0, code & 0x18
    sz = SIZES[size]
    probe = "probe " if mode == PROBE_ATOMIC else ""
    atomic = mode in (ATOMIC, PROBE_ATOMIC)
    bits = "64" if size == DW else ""
    if mode == MEM:
        return f"*({sz} *)(r{dst} {off:+d}) = r{src}"
    if atomic and imm in (ADD, AND, OR, XOR):
        return f"{probe}lock *({sz} *)(r{dst} {off:+d}) {ALU_OPS[imm & 0xF0]} r{src}"
    if atomic and imm in (ADD | FETCH, AND | FETCH, OR | FETCH, XOR | FETCH):
        return f"{probe}r{src} = atomic{bits}_fetch_{ATOMIC_ALU[imm & 0xF0]}(({sz} *)(r{dst} {off:+d}), r{src})"
    if atomic and imm == CMPXCHG:
        return f"{probe}r0 = atomic{bits}_cmpxchg(({sz} *)(r{dst} {off:+d}), r0, r{src})"
    if atomic and imm == XCHG:
        return f"{probe}r{src} = atomic{bits}_xchg(({sz} *)(r{dst} {off:+d}), r{src})"
    if atomic and imm == LOAD_ACQ:
        return f"{probe}r{dst} = load_acquire(({sz} *)(r{src} {off:+d}))"
    if atomic and imm == STORE_REL:
        return f"{probe}store_release(({sz} *)(r{dst} {off:+d}), r{src})"
    return f"BUG_{code:02x}"


def _st(insns: _Insns, i: int, helpers: dict[int, str]) -> str:
    code, dst, _src, off, imm = insns[i]
    mode, size = code & 0xE0, code & 0x18
    if mode == MEM:
        return f"*({SIZES[size]} *)(r{dst} {off:+d}) = {imm}"
    if mode == NOSPEC:
        return "nospec"
    return f"BUG_st_{code:02x}"


def _ldx(insns: _Insns, i: int, helpers: dict[int, str]) -> str:
    code, dst, src, off, _imm = insns[i]
    mode, size = code & 0xE0, code & 0x18
    if mode not in (MEM, MEMSX) or (mode == MEMSX and size == DW):
        return f"BUG_ldx_{code:02x}"
    return f"r{dst} = *({(SIZES if mode == MEM else SIGNED_SIZES)[size]} *)(r{src} {off:+d})"


def _ld(insns: _Insns, i: int, helpers: dict[int, str]) -> str:
    code, dst, src, _off, imm = insns[i]
    mode, size = code & 0xE0, code & 0x18
    if mode == ABS:
        return f"r0 = *({SIZES[size]} *)skb[{imm}]"
    if mode == IND:
        return f"r0 = *({SIZES[size]} *)skb[r{src} + {imm}]"
    if mode == IMM and size == DW:
        hi = insns[i + 1][4] if i + 1 < len(insns) else 0
        full = ((hi & 0xFFFFFFFF) << 32) | (imm & 0xFFFFFFFF)
        return f"r{dst} = 0x{full:x}"
    return f"BUG_ld_{code:02x}"


def _jmp(insns: _Insns, i: int, helpers: dict[int, str]) -> str:
    """JMP and JMP32."""
    code, dst, src, off, imm = insns[i]
    cls, op = code & 7, code & 0xF0
    if op == CALL:
        if src == PSEUDO_CALL:
            return f"call pc{off:+d}"  # disasm_helpers' cb_call: the subprog's original offset is in insn->off
        if src == 0 and imm in helpers:
            return f"call {helpers[imm]}"
        return "call kernel-function" if src == PSEUDO_KFUNC_CALL else "call unknown"
    if code == JMP | JA:
        return f"goto pc{off:+d}"
    if code == JMP | JA | X:
        return f"gotox r{dst}"
    if code == JMP | JCOND and src == MAY_GOTO:
        return f"may_goto pc{off:+d}"
    if code == JMP32 | JA:
        return f"gotol pc{imm:+d}"
    if code == JMP | EXIT:
        return "exit"
    r = "w" if cls == JMP32 else "r"
    name = JMP_OPS.get(op, "")
    if code & X:
        return f"if {r}{dst} {name} {r}{src} goto pc{off:+d}"
    return f"if {r}{dst} {name} 0x{imm & 0xFFFFFFFF:x} goto pc{off:+d}"


_BY_CLASS = {ALU: _alu, ALU64: _alu, STX: _stx, ST: _st, LDX: _ldx, LD: _ld, JMP: _jmp, JMP32: _jmp}


def insn_text(insns: _Insns, i: int, helpers: dict[int, str]) -> str:
    """print_bpf_insn(allow_ptr_leaks=true) of insns[i] without its "(code) " prefix and with a call's "#imm" cut,
    as disasm_insn() leaves it. Each insn is (code, dst, src, off, imm)."""
    return _BY_CLASS[insns[i][0] & 7](insns, i, helpers)


def decode(raw: bytes) -> list[tuple[int, int, int, int, int]]:
    out = []
    for k in range(0, len(raw) - len(raw) % 8, 8):
        code, regs, off, imm = INSN.unpack_from(raw, k)
        out.append((code, regs & 0xF, regs >> 4, off, imm))
    return out


def xlated_text(raw: bytes, helpers: dict[int, str]) -> str:
    """get_xlated_program_text(): "<index>: <insn>" per instruction, a 16-byte ld_imm64 taking two indexes."""
    insns = decode(raw)
    lines, i = [], 0
    while i < len(insns):
        lines.append(f"{i}: {insn_text(insns, i, helpers)}\n")
        i += 2 if insns[i][0] == LD | IMM | DW else 1
    return "".join(lines)
