# SPDX-License-Identifier: GPL-2.0
"""The kernel matrix file (read by harness.kernel.targets) and the known-failures list: TOML -> frozen dataclasses."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

from harness.kernel.targets import (
    DEFAULT_MATRIX,
    KINDS,
    KernelTarget,
    Matrix,
    MatrixError,
    _read_toml,
    _tables,
    load,
    parse_matrix,
)
from harness.settings import DEFAULT_CONFIG_DIR

__all__ = ["DEFAULT_KNOWN_FAILURES", "DEFAULT_MATRIX", "KINDS", "KernelTarget", "KnownFailure", "Matrix",
           "MatrixError", "load", "parse_known_failures", "parse_matrix"]

DEFAULT_KNOWN_FAILURES = DEFAULT_CONFIG_DIR / "known-failures.toml"
_KF_KEYS = {"case", "kernel", "reason", "link"}


@dataclass(frozen=True)
class KnownFailure:
    case: str  # pytest node id or fnmatch pattern
    kernel: str
    reason: str
    link: str

    def matches(self, case: str, kernel: str) -> bool:
        return kernel == self.kernel and fnmatch.fnmatchcase(case, self.case)



def parse_known_failures(path: Path, text: str | None = None, matrix: Matrix | None = None) -> tuple[KnownFailure, ...]:
    """Read the known-failures list; with `matrix`, every kernel named must be one of its targets."""
    if text is None and not path.exists():
        return ()
    data = _read_toml(path, text)
    unknown_top = set(data) - {"known_failure"}
    if unknown_top:
        raise MatrixError(f"{path}: unknown top-level key(s) {sorted(unknown_top)}; expected [[known_failure]]")
    out: list[KnownFailure] = []
    for i, entry in enumerate(_tables(path, data, "known_failure"), 1):
        where = f"{path}: [[known_failure]] #{i}"
        extra = set(entry) - _KF_KEYS
        missing = _KF_KEYS - set(entry)
        if extra or missing:
            raise MatrixError(f"{where}: fields must be exactly {sorted(_KF_KEYS)}"
                              + (f"; unknown {sorted(extra)}" if extra else "")
                              + (f"; missing {sorted(missing)}" if missing else ""))
        for key in _KF_KEYS:
            if not isinstance(entry[key], str) or not entry[key].strip():
                raise MatrixError(f"{where}: {key} must be a non-empty string")
        if matrix is not None and entry["kernel"] not in matrix.names():
            raise MatrixError(f"{where}: kernel {entry['kernel']!r} is not a target of {matrix.path} "
                              f"({', '.join(matrix.names())})")
        out.append(KnownFailure(entry["case"], entry["kernel"], entry["reason"], entry["link"]))
    return tuple(out)


