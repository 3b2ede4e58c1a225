# SPDX-License-Identifier: GPL-2.0
"""What every op shares: diagnostics (Diag), request errors, argument checking and errno text."""

import os
import sys

MIB = 1 << 20
LOG_PREFIX = "harness-agent: "

# Diagnostics: stderr and /dev/kmsg (so they interleave with the kernel console log).


class Diag:
    def __init__(self) -> None:
        self.kmsg_fd = -1
        self.kmsg_level = 5
        self.stderr = True

    def open_kmsg(self) -> None:
        try:
            self.kmsg_fd = os.open("/dev/kmsg", os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            self.kmsg_fd = -1

    def log(self, msg: str, kmsg: bool = True) -> None:
        line = LOG_PREFIX + msg.replace("\n", " ")
        if self.stderr:
            try:
                sys.stderr.write(line + "\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
        if kmsg and self.kmsg_fd >= 0:
            try:
                os.write(self.kmsg_fd, f"<{self.kmsg_level}>{line[:900]}\n".encode("utf-8", "replace"))
            except OSError:
                pass


DIAG = Diag()


class BadRequest(Exception):
    """The request is malformed: answered with ok:false, the agent carries on."""


class OpFailed(Exception):
    """The operation was attempted and failed: ok:false with `error` and extra result fields."""

    def __init__(self, message: str, **fields: object) -> None:
        super().__init__(message)
        self.fields = fields


_REQUIRED = object()


def arg(req: dict, name: str, kind: type | tuple, default: object = _REQUIRED) -> object:
    """Fetch and type-check one request argument."""
    if name not in req or req[name] is None:
        if default is _REQUIRED:
            raise BadRequest(f"missing argument '{name}'")
        return default
    value = req[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise BadRequest(f"argument '{name}' must be {_kind_names(kinds)}, not a boolean")
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, kinds):
        raise BadRequest(f"argument '{name}' must be {_kind_names(kinds)}, got {type(value).__name__}")
    return value


def _kind_names(kinds: tuple) -> str:
    names = {
        int: "an integer",
        str: "a string",
        bool: "a boolean",
        list: "a list",
        float: "a number",
        dict: "an object",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def os_error(err: int) -> str:
    return f"{os.strerror(err)} (errno {err})" if err else "success"
