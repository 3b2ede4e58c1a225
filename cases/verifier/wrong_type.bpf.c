// SPDX-License-Identifier: GPL-2.0
/* Rule 8: a pointer of the wrong type where a context (or a file) is expected is rejected; the right types load. */
#include "harness.h"

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("rule 8: a struct file * passed where the context is expected is rejected")
__rule(8) __needs("bpf_audit")
__failure __msg("expected pointer to STRUCT bpf_audit_context")
int BPF_PROG(file_as_context, struct file *file)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause((struct bpf_audit_context *)file, "wrong_type");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 8: the context passed where a struct file * is expected is rejected")
__rule(8) __needs("bpf_audit")
__failure __msg("expected pointer to STRUCT file")
int BPF_PROG(context_as_file, struct file *file)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_file(ac, (struct file *)ac);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 8 twin: the context and the hook's file in their places load")
__rule(8) __needs("bpf_audit")
__success
int BPF_PROG(right_types, struct file *file)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "wrong_type");
	bpf_audit_log_file(ac, file);
	bpf_audit_log_end(ac);
	return 0;
}
