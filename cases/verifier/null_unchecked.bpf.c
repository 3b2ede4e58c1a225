// SPDX-License-Identifier: GPL-2.0
/* Rule 3: the possibly-NULL result of bpf_audit_log_start must be checked before any audit kfunc takes it. */
#include "harness.h"

/* 6.12 names the argument (arg0), 7.3 the register (R1): each line's words. */

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("rule 3: the unchecked result of bpf_audit_log_start passed to bpf_audit_log_end is rejected")
__rule(3) __needs("bpf_audit")
__failure
__msg_before("7.3", "Possibly NULL pointer passed to trusted arg0")
__msg_since("7.3", "Possibly NULL pointer passed to trusted R1")
int BPF_PROG(unchecked_to_end, struct file *file)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 3: the unchecked result of bpf_audit_log_start passed to a logger is rejected")
__rule(3) __needs("bpf_audit")
__failure
__msg_before("7.3", "Possibly NULL pointer passed to trusted arg0")
__msg_since("7.3", "Possibly NULL pointer passed to trusted R1")
int BPF_PROG(unchecked_to_logger, struct file *file)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	bpf_audit_log_file(ac, file);
	if (ac)
		bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 3 twin: the same calls after a NULL check load")
__rule(3) __needs("bpf_audit")
__success
int BPF_PROG(checked_before_use, struct file *file)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_file(ac, file);
	bpf_audit_log_end(ac);
	return 0;
}
