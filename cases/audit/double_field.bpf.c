// SPDX-License-Identifier: GPL-2.0
/* Rule 12: each kind of field is logged once per context; a second call of its kind returns -EINVAL. */
#include "harness.h"

/*
 * The kinds (spec rule 12): cause, cap, path+file, ioctl_op, dentry+inode,
 * task, net_sock+net_sockaddr. Each program reports what the second call
 * returned through the record itself: a distinct cause string (or, when
 * cause is the logger under test, a capability= marker), so the record
 * alone proves the return value. "once=" proves the field is not repeated.
 */

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("rule 12: bpf_audit_log_file twice: the second returns -EINVAL, path= appears once")
__rule(12) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/dbl1", "comm=bah_dbl1")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=again_einval", "path=/tmp/bah/dbl1",
		"once=path,dev,ino,cause", "count=1")
int BPF_PROG(double_file, struct file *file)
{
	struct bpf_audit_context *ac;
	int first, second;

	if (!harness_comm_is("bah_dbl1") || !harness_file_name_is(file, "dbl1"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	first = bpf_audit_log_file(ac, file);
	second = bpf_audit_log_file(ac, file);
	if (first == 0 && second == -EINVAL)
		bpf_audit_log_cause(ac, "again_einval");
	else if (second == 0)
		bpf_audit_log_cause(ac, "again_accepted");
	else
		bpf_audit_log_cause(ac, "again_other");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 12: bpf_audit_log_path then bpf_audit_log_file are one kind: the second returns -EINVAL")
__rule(12) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/dbl2", "comm=bah_dbl2")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=path_file_einval", "path=/tmp/bah/dbl2",
		"once=path,dev,ino", "count=1")
int BPF_PROG(path_then_file, struct file *file)
{
	struct bpf_audit_context *ac;
	int first, second;

	if (!harness_comm_is("bah_dbl2") || !harness_file_name_is(file, "dbl2"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	first = bpf_audit_log_path(ac, &file->f_path);
	second = bpf_audit_log_file(ac, file);
	if (first == 0 && second == -EINVAL)
		bpf_audit_log_cause(ac, "path_file_einval");
	else if (second == 0)
		bpf_audit_log_cause(ac, "path_file_accepted");
	else
		bpf_audit_log_cause(ac, "path_file_other");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 12: bpf_audit_log_file then bpf_audit_log_path are one kind: the second returns -EINVAL")
__rule(12) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/dbl2r", "comm=bah_dbl2r")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=file_path_einval", "path=/tmp/bah/dbl2r",
		"once=path,dev,ino", "count=1")
int BPF_PROG(file_then_path, struct file *file)
{
	struct bpf_audit_context *ac;
	int first, second;

	if (!harness_comm_is("bah_dbl2r") || !harness_file_name_is(file, "dbl2r"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	first = bpf_audit_log_file(ac, file);
	second = bpf_audit_log_path(ac, &file->f_path);
	if (first == 0 && second == -EINVAL)
		bpf_audit_log_cause(ac, "file_path_einval");
	else if (second == 0)
		bpf_audit_log_cause(ac, "file_path_accepted");
	else
		bpf_audit_log_cause(ac, "file_path_other");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 12: bpf_audit_log_cap twice: the second returns -EINVAL, capability= once with the first value")
__rule(12) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/dbl3", "comm=bah_dbl3")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=cap_einval", "capability=21",
		"once=capability", "count=1")
int BPF_PROG(double_cap, struct file *file)
{
	struct bpf_audit_context *ac;
	int first, second;

	if (!harness_comm_is("bah_dbl3") || !harness_file_name_is(file, "dbl3"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	first = bpf_audit_log_cap(ac, HARNESS_CAP_SYS_ADMIN);
	second = bpf_audit_log_cap(ac, 1 /* CAP_DAC_OVERRIDE */);
	if (first == 0 && second == -EINVAL)
		bpf_audit_log_cause(ac, "cap_einval");
	else if (second == 0)
		bpf_audit_log_cause(ac, "cap_accepted");
	else
		bpf_audit_log_cause(ac, "cap_other");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 12: bpf_audit_log_cause twice: the first cause stays, the second returns -EINVAL")
__rule(12) __needs("bpf_audit")
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
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	first = bpf_audit_log_cause(ac, "first_cause");
	second = bpf_audit_log_cause(ac, "second_cause");
	/* marker: capability=21 only when the second call returned -EINVAL */
	if (first == 0 && second == -EINVAL)
		bpf_audit_log_cap(ac, HARNESS_CAP_SYS_ADMIN);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_ioctl")
__description("rule 12: bpf_audit_log_ioctl_op twice: the second returns -EINVAL, ioctlcmd= once")
__rule(12) __needs("bpf_audit")
__success
__trigger("ioctl", "path=/tmp/bah/dbl5", "cmd=0x541b", "comm=bah_dbl5")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=ioctl_einval", "ioctlcmd=0x541b",
		"once=path,ioctlcmd", "count=1")
int BPF_PROG(double_ioctl_op, struct file *file, unsigned int cmd, unsigned long arg)
{
	struct bpf_audit_context *ac;
	int first, second;

	if (!harness_comm_is("bah_dbl5") || !harness_file_name_is(file, "dbl5"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	first = bpf_audit_log_ioctl_op(ac, file, (u16)cmd);
	second = bpf_audit_log_ioctl_op(ac, file, HARNESS_TCGETS);
	if (first == 0 && second == -EINVAL)
		bpf_audit_log_cause(ac, "ioctl_einval");
	else if (second == 0)
		bpf_audit_log_cause(ac, "ioctl_accepted");
	else
		bpf_audit_log_cause(ac, "ioctl_other");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_ioctl")
__description("rule 12: ioctl_op is a kind of its own: after bpf_audit_log_file it still logs (both return 0)")
__rule(12) __needs("bpf_audit")
__success
__trigger("ioctl", "path=/tmp/bah/dbl6", "cmd=0x541b", "comm=bah_dbl6")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=file_ioctl_both",
		"fields=prog-id,pid,comm,path,dev,ino,path,dev,ino,ioctlcmd,cause", "count=1")
int BPF_PROG(file_then_ioctl_op, struct file *file, unsigned int cmd, unsigned long arg)
{
	struct bpf_audit_context *ac;
	int first, second;

	if (!harness_comm_is("bah_dbl6") || !harness_file_name_is(file, "dbl6"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	first = bpf_audit_log_file(ac, file);
	second = bpf_audit_log_ioctl_op(ac, file, (u16)cmd);
	if (first == 0 && second == 0)
		bpf_audit_log_cause(ac, "file_ioctl_both");
	else if (second == -EINVAL)
		bpf_audit_log_cause(ac, "file_ioctl_einval");
	else
		bpf_audit_log_cause(ac, "file_ioctl_other");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/inode_unlink")
__description("rule 12: bpf_audit_log_dentry then bpf_audit_log_inode are one kind: the second returns -EINVAL")
__rule(12) __needs("bpf_audit")
__success
__trigger("unlink", "path=/tmp/bah/dbl7", "comm=bah_dbl7")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=dentry_inode_einval", "name=dbl7",
		"once=name,dev,ino", "count=1")
int BPF_PROG(dentry_then_inode, struct inode *dir, struct dentry *dentry)
{
	struct bpf_audit_context *ac;
	int first, second;

	if (!harness_comm_is("bah_dbl7") || !harness_dentry_name_is(dentry, "dbl7"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	first = bpf_audit_log_dentry(ac, dentry);
	second = bpf_audit_log_inode(ac, dir);
	if (first == 0 && second == -EINVAL)
		bpf_audit_log_cause(ac, "dentry_inode_einval");
	else if (second == 0)
		bpf_audit_log_cause(ac, "dentry_inode_accepted");
	else
		bpf_audit_log_cause(ac, "dentry_inode_other");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/inode_unlink")
__description("rule 12: bpf_audit_log_inode then bpf_audit_log_dentry are one kind: the second returns -EINVAL")
__rule(12) __needs("bpf_audit")
__success
__trigger("unlink", "path=/tmp/bah/dbldir/dbl8", "comm=bah_dbl8")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=inode_dentry_einval", "name=dbldir",
		"once=name,dev,ino", "count=1")
int BPF_PROG(inode_then_dentry, struct inode *dir, struct dentry *dentry)
{
	struct bpf_audit_context *ac;
	int first, second;

	if (!harness_comm_is("bah_dbl8") || !harness_dentry_name_is(dentry, "dbl8"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	first = bpf_audit_log_inode(ac, dir);
	second = bpf_audit_log_dentry(ac, dentry);
	if (first == 0 && second == -EINVAL)
		bpf_audit_log_cause(ac, "inode_dentry_einval");
	else if (second == 0)
		bpf_audit_log_cause(ac, "inode_dentry_accepted");
	else
		bpf_audit_log_cause(ac, "inode_dentry_other");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/task_kill")
__description("rule 12: bpf_audit_log_task twice: the second returns -EINVAL, opid= once with the first task")
__rule(12) __needs("bpf_audit")
__success
__trigger("kill", "sig=0", "target_comm=bah_dbl9tgt", "comm=bah_dbl9")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=task_einval", "opid=${target_pid}",
		"ocomm=bah_dbl9tgt", "once=opid,ocomm", "count=1")
int BPF_PROG(double_task, struct task_struct *p, struct kernel_siginfo *info, int sig, const struct cred *cred)
{
	struct bpf_audit_context *ac;
	int first, second;

	/* only the trigger's signal 0, not the SIGKILL the agent cleans its target up with */
	if (!harness_comm_is("bah_dbl9") || sig != 0)
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	first = bpf_audit_log_task(ac, p);
	second = bpf_audit_log_task(ac, bpf_get_current_task_btf());
	if (first == 0 && second == -EINVAL)
		bpf_audit_log_cause(ac, "task_einval");
	else if (second == 0)
		bpf_audit_log_cause(ac, "task_accepted");
	else
		bpf_audit_log_cause(ac, "task_other");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("rule 12: bpf_audit_log_net_sock then bpf_audit_log_net_sockaddr are one kind (network data): the "
	      "second returns -EINVAL, no daddr=")
__rule(12) __needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=4261", "bind_addr=127.0.0.1", "bind_port=4262",
	  "comm=bah_dbl10")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=sock_sockaddr_einval", "laddr=127.0.0.1",
		"lport=4262", "!daddr", "!dest", "once=laddr,lport", "count=1")
int BPF_PROG(net_sock_then_sockaddr, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;
	int first, second;

	if (address->sa_family != AF_INET || !harness_comm_is("bah_dbl10"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	first = bpf_audit_log_net_sock(ac, 0, sock);
	second = bpf_audit_log_net_sockaddr(ac, 0, NULL, address, addrlen);
	if (first == 0 && second == -EINVAL)
		bpf_audit_log_cause(ac, "sock_sockaddr_einval");
	else if (second == 0)
		bpf_audit_log_cause(ac, "sock_sockaddr_accepted");
	else
		bpf_audit_log_cause(ac, "sock_sockaddr_other");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("rule 12: bpf_audit_log_net_sockaddr then bpf_audit_log_net_sock are one kind: the second returns "
	      "-EINVAL, no laddr=")
__rule(12) __needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=4263", "bind_addr=127.0.0.1", "bind_port=4264",
	  "comm=bah_dbl11")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=sockaddr_sock_einval", "daddr=127.0.0.1",
		"dest=4263", "!laddr", "!lport", "once=daddr,dest", "count=1")
int BPF_PROG(net_sockaddr_then_sock, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;
	int first, second;

	if (address->sa_family != AF_INET || !harness_comm_is("bah_dbl11"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	first = bpf_audit_log_net_sockaddr(ac, 0, NULL, address, addrlen);
	second = bpf_audit_log_net_sock(ac, 0, sock);
	if (first == 0 && second == -EINVAL)
		bpf_audit_log_cause(ac, "sockaddr_sock_einval");
	else if (second == 0)
		bpf_audit_log_cause(ac, "sockaddr_sock_accepted");
	else
		bpf_audit_log_cause(ac, "sockaddr_sock_other");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("rule 12: bpf_audit_log_net_sockaddr twice: the second returns -EINVAL, daddr= once")
__rule(12) __needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=4265", "comm=bah_dbl12")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=sockaddr_twice_einval", "daddr=127.0.0.1",
		"!saddr", "!src", "once=daddr,dest", "count=1")
int BPF_PROG(double_net_sockaddr, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;
	int first, second;

	if (address->sa_family != AF_INET || !harness_comm_is("bah_dbl12"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	first = bpf_audit_log_net_sockaddr(ac, 0, NULL, address, addrlen);
	second = bpf_audit_log_net_sockaddr(ac, 0, address, NULL, addrlen);
	if (first == 0 && second == -EINVAL)
		bpf_audit_log_cause(ac, "sockaddr_twice_einval");
	else if (second == 0)
		bpf_audit_log_cause(ac, "sockaddr_twice_accepted");
	else
		bpf_audit_log_cause(ac, "sockaddr_twice_other");
	bpf_audit_log_end(ac);
	return 0;
}
