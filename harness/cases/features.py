# SPDX-License-Identifier: GPL-2.0
"""What the kernel under test offers, read from its BTF: the bpf_audit kfuncs, BPF LSM, kptr support."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.cases.needs import missing_from_btf

_FUNC_RE = re.compile(r"^\[\d+\] FUNC '([^']+)'", re.M)


def btf_func_names(raw_dump: str) -> frozenset[str]:
    """FUNC names from `bpftool btf dump file X` (raw format) output."""
    return frozenset(_FUNC_RE.findall(raw_dump))


@dataclass(frozen=True)
class KernelFeatures:
    funcs: frozenset[str]

    def missing(self, feature: str) -> str | None:
        """None when the kernel has `feature`, else the reason a case needing it is skipped."""
        return missing_from_btf(feature, self.funcs)


def from_vmlinux(vmlinux: Path, memo_dir: Path | None = None) -> KernelFeatures:
    """Read the BTF FUNC names of a vmlinux (or /sys/kernel/btf/vmlinux copy), memoized next to it."""
    memo = (memo_dir or vmlinux.parent) / "btf-funcs.json"
    try:
        return KernelFeatures(frozenset(json.loads(memo.read_text())))
    except (OSError, ValueError):
        pass
    out = subprocess.run(["bpftool", "btf", "dump", "file", str(vmlinux)], capture_output=True, text=True, check=True)
    funcs = btf_func_names(out.stdout)
    try:
        tmp = memo.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(sorted(funcs)))
        os.replace(tmp, memo)
    except OSError:
        pass  # a read-only cache entry only costs a re-read next time
    return KernelFeatures(funcs)
