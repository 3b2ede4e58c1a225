# SPDX-License-Identifier: GPL-2.0
"""What the kernel lets test_loader do: unprivileged BPF (sysctl, mitigations off), test prog flags it accepts."""

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


def _test_loader_config() -> bytes | None:
    """7.x's unpriv_helpers.c open_config(): /boot/config-<release>, else /proc/config.gz (gzip either way)."""
    import gzip

    for path in (f"/boot/config-{os.uname().release}", "/proc/config.gz"):
        try:
            with gzip.open(path, "rb") as f:
                return b"\n" + f.read()
        except (OSError, EOFError):
            continue
    return None


def unpriv_disabled_reason(mitigations_config: bool = False) -> str | None:
    """Why test_loader would not run an unprivileged subtest here (get_unpriv_disabled()), or None: the sysctl
    (unreadable counts as disabled), "mitigations=off" on the command line, and, with `mitigations_config` (7.x's
    unpriv_helpers.c), a kernel config without the line CONFIG_CPU_MITIGATIONS=y or none to read."""
    value = unpriv_sysctl()
    if value is None:
        return f"kernel.unprivileged_bpf_disabled cannot be read ({UNPRIV_SYSCTL}): test_loader then treats " \
               "unprivileged BPF as disabled"
    if value:
        return f"kernel.unprivileged_bpf_disabled = {value}: unprivileged BPF is disabled"
    if mitigations_off():
        return "mitigations=off on the kernel command line: test_loader does not run unprivileged subtests"
    if mitigations_config:
        config = _test_loader_config()
        if config is None:
            return ("no kernel config to read (/boot/config-<release>, /proc/config.gz): this tree's test_loader "
                    "then cannot tell whether mitigations are on and does not run unprivileged subtests")
        if b"\nCONFIG_CPU_MITIGATIONS=y\n" not in config + b"\n":
            return ("the kernel config has no CONFIG_CPU_MITIGATIONS=y: this tree's test_loader takes mitigations "
                    "as off and does not run unprivileged subtests")
    return None


def jit_enabled() -> bool:
    """is_jit_enabled(): the first byte of /proc/sys/net/core/bpf_jit_enable is not '0' (unreadable: off)."""
    try:
        with open("/proc/sys/net/core/bpf_jit_enable", "rb") as f:
            first = f.read(1)
    except OSError:
        return False
    return len(first) == 1 and first != b"0"


def efficient_unaligned_access() -> bool | None:
    """CONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS from /proc/config.gz; None when the kernel does not expose it."""
    config = _kernel_config()
    if config is None:
        return None
    return b"\nCONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS=y\n" in config


def prog_flag_accepted(flag: int, name: str = "") -> tuple[bool, int]:
    """Load `mov r0, 0; exit` as a socket filter with prog_flags = flag and prog_name = name (raw bpf(2), no
    libbpf): (accepted, errno). testing_prog_flags() names its probe "flag-test", which the kernel refuses (a program
    name holds only letters, digits, '_' and '.'): in test_progs neither testing flag is ever accepted."""
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
    raw = name.encode()[:15]  # libbpf copies at most BPF_OBJ_NAME_LEN - 1 bytes into attr.prog_name (offset 48)
    ctypes.memmove(ctypes.addressof(attr) + 48, raw, len(raw))
    fd = libc.syscall(ctypes.c_long(nr), ctypes.c_long(BPF_PROG_LOAD), attr, ctypes.c_uint(64))
    if fd < 0:
        return False, ctypes.get_errno()
    os.close(fd)
    return True, 0
