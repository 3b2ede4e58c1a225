# SPDX-License-Identifier: GPL-2.0
"""Capabilities (per thread): used to load or trigger without e.g. CAP_SYS_BOOT."""

import os

from .protocol import BadRequest

CAP_NAMES = (
    "chown dac_override dac_read_search fowner fsetid kill setgid setuid setpcap linux_immutable net_bind_service "
    "net_broadcast net_admin net_raw ipc_lock ipc_owner sys_module sys_rawio sys_chroot sys_ptrace sys_pacct "
    "sys_admin sys_boot sys_nice sys_resource sys_time sys_tty_config mknod lease audit_write audit_control setfcap "
    "mac_override mac_admin syslog wake_alarm block_suspend audit_read perfmon bpf checkpoint_restore"
).split()


def parse_caps(value: object) -> list[int]:
    if not isinstance(value, list):
        raise BadRequest("argument 'drop_caps' must be a list of capability names or numbers")
    caps = []
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool) and 0 <= item < 64:
            caps.append(item)
        elif isinstance(item, str):
            name = item.lower().removeprefix("cap_")
            if name not in CAP_NAMES:
                raise BadRequest(f"unknown capability {item!r}")
            caps.append(CAP_NAMES.index(name))
        else:
            raise BadRequest(f"bad capability {item!r} in 'drop_caps'")
    return caps


class Caps:
    """capget/capset on the calling thread through libc."""

    VERSION_3 = 0x20080522

    def __init__(self, libc) -> None:
        import ctypes

        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

        class Data(ctypes.Structure):
            _fields_ = [
                ("effective", ctypes.c_uint32),
                ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32),
            ]

        self.ct = ctypes
        self.Header, self.Data = Header, Data
        self.libc = libc

    def get(self):
        hdr = self.Header(self.VERSION_3, 0)
        data = (self.Data * 2)()
        if self.libc.capget(self.ct.byref(hdr), data) != 0:
            err = self.ct.get_errno()
            raise OSError(err, "capget: " + os.strerror(err))
        return data

    def set(self, data) -> None:
        hdr = self.Header(self.VERSION_3, 0)
        if self.libc.capset(self.ct.byref(hdr), data) != 0:
            err = self.ct.get_errno()
            raise OSError(err, "capset: " + os.strerror(err))

    def drop(self, caps: list[int], permitted: bool) -> object:
        """Clear `caps` from the effective (and optionally permitted) set; return the previous state."""
        old = self.get()
        new = (self.Data * 2)()
        self.ct.memmove(new, old, self.ct.sizeof(new))
        for cap in caps:
            word, bit = divmod(cap, 32)
            new[word].effective &= ~(1 << bit) & 0xFFFFFFFF
            if permitted:
                new[word].permitted &= ~(1 << bit) & 0xFFFFFFFF
        self.set(new)
        return old
