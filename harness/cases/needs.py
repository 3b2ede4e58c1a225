# SPDX-License-Identifier: GPL-2.0
"""The features a case can ask for with __needs("..."), as one table: what each means, the evidence that decides
it, and the calls that make it required (issue 23 item 5)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

BPF_AUDIT_KFUNCS = (
    "bpf_audit_log_start", "bpf_audit_log_end", "bpf_audit_log_cause", "bpf_audit_log_cap", "bpf_audit_log_path",
    "bpf_audit_log_file", "bpf_audit_log_ioctl_op", "bpf_audit_log_dentry", "bpf_audit_log_inode",
    "bpf_audit_log_task", "bpf_audit_log_net_sock", "bpf_audit_log_net_sockaddr",
)

BTF, LSM, COMPILER = "btf", "lsm", "compiler"  # where the evidence for a need comes from


@dataclass(frozen=True)
class Need:
    """One __needs("name"): `means` is said where the feature is listed; `evidence` is what decides it for a run:
    the kernel's BTF, its active LSM list, or the BPF compiler's type tags. `btf_funcs` must be FUNCs of the
    kernel's BTF (the whole evidence for a BTF need; what the kernel was built with for the others). A case body
    that calls one of `called` (or a name starting with one of `called_prefixes`) must declare the need;
    `unsaid` finishes the collection error that says so."""

    name: str
    means: str
    evidence: str
    btf_funcs: tuple[str, ...] = ()
    called: frozenset[str] = frozenset()
    called_prefixes: tuple[str, ...] = ()
    unsaid: str = ""

    def required_by(self, body_ids: Iterable[str]) -> bool:
        return any(i in self.called or i.startswith(self.called_prefixes) for i in body_ids)


NEEDS: dict[str, Need] = {n.name: n for n in (
    Need("bpf_audit", "the bpf_audit kfuncs (bpf_audit_log_start in vmlinux BTF)", BTF, BPF_AUDIT_KFUNCS,
         called=frozenset({"harness_audit_start"}), called_prefixes=("bpf_audit_",),
         unsaid='calls bpf_audit kfuncs but lacks __needs("bpf_audit"); without it the case would fail instead of '
                'skipping on kernels without the series. Add __needs("bpf_audit").'),
    Need("bpf_lsm", "BPF LSM active (bpf in the kernel's lsm= list)", LSM, ("bpf_lsm_file_open",)),
    Need("btf_type_tag", "a compiler that emits btf_type_tag (__kptr members)", COMPILER,
         called=frozenset({"bpf_kptr_xchg"}),
         unsaid='uses bpf_kptr_xchg: add __needs("btf_type_tag") so it is skipped with a compiler that drops __kptr '
                "(clang 14)."),
    Need("task_kfuncs", "bpf_task_acquire/bpf_task_release in vmlinux BTF (6.2+; not in Debian's 6.1)", BTF,
         ("bpf_task_acquire", "bpf_task_release"), called=frozenset({"bpf_task_acquire", "bpf_task_release"}),
         unsaid='calls bpf_task_acquire/bpf_task_release: add __needs("task_kfuncs") so it is skipped on kernels '
                "without them (6.1) instead of failing to load."),
)}


def missing_from_btf(need: str, funcs: frozenset[str]) -> str | None:
    """None when the BTF FUNC names `funcs` hold every function `need` asks for, else the skip reason."""
    entry = NEEDS.get(need)
    if entry is None:
        return f"unknown feature {need!r} (known: {', '.join(sorted(NEEDS))})"
    for name in entry.btf_funcs:
        if name not in funcs:
            return f"kernel lacks {name} (not in vmlinux BTF)"
    return None
