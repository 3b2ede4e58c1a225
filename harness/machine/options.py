# SPDX-License-Identifier: GPL-2.0
"""The guest's settings (--cpus, --memory, --append, --gdb): one table for pytest and the CLI, and their checks."""

from __future__ import annotations

import argparse
import re
import shlex
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from harness.errors import UsageError

GDB_FIRST_PORT = 1234  # QEMU's own `-s` port: where --gdb starts looking for free ones
GDB_APPEND = ("nokaslr",)  # gdb's symbols from vmlinux match only an unrandomized kernel


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def _port(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (--gdb takes an optional PORT: put paths and "
                                         "commands before it, or after --, or write --gdb=PORT)")
    value = _positive(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value}")
    return value


# (flags, keyword arguments): the same for pytest's addoption and argparse's add_argument, so a setting has one
# name and one meaning everywhere. pytest also keeps its older --vm-memory.
OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("--cpus",), dict(type=_positive, default=1, metavar="N", help="guest vCPUs (QEMU -smp), default 1")),
    (("--memory",), dict(default="1G", metavar="SIZE", help="guest memory (QEMU -m: 1G, 2048M), default 1G")),
    (("--append",), dict(action="append", default=[], metavar="ARGS",
                         help="extra kernel command line for the guest, after the harness's own (audit=1, ...), so "
                              "it can override them (repeatable; words split as a shell would, no quotes inside)")),
    (("--gdb",), dict(nargs="?", const=0, default=None, type=_port, metavar="PORT",
                      help="start QEMU's gdb stub in each guest, listening on 127.0.0.1 only: the first VM (xdist "
                           "worker gw0) on PORT, gwN on PORT+N (default: free ports from 1234 up); the guest boots "
                           "with nokaslr and the exact `gdb vmlinux -ex 'target remote ...'` line is printed")),
)
PYTEST_ALIASES = {"--memory": ("--vm-memory",)}


def add_options(add: Callable[..., Any], *, aliases: bool = False) -> None:
    """Register the table with `add` (an argparse parser's add_argument, or a pytest group's addoption)."""
    for flags, kwargs in OPTIONS:
        names = flags + (PYTEST_ALIASES.get(flags[0], ()) if aliases else ())
        add(*names, **kwargs)


_MEMORY = re.compile(r"\d+[KMGT]?", re.IGNORECASE)
_WORD = re.compile(r"[^\s'\"\\`$;&|<>]+")


@dataclass(frozen=True)
class VMSettings:
    """What the options ask of every guest of a run (checked: check_settings)."""

    cpus: int = 1
    memory: str = "1G"
    append: tuple[str, ...] = ()
    gdb: int | None = None  # the first gdb port (0: pick free ones), None: no gdb stub


def check_settings(cpus: int, memory: str, append: Iterable[str], gdb: int | None) -> VMSettings:
    """The options as VMSettings, or a UsageError naming the bad one. Kernel arguments reach QEMU through
    virtme-ng's own command lines, which quote nothing: a word may not hold quotes or shell characters."""
    if cpus < 1:
        raise UsageError(f"--cpus {cpus}: a guest needs at least one vCPU")
    if not _MEMORY.fullmatch(str(memory)):
        raise UsageError(f"--memory {memory}: give QEMU's -m size, a number with an optional K, M, G or T (1G, 2048M)")
    words: list[str] = []
    for value in append:
        try:
            split = shlex.split(value)
        except ValueError as e:
            raise UsageError(f"--append {value!r}: {e}") from None
        for word in split:
            if not _WORD.fullmatch(word):
                raise UsageError(f"--append {value!r}: {word!r} holds a quote, a space or a shell character, which "
                                 "cannot reach the guest's command line intact")
        words += split
    return VMSettings(cpus, str(memory), tuple(words), gdb)


def worker_index(worker: str) -> int:
    """0 for the controller ('main') and other single machines, N for xdist's gwN."""
    m = re.fullmatch(r"gw(\d+)", worker)
    return int(m.group(1)) if m else 0


def free_port_run(first: int, count: int) -> int:
    """The lowest port >= `first` from which `count` consecutive ports are free on 127.0.0.1 (checked by binding
    each; a port can still be taken between this check and QEMU's bind, which then fails the boot clearly)."""
    port = first
    while port + count - 1 <= 65535:
        for offset in range(count):
            if not _free(port + offset):
                port += offset + 1
                break
        else:
            return port
    raise UsageError(f"--gdb: no {count} free consecutive TCP ports on 127.0.0.1 from {first} up")


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def gdb_base(settings: VMSettings) -> int | None:
    """The run's first gdb port once decided (given, or settled by with_gdb_ports); None: no gdb, or not decided."""
    return settings.gdb or None


def pick_gdb_ports(settings: VMSettings, machines: int) -> int | None:
    """The first of `machines` consecutive gdb ports: the one --gdb gave, else free ones picked now; None: no gdb."""
    if settings.gdb is None:
        return None
    return settings.gdb or free_port_run(GDB_FIRST_PORT, max(1, machines))


def with_gdb_ports(settings: VMSettings, machines: int) -> VMSettings:
    """The settings with --gdb's first port settled: the one given, else free ones picked for `machines` VMs.
    Machine N (xdist's gwN) listens on that port + N. A pytest controller hands the settled port to its workers
    (harness.run_kernel.session); the CLI gives it to an inner pytest as `--gdb PORT` (pytest_args)."""
    if settings.gdb is None:
        return settings
    return replace(settings, gdb=pick_gdb_ports(settings, machines))


def gdb_command(vmlinux: object, port: int) -> str:
    """The line to type: gdb on the kernel's vmlinux, attached to the guest's stub."""
    return shlex.join(["gdb", str(vmlinux), "-ex", f"target remote 127.0.0.1:{port}"])


def pytest_args(settings: VMSettings) -> list[str]:
    """The settings as the options of an inner pytest run (the CLI's selftests)."""
    out = ["--cpus", str(settings.cpus), "--memory", settings.memory]
    out += [f"--append={word}" for word in settings.append]
    if settings.gdb is not None:
        out += ["--gdb", str(settings.gdb)]  # the first port, once with_gdb_ports settled it
    return out


def from_namespace(ns: Any) -> VMSettings:
    """The CLI's parsed options as checked VMSettings (UsageError on a bad one)."""
    return check_settings(ns.cpus, ns.memory, ns.append, ns.gdb)
