// SPDX-License-Identifier: GPL-2.0
/* The RFC's own selftest (lsm_audit_kfuncs: net, file, task, ioctl, sleepable), row by row as the spec lists it. */
#include "harness.h"

/*
 * One program per row of the spec's "The RFC's own selftest, as facts"
 * table (two for a row that triggers IPv4 and IPv6), with the RFC's causes,
 * hooks, triggers and port (1234). Each expects its row's fields exactly
 * (fields=: the cause first, as the RFC's programs log it, then the
 * logger's fields and nothing else) in exactly one record per trigger
 * (count=1). cases/README.md maps each row to its program(s).
 */

char _license[] SEC("license") = "GPL";

SEC("lsm/socket_bind")
__description("RFC selftest net: socket_bind, net_sockaddr with the source only: cause=\"bind4\" saddr=127.0.0.1 "
	      "src=1234 netif=lo")
__needs("bpf_audit")
__success
__trigger("bind", "family=inet", "addr=127.0.0.1", "port=1234", "comm=bah_rfc_bind4")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "raw:cause=\"bind4\"", "saddr=127.0.0.1", "src=1234",
		"netif=lo", "fields=prog-id,pid,comm,cause,saddr,src,netif", "count=1")
int BPF_PROG(rfc_net_bind4, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;

	if (address->sa_family != AF_INET || !harness_comm_is("bah_rfc_bind4"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "bind4");
	bpf_audit_log_net_sockaddr(ac, HARNESS_LO_IFINDEX, address, NULL, addrlen);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_bind")
__description("RFC selftest net: socket_bind, net_sockaddr with the source only: cause=\"bind6\" saddr=::1 src=1234 "
	      "netif=lo")
__needs("bpf_audit")
__success
__trigger("bind", "family=inet6", "addr=::1", "port=1234", "comm=bah_rfc_bind6")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "raw:cause=\"bind6\"", "saddr=::1", "src=1234",
		"netif=lo", "fields=prog-id,pid,comm,cause,saddr,src,netif", "count=1")
int BPF_PROG(rfc_net_bind6, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;

	if (address->sa_family != AF_INET6 || !harness_comm_is("bah_rfc_bind6"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "bind6");
	bpf_audit_log_net_sockaddr(ac, HARNESS_LO_IFINDEX, address, NULL, addrlen);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("RFC selftest net: socket_connect, net_sockaddr with the destination only: cause=\"connect4\" "
	      "daddr=127.0.0.1 dest=1234 netif=lo")
__needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=1234", "comm=bah_rfc_conn4")
__expect_errno(111)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "raw:cause=\"connect4\"", "daddr=127.0.0.1", "dest=1234",
		"netif=lo", "fields=prog-id,pid,comm,cause,daddr,dest,netif", "count=1")
int BPF_PROG(rfc_net_connect4, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;

	if (address->sa_family != AF_INET || !harness_comm_is("bah_rfc_conn4"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "connect4");
	bpf_audit_log_net_sockaddr(ac, HARNESS_LO_IFINDEX, NULL, address, addrlen);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("RFC selftest net: socket_connect, net_sockaddr with the destination only: cause=\"connect6\" "
	      "daddr=::1 dest=1234 netif=lo")
__needs("bpf_audit")
__success
__trigger("connect", "family=inet6", "addr=::1", "port=1234", "comm=bah_rfc_conn6")
__expect_errno(111)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "raw:cause=\"connect6\"", "daddr=::1", "dest=1234",
		"netif=lo", "fields=prog-id,pid,comm,cause,daddr,dest,netif", "count=1")
int BPF_PROG(rfc_net_connect6, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;

	if (address->sa_family != AF_INET6 || !harness_comm_is("bah_rfc_conn6"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "connect6");
	bpf_audit_log_net_sockaddr(ac, HARNESS_LO_IFINDEX, NULL, address, addrlen);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_bind")
__description("RFC selftest net: socket_bind, net_sockaddr with both addresses NULL: -EINVAL, "
	      "cause=\"sockaddr_both_null\" and no address")
__needs("bpf_audit")
__success
__trigger("bind", "family=inet", "addr=127.0.0.1", "port=1234", "comm=bah_rfc_bnull")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "raw:cause=\"sockaddr_both_null\"",
		"fields=prog-id,pid,comm,cause", "count=1")
int BPF_PROG(rfc_net_sockaddr_both_null, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;
	int ret;

	if (address->sa_family != AF_INET || !harness_comm_is("bah_rfc_bnull"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	ret = bpf_audit_log_net_sockaddr(ac, HARNESS_LO_IFINDEX, NULL, NULL, addrlen);
	/* the row's cause only when the call returned -EINVAL (the RFC's test checks the return apart) */
	if (ret == -EINVAL)
		bpf_audit_log_cause(ac, "sockaddr_both_null");
	else
		bpf_audit_log_cause(ac, "sockaddr_both_null_not_einval");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_bind")
__description("RFC selftest net: socket_bind, net_sockaddr with addrlen 1: -EINVAL, cause=\"sockaddr_small_addrlen\" "
	      "and no address")
__needs("bpf_audit")
__success
__trigger("bind", "family=inet", "addr=127.0.0.1", "port=1234", "comm=bah_rfc_small")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "raw:cause=\"sockaddr_small_addrlen\"",
		"fields=prog-id,pid,comm,cause", "count=1")
int BPF_PROG(rfc_net_sockaddr_small_addrlen, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;
	int ret;

	if (address->sa_family != AF_INET || !harness_comm_is("bah_rfc_small"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	ret = bpf_audit_log_net_sockaddr(ac, HARNESS_LO_IFINDEX, address, NULL, 1);
	/* the row's cause only when the call returned -EINVAL (the RFC's test checks the return apart) */
	if (ret == -EINVAL)
		bpf_audit_log_cause(ac, "sockaddr_small_addrlen");
	else
		bpf_audit_log_cause(ac, "sockaddr_small_addrlen_not_einval");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_getsockopt")
__description("RFC selftest net: socket_getsockopt, net_sock on a socket connected to itself: cause=\"sock4\" "
	      "laddr=127.0.0.1 lport=1234 faddr=127.0.0.1 fport=1234 netif=lo")
__needs("bpf_audit")
__success
__trigger("getsockopt", "family=inet", "addr=127.0.0.1", "port=1234", "connect=self", "comm=bah_rfc_sock4")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "raw:cause=\"sock4\"", "laddr=127.0.0.1", "lport=1234",
		"faddr=127.0.0.1", "fport=1234", "netif=lo", "fields=prog-id,pid,comm,cause,laddr,lport,faddr,fport,netif",
		"count=1")
int BPF_PROG(rfc_net_sock4, struct socket *sock, int level, int optname)
{
	struct bpf_audit_context *ac;
	struct sock *sk = sock->sk;

	if (!sk || sk->__sk_common.skc_family != AF_INET || level != SOL_SOCKET || optname != SO_REUSEADDR ||
	    !harness_comm_is("bah_rfc_sock4"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "sock4");
	bpf_audit_log_net_sock(ac, HARNESS_LO_IFINDEX, sock);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_getsockopt")
__description("RFC selftest net: socket_getsockopt, net_sock on a socket connected to itself: cause=\"sock6\" "
	      "laddr=::1 lport=1234 faddr=::1 fport=1234 netif=lo")
__needs("bpf_audit")
__success
__trigger("getsockopt", "family=inet6", "addr=::1", "port=1234", "connect=self", "comm=bah_rfc_sock6")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "raw:cause=\"sock6\"", "laddr=::1", "lport=1234",
		"faddr=::1", "fport=1234", "netif=lo", "fields=prog-id,pid,comm,cause,laddr,lport,faddr,fport,netif",
		"count=1")
int BPF_PROG(rfc_net_sock6, struct socket *sock, int level, int optname)
{
	struct bpf_audit_context *ac;
	struct sock *sk = sock->sk;

	if (!sk || sk->__sk_common.skc_family != AF_INET6 || level != SOL_SOCKET || optname != SO_REUSEADDR ||
	    !harness_comm_is("bah_rfc_sock6"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "sock6");
	bpf_audit_log_net_sock(ac, HARNESS_LO_IFINDEX, sock);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_getsockopt")
__description("RFC selftest net: socket_getsockopt, net_sock on a bound AF_UNIX socket: cause=\"sock_unix\" "
	      "path=\"<socket path>\"")
__needs("bpf_audit")
__success
__trigger("getsockopt", "family=unix", "path=/tmp/bah/rfc_unix.sock", "comm=bah_rfc_sunix")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "raw:cause=\"sock_unix\"", "path=/tmp/bah/rfc_unix.sock",
		"raw:path=\"/tmp/bah/rfc_unix.sock\"", "fields=prog-id,pid,comm,cause,path", "count=1")
int BPF_PROG(rfc_net_sock_unix, struct socket *sock, int level, int optname)
{
	struct bpf_audit_context *ac;
	struct sock *sk = sock->sk;

	if (!sk || sk->__sk_common.skc_family != AF_UNIX || level != SOL_SOCKET || optname != SO_REUSEADDR ||
	    !harness_comm_is("bah_rfc_sunix"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "sock_unix");
	bpf_audit_log_net_sock(ac, 0, sock);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("RFC selftest file: file_open, bpf_audit_log_file on /dev/null: path=\"/dev/null\" dev=\"devtmpfs\" "
	      "ino=<ino>")
__needs("bpf_audit")
__success
__trigger("open", "path=/dev/null", "comm=bah_rfc_file")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "raw:cause=\"file\"", "path=/dev/null",
		"raw:path=\"/dev/null\"", "raw:dev=\"devtmpfs\"", "ino=${ino}",
		"fields=prog-id,pid,comm,cause,path,dev,ino", "count=1")
int BPF_PROG(rfc_file_file, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_rfc_file") || !harness_file_name_is(file, "null"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "file");
	bpf_audit_log_file(ac, file);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("RFC selftest file: file_open, bpf_audit_log_path on /dev/null: path=\"/dev/null\" dev=\"devtmpfs\" "
	      "ino=<ino>")
__needs("bpf_audit")
__success
__trigger("open", "path=/dev/null", "comm=bah_rfc_path")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "raw:cause=\"path\"", "path=/dev/null",
		"raw:path=\"/dev/null\"", "raw:dev=\"devtmpfs\"", "ino=${ino}",
		"fields=prog-id,pid,comm,cause,path,dev,ino", "count=1")
int BPF_PROG(rfc_file_path, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_rfc_path") || !harness_file_name_is(file, "null"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "path");
	bpf_audit_log_path(ac, &file->f_path);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/inode_readlink")
__description("RFC selftest file: inode_readlink, bpf_audit_log_dentry on readlink(/proc/self/exe): cause=\"dentry\" "
	      "name=\"exe\" dev=")
__needs("bpf_audit")
__success
__trigger("readlink", "path=/proc/self/exe", "comm=bah_rfc_dentry")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "raw:cause=\"dentry\"", "name=exe", "raw:name=\"exe\"",
		"raw:dev=\"proc\"", "ino=${ino}", "fields=prog-id,pid,comm,cause,name,dev,ino", "count=1")
int BPF_PROG(rfc_file_dentry, struct dentry *dentry)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_rfc_dentry") || !harness_dentry_name_is(dentry, "exe"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "dentry");
	bpf_audit_log_dentry(ac, dentry);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("RFC selftest file: file_open, bpf_audit_log_inode on /dev/null: cause=\"inode\" name=\"null\" "
	      "dev=\"devtmpfs\" ino=<ino>")
__needs("bpf_audit")
__success
__trigger("open", "path=/dev/null", "comm=bah_rfc_inode")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "raw:cause=\"inode\"", "name=null",
		"raw:name=\"null\"", "raw:dev=\"devtmpfs\"", "ino=${ino}",
		"fields=prog-id,pid,comm,cause,name,dev,ino", "count=1")
int BPF_PROG(rfc_file_inode, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_rfc_inode") || !harness_file_name_is(file, "null"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "inode");
	bpf_audit_log_inode(ac, file->f_inode);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/task_getpgid")
__description("RFC selftest task: task_getpgid, bpf_audit_log_task on getpgid(own pid): cause=\"task\" opid=<pid> "
	      "ocomm=\"<comm>\"")
__needs("bpf_audit")
__success
__trigger("getpgid", "comm=bah_rfc_task")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "raw:cause=\"task\"", "opid=${pid}", "ocomm=${comm}",
		"raw:ocomm=\"bah_rfc_task\"", "fields=prog-id,pid,comm,cause,opid,ocomm", "count=1")
int BPF_PROG(rfc_task_task, struct task_struct *p)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_rfc_task"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "task");
	bpf_audit_log_task(ac, p);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/capable")
__description("RFC selftest task: capable, bpf_audit_log_cap on open(/proc/kallsyms) (CAP_SYSLOG): cause=\"cap\" "
	      "capability=34")
__needs("bpf_audit")
__success
__trigger("open", "path=/proc/kallsyms", "comm=bah_rfc_cap")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "raw:cause=\"cap\"", "capability=34",
		"fields=prog-id,pid,comm,cause,capability", "count=1")
int BPF_PROG(rfc_task_cap, const struct cred *cred, struct user_namespace *ns, int cap, unsigned int opts)
{
	struct bpf_audit_context *ac;

	if (cap != HARNESS_CAP_SYSLOG || !harness_comm_is("bah_rfc_cap"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "cap");
	bpf_audit_log_cap(ac, cap);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_ioctl")
__description("RFC selftest ioctl: file_ioctl, bpf_audit_log_ioctl_op on ioctl(/dev/null, TCGETS): "
	      "cause=\"ioctl_op\" path=\"/dev/null\" dev=\"devtmpfs\" ino=<ino> ioctlcmd=0x5401")
__needs("bpf_audit")
__success
__trigger("ioctl", "path=/dev/null", "cmd=0x5401", "comm=bah_rfc_ioctl")
__expect_errno(25)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "raw:cause=\"ioctl_op\"", "path=/dev/null",
		"raw:path=\"/dev/null\"", "raw:dev=\"devtmpfs\"", "ino=${ino}", "ioctlcmd=0x5401",
		"fields=prog-id,pid,comm,cause,path,dev,ino,ioctlcmd", "count=1")
int BPF_PROG(rfc_ioctl_op, struct file *file, unsigned int cmd, unsigned long arg)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_rfc_ioctl") || !harness_file_name_is(file, "null"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "ioctl_op");
	bpf_audit_log_ioctl_op(ac, file, (u16)cmd);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm.s/file_open")
__description("RFC selftest sleepable (rule 19): lsm.s/file_open, bpf_audit_log_file on /dev/null: "
	      "cause=\"sleepable\" path=\"/dev/null\" dev=\"devtmpfs\" ino=<ino>")
__needs("bpf_audit") __rule(19)
__success
__trigger("open", "path=/dev/null", "comm=bah_rfc_sleep")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "raw:cause=\"sleepable\"", "path=/dev/null",
		"raw:path=\"/dev/null\"", "raw:dev=\"devtmpfs\"", "ino=${ino}",
		"fields=prog-id,pid,comm,cause,path,dev,ino", "count=1")
int BPF_PROG(rfc_sleepable_file, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_rfc_sleep") || !harness_file_name_is(file, "null"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_cause(ac, "sleepable");
	bpf_audit_log_file(ac, file);
	bpf_audit_log_end(ac);
	return 0;
}
