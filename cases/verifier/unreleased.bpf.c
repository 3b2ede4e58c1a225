// SPDX-License-Identifier: GPL-2.0
/* Rule 1: a context started and not ended on some path is rejected; the same program with the end put back loads. */
#include "harness.h"

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("rule 1: start without end is rejected as an unreleased reference")
__rule(1) __needs("bpf_audit")
__failure __msg("Unreleased reference id={{[0-9]+}}")
int BPF_PROG(unreleased_missing_end, struct file *file)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "unreleased");
	return 0;
}

SEC("lsm/file_open")
__description("rule 1 twin: the same program with bpf_audit_log_end loads")
__rule(1) __needs("bpf_audit")
__success
int BPF_PROG(unreleased_fixed, struct file *file)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "unreleased");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 1: a context ended on one branch only is rejected")
__rule(1) __needs("bpf_audit")
__failure __msg("Unreleased reference")
int BPF_PROG(unreleased_one_branch, struct file *file)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	if (bpf_get_prandom_u32() & 1)
		return 0;
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 1 twin: ending the context on both branches loads")
__rule(1) __needs("bpf_audit")
__success
int BPF_PROG(unreleased_both_branches, struct file *file)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	if (bpf_get_prandom_u32() & 1) {
		bpf_audit_log_end(ac);
		return 0;
	}
	bpf_audit_log_end(ac);
	return 0;
}
