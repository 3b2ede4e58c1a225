# SPDX-License-Identifier: GPL-2.0
"""harness.selftests.disasm and jitdisasm: the texts test_loader matches __xlated and __jited against."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from harness.selftests.disasm import helper_names, xlated_text
from harness.selftests.jitdisasm import JitDisasmError, jited_text

DATA = Path(__file__).resolve().parents[1] / "data"


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, dst | src << 4, off, imm)


def test_the_kernels_disassembly_lines() -> None:
    helpers = helper_names("FN(unspec, 0, ##ctx) FN(map_lookup_elem, 1, ##ctx) FN(get_smp_processor_id, 8, ##ctx)")
    prog = b"".join([
        insn(0xB7, 0, imm=0),  # r0 = 0
        insn(0xBF, 1, 10),  # r1 = r10
        insn(0x07, 1, imm=-8),  # r1 += -8
        insn(0x18, 2, 1, imm=5), insn(0, imm=0),  # r2 = map[id:5] (ld_imm64: two slots)
        insn(0x85, imm=1),  # call bpf_map_lookup_elem#1
        insn(0x85, imm=123456789),  # a fixed-up helper call: imm is an address delta
        insn(0x85, src=1, off=3, imm=1),  # bpf-to-bpf: the subprog's original offset is in off
        insn(0x85, src=2, imm=77),  # kfunc
        insn(0x79, 3, 10, off=-16),  # r3 = *(u64 *)(r10 -16)
        insn(0x7B, 10, 3, off=-24),  # *(u64 *)(r10 -24) = r3
        insn(0xDB, 1, 2, off=0, imm=0x01),  # r2 = atomic64_fetch_add((u64 *)(r1 +0), r2)
        insn(0x15, 0, imm=0, off=2),  # if r0 == 0x0 goto pc+2
        insn(0x3C, 1, 2, off=1),  # w1 /= w2 signed: sdiv with off=1
        insn(0xBF, 4, 5, off=8),  # r4 = (s8)r5
        insn(0xD7, 1, imm=16),  # r1 = bswap16 r1
        insn(0x05, off=-3),  # goto pc-3
        insn(0x95),  # exit
    ])
    assert xlated_text(prog, helpers).splitlines() == [
        "0: r0 = 0", "1: r1 = r10", "2: r1 += -8", "3: r2 = 0x5", "5: call bpf_map_lookup_elem", "6: call unknown",
        "7: call pc+3", "8: call kernel-function", "9: r3 = *(u64 *)(r10 -16)", "10: *(u64 *)(r10 -24) = r3",
        "11: r2 = atomic64_fetch_add((u64 *)(r1 +0), r2)", "12: if r0 == 0x0 goto pc+2", "13: w1 s/= w2",
        "14: r4 = (s8)r5", "15: r1 = bswap16 r1", "16: goto pc-3", "17: exit"]


def test_the_jit_image_as_llvm_prints_it() -> None:
    """jit_disasm_helpers.c's layout: offset, the bytes padded to 12, a local label where a jump lands."""
    image = bytes.fromhex("f30f1efa" "55" "4889e5" "31c0" "eb00" "c9" "c3")
    try:
        text = jited_text(image, [len(image)])
    except JitDisasmError as e:
        pytest.skip(str(e))
    lines = text.splitlines()
    assert lines[0] == "func #0:" and lines[-1] == ""
    assert lines[1] == "0:\tf3 0f 1e fa                         \tendbr64"
    assert lines[5] == "a:\teb 00                               \tjmp\tL0"
    assert lines[6] == "c:\tc9                                  L0:\tleave"
