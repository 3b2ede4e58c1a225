# SPDX-License-Identifier: GPL-2.0
"""A run's state is one RunSession per process, registered as a plugin; workers join their controller's run."""

from __future__ import annotations

import types

import pytest

from harness.run_kernel.session import PLUGIN_NAME, WORKERINPUT_KEY, RunDir, RunSession

pytest_plugins = ["pytester"]


def test_the_session_is_registered_as_a_plugin_and_hashed_by_identity(pytester: pytest.Pytester, tmp_path) -> None:
    """pluggy keeps plugins in sets: a session compared by value (an eq dataclass) is unhashable, which crashed an
    xdist worker in pytest_runtest_logfinish (a hook a conftest of another directory implements too)."""
    one, two = (RunSession.create(types.SimpleNamespace(), tmp_path) for _ in range(2))
    assert len({one, two, one}) == 2
    pytester.makepyfile(test_x=f"""
        from harness.plugin import run_session

        def test_x(pytestconfig):
            assert pytestconfig.pluginmanager.get_plugin({PLUGIN_NAME!r}) is run_session(pytestconfig)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--harness-cache", str(pytester.path / "cache"))
    result.assert_outcomes(passed=1)


def test_a_worker_joins_its_controllers_run_and_anyone_else_starts_one(tmp_path) -> None:
    controller = RunSession.create(types.SimpleNamespace(), tmp_path)
    node = types.SimpleNamespace(workerinput={})
    controller.pytest_configure_node(node)
    worker = RunSession.create(types.SimpleNamespace(workerinput=node.workerinput), tmp_path)
    assert worker.run.path == controller.run.path == tmp_path / "state" / "runs" / node.workerinput[WORKERINPUT_KEY]
    assert worker.is_worker and not controller.is_worker
    assert RunSession.create(types.SimpleNamespace(), tmp_path).run.run_id != controller.run.run_id


def test_the_run_directory_is_written_whole(tmp_path) -> None:
    run = RunDir(tmp_path, "r1")
    assert run.read_json("kernel.json") is None and not run.marked("needs-kernel")
    run.write_json("kernel.json", {"failed": "kernel build stage failed: x"})
    run.mark("needs-kernel")
    assert run.read_json("kernel.json") == {"failed": "kernel build stage failed: x"} and run.marked("needs-kernel")
    assert sorted(p.name for p in run.path.iterdir()) == ["kernel.json", "needs-kernel"]  # no tmp file left


def test_gdb_ports_reach_two_workers_through_workerinput_not_the_environment(pytester: pytest.Pytester) -> None:
    """--gdb with no PORT and -n 2: the controller picks two free ports, hands the first to each worker in its
    workerinput, gwN's pool serves on first + N, and the header lines name both and the exact gdb line (no VM)."""
    out = pytester.path / "out"
    out.mkdir()
    pytester.makeconftest(f"""
        import os, types
        from pathlib import Path

        def pytest_sessionfinish(session):
            if not hasattr(session.config, "workerinput"):
                from harness.run_kernel import gdb_lines
                built = types.SimpleNamespace(artifact=types.SimpleNamespace(vmlinux=Path("/k/vmlinux")))
                Path({str(out)!r}, "controller").write_text("\\n".join(gdb_lines(session.config, built)))
    """)
    pytester.makepyfile(test_x=f"""
        import os
        from pathlib import Path
        from harness.run_kernel import pool_config

        def test_port(pytestconfig, worker_id, tmp_path):
            assert not any("GDB" in k for k in os.environ if k.startswith("BPF_AUDIT_HARNESS"))
            port = pool_config(pytestconfig, kernel=None, run_dir=tmp_path, worker=worker_id).gdb_port
            Path({str(out)!r}, worker_id).write_text(str(port))
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--harness-cache", str(pytester.path / "cache"),
                                           "-n", "2", "--dist", "each", "test_x.py", "--gdb")
    result.assert_outcomes(passed=2)
    first = int((out / "gw0").read_text())
    assert int((out / "gw1").read_text()) == first + 1
    assert (out / "controller").read_text().splitlines() == [
        "QEMU's gdb stub of each VM (loopback only; the kernel boots with nokaslr): "
        f"gw0 127.0.0.1:{first}, gw1 127.0.0.1:{first + 1}",
        f"gdb /k/vmlinux -ex 'target remote 127.0.0.1:{first}'"]
