// SPDX-License-Identifier: GPL-2.0
/* Rule 5: audit kfuncs are refused to program types other than BPF_PROG_TYPE_LSM; the LSM twin loads. */
#include "harness.h"

char _license[] SEC("license") = "GPL";

/* Each program has the same body; only the section (program type) differs. */
static __always_inline int audit_once(void)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "not_lsm");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("fentry/security_file_open")
__description("rule 5: an fentry program calling bpf_audit_log_start is rejected")
__rule(5) __needs("bpf_audit")
__failure __msg("calling kernel function bpf_audit_log_start is not allowed")
int BPF_PROG(fentry_calls_audit, struct file *file)
{
	return audit_once();
}

SEC("tp_btf/sched_process_exec")
__description("rule 5: a tp_btf program calling bpf_audit_log_start is rejected")
__rule(5) __needs("bpf_audit")
__failure __msg("calling kernel function bpf_audit_log_start is not allowed")
int BPF_PROG(tp_btf_calls_audit, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return audit_once();
}

SEC("kprobe/do_unlinkat")
__description("rule 5: a kprobe program calling bpf_audit_log_start is rejected")
__rule(5) __needs("bpf_audit")
__failure __msg("calling kernel function bpf_audit_log_start is not allowed")
int kprobe_calls_audit(struct pt_regs *ctx)
{
	return audit_once();
}

SEC("lsm/file_open")
__description("rule 5 twin: the same body in an lsm/ program loads")
__rule(5) __needs("bpf_audit")
__success
int BPF_PROG(lsm_calls_audit, struct file *file)
{
	return audit_once();
}
