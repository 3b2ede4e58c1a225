// SPDX-License-Identifier: GPL-2.0
/* The file loggers (bpf_audit_log_file, _path, _inode, _ioctl_op) on file_open and file_ioctl, field by field. */
#include "harness.h"

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("bpf_audit_log_file on file_open logs path= dev= ino= of the opened file")
__needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/lfile", "comm=bah_lfile")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "path=/tmp/bah/lfile", "dev=tmpfs", "ino=${ino}",
		"cause=log_file", "fields=prog-id,pid,comm,path,dev,ino,cause", "count=1")
int BPF_PROG(log_file_on_open, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_lfile") || !harness_file_name_is(file, "lfile"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_file(ac, file);
	bpf_audit_log_cause(ac, "log_file");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("bpf_audit_log_path(&file->f_path) on file_open logs path= dev= ino=")
__needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/lpath", "comm=bah_lpath")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "path=/tmp/bah/lpath", "dev=tmpfs", "ino=${ino}",
		"cause=log_path", "fields=prog-id,pid,comm,path,dev,ino,cause", "count=1")
int BPF_PROG(log_path_on_open, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_lpath") || !harness_file_name_is(file, "lpath"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_path(ac, &file->f_path);
	bpf_audit_log_cause(ac, "log_path");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("bpf_audit_log_inode(file->f_inode) on file_open logs name= dev= ino= of the opened file")
__needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/linode", "comm=bah_linode")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "name=linode", "dev=tmpfs", "ino=${ino}",
		"cause=log_inode", "fields=prog-id,pid,comm,name,dev,ino,cause", "count=1")
int BPF_PROG(log_inode_on_open, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_linode") || !harness_file_name_is(file, "linode"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_inode(ac, file->f_inode);
	bpf_audit_log_cause(ac, "log_inode");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_ioctl")
__description("bpf_audit_log_ioctl_op on file_ioctl logs path= dev= ino= ioctlcmd=0x541b (FIONREAD)")
__needs("bpf_audit")
__success
__trigger("ioctl", "path=/tmp/bah/lioctl", "cmd=0x541b", "comm=bah_lioctl")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "path=/tmp/bah/lioctl", "dev=tmpfs", "ino=${ino}",
		"ioctlcmd=0x541b", "cause=log_ioctl", "fields=prog-id,pid,comm,path,dev,ino,ioctlcmd,cause", "count=1")
int BPF_PROG(log_ioctl_on_ioctl, struct file *file, unsigned int cmd, unsigned long arg)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_lioctl") || !harness_file_name_is(file, "lioctl"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_ioctl_op(ac, file, (u16)cmd);
	bpf_audit_log_cause(ac, "log_ioctl");
	bpf_audit_log_end(ac);
	return 0;
}
