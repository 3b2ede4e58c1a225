// SPDX-License-Identifier: GPL-2.0
/* Rule 12 (decided here): a logger's second call on one context returns -EALREADY and the field appears once. */
#include "harness.h"

/*
 * Each program reports what the second call returned through the record
 * itself: a distinct cause string (or, when cause is the logger under test,
 * a capability= marker), so the record alone proves the return value.
 */

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("rule 12 (decided here): bpf_audit_log_file twice: second returns -EALREADY, path= appears once")
__rule(12) __decided __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/dbl1", "comm=bah_dbl1")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=again_ealready", "path=/tmp/bah/dbl1",
		"once=path,dev,ino,cause", "count=1")
int BPF_PROG(double_file, struct file *file)
{
	struct bpf_audit_context *ac;
	int first, second;

	if (!harness_comm_is("bah_dbl1") || !harness_file_name_is(file, "dbl1"))
		return 0;
	ac = harness_audit_start();
	if (!ac)
		return 0;
	first = bpf_audit_log_file(ac, file);
	second = bpf_audit_log_file(ac, file);
	if (first == 0 && second == -EALREADY)
		bpf_audit_log_cause(ac, "again_ealready");
	else if (second == 0)
		bpf_audit_log_cause(ac, "again_accepted");
	else
		bpf_audit_log_cause(ac, "again_other");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 12 (decided here): bpf_audit_log_path then bpf_audit_log_file count as one field (-EALREADY)")
__rule(12) __decided __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/dbl2", "comm=bah_dbl2")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=path_file_ealready", "path=/tmp/bah/dbl2",
		"once=path,dev,ino", "count=1")
int BPF_PROG(path_then_file, struct file *file)
{
	struct bpf_audit_context *ac;
	int first, second;

	if (!harness_comm_is("bah_dbl2") || !harness_file_name_is(file, "dbl2"))
		return 0;
	ac = harness_audit_start();
	if (!ac)
		return 0;
	first = bpf_audit_log_path(ac, &file->f_path);
	second = bpf_audit_log_file(ac, file);
	if (first == 0 && second == -EALREADY)
		bpf_audit_log_cause(ac, "path_file_ealready");
	else if (second == 0)
		bpf_audit_log_cause(ac, "path_file_accepted");
	else
		bpf_audit_log_cause(ac, "path_file_other");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 12 (decided here): bpf_audit_log_cap twice: second returns -EALREADY, capability= once")
__rule(12) __decided __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/dbl3", "comm=bah_dbl3")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=cap_ealready", "capability=21",
		"once=capability", "count=1")
int BPF_PROG(double_cap, struct file *file)
{
	struct bpf_audit_context *ac;
	int first, second;

	if (!harness_comm_is("bah_dbl3") || !harness_file_name_is(file, "dbl3"))
		return 0;
	ac = harness_audit_start();
	if (!ac)
		return 0;
	first = bpf_audit_log_cap(ac, HARNESS_CAP_SYS_ADMIN);
	second = bpf_audit_log_cap(ac, 1 /* CAP_DAC_OVERRIDE */);
	if (first == 0 && second == -EALREADY)
		bpf_audit_log_cause(ac, "cap_ealready");
	else if (second == 0)
		bpf_audit_log_cause(ac, "cap_accepted");
	else
		bpf_audit_log_cause(ac, "cap_other");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 12 (decided here): bpf_audit_log_cause twice: the first cause stays, the second returns -EALREADY")
__rule(12) __decided __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/dbl4", "comm=bah_dbl4")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=first_cause", "capability=21",
		"once=cause", "count=1")
int BPF_PROG(double_cause, struct file *file)
{
	struct bpf_audit_context *ac;
	int first, second;

	if (!harness_comm_is("bah_dbl4") || !harness_file_name_is(file, "dbl4"))
		return 0;
	ac = harness_audit_start();
	if (!ac)
		return 0;
	first = bpf_audit_log_cause(ac, "first_cause");
	second = bpf_audit_log_cause(ac, "second_cause");
	/* marker: capability=21 only when the second call returned -EALREADY */
	if (first == 0 && second == -EALREADY)
		bpf_audit_log_cap(ac, HARNESS_CAP_SYS_ADMIN);
	bpf_audit_log_end(ac);
	return 0;
}
