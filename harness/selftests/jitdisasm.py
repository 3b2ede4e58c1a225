# SPDX-License-Identifier: GPL-2.0
"""The text test_loader matches __jited against: LLVM's disassembly of the JITed image (jit_disasm_helpers.c's
layout: "func #N:", "pc:<tab>bytes  L0:insn"), through libLLVM's C API on the host (the image comes from the guest)."""

from __future__ import annotations

import ctypes
import glob
import threading

MAX_LOCAL_LABELS = 32
BUF_SZ = 64  # disasm_one_func()'s char buf[64]: longer instructions are cut as there
REF_IN_BRANCH, REF_NONE = 1, 0
OPTION_PRINT_IMM_HEX = 2
LIB_GLOBS = ("/usr/lib/x86_64-linux-gnu/libLLVM.so.*", "/usr/lib/x86_64-linux-gnu/libLLVM-*.so*",
             "/usr/lib/llvm-*/lib/libLLVM*.so*")

_LOOKUP = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.POINTER(ctypes.c_uint64),
                           ctypes.c_uint64, ctypes.POINTER(ctypes.c_char_p))
_lock = threading.Lock()
_llvm: ctypes.CDLL | None = None


class JitDisasmError(RuntimeError):
    """No libLLVM with a disassembler here, or an instruction it cannot decode."""


def llvm() -> ctypes.CDLL:
    global _llvm
    with _lock:
        if _llvm is not None:
            return _llvm
        errors = []
        for path in sorted({p for g in LIB_GLOBS for p in glob.glob(g)}, reverse=True):
            try:
                lib = ctypes.CDLL(path)
                lib.LLVMCreateDisasmCPUFeatures  # noqa: B018 - present in every libLLVM with MC
            except (OSError, AttributeError) as e:
                errors.append(f"{path}: {e}")
                continue
            for name in ("LLVMInitializeX86TargetInfo", "LLVMInitializeX86TargetMC", "LLVMInitializeX86Disassembler"):
                getattr(lib, name)()
            lib.LLVMCreateDisasmCPUFeatures.restype = ctypes.c_void_p
            lib.LLVMCreateDisasmCPUFeatures.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                                        ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, _LOOKUP]
            lib.LLVMSetDisasmOptions.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
            lib.LLVMSetDisasmOptions.restype = ctypes.c_int
            lib.LLVMDisasmInstruction.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64,
                                                  ctypes.c_char_p, ctypes.c_size_t]
            lib.LLVMDisasmInstruction.restype = ctypes.c_size_t
            lib.LLVMDisasmDispose.argtypes = [ctypes.c_void_p]
            _llvm = lib
            return lib
        raise JitDisasmError("no libLLVM with an X86 disassembler found (" + "; ".join(errors or ["none installed"])
                             + "): test_progs built without LLVM skips __jited subtests the same way")


def _one_func(image: bytes, triple: bytes) -> str:
    lib = llvm()
    pcs: list[int] = []  # jump targets as test_loader collects them: duplicates kept, at most 32
    names: list[bytes] = []
    state = {"print": False}

    def lookup(_data, value, ref_type, _pc, ref_name):
        kind = ref_type[0]
        ref_type[0] = REF_NONE
        ref_name[0] = None
        if kind != REF_IN_BRANCH:
            return None
        if state["print"]:  # the first label with that pc
            name = next((names[i] for i, v in enumerate(pcs) if v == value), None)
            return ctypes.cast(ctypes.c_char_p(name), ctypes.c_void_p).value if name else None
        if len(pcs) < MAX_LOCAL_LABELS and value < len(image):
            pcs.append(value)
        return None

    cb = _LOOKUP(lookup)
    ctx = lib.LLVMCreateDisasmCPUFeatures(triple, b"", b"", None, 0, None, cb)
    if not ctx:
        raise JitDisasmError(f"LLVMCreateDisasmCPUFeatures({triple.decode()}) failed")
    keep = []  # the label strings live while LLVM may hand them back
    try:
        if lib.LLVMSetDisasmOptions(ctx, OPTION_PRINT_IMM_HEX) != 1:
            raise JitDisasmError("LLVMSetDisasmOptions(PrintImmHex) failed")
        buf = ctypes.create_string_buffer(BUF_SZ)
        code = (ctypes.c_ubyte * len(image)).from_buffer_copy(image)
        base = ctypes.addressof(code)

        def step(pc: int, size: int) -> int:
            n = lib.LLVMDisasmInstruction(ctx, base + pc, len(image) - pc, pc, buf, size)
            if n <= 0:
                raise JitDisasmError(f"Can't disasm instruction at offset {pc}: {image[pc:pc + 16].hex(' ')}")
            return n

        pc = 0
        while pc < len(image):
            pc += step(pc, 1)
        pcs.sort()
        names.extend(f"L{i}".encode() for i in range(len(pcs)))
        keep.extend(names)
        state["print"] = True
        out, pc = [], 0
        while pc < len(image):
            n = step(pc, BUF_SZ)
            at = _bsearch(pcs, pc)
            label = names[at] if at is not None else None
            raw = " ".join(f"{b:02x}" for b in image[pc:pc + n]) + " "
            out.append(f"{pc:x}:\t{raw:<36}{label.decode() + ':' if label else ''}"
                       f"{buf.value.decode(errors='replace')}\n")
            pc += n
        return "".join(out)
    finally:
        lib.LLVMDisasmDispose(ctx)


def _bsearch(values: list[int], key: int) -> int | None:
    """glibc's bsearch(): the index its halving lands on first (with duplicates, not always the first one)."""
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) // 2
        if key < values[mid]:
            hi = mid
        elif key > values[mid]:
            lo = mid + 1
        else:
            return mid
    return None


def jited_text(image: bytes, func_lens: list[int], triple: str = "x86_64-pc-linux-gnu") -> str:
    """get_jited_program_text(): each JITed function as "func #N:", its instructions, a blank line."""
    out, pc = [], 0
    for i, n in enumerate(func_lens):
        out.append(f"func #{i}:\n{_one_func(image[pc:pc + n], triple.encode())}\n")
        pc += n
    return "".join(out)
