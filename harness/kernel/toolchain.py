# SPDX-License-Identifier: GPL-2.0
"""The compilers a kernel build runs: gcc or LLVM= (its tools, checked and named), and their identity for the key."""

from __future__ import annotations

import shutil
from collections.abc import Sequence

from harness.errors import ConfigError
from harness.tools import version_line


def toolchain_identity(llvm: str = "") -> tuple[str, ...]:
    """The compilers a kernel build runs, by their version lines: part of the cache key and of the slot's name. A
    gcc build's identity is what it always was (its keys stay valid); an LLVM= build's names LLVM= and its tools."""
    pahole = version_line("pahole", "--version")
    if not llvm:
        return (version_line("gcc", "--version"), version_line("ld", "--version"), pahole)
    return (f"LLVM={llvm}", version_line(llvm_tool(llvm, "clang"), "--version"),
            version_line(llvm_tool(llvm, "ld.lld"), "--version"), pahole)


def built_with(toolchain: Sequence[str], llvm: str) -> str:
    """What built a kernel, from its meta (ArtifactMeta.toolchain and .llvm): `LLVM=1 (Debian clang version 19.1.7
    ...)` or gcc's version line ('' for a prebuilt kernel)."""
    chain = [str(t) for t in toolchain]
    if llvm:
        return f"LLVM={llvm} ({chain[1] if len(chain) > 1 else 'clang'})"
    return chain[0] if chain else ""


# What a kernel's `make LLVM=...` runs (Documentation/kbuild/llvm.rst): CC, LD, AR, NM, OBJCOPY, OBJDUMP, READELF,
# STRIP, and clang again as HOSTCC.
LLVM_TOOLS = ("clang", "ld.lld", "llvm-ar", "llvm-nm", "llvm-objcopy", "llvm-objdump", "llvm-readelf", "llvm-strip")


def check_llvm(llvm: str) -> str:
    """`llvm` as make's LLVM= takes it (1, a -SUFFIX such as -19, or a PREFIX/ directory ending in /), or a
    UsageError saying so. '' (no LLVM build) passes."""
    llvm = llvm.strip()
    if llvm and not (llvm == "1" or llvm.startswith("-") or llvm.endswith("/")):
        raise ConfigError(f"LLVM={llvm}: the kernel's make takes LLVM=1 (clang, ld.lld, llvm-ar... by those names on "
                          "PATH), LLVM=-19 (a suffix: clang-19, ld.lld-19, ...) or LLVM=/usr/lib/llvm-19/bin/ (a "
                          "directory, with its trailing /).", usage=True)
    return llvm


def llvm_tool(llvm: str, name: str) -> str:
    """The command `make LLVM=<llvm>` runs for `name` (as the kernel's Makefile composes it)."""
    if llvm.endswith("/"):
        return llvm + name
    if llvm.startswith("-"):
        return name + llvm
    return name


def require_llvm(llvm: str) -> None:
    """Every tool an LLVM= build runs is there, or one MissingToolError saying what to install or put on PATH."""
    missing = [llvm_tool(llvm, t) for t in LLVM_TOOLS if shutil.which(llvm_tool(llvm, t)) is None]
    if not missing:
        return
    from harness.errors import MissingToolError

    if llvm.startswith("-") and llvm[1:].isdigit():
        how = f"apt-get install clang{llvm} lld{llvm} llvm{llvm}"
    else:
        how = ("on Debian: apt-get install clang-19 lld-19 llvm-19, then --llvm -19 (or --llvm /usr/lib/llvm-19/bin/, "
               "or /usr/lib/llvm-19/bin first on PATH for LLVM=1)")
    raise MissingToolError(f"LLVM={llvm} kernel build: missing {', '.join(missing)}. Install them ({how}).")
