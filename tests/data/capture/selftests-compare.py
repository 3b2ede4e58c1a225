#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
# Record tests/data/selftests-compare-<release>/: test_progs' own verdicts and the harness's agent answers for the
# same RUN_TESTS files, on one kernel, in guests of the same kernel build.
#
#   .venv/bin/python tests/data/capture/selftests-compare.py --kernel-src debian-6.12 OUTDIR [--files N]
#   .venv/bin/python tests/data/capture/selftests-compare.py --kernel-src debian-7.3 \
#       --fragment kernel-config/variants/testmod.config OUTDIR --files 70     # 7.3 with bpf_testmod
#
# 1. The files: every file of the tree's RUN_TESTS set (--files N: the first N of them in discovery order, after
#    the ones the comparison must hold: __xlated, __jited, __btf_path, a pre-execution callback, bpf_testmod).
# 2. `bpf-audit-harness selftests --test-progs TEST...` for the tests that run them (the tree's own test_progs,
#    built by the harness, in one guest): OUTDIR/test_progs.log and test_progs.json.
# 3. `bpf-audit-harness selftests FILE... --pytest-arg=--selftests-record=...`: OUTDIR/agent/<file>/ (the
#    agent's answers per subtest and what judging them needs) and OUTDIR/harness.json.
# Every step must give a verdict: a build, boot or guest failure (exit 2 or 3 of either command), a test_progs log
# without its summary line, or a file with no recorded subtest ends this script with exit 1 and says why. Nothing
# is ignored (the old shell capture's `|| true` is gone).
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))
HAB = [str(REPO / ".venv/bin/bpf-audit-harness")]
MUST = ("verifier_sdiv", "verifier_tailcall_jit", "verifier_bpf_fastcall", "verifier_bitfield_write",
        "verifier_array_access", "verifier_value_ptr_arith", "iters_testmod", "verifier_and", "verifier_unpriv")


def die(msg: str) -> None:
    print(f"selftests-compare: {msg}", file=sys.stderr)
    sys.exit(1)


def run(argv: list[str], log: Path) -> int:
    print("$ " + " ".join(argv), file=sys.stderr, flush=True)
    with log.open("w") as fh:
        rc = subprocess.run(argv, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode
    if rc not in (0, 1):
        die(f"{argv[1]} exited {rc} (no verdict): see {log}\n" + log.read_text(errors="replace")[-3000:])
    return rc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--kernel-src", required=True)
    ap.add_argument("--files", type=int, default=0, help="at most this many files (default: all)")
    ap.add_argument("-n", "--workers", type=int, default=2)
    ap.add_argument("--fragment", action="append", default=[], help="a config fragment for both runs' kernel "
                    "(variants/testmod.config: module support, so both load bpf_testmod)")
    ns = ap.parse_args()
    from harness.campaigns.selftests import source_tree
    from harness.selftests.discover import discover
    from harness.selftests.test_progs_log import name_of_test, parse
    from harness.settings import CacheLayout, cache_root

    tree = source_tree(ns.kernel_src, CacheLayout(cache_root()))
    skels = [s for s in discover(tree).skeletons if s.source is not None]
    chosen = [s for s in skels if s.name in MUST] + [s for s in skels if s.name not in MUST]
    if ns.files:
        chosen = chosen[:ns.files]
    if len(chosen) < 60:
        die(f"only {len(chosen)} files: the comparison needs at least 60")
    out = ns.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    (out / "logs").mkdir(parents=True)
    tests = list(dict.fromkeys(name_of_test(s.test) for s in chosen))
    tp = out / "logs/test_progs-run"
    kernel = ["--kernel-src", ns.kernel_src, *(w for f in ns.fragment for w in ("--fragment", f))]
    run([*HAB, "selftests", *kernel, "--test-progs", *tests, "--out", str(tp),
         "--json", str(out / "logs/test_progs-summary.json")], out / "logs/test_progs.out")
    log = (tp / "test_progs.log").read_text(errors="replace")
    if parse(log).summary is None:
        die(f"{tp / 'test_progs.log'} has no summary line: test_progs did not finish")
    (out / "test_progs.log").write_text(log)
    if (tp / "test_progs.json").is_file():
        shutil.copyfile(tp / "test_progs.json", out / "test_progs.json")
    shutil.copyfile(out / "logs/test_progs-summary.json", out / "test_progs-summary.json")  # notes: what did not build
    agent = out / "agent"
    run([*HAB, "selftests", *kernel, "-n", str(ns.workers), *[s.name for s in chosen],
         "--out", str(out / "logs/harness-run"), "--json", str(out / "harness.json"),
         f"--pytest-arg=--selftests-record={agent}"], out / "logs/harness.out")
    harness = json.loads((out / "harness.json").read_text())
    empty = [s.name for s in chosen if not list((agent / s.name).glob("[0-9]*.json"))
             and harness["files"].get(s.name, {}).get("subtests", [{}])[0].get("name") != "(whole file)"]
    if empty:
        die(f"no subtest recorded for {', '.join(empty)}")
    shutil.rmtree(out / "logs")  # run directories, build logs: not data for the test
    print(f"recorded {len(chosen)} files ({len(tests)} test_progs tests) into {out}")


if __name__ == "__main__":
    main()
