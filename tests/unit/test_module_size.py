# SPDX-License-Identifier: GPL-2.0
"""No module of the harness or the guest agent is over 500 lines (issue 23): one job per module; `make lint` runs it."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 500


def test_no_module_over_500_lines() -> None:
    too_long = []
    for top in ("harness", "guests"):
        for path in sorted((ROOT / top).rglob("*.py")):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > MAX_LINES:
                too_long.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert not too_long, (f"over {MAX_LINES} lines (split by job into modules of their own):\n  "
                          + "\n  ".join(too_long))
