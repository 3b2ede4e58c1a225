// SPDX-License-Identifier: GPL-2.0
/* Rule 11 (decided here): fields after the leading ones appear in the order the program called the loggers. */
#include "harness.h"

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("rule 11 (decided here): file then cause gives path= ... cause= in that order")
__rule(11) __decided __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/ord1", "comm=bah_ord1")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=ord_file_first",
		"leading=prog-id,pid,comm", "order=comm,path,dev,ino,cause", "count=1")
int BPF_PROG(order_file_then_cause, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_ord1") || !harness_file_name_is(file, "ord1"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_file(ac, file);
	bpf_audit_log_cause(ac, "ord_file_first");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 11 (decided here): the same calls reversed give cause= before path=")
__rule(11) __decided __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/ord2", "comm=bah_ord2")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=ord_cause_first",
		"leading=prog-id,pid,comm", "order=comm,cause,path,dev,ino", "count=1")
int BPF_PROG(order_cause_then_file, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_ord2") || !harness_file_name_is(file, "ord2"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "ord_cause_first");
	bpf_audit_log_file(ac, file);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 11 (decided here): three loggers (cap, file, cause) appear in call order")
__rule(11) __decided __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/ord3", "comm=bah_ord3")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "capability=21", "cause=ord_three",
		"order=capability,path,cause", "count=1")
int BPF_PROG(order_cap_file_cause, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_ord3") || !harness_file_name_is(file, "ord3"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cap(ac, HARNESS_CAP_SYS_ADMIN);
	bpf_audit_log_file(ac, file);
	bpf_audit_log_cause(ac, "ord_three");
	bpf_audit_log_end(ac);
	return 0;
}
