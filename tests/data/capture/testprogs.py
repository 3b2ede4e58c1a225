# SPDX-License-Identifier: GPL-2.0
"""Record tests/data/testprogs-*: real test_progs runs (its -v output, -J file, exit status) on the default kernel.

    .venv/bin/python tests/data/capture/testprogs.py OUTDIR      (from the repository root, as root)

Builds the default kernel's tree's test_progs for the scenarios' tests (harness.selftests.testprogs, cached), boots
one guest of the default kernel (`bpf-audit-harness build` first) and runs each scenario there as the harness runs
test_progs (harness.selftests.testprogs.run.shell_command), except where a scenario says otherwise. Writes
OUTDIR/testprogs-<release>-<scenario>/{test_progs.log, test_progs.json (when test_progs wrote one), run.json}.
run.json: the scenario, the guest command, its exit status, the kernel, the test_progs build key and what the
scenario shows.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from harness.kernel.request import KernelOptions, build_kernel
from harness.machine.pool import PoolConfig, VMPool
from harness.selftests.testprogs import run as tp_run
from harness.selftests.testprogs.build import build_test_progs
from harness.selftests.testprogs.plan import select
from harness.settings import CacheLayout, cache_root, new_run_dir

# name: (tests, how test_progs is run, what it shows)
MIXED = ["d_path", "lsm_cgroup", "task_local_storage", "test_local_storage"]
SCENARIOS = {
    "test_lsm": (["test_lsm"], "harness", "every subtest passes"),
    "mixed": (MIXED, "harness", "passes, a failing subtest (its lines in the -J file and under 'All error logs:'), "
              "a skip (no reason printed without -v), a test without subtests"),
    "mixed-verbose": (MIXED, "verbose", "the same with -v: every subtest's lines before its result line, the -J "
                      "file's results empty"),
    "mixed-verbose-tty": (MIXED, "verbose, line-buffered", "-v with stdout line-buffered, as on a terminal: "
                          "task_local_storage/sys_enter_exit fails (it counts its own task's syscalls while "
                          "test_progs writes each ASSERT line as it is printed)"),
    "crash": (MIXED, "segv", "test_progs gets SIGSEGV once the first test's result line is in its log (its crash "
              "handler prints the running test's lines and 'Caught signal #11!'); no -J file"),
}


def main(out: Path) -> int:
    layout = CacheLayout(cache_root())
    built = build_kernel(KernelOptions(cache_dir=layout.root))
    art = built.artifact
    tree = Path(art.meta["tree"])
    names = sorted({n for tests, _how, _what in SCENARIOS.values() for n in tests})
    selection = select(tree, names)
    tp = build_test_progs(tree, selection, art.vmlinux_h, layout, vmlinux=art.vmlinux, say=print)
    run_dir = new_run_dir(layout, "capture-testprogs")
    pool = VMPool(PoolConfig(kernel=art.bzimage, accel="auto", run_dir=run_dir, state_dir=layout.state,
                             worker="capture"))
    try:
        machine = pool.get()
        guest = machine.guest
        remote = f"{guest.private_dir()}/test_progs-{tp.key}"
        guest.run(f"mkdir -p {shlex.quote(remote)}", timeout=60, check=True)
        for path in tp.files:
            guest.put(path, f"{remote}/{path.name}", mode=0o755 if path.suffix in ("", ".so") else 0o644)
        for scenario, (tests, how, what) in SCENARIOS.items():
            command = tp_run.shell_command(tests, remote, verbose=how.startswith("verbose"))
            if how == "verbose, line-buffered":
                command = command.replace(" exec ", " BPF_AUDIT_HARNESS_LINE_BUFFERED=1 exec ")
            if how == "segv":
                command = (f"(until grep -q '^#' {remote}/{tp_run.LOG} 2>/dev/null; do sleep 0.05; done; "
                           f"pkill -SEGV -x {tp_run.BINARY}) & {command}")
            guest.run(f"rm -f {remote}/{tp_run.LOG} {remote}/{tp_run.JSON}", timeout=30)
            res = guest.agent().request("trigger", timeout=1000, guest_timeout=900, shell=command)
            dest = out / f"testprogs-{art.release}-{scenario}"
            dest.mkdir(parents=True, exist_ok=True)
            for name in (tp_run.LOG, tp_run.JSON):
                try:
                    guest.get(f"{remote}/{name}", dest / name)
                except OSError:
                    (dest / name).unlink(missing_ok=True)
            (dest / "run.json").write_text(json.dumps({
                "scenario": scenario, "shows": what, "tests": tests, "exit_code": res.get("rc"),
                "command": command.replace(remote, "<dir>"), "kernel": {"release": art.release, "key": art.key},
                "test_progs_key": tp.key, "test_progs_files": tp.meta.get("files"),
            }, indent=1) + "\n")
            print(f"{scenario}: exit {res.get('rc')} -> {dest}")
    finally:
        pool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]).resolve()))
