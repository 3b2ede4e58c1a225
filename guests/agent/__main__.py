# SPDX-License-Identifier: GPL-2.0
"""Entry point: argv, signals, the protocol stream on stdout and the request loop."""

import os
import sys

from .codec import json_dumps
from .dispatch import Agent
from .protocol import DIAG, LOG_PREFIX


def _parse_argv(argv: list[str]) -> dict:
    opts: dict = {"kmsg": True, "kmsg_level": 5, "quiet": False, "libbpf": None}
    it = iter(argv)
    for a in it:
        if a == "--no-kmsg":
            opts["kmsg"] = False
        elif a == "--quiet":
            opts["quiet"] = True
        elif a == "--kmsg-level":
            opts["kmsg_level"] = int(next(it))
        elif a == "--libbpf":
            opts["libbpf"] = next(it)
        else:
            sys.stderr.write(f"{LOG_PREFIX}unknown argument {a!r}\n")
            sys.exit(2)
    return opts


def _on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: list[str]) -> int:
    opts = _parse_argv(argv)
    # Keep the protocol stream private: fd 1 becomes stderr for anything else (libraries, children).
    out = open(os.dup(1), "wb", closefd=True)  # lives as long as the process
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    DIAG.stderr = not opts["quiet"]
    DIAG.kmsg_level = opts["kmsg_level"]
    if opts["kmsg"]:
        DIAG.open_kmsg()
    import _signal

    for sig in (15, 1, 2):  # SIGTERM, SIGHUP, SIGINT: clean up (links, objects, audit registration) and exit
        _signal.signal(sig, _on_signal)
    agent = Agent(opts["libbpf"])
    inp = sys.stdin.buffer

    def send(res: dict) -> None:
        out.write(json_dumps(res).encode() + b"\n")
        out.flush()

    try:
        hello = agent.hello()
        send(hello)
        DIAG.log(
            f"started pid {hello['pid']} on {hello['kernel']}, libbpf {hello['libbpf']}, startup {hello['startup']}s"
        )
        while not agent.exiting:
            line = inp.readline()
            if not line:
                DIAG.log("stdin closed, exiting")
                break
            if not line.strip():
                continue
            send(agent.handle(line))
    except BrokenPipeError:
        DIAG.log("stdout closed, exiting")
    except SystemExit:
        DIAG.log("signal received, exiting")
    finally:
        agent.cleanup()
    return 0


def run() -> None:
    """What the zipapp's own __main__ calls (`python3 -S agent.pyz ...`)."""
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":  # python3 -S -m agent, from guests/
    run()
