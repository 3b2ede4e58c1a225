// SPDX-License-Identifier: GPL-2.0
/* Rule 19: sleepable (lsm.s/) programs use every kfunc, and their records are the same as from lsm/ programs. */
#include "harness.h"

/*
 * Each body below runs twice: in an lsm.s/ program and in an lsm/ twin
 * with the same annotations (only the trigger's comm and file differ, so
 * that each program filters to its own trigger). Both expect the whole
 * record, field by field (fields=): the sleepable record is the same as
 * the non-sleepable one. Together the bodies call all twelve kfuncs:
 * start, end, cause, cap, file, path, inode, task, ioctl_op (file_open),
 * ioctl_op (file_ioctl), dentry (inode_unlink), net_sockaddr (socket_bind,
 * socket_connect) and net_sock (socket_getsockopt). task_kill, capable
 * and task_getpgid are not sleepable hooks: the task logged is the
 * current one (bpf_get_current_task_btf(), trusted).
 */

char _license[] SEC("license") = "GPL";

/* cause, cap, file, inode, task, ioctl_op: one kind each */
static __always_inline int open_every_logger(struct file *file)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "every_logger");
	bpf_audit_log_cap(ac, HARNESS_CAP_SYS_ADMIN);
	bpf_audit_log_file(ac, file);
	bpf_audit_log_inode(ac, file->f_inode);
	bpf_audit_log_task(ac, bpf_get_current_task_btf());
	bpf_audit_log_ioctl_op(ac, file, HARNESS_TCGETS);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm.s/file_open")
__description("rule 19: a sleepable file_open program logs cause, cap, file, inode, task and ioctl_op into one record")
__rule(19) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/sleep1", "comm=bah_sleep1")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "pid=${pid}", "comm=${comm}", "cause=every_logger",
		"capability=21", "path=/tmp/bah/sleep1", "dev=tmpfs", "ino=${ino}", "name=sleep1", "opid=${pid}",
		"ocomm=${comm}", "ioctlcmd=0x5401",
		"fields=prog-id,pid,comm,cause,capability,path,dev,ino,name,dev,ino,opid,ocomm,path,dev,ino,ioctlcmd",
		"count=1")
int BPF_PROG(sleepable_open, struct file *file)
{
	if (!harness_comm_is("bah_sleep1") || !harness_file_name_is(file, "sleep1"))
		return 0;
	return open_every_logger(file);
}

SEC("lsm/file_open")
__description("rule 19 twin: the same body in a non-sleepable file_open program gives the same record")
__rule(19) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/nosleep1", "comm=bah_nosleep1")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "pid=${pid}", "comm=${comm}", "cause=every_logger",
		"capability=21", "path=/tmp/bah/nosleep1", "dev=tmpfs", "ino=${ino}", "name=nosleep1", "opid=${pid}",
		"ocomm=${comm}", "ioctlcmd=0x5401",
		"fields=prog-id,pid,comm,cause,capability,path,dev,ino,name,dev,ino,opid,ocomm,path,dev,ino,ioctlcmd",
		"count=1")
int BPF_PROG(nonsleepable_open, struct file *file)
{
	if (!harness_comm_is("bah_nosleep1") || !harness_file_name_is(file, "nosleep1"))
		return 0;
	return open_every_logger(file);
}

/* path (the other half of the path kind) and the hook's own ioctl command */
static __always_inline int ioctl_path_and_op(struct file *file, unsigned int cmd)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_path(ac, &file->f_path);
	bpf_audit_log_ioctl_op(ac, file, (u16)cmd);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm.s/file_ioctl")
__description("rule 19: a sleepable file_ioctl program logs path and ioctl_op")
__rule(19) __needs("bpf_audit")
__success
__trigger("ioctl", "path=/tmp/bah/sleep2", "cmd=0x541b", "comm=bah_sleep2")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "path=/tmp/bah/sleep2", "ino=${ino}", "ioctlcmd=0x541b",
		"fields=prog-id,pid,comm,path,dev,ino,path,dev,ino,ioctlcmd", "count=1")
int BPF_PROG(sleepable_ioctl, struct file *file, unsigned int cmd, unsigned long arg)
{
	if (!harness_comm_is("bah_sleep2") || !harness_file_name_is(file, "sleep2"))
		return 0;
	return ioctl_path_and_op(file, cmd);
}

SEC("lsm/file_ioctl")
__description("rule 19 twin: the same body in a non-sleepable file_ioctl program gives the same record")
__rule(19) __needs("bpf_audit")
__success
__trigger("ioctl", "path=/tmp/bah/nosleep2", "cmd=0x541b", "comm=bah_nosleep2")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "path=/tmp/bah/nosleep2", "ino=${ino}", "ioctlcmd=0x541b",
		"fields=prog-id,pid,comm,path,dev,ino,path,dev,ino,ioctlcmd", "count=1")
int BPF_PROG(nonsleepable_ioctl, struct file *file, unsigned int cmd, unsigned long arg)
{
	if (!harness_comm_is("bah_nosleep2") || !harness_file_name_is(file, "nosleep2"))
		return 0;
	return ioctl_path_and_op(file, cmd);
}

static __always_inline int unlink_dentry(struct dentry *dentry)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_dentry(ac, dentry);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm.s/inode_unlink")
__description("rule 19: a sleepable inode_unlink program logs the dentry")
__rule(19) __needs("bpf_audit")
__success
__trigger("unlink", "path=/tmp/bah/sleep3", "comm=bah_sleep3")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "name=sleep3", "dev=tmpfs", "ino=${ino}",
		"fields=prog-id,pid,comm,name,dev,ino", "count=1")
int BPF_PROG(sleepable_unlink, struct inode *dir, struct dentry *dentry)
{
	if (!harness_comm_is("bah_sleep3") || !harness_dentry_name_is(dentry, "sleep3"))
		return 0;
	return unlink_dentry(dentry);
}

SEC("lsm/inode_unlink")
__description("rule 19 twin: the same body in a non-sleepable inode_unlink program gives the same record")
__rule(19) __needs("bpf_audit")
__success
__trigger("unlink", "path=/tmp/bah/nosleep3", "comm=bah_nosleep3")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "name=nosleep3", "dev=tmpfs", "ino=${ino}",
		"fields=prog-id,pid,comm,name,dev,ino", "count=1")
int BPF_PROG(nonsleepable_unlink, struct inode *dir, struct dentry *dentry)
{
	if (!harness_comm_is("bah_nosleep3") || !harness_dentry_name_is(dentry, "nosleep3"))
		return 0;
	return unlink_dentry(dentry);
}

static __always_inline int bind_source(struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_net_sockaddr(ac, HARNESS_LO_IFINDEX, address, NULL, addrlen);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm.s/socket_bind")
__description("rule 19: a sleepable socket_bind program logs the source address")
__rule(19) __needs("bpf_audit")
__success
__trigger("bind", "family=inet6", "addr=::1", "port=4271", "comm=bah_sleep4")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "saddr=::1", "src=4271", "netif=lo",
		"fields=prog-id,pid,comm,saddr,src,netif", "count=1")
int BPF_PROG(sleepable_bind, struct socket *sock, struct sockaddr *address, int addrlen)
{
	if (address->sa_family != AF_INET6 || !harness_comm_is("bah_sleep4"))
		return 0;
	return bind_source(address, addrlen);
}

SEC("lsm/socket_bind")
__description("rule 19 twin: the same body in a non-sleepable socket_bind program gives the same record")
__rule(19) __needs("bpf_audit")
__success
__trigger("bind", "family=inet6", "addr=::1", "port=4271", "comm=bah_nosleep4")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "saddr=::1", "src=4271", "netif=lo",
		"fields=prog-id,pid,comm,saddr,src,netif", "count=1")
int BPF_PROG(nonsleepable_bind, struct socket *sock, struct sockaddr *address, int addrlen)
{
	if (address->sa_family != AF_INET6 || !harness_comm_is("bah_nosleep4"))
		return 0;
	return bind_source(address, addrlen);
}

static __always_inline int connect_destination(struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_net_sockaddr(ac, 0, NULL, address, addrlen);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm.s/socket_connect")
__description("rule 19: a sleepable socket_connect program logs the destination address")
__rule(19) __needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=4272", "comm=bah_sleep5")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "daddr=127.0.0.1", "dest=4272",
		"fields=prog-id,pid,comm,daddr,dest", "count=1")
int BPF_PROG(sleepable_connect, struct socket *sock, struct sockaddr *address, int addrlen)
{
	if (address->sa_family != AF_INET || !harness_comm_is("bah_sleep5"))
		return 0;
	return connect_destination(address, addrlen);
}

SEC("lsm/socket_connect")
__description("rule 19 twin: the same body in a non-sleepable socket_connect program gives the same record")
__rule(19) __needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=4272", "comm=bah_nosleep5")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "daddr=127.0.0.1", "dest=4272",
		"fields=prog-id,pid,comm,daddr,dest", "count=1")
int BPF_PROG(nonsleepable_connect, struct socket *sock, struct sockaddr *address, int addrlen)
{
	if (address->sa_family != AF_INET || !harness_comm_is("bah_nosleep5"))
		return 0;
	return connect_destination(address, addrlen);
}

static __always_inline int getsockopt_sock(struct socket *sock)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_net_sock(ac, HARNESS_LO_IFINDEX, sock);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm.s/socket_getsockopt")
__description("rule 19: a sleepable socket_getsockopt program logs a connected socket")
__rule(19) __needs("bpf_audit")
__success
__trigger("getsockopt", "family=inet", "addr=127.0.0.1", "port=4273", "connect=self", "comm=bah_sleep6")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "laddr=127.0.0.1", "lport=4273", "faddr=127.0.0.1",
		"fport=4273", "netif=lo", "fields=prog-id,pid,comm,laddr,lport,faddr,fport,netif", "count=1")
int BPF_PROG(sleepable_getsockopt, struct socket *sock, int level, int optname)
{
	if (level != SOL_SOCKET || optname != SO_REUSEADDR || !harness_comm_is("bah_sleep6"))
		return 0;
	return getsockopt_sock(sock);
}

SEC("lsm/socket_getsockopt")
__description("rule 19 twin: the same body in a non-sleepable socket_getsockopt program gives the same record")
__rule(19) __needs("bpf_audit")
__success
__trigger("getsockopt", "family=inet", "addr=127.0.0.1", "port=4273", "connect=self", "comm=bah_nosleep6")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "laddr=127.0.0.1", "lport=4273", "faddr=127.0.0.1",
		"fport=4273", "netif=lo", "fields=prog-id,pid,comm,laddr,lport,faddr,fport,netif", "count=1")
int BPF_PROG(nonsleepable_getsockopt, struct socket *sock, int level, int optname)
{
	if (level != SOL_SOCKET || optname != SO_REUSEADDR || !harness_comm_is("bah_nosleep6"))
		return 0;
	return getsockopt_sock(sock);
}
