// SPDX-License-Identifier: GPL-2.0
/* Rules 9-10: one BPF_LSM_ACCESS record per context, starting prog-id= pid= comm=, prog-id matching the LOAD record. */
#include "harness.h"

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("rules 9-10: one record per context, leading prog-id= pid= comm= in that order, prog-id as in op=LOAD")
__rule(9) __rule(10) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/rec10", "comm=bah_rec10")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "pid=${pid}", "comm=${comm}", "cause=rec10",
		"leading=prog-id,pid,comm", "count=1")
__expect_record("BPF", "prog-id=${prog_id}", "op=LOAD", "count=1")
int BPF_PROG(record_leading_fields, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_rec10") || !harness_file_name_is(file, "rec10"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "rec10");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 10: pid= is the thread group id, also when the hook runs in a second thread of the process")
__rule(10) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/rectgid", "comm=bah_rectgid", "thread=1")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "pid=${pid}", "comm=bah_rectgid", "cause=rectgid",
		"count=1")
int BPF_PROG(record_pid_is_tgid_in_thread, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_rectgid") || !harness_file_name_is(file, "rectgid"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "rectgid");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 9: two contexts started and ended in one hook call give two records")
__rule(9) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/rec2", "comm=bah_rec2")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=ctx_one", "count=1")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=ctx_two", "count=1")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "count=2")
int BPF_PROG(record_per_context, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_rec2") || !harness_file_name_is(file, "rec2"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "ctx_one");
	bpf_audit_log_end(ac);
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "ctx_two");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 9: the record's type is the kernel tree's AUDIT_BPF_LSM_ACCESS (1427 in the RFC; the harness reads "
	      "the number from the tree's audit.h), not another LSM's AVC")
__rule(9) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/rectype", "comm=bah_rectype")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=type_number", "count=1")
__expect_no_record("AVC", "cause=type_number")
int BPF_PROG(record_type_number, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_rectype") || !harness_file_name_is(file, "rectype"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "type_number");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rules 9+20 (decided here): a context started and ended with no logger call gives one record with "
	      "the leading fields and nothing else")
__rule(9) __rule(20) __decided __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/rec0", "comm=bah_rec0")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "pid=${pid}", "comm=${comm}", "!cause", "!capability",
		"!path", "!dev", "!ino", "!ioctlcmd", "!name", "!opid", "!ocomm", "!laddr", "!lport", "!faddr",
		"!fport", "!saddr", "!src", "!daddr", "!dest", "!netif", "leading=prog-id,pid,comm", "count=1")
int BPF_PROG(record_no_fields, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_rec0") || !harness_file_name_is(file, "rec0"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_end(ac);
	return 0;
}
