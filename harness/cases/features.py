# SPDX-License-Identifier: GPL-2.0
"""What the kernel under test offers, read from its BTF: the bpf_audit kfuncs, BPF LSM, kptr support."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from harness.btf import read_file as read_btf
from harness.cases.needs import missing_from_btf


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
    funcs = read_btf(vmlinux).func_names()
    try:
        tmp = memo.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(sorted(funcs)))
        os.replace(tmp, memo)
    except OSError:
        pass  # a read-only cache entry only costs a re-read next time
    return KernelFeatures(funcs)
