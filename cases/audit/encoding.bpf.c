// SPDX-License-Identifier: GPL-2.0
/* Rule 13: untrusted strings are "quoted" when plain, uppercase hex when they hold a space, quote or control byte. */
#include "harness.h"

/* raw:field=... checks the on-the-wire text; field=... the decoded value. */

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("rule 13: a plain comm is logged quoted")
__rule(13) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/encp", "comm=bah_encp")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "comm=bah_encp", "raw:comm=\"bah_encp\"",
		"raw:cause=\"enc_plain\"", "count=1")
int BPF_PROG(comm_plain_quoted, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_encp") || !harness_file_name_is(file, "encp"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "enc_plain");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 13: a comm with a space is logged as uppercase hex without quotes")
__rule(13) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/encs", "comm=bah enc sp")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "comm=bah enc sp", "raw:comm=62616820656E63207370",
		"count=1")
int BPF_PROG(comm_space_hex, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah enc sp") || !harness_file_name_is(file, "encs"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "enc_space");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 13: a comm with a double quote is logged as uppercase hex")
__rule(13) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/encq", "comm=bah\"encq")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "comm=bah\"encq", "raw:comm=62616822656E6371", "count=1")
int BPF_PROG(comm_quote_hex, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah\"encq") || !harness_file_name_is(file, "encq"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "enc_quote");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 13: a cause with a space is logged as uppercase hex")
__rule(13) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/enccause", "comm=bah_enccause")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=has space", "raw:cause=686173207370616365",
		"count=1")
int BPF_PROG(cause_space_hex, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_enccause") || !harness_file_name_is(file, "enccause"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "has space");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 13: a path with a space is logged as uppercase hex")
__rule(13) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/enc path", "comm=bah_encpath")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "path=/tmp/bah/enc path",
		"raw:path=2F746D702F6261682F656E632070617468", "count=1")
int BPF_PROG(path_space_hex, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_encpath") || !harness_file_name_is(file, "enc path"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_file(ac, file);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/inode_unlink")
__description("rule 13: a dentry name with a double quote is logged as uppercase hex")
__rule(13) __needs("bpf_audit")
__success
__trigger("unlink", "path=/tmp/bah/enc\"q", "comm=bah_encname")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "name=enc\"q", "raw:name=656E632271", "count=1")
int BPF_PROG(name_quote_hex, struct inode *dir, struct dentry *dentry)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_encname") || !harness_dentry_name_is(dentry, "enc\"q"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_dentry(ac, dentry);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/task_kill")
__description("rule 13: a target comm with a space is logged as ocomm= in uppercase hex")
__rule(13) __needs("bpf_audit")
__success
__trigger("kill", "sig=0", "target_comm=bah tgt sp", "comm=bah_encocomm")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "ocomm=bah tgt sp", "raw:ocomm=62616820746774207370",
		"count=1")
int BPF_PROG(ocomm_space_hex, struct task_struct *p, struct kernel_siginfo *info, int sig, const struct cred *cred)
{
	struct bpf_audit_context *ac;

	/* only the trigger's signal 0, not the SIGKILL the agent cleans its target up with */
	if (!harness_comm_is("bah_encocomm") || sig != 0)
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_task(ac, p);
	bpf_audit_log_end(ac);
	return 0;
}
