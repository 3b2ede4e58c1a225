// SPDX-License-Identifier: GPL-2.0
/* Rule 2: ending a context twice or using it after the end is rejected; the single-end twins load. */
#include "harness.h"

/*
 * After bpf_audit_log_end the register no longer holds a pointer. 6.12
 * says so in one way for both mistakes (arg#0 must point to scalar); 7.3
 * names the register and says it per kfunc: a release kfunc wants a
 * referenced pointer, a logger a struct bpf_audit_context. 7.3 is the
 * first line known to word them so, hence the 7.3 boundary.
 */

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("rule 2: bpf_audit_log_end twice on one context is rejected (released register is a scalar)")
__rule(2) __needs("bpf_audit")
__failure
__msg_before("7.3", "arg#0 pointer type STRUCT bpf_audit_context must point to scalar, or struct with scalar")
__msg_since("7.3", "release kfunc bpf_audit_log_end expects referenced PTR_TO_BTF_ID passed to R1")
int BPF_PROG(double_end, struct file *file)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_end(ac);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 2 twin: the same program with one bpf_audit_log_end loads")
__rule(2) __needs("bpf_audit")
__success
int BPF_PROG(single_end, struct file *file)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 2: a logger called on a context after its end is rejected")
__rule(2) __needs("bpf_audit")
__failure
__msg_before("7.3", "arg#0 pointer type STRUCT bpf_audit_context must point to scalar, or struct with scalar")
__msg_since("7.3", "R1 is scalar expected STRUCT bpf_audit_context")
int BPF_PROG(use_after_end, struct file *file)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_end(ac);
	bpf_audit_log_cause(ac, "after_end");
	return 0;
}

SEC("lsm/file_open")
__description("rule 2 twin: the same logger call before the end loads")
__rule(2) __needs("bpf_audit")
__success
int BPF_PROG(use_before_end, struct file *file)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "after_end");
	bpf_audit_log_end(ac);
	return 0;
}
