# SPDX-License-Identifier: GPL-2.0
"""What the kernel lets test_loader do: unprivileged BPF (sysctl, mitigations=off), test prog flags it accepts."""

import os
import sys

UNPRIV_SYSCTL = "/proc/sys/kernel/unprivileged_bpf_disabled"
BPF_PROG_LOAD = 5
BPF_PROG_TYPE_SOCKET_FILTER = 1
# __NR_bpf by machine
SYS_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "s390x": 351, "ppc64le": 361}
# mov r0, 0; exit: the program testing_prog_flags() loads with each flag
TRIVIAL_PROG = bytes([0xB7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0])
LICENSE = b"GPL\0"


def unpriv_sysctl() -> int | None:
    """kernel.unprivileged_bpf_disabled (0, 1 or 2), None when it cannot be read."""
    try:
        with open(UNPRIV_SYSCTL, "rb") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def mitigations_off() -> bool:
    """unpriv_helpers.c's get_mitigations_off(): a /proc/cmdline word that strncmp(word, "mitigations=off",
    strlen(word)) matches, i.e. any leading part of "mitigations=off" (an upstream quirk kept as is)."""
    try:
        with open("/proc/cmdline", "rb") as f:
            words = f.read().decode("utf-8", "replace").split()
    except OSError:
        return False
    return any("mitigations=off".startswith(w) for w in words)


def _kernel_config() -> bytes | None:
    """/proc/config.gz, None when the kernel does not expose it."""
    try:
        import gzip

        with gzip.open("/proc/config.gz", "rb") as f:
            return b"\n" + f.read()
    except (OSError, EOFError):
        return None


def built_without_mitigations(config: bytes | None) -> bool:
    """An x86 kernel built with CPU_MITIGATIONS=n: its cpu_mitigations_off() is constant true (include/linux/cpu.h),
    so the verifier bypasses its Spectre v1 checks for every program, exactly as with mitigations=off."""
    if config is None:
        return False
    return (b"\nCONFIG_ARCH_CONFIGURES_CPU_MITIGATIONS=y\n" in config
            and b"\nCONFIG_CPU_MITIGATIONS=y\n" not in config)


def unpriv_disabled_reason() -> str | None:
    """Why test_loader would not run an unprivileged subtest here (get_unpriv_disabled()), or None."""
    value = unpriv_sysctl()
    if value is None:
        return f"kernel.unprivileged_bpf_disabled cannot be read ({UNPRIV_SYSCTL}): test_loader then treats " \
               "unprivileged BPF as disabled"
    if value:
        return f"kernel.unprivileged_bpf_disabled = {value}: unprivileged BPF is disabled"
    if mitigations_off():
        return "mitigations=off on the kernel command line: test_loader does not run unprivileged subtests"
    if built_without_mitigations(_kernel_config()):
        return ("kernel built without CONFIG_CPU_MITIGATIONS: cpu_mitigations_off() is always true, as with "
                "mitigations=off, so the verifier skips the Spectre v1 checks unprivileged subtests expect")
    return None


def efficient_unaligned_access() -> bool | None:
    """CONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS from /proc/config.gz; None when the kernel does not expose it."""
    config = _kernel_config()
    if config is None:
        return None
    return b"\nCONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS=y\n" in config


def prog_flag_accepted(flag: int) -> tuple[bool, int]:
    """Load `mov r0, 0; exit` as a socket filter with prog_flags = flag (raw bpf(2), no libbpf): (accepted, errno)."""
    import ctypes

    nr = SYS_BPF.get(os.uname().machine)
    if nr is None:
        return False, 38  # ENOSYS: no syscall number known for this machine
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    insns = ctypes.create_string_buffer(TRIVIAL_PROG, len(TRIVIAL_PROG))
    lic = ctypes.create_string_buffer(LICENSE, len(LICENSE))
    attr = ctypes.create_string_buffer(64)  # union bpf_attr up to and including prog_name
    fields = (
        (0, BPF_PROG_TYPE_SOCKET_FILTER, 4), (4, len(TRIVIAL_PROG) // 8, 4),
        (8, ctypes.addressof(insns), 8), (16, ctypes.addressof(lic), 8), (44, flag, 4),
    )
    for off, value, size in fields:
        ctypes.memmove(ctypes.addressof(attr) + off, value.to_bytes(size, sys.byteorder), size)
    fd = libc.syscall(ctypes.c_long(nr), ctypes.c_long(BPF_PROG_LOAD), attr, ctypes.c_uint(64))
    if fd < 0:
        return False, ctypes.get_errno()
    os.close(fd)
    return True, 0
