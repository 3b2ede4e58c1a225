// SPDX-License-Identifier: GPL-2.0
/* The dentry and inode loggers on inode_unlink. */
#include "harness.h"

char _license[] SEC("license") = "GPL";

SEC("lsm/inode_unlink")
__description("bpf_audit_log_dentry on inode_unlink logs name= dev= ino= of the unlinked entry")
__needs("bpf_audit")
__success
__trigger("unlink", "path=/tmp/bah/ldentry", "comm=bah_ldentry")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "name=ldentry", "dev=tmpfs", "ino=${ino}",
		"cause=log_dentry", "fields=prog-id,pid,comm,name,dev,ino,cause", "count=1")
int BPF_PROG(log_dentry_on_unlink, struct inode *dir, struct dentry *dentry)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_ldentry") || !harness_dentry_name_is(dentry, "ldentry"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_dentry(ac, dentry);
	bpf_audit_log_cause(ac, "log_dentry");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/inode_unlink")
__description("bpf_audit_log_inode(dentry->d_inode) on inode_unlink logs name= dev= ino= of the unlinked file")
__needs("bpf_audit")
__success
__trigger("unlink", "path=/tmp/bah/lunlinode", "comm=bah_lunlinode")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "name=lunlinode", "dev=tmpfs", "ino=${ino}",
		"cause=log_unlink_inode", "fields=prog-id,pid,comm,name,dev,ino,cause", "count=1")
int BPF_PROG(log_inode_on_unlink, struct inode *dir, struct dentry *dentry)
{
	struct bpf_audit_context *ac;
	struct inode *inode = dentry->d_inode;

	if (!inode || !harness_comm_is("bah_lunlinode") || !harness_dentry_name_is(dentry, "lunlinode"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_inode(ac, inode);
	bpf_audit_log_cause(ac, "log_unlink_inode");
	bpf_audit_log_end(ac);
	return 0;
}
