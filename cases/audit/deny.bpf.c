// SPDX-License-Identifier: GPL-2.0
/* Rule 17: the verdict is independent of auditing: a program that logs and returns -EPERM still denies. */
#include "harness.h"

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("rule 17: a program that logs then returns -EPERM denies the open, and its record is emitted")
__rule(17) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/deny17", "comm=bah_deny17")
__expect_errno(EPERM)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "pid=${pid}", "cause=denied", "path=/tmp/bah/deny17",
		"count=1")
int BPF_PROG(deny_after_logging, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_deny17") || !harness_file_name_is(file, "deny17"))
		return 0;
	ac = bpf_audit_log_start();
	if (ac) {
		bpf_audit_log_file(ac, file);
		bpf_audit_log_cause(ac, "denied");
		bpf_audit_log_end(ac);
	}
	return -EPERM;
}

SEC("lsm/file_open")
__description("rule 17 twin: the same program returning 0 allows the open, with the same record")
__rule(17) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/allow17", "comm=bah_allow17")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "pid=${pid}", "cause=allowed", "path=/tmp/bah/allow17",
		"count=1")
int BPF_PROG(allow_after_logging, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_allow17") || !harness_file_name_is(file, "allow17"))
		return 0;
	ac = bpf_audit_log_start();
	if (ac) {
		bpf_audit_log_file(ac, file);
		bpf_audit_log_cause(ac, "allowed");
		bpf_audit_log_end(ac);
	}
	return 0;
}

SEC("lsm/file_open")
__description("rule 17: the denying program leaves other files alone (its filter, not the audit call, decides)")
__rule(17) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/other17", "comm=bah_deny17")
__expect_errno(0)
__expect_no_record("BPF_LSM_ACCESS", "prog-id=${prog_id}")
int BPF_PROG(deny_only_its_file, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_deny17") || !harness_file_name_is(file, "deny17"))
		return 0;
	ac = bpf_audit_log_start();
	if (ac) {
		bpf_audit_log_file(ac, file);
		bpf_audit_log_cause(ac, "denied");
		bpf_audit_log_end(ac);
	}
	return -EPERM;
}
