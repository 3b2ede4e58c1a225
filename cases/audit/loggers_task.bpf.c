// SPDX-License-Identifier: GPL-2.0
/* bpf_audit_log_task on task_kill: the signalled task's opid= and ocomm=. */
#include "harness.h"

char _license[] SEC("license") = "GPL";

SEC("lsm/task_kill")
__description("bpf_audit_log_task on task_kill logs opid= ocomm= of the target task")
__needs("bpf_audit")
__success
__trigger("kill", "sig=0", "target_comm=bah_ltasktgt", "comm=bah_ltask")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "opid=${target_pid}", "ocomm=bah_ltasktgt",
		"cause=log_task", "order=opid,ocomm", "count=1")
int BPF_PROG(log_task_on_kill, struct task_struct *p, struct kernel_siginfo *info, int sig, const struct cred *cred)
{
	struct bpf_audit_context *ac;

	/* only the trigger's signal 0, not the SIGKILL the agent cleans its target up with */
	if (!harness_comm_is("bah_ltask") || sig != 0)
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_task(ac, p);
	bpf_audit_log_cause(ac, "log_task");
	bpf_audit_log_end(ac);
	return 0;
}
