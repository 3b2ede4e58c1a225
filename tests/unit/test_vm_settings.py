# SPDX-License-Identifier: GPL-2.0
"""--cpus, --memory, --append and --gdb: one table for pytest and the CLI, checked before anything boots; one gdb
port per xdist worker; the QEMU command line they give. (tests/system/test_vm_options.py: in real guests.)"""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.machine import options
from harness.machine.vm import LocalVM, VMConfig


def test_the_same_options_in_the_cli_and_pytest():
    cli = argparse.ArgumentParser()
    options.add_options(cli.add_argument)
    ns = cli.parse_args(["--cpus", "2", "--memory", "2G", "--append", "a=1 b", "--append", "c", "--gdb"])
    assert options.from_namespace(ns) == options.VMSettings(2, "2G", ("a=1", "b", "c"), 0)
    assert cli.parse_args([]).gdb is None and cli.parse_args(["--gdb", "4000"]).gdb == 4000
    with pytest.raises(SystemExit):
        cli.parse_args(["--cpus", "0"])
    from harness.cli.args import build_parser

    boot = build_parser().parse_args(["boot", "--cpus", "3", "--gdb=1300", "--", "true"])
    assert (boot.cpus, boot.gdb, boot.memory) == (3, 1300, "1G")


@pytest.mark.parametrize("cpus, memory, append, why", [
    (0, "1G", [], "at least one vCPU"),
    (1, "lots", [], "QEMU's -m size"),
    (1, "1G", ["a='b c'"], "holds a quote, a space or a shell character"),
    (1, "1G", ["x=$(reboot)"], "shell character"),
    (1, "1G", ["'unclosed"], "No closing quotation"),
])
def test_bad_settings_are_usage_errors(cpus, memory, append, why):
    with pytest.raises(UsageError, match=why.replace("(", r"\(").replace(")", r"\)")):
        options.check_settings(cpus, memory, append, None)


def test_one_gdb_port_per_worker_and_free_ones_picked():
    assert [options.worker_index(w) for w in ("main", "gw0", "gw3", "test_progs")] == [0, 0, 3, 0]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        first = options.free_port_run(port - 1, 3)
        assert first > port or first + 2 < port  # never a run through the taken port
    settled = options.with_gdb_ports(options.VMSettings(gdb=0), 2)  # free ports picked, written in the settings
    assert settled.gdb and options.gdb_base(settled) == settled.gdb
    assert options.gdb_base(options.VMSettings(gdb=0)) is None  # not settled: no port of its own to serve on
    assert options.with_gdb_ports(options.VMSettings(gdb=5000), 2).gdb == 5000
    assert options.with_gdb_ports(options.VMSettings(), 2) == options.VMSettings()
    assert options.pytest_args(settled)[-2:] == ["--gdb", str(settled.gdb)]  # what an inner pytest is given
    assert options.gdb_base(options.VMSettings(gdb=5000)) == 5000 and options.gdb_base(options.VMSettings()) is None
    assert options.pytest_args(options.VMSettings(2, "1G", ("foo=bar",), 5000)) == \
        ["--cpus", "2", "--memory", "1G", "--append=foo=bar", "--gdb", "5000"]


def test_the_qemu_command_line(tmp_path):
    vm = LocalVM(VMConfig(kernel=Path("/k/bzImage"), cpus=2, memory="768M", append=("foo=bar",), gdb_port=4321),
                 tmp_path)
    vm.port = 2222
    from harness.machine.accel import AccelChoice

    vm.accel = AccelChoice("tcg", "test", 0.0)
    argv = vm.argv(tmp_path / "ssh")
    assert argv[argv.index("--cpus") + 1] == "2" and argv[argv.index("--memory") + 1] == "768M"
    append = argv[argv.index("--append") + 1].split()
    assert append[0] == "audit=1" and append[-2:] == ["nokaslr", "foo=bar"]
    qemu = next(a for a in argv if a.startswith("--qemu-opts="))
    assert qemu.endswith(" -gdb tcp:127.0.0.1:4321") and "hostfwd=tcp:127.0.0.1:2222-" in qemu
    no_gdb = LocalVM(VMConfig(kernel=Path("/k/bzImage")), tmp_path, name="b")
    no_gdb.port, no_gdb.accel = 2223, AccelChoice("tcg", "test", 0.0)
    assert "-gdb" not in " ".join(no_gdb.argv(tmp_path / "ssh")) and "nokaslr" not in " ".join(no_gdb.argv(tmp_path))
