// SPDX-License-Identifier: GPL-2.0
/* Rule 16: a record emitted inside a syscall shares that syscall's serial, so it groups with the SYSCALL record. */
#include "harness.h"

/*
 * A SYSCALL record is only written when the task's audit context is not a
 * "dummy" one, i.e. when at least one audit rule is loaded at syscall entry
 * (kernel/auditsc.c: context->dummy = !audit_n_rules). The harness must load
 * a rule (any, e.g. `-a never,exit -F arch=b64 -S kexec_load`) for this case.
 */

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("rule 16: the record and the open's SYSCALL record share one event serial")
__rule(16) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/serial", "comm=bah_serial")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=serial", "count=1")
__expect_record("SYSCALL", "same_event=BPF_LSM_ACCESS", "pid=${pid}", "comm=${comm}", "syscall", "count=1")
int BPF_PROG(grouped_with_syscall, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_serial") || !harness_file_name_is(file, "serial"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "serial");
	bpf_audit_log_end(ac);
	return 0;
}
