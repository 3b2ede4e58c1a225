# SPDX-License-Identifier: GPL-2.0
"""cases/found/: collect only the case files git tracks; fresh finds of the generated-programs property wait."""

from __future__ import annotations

import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _tracked() -> set[str] | None:
    """Names of the tracked *.bpf.c here; None when this is not a git checkout (then everything counts)."""
    try:
        out = subprocess.run(["git", "-C", str(HERE), "ls-files", "-z", "--", "."], capture_output=True,
                             timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {Path(p).name for p in out.decode(errors="surrogateescape").split("\0") if p}


_TRACKED = _tracked()


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    if _TRACKED is None or not collection_path.name.endswith(".bpf.c"):
        return None
    return True if collection_path.name not in _TRACKED else None
