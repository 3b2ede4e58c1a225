# SPDX-License-Identifier: GPL-2.0
"""A case's `__trigger` annotation: its action parsed, its arguments (paths, names, signals, sockets) checked."""

from __future__ import annotations

import difflib
import ipaddress
import re
import signal as _signal
from collections.abc import Callable

from harness.cases.annotations import (
    MAX_NAME_LEN,
    SOCKET_ACTIONS,
    TASK_COMM_LEN,
    TRIGGER_ACTIONS,
)
from harness.cases.model import Annotation, Trigger
from harness.errors import CaseError

_Err = Callable[[int, str], CaseError]  # (line, message) -> the error to raise


def _parse_trigger(err: _Err, ann: Annotation) -> Trigger:
    line = ann.line
    action = ann.args[0]
    if action not in TRIGGER_ACTIONS:
        close = difflib.get_close_matches(action, list(TRIGGER_ACTIONS), n=1)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        raise err(line, f"unknown trigger action {action!r}. {hint}Known: {', '.join(TRIGGER_ACTIONS)}.")
    required, optional = TRIGGER_ACTIONS[action]
    args: list[tuple[str, str]] = []
    for arg in ann.args[1:]:
        if "=" not in arg:
            raise err(line, f'trigger argument {arg!r} is not key=value. Write e.g. "path=/tmp/bah/x".')
        key, value = arg.split("=", 1)
        if key not in required | optional:
            if key == "comm" and action == "shell":
                raise err(
                    line,
                    "comm= does not apply to shell triggers: the command's comm is its executable's "
                    "name. Use a built-in action, or filter on that name.",
                )
            allowed = ", ".join(sorted(required | optional))
            raise err(line, f"trigger {action!r} has no key {key!r}. Allowed: {allowed}.")
        if any(k == key for k, _ in args):
            raise err(line, f"trigger key {key!r} given twice. Keep one.")
        args.append((key, value))
    trig = Trigger(action, tuple(args), line)
    missing = sorted(required - {k for k, _ in args})
    if missing:
        needed = ", ".join(f'"{k}=..."' for k in missing)
        raise err(line, f'trigger "{action}" needs {needed}, e.g. __trigger("{action}", {needed}).')
    _validate_trigger_values(err, trig)
    return trig


def _validate_trigger_values(err: _Err, trig: Trigger) -> None:
    line, d = trig.line, trig.as_dict()
    for key in ("comm", "target_comm"):
        if key in d:
            size = len(d[key].encode())
            if not d[key] or size >= TASK_COMM_LEN:
                raise err(
                    line,
                    f"{key}={d[key]!r} must be 1-{TASK_COMM_LEN - 1} bytes (TASK_COMM_LEN); the kernel "
                    "would truncate it and the program's filter would not match.",
                )
    if "path" in d and trig.action not in SOCKET_ACTIONS:
        if not d["path"].startswith("/"):
            raise err(line, f"path={d['path']!r} must be absolute, e.g. path=/tmp/bah/x.")
        if len(d["path"].rsplit("/", 1)[1].encode()) > MAX_NAME_LEN:
            raise err(
                line,
                f"the last component of path={d['path']!r} is longer than {MAX_NAME_LEN} bytes "
                "(harness_dentry_name_is compares at most that).",
            )
    if trig.action == "open" and d.get("flags", "r") not in ("r", "w", "rw"):
        raise err(line, f"flags={d['flags']!r}: write flags=r, flags=w or flags=rw.")
    if trig.action == "open" and d.get("thread", "0") not in ("0", "1"):
        raise err(line, f"thread={d['thread']!r}: write thread=1 (open from a second thread) or leave it out.")
    if trig.action == "mprotect" and d.get("prot", "r") not in ("none", "r", "rw", "rx", "rwx"):
        raise err(line, f"prot={d['prot']!r}: write none, r, rw, rx or rwx.")
    if trig.action == "ioctl" and not re.fullmatch(r"0[xX][0-9A-Fa-f]+|[0-9]+", d["cmd"]):
        raise err(line, f"cmd={d['cmd']!r} is not an integer; write e.g. cmd=0x541b (FIONREAD).")
    if trig.action == "kill":
        sig = d["sig"]
        if not (sig.isdigit() or (sig.startswith("SIG") and sig in _signal.Signals.__members__)):
            raise err(line, f"sig={sig!r}: write a number (0 probes) or a name such as SIGUSR1.")
    if trig.action in SOCKET_ACTIONS:
        _validate_socket(err, line, trig.action, d)


def _validate_socket(err: _Err, line: int, action: str, d: dict[str, str]) -> None:
    fam = d["family"]
    if fam not in ("inet", "inet6", "unix"):
        raise err(line, f"family={fam!r}: write family=inet, family=inet6 or family=unix.")
    if d.get("type", "stream") not in ("stream", "dgram"):
        raise err(line, f"type={d['type']!r}: write type=stream or type=dgram.")
    if d.get("connect", "no") not in ("self", "no"):
        raise err(line, f"connect={d['connect']!r}: write connect=self (the socket connects to its own address) "
                  "or leave it out.")
    if fam == "unix":
        _validate_unix_socket(err, line, action, d)
        return
    _validate_inet_socket(err, line, fam, d)


def _validate_unix_socket(err: _Err, line: int, action: str, d: dict[str, str]) -> None:
    if "path" not in d or "addr" in d or "port" in d:
        raise err(line, "family=unix takes path=/tmp/bah/sock (and no addr=/port=).")
    if not d["path"] or len(d["path"].encode()) > 107:
        raise err(line, f"path={d['path']!r}: a unix socket path is 1-107 bytes.")
    if action != "connect" and not d["path"].startswith("/"):
        raise err(line, f"path={d['path']!r}: {action} takes an absolute socket path (no abstract @names).")
    if d.get("connect") == "self":
        raise err(line, "connect=self applies to family=inet and inet6 (a unix socket is only bound).")


def _validate_inet_socket(err: _Err, line: int, fam: str, d: dict[str, str]) -> None:
    if "addr" not in d or "port" not in d or "path" in d:
        raise err(line, f"family={fam} takes addr= and port= (and no path=).")
    version = 4 if fam == "inet" else 6
    for key in ("addr", "bind_addr"):
        if key in d:
            try:
                ok = ipaddress.ip_address(d[key]).version == version
            except ValueError:
                ok = False
            if not ok:
                raise err(line, f"{key}={d[key]!r} is not an IPv{version} address (family={fam}).")
    for key in ("port", "bind_port"):
        if key in d and not (d[key].isdigit() and 0 < int(d[key]) < 65536):
            raise err(line, f"{key}={d[key]!r}: write a port number 1-65535.")
    if ("bind_addr" in d) != ("bind_port" in d):
        raise err(line, "bind_addr= and bind_port= go together.")
