# SPDX-License-Identifier: GPL-2.0
"""The annotation table: each annotation's name, argument form and example, and the values its arguments may name."""

from __future__ import annotations

from dataclasses import dataclass

from harness.cases.needs import NEEDS

SPEC_RULES = range(1, 21)
# Rules the spec marks "decided here" (a question the RFC left open): a case checking one says __decided.
DECIDED_RULES = frozenset({11, 20})

FEATURES: dict[str, str] = {n.name: n.means for n in NEEDS.values()}  # __needs(...) names: cases/needs.py

CAPABILITIES = (
    "chown dac_override dac_read_search fowner fsetid kill setgid setuid setpcap linux_immutable "
    "net_bind_service net_broadcast net_admin net_raw ipc_lock ipc_owner sys_module sys_rawio sys_chroot "
    "sys_ptrace sys_pacct sys_admin sys_boot sys_nice sys_resource sys_time sys_tty_config mknod lease "
    "audit_write audit_control setfcap mac_override mac_admin syslog wake_alarm block_suspend audit_read "
    "perfmon bpf checkpoint_restore"
).split()

# action -> (required keys, optional keys). The guest agent implements these.
TRIGGER_ACTIONS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "open": (frozenset({"path"}), frozenset({"comm", "flags", "thread"})),
    "read": (frozenset({"path"}), frozenset({"comm"})),
    "mprotect": (frozenset(), frozenset({"comm", "prot"})),
    "connect": (
        frozenset({"family"}),
        frozenset({"comm", "addr", "port", "path", "type", "bind_addr", "bind_port"}),
    ),
    "bind": (frozenset({"family"}), frozenset({"comm", "addr", "port", "path", "type"})),
    "getsockopt": (frozenset({"family"}), frozenset({"comm", "addr", "port", "path", "connect"})),
    "ioctl": (frozenset({"path", "cmd"}), frozenset({"comm"})),
    "readlink": (frozenset({"path"}), frozenset({"comm"})),
    "getpgid": (frozenset(), frozenset({"comm"})),
    "kill": (frozenset({"sig"}), frozenset({"comm", "target_comm"})),
    "unlink": (frozenset({"path"}), frozenset({"comm"})),
    "sethostname": (frozenset(), frozenset({"comm", "name"})),
    "shell": (frozenset({"cmd"}), frozenset()),
}

PLACEHOLDERS = ("prog_id", "pid", "comm", "target_pid", "ino")
# Triggers whose result names the inode of the file they used (${ino}).
INO_ACTIONS = frozenset({"open", "read", "ioctl", "unlink", "readlink"})
# Triggers whose path= is not a file the harness creates before attaching: sockets, links that must exist.
NO_CREATE_ACTIONS = frozenset({"shell", "connect", "bind", "getsockopt", "readlink", "getpgid"})
SOCKET_ACTIONS = ("connect", "bind", "getsockopt")
RECORD_KEYWORDS = ("count", "order", "leading", "fields", "once", "same_event")
TASK_COMM_LEN = 16
MAX_NAME_LEN = 31  # harness_dentry_name_is() compares up to 31 bytes


@dataclass(frozen=True)
class Spec:
    kind: str  # "flag", "str" (exactly one string), "strs" (one or more strings), "int", "version_str" (two)
    repeatable: bool
    example: str


ANNOTATIONS: dict[str, Spec] = {
    "__description": Spec("str", False, '__description("what this case proves")'),
    "__success": Spec("flag", False, "__success"),
    "__failure": Spec("flag", False, '__failure __msg("verifier message")'),
    "__msg": Spec("str", True, '__msg("Unreleased reference")'),
    "__msg_since": Spec("version_str", True, '__msg_since("7.3", "Possibly NULL pointer passed to trusted R1")'),
    "__msg_before": Spec("version_str", True, '__msg_before("7.3", "Possibly NULL pointer passed to trusted arg0")'),
    "__libbpf_msg": Spec("str", True, '__libbpf_msg("Error loading .BTF into kernel")'),
    "__rule": Spec("int", True, "__rule(1)"),
    "__decided": Spec("flag", False, "__rule(11) __decided"),
    "__needs": Spec("strs", True, '__needs("bpf_audit")'),
    "__drop_caps": Spec("strs", True, '__drop_caps("sys_boot")'),
    "__trigger": Spec("strs", False, '__trigger("open", "path=/tmp/bah/x", "comm=bah_x")'),
    "__expect_record": Spec("strs", True, '__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=x")'),
    "__expect_no_record": Spec("strs", True, '__expect_no_record("BPF_LSM_ACCESS", "prog-id=${prog_id}")'),
    "__expect_errno": Spec("int", False, "__expect_errno(1)   /* or __expect_errno(EPERM) */"),
    "__audit_disabled": Spec("flag", False, "__audit_disabled"),
}

BPF_MISC_ONLY = (
    "__retval __retval_unpriv __success_unpriv __failure_unpriv __msg_unpriv __xlated __xlated_unpriv __jited "
    "__jited_unpriv __log_level __flag __auxiliary __auxiliary_unpriv __btf_path __arch __regex __caps_unpriv"
).split()


def known_list() -> str:
    return ", ".join(ANNOTATIONS)
