# SPDX-License-Identifier: GPL-2.0
"""harness.tools: naming missing tools, and streaming a child's output to a log and a callback."""

import subprocess
import sys
import time

import pytest

from harness.tools import stream


def test_stream_hands_each_line_to_the_callback_and_appends_the_log(tmp_path):
    log = tmp_path / "out.log"
    log.write_text("earlier\n")
    seen: list[str] = []
    rc = stream([sys.executable, "-c", "import sys; print('one'); print('two', file=sys.stderr); sys.exit(3)"],
                log, seen.append)
    assert rc == 3
    assert sorted(seen) == ["one\n", "two\n"]
    assert log.read_text().startswith("earlier\n") and "one\n" in log.read_text()


@pytest.mark.parametrize("grace", [0.0, 0.5])
def test_stream_interrupted_by_the_caller_leaves_no_child(tmp_path, grace):
    """A callback that raises stands for Ctrl-C in the caller: the child is gone when stream() re-raises."""
    pid_file = tmp_path / "pid"
    script = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); print('go', flush=True); " \
             "time.sleep(600)"

    def on_line(line: str) -> None:
        raise KeyboardInterrupt

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        stream([sys.executable, "-c", script], tmp_path / "log", on_line, grace=grace)
    assert time.monotonic() - t0 < 30
    pid = int(pid_file.read_text())
    res = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True)
    assert res.stdout.strip() == "", f"child {pid} outlived the interrupted stream: {res.stdout}"
