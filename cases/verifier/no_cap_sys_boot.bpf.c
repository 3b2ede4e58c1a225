// SPDX-License-Identifier: GPL-2.0
/* Rule 6: audit kfuncs are destructive: loading without CAP_SYS_BOOT is rejected, with it the same program loads. */
#include "harness.h"

char _license[] SEC("license") = "GPL";

/*
 * __drop_caps("sys_boot"): the loader drops CAP_SYS_BOOT (only that one;
 * CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN stay) before loading. Both programs
 * have the same body.
 */

SEC("lsm/file_open")
__description("rule 6: loading an audit program without CAP_SYS_BOOT is rejected (KF_DESTRUCTIVE)")
__rule(6) __needs("bpf_audit") __drop_caps("sys_boot")
__failure __msg("destructive kfunc calls require CAP_SYS_BOOT capability")
int BPF_PROG(without_cap_sys_boot, struct file *file)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "destructive");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 6 twin: the same program loaded with CAP_SYS_BOOT loads")
__rule(6) __needs("bpf_audit")
__success
int BPF_PROG(with_cap_sys_boot, struct file *file)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "destructive");
	bpf_audit_log_end(ac);
	return 0;
}
