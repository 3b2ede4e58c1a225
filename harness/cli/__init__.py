# SPDX-License-Identifier: GPL-2.0
"""`bpf-audit-harness` subcommands: thin wrappers over the same stages the pytest plugin uses."""

from __future__ import annotations

import sys

from harness.errors import HarnessError


def main(argv: list[str] | None = None) -> int:
    from harness.cli.args import build_parser

    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    guest_command = None
    if argv[:1] == ["ssh"] and "--" in argv:  # `ssh RUN [OPTIONS] -- CMD`: all after -- is the guest's
        cut = argv.index("--")
        argv, guest_command = argv[:cut], argv[cut + 1:]
    ns = parser.parse_args(argv)
    if guest_command is not None:
        ns.command = guest_command
    from harness.machine.lifetime import exit_on_hangup_and_term

    exit_on_hangup_and_term()
    if getattr(ns, "cases", "absent") is None and getattr(ns, "suite", "cases") == "cases":
        ns.cases = ["cases"]
    try:
        if getattr(ns, "clang", None):
            from harness.cases import clang

            clang.use(ns.clang)  # checked, and named in $CLANG for everything this command starts
        if getattr(ns, "llvm", None):
            import os

            from harness.kernel.toolchain import check_llvm

            os.environ["LLVM"] = check_llvm(ns.llvm)  # as $LLVM for the inner pytest runs (matrix, mutants, ...)
        return ns.func(ns)
    except HarnessError as e:  # usage (2) or the harness/machine (3): e.exit_code says which
        print(f"bpf-audit-harness: {e.stage} error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("bpf-audit-harness: interrupted", file=sys.stderr)
        return 130
