# SPDX-License-Identifier: GPL-2.0
"""What the kernel under test offers, read from its BTF: the bpf_audit kfuncs, BPF LSM, kptr support."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

BPF_AUDIT_KFUNCS = (
    "bpf_audit_log_start", "bpf_audit_log_end", "bpf_audit_log_cause", "bpf_audit_log_cap", "bpf_audit_log_path",
    "bpf_audit_log_file", "bpf_audit_log_ioctl_op", "bpf_audit_log_dentry", "bpf_audit_log_inode",
    "bpf_audit_log_task", "bpf_audit_log_net_sock", "bpf_audit_log_net_sockaddr",
)
# Features a case can ask for with __needs("..."): each maps to the BTF names that must be present.
FEATURE_FUNCS = {
    "bpf_audit": BPF_AUDIT_KFUNCS,
    "bpf_lsm": ("bpf_lsm_file_open",),
    "task_kfuncs": ("bpf_task_acquire", "bpf_task_release"),
}

_FUNC_RE = re.compile(r"^\[\d+\] FUNC '([^']+)'", re.M)


def btf_func_names(raw_dump: str) -> frozenset[str]:
    """FUNC names from `bpftool btf dump file X` (raw format) output."""
    return frozenset(_FUNC_RE.findall(raw_dump))


@dataclass(frozen=True)
class KernelFeatures:
    funcs: frozenset[str]

    def missing(self, feature: str) -> str | None:
        """None when the kernel has `feature`, else the reason a case needing it is skipped."""
        names = FEATURE_FUNCS.get(feature)
        if names is None:
            return f"unknown feature {feature!r} (known: {', '.join(sorted(FEATURE_FUNCS))})"
        for name in names:
            if name not in self.funcs:
                return f"kernel lacks {name} (not in vmlinux BTF)"
        return None


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
