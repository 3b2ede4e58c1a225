// SPDX-License-Identifier: GPL-2.0
/* bpf_audit_log_cap on the capable hook: sethostname(2) asks for CAP_SYS_ADMIN (21). */
#include "harness.h"

char _license[] SEC("license") = "GPL";

SEC("lsm/capable")
__description("bpf_audit_log_cap on capable logs capability=21 for sethostname's CAP_SYS_ADMIN check")
__needs("bpf_audit")
__success
__trigger("sethostname", "comm=bah_lcap")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "pid=${pid}", "capability=21", "cause=log_cap")
int BPF_PROG(log_cap_on_capable, const struct cred *cred, struct user_namespace *ns, int cap, unsigned int opts)
{
	struct bpf_audit_context *ac;

	if (cap != HARNESS_CAP_SYS_ADMIN || !harness_comm_is("bah_lcap"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cap(ac, cap);
	bpf_audit_log_cause(ac, "log_cap");
	bpf_audit_log_end(ac);
	return 0;
}
