# SPDX-License-Identifier: GPL-2.0
"""A campaign's inner pytest never outlives it (tools.run_inner_pytest): real processes, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from helpers import alive

from harness.settings import REPO_ROOT

# The inner session: says its pid, and records the signal that ends it (the harness's plugin ends its VMs on
# SIGTERM; this one writes which signal came).
INNER = textwrap.dedent("""\
    import os, signal, sys, time
    def ended(sig, frame):
        open(sys.argv[1], "w").write(signal.Signals(sig).name)
        sys.exit(1)
    signal.signal(signal.SIGTERM, ended)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a session whose teardown does not stop on Ctrl-C
    print(os.getpid(), flush=True)
    time.sleep(600)
""")
# The campaign: runs the inner session through run_inner_pytest with a short grace.
CAMPAIGN = textwrap.dedent("""\
    import sys
    sys.path.insert(0, {repo!r})
    from pathlib import Path
    from harness.tools import run_inner_pytest
    with open(sys.argv[2], "w") as log:
        run_inner_pytest([sys.executable, sys.argv[1], sys.argv[3]], log, cwd=Path("."), grace=1.0,
                         on_line=lambda line: print(line, end="", flush=True))
""")


def _start(tmp_path: Path) -> tuple[subprocess.Popen, int, Path]:
    inner, campaign, ended = tmp_path / "inner.py", tmp_path / "campaign.py", tmp_path / "ended"
    inner.write_text(INNER)
    campaign.write_text(CAMPAIGN.format(repo=str(REPO_ROOT)))
    proc = subprocess.Popen([sys.executable, str(campaign), str(inner), str(tmp_path / "log"), str(ended)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline()), ended


def _ended_by(ended: Path, pid: int, seconds: float = 60.0) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (alive(pid) or not ended.exists()):
        time.sleep(0.05)
    assert not alive(pid), "the inner session outlived its campaign"
    return ended.read_text()


def test_a_killed_campaign_takes_its_inner_session_with_it(tmp_path):
    proc, inner, ended = _start(tmp_path)
    try:
        proc.kill()  # SIGKILL: no handler of the campaign runs
        proc.wait()
        assert _ended_by(ended, inner) == "SIGTERM"  # what the plugin answers by ending its VMs at once
    finally:
        if alive(inner):
            os.kill(inner, signal.SIGKILL)


def test_an_interrupted_campaign_gives_its_inner_session_grace_then_sigterm(tmp_path):
    proc, inner, ended = _start(tmp_path)
    try:
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)  # to the campaign only (a kill, a CI runner), not its process group
        assert _ended_by(ended, inner) == "SIGTERM"
        assert time.monotonic() - t0 >= 1.0, "the inner session got no grace to stop by itself"
        assert proc.wait(timeout=60) != 0  # the campaign still ends as interrupted
    finally:
        proc.kill()
        if alive(inner):
            os.kill(inner, signal.SIGKILL)
