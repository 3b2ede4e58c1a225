# SPDX-License-Identifier: GPL-2.0
"""Records written in auditd's own log format (`type=NAME msg=audit(STAMP): FIELDS`), which ausearch reads."""

from __future__ import annotations

import functools
from collections.abc import Iterable

from harness.cases.audit import Record


@functools.cache
def _libaudit_name_of():
    """libaudit's audit_msg_type_to_name (the names auditd writes and ausearch reads), or None without libaudit."""
    import ctypes

    try:
        lib = ctypes.CDLL("libaudit.so.1")
    except OSError:
        return None
    fn = lib.audit_msg_type_to_name
    fn.restype, fn.argtypes = ctypes.c_char_p, [ctypes.c_int]
    return fn


def auditd_type(rec: Record) -> str:
    """The `type=` auditd writes for `rec`: libaudit's name, `UNKNOWN[N]` for a number libaudit does not know (as
    auditd itself writes it), the kernel's name when libaudit is not installed."""
    name_of = _libaudit_name_of()
    if name_of is not None and rec.type >= 0:
        name = name_of(rec.type)
        return name.decode() if name else f"UNKNOWN[{rec.type}]"
    return rec.type_name or f"UNKNOWN[{rec.type}]"


def to_auditd_log(records: Iterable[Record]) -> str:
    """`records` as auditd writes its log (`type=NAME msg=audit(STAMP): FIELDS`): `ausearch -if FILE` reads it.
    Records without a stamp (unreadable ones) cannot be placed in an event and are left out."""
    lines = []
    for rec in records:
        if rec.stamp is None:
            continue
        body = rec.raw.split("): ", 1)[1] if "): " in rec.raw else " ".join(f"{k}={v}" for k, v in rec.fields)
        lines.append(f"type={auditd_type(rec)} msg=audit({rec.stamp}): {body}\n")
    return "".join(lines)
