// SPDX-License-Identifier: GPL-2.0
/* Rule 7: bpf_audit_log_cause takes only a constant string in read-only data; the literal twins load. */
#include "harness.h"

char _license[] SEC("license") = "GPL";

/* 6.12 names the cause argument arg#1, 7.3 its register R2; the other two messages read the same on both. */

/* Writable (.data): not a constant. */
char writable_cause[16] = "writable";
/* Read-only (.rodata), two strings back to back for the variable-offset case. */
const char two_causes[16] = "first\0second";

SEC("lsm/file_open")
__description("rule 7: a cause string on the stack (the current comm) is rejected")
__rule(7) __needs("bpf_audit")
__failure
__msg_before("7.3", "arg#1 doesn't point to a const string")
__msg_since("7.3", "R2 doesn't point to a const string")
int BPF_PROG(cause_on_stack, struct file *file)
{
	struct bpf_audit_context *ac;
	char comm[HARNESS_COMM_LEN];

	bpf_get_current_comm(comm, sizeof(comm));
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, comm);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 7: a cause string in a writable global is rejected")
__rule(7) __needs("bpf_audit")
__failure __msg("does not point to a readonly map")
int BPF_PROG(cause_in_writable_global, struct file *file)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, writable_cause);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 7: a read-only string at a non-constant offset is rejected")
__rule(7) __needs("bpf_audit")
__failure __msg("is not a constant address")
int BPF_PROG(cause_variable_offset, struct file *file)
{
	struct bpf_audit_context *ac;
	__u64 off = bpf_get_prandom_u32() & 6;

	/* hide the value from the compiler so it cannot turn this into two constant calls */
	asm volatile("" : "+r"(off));
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, two_causes + off);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 7 twin: a string literal as cause loads")
__rule(7) __needs("bpf_audit")
__success
int BPF_PROG(cause_literal, struct file *file)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "literal");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 7 twin: a read-only global at a constant offset loads")
__rule(7) __needs("bpf_audit")
__success
int BPF_PROG(cause_rodata_constant_offset, struct file *file)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, two_causes + 6);
	bpf_audit_log_end(ac);
	return 0;
}
