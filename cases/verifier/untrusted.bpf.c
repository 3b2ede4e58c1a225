// SPDX-License-Identifier: GPL-2.0
/* Rule 8: loggers take only trusted pointers: untrusted pointer walks are rejected, hook args and trusted fields load. */
#include "harness.h"

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("rule 8: file->f_path.dentry->d_parent (untrusted walk) passed to a logger is rejected")
__rule(8) __needs("bpf_audit")
__failure __msg("must be referenced or trusted")
int BPF_PROG(dentry_parent_untrusted, struct file *file)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_dentry(ac, file->f_path.dentry->d_parent);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 8: file->f_path.dentry (not a field 6.12 marks trusted) passed to a logger is rejected")
__rule(8) __needs("bpf_audit")
__failure __msg("must be referenced or trusted")
int BPF_PROG(f_path_dentry_untrusted, struct file *file)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_dentry(ac, file->f_path.dentry);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/inode_unlink")
__description("rule 8 twin: the hook's own dentry argument is trusted and loads")
__rule(8) __needs("bpf_audit")
__success
int BPF_PROG(hook_arg_dentry, struct inode *dir, struct dentry *dentry)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_dentry(ac, dentry);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 8 twin: file->f_inode (trusted in 6.12) loads")
__rule(8) __needs("bpf_audit")
__success
int BPF_PROG(file_f_inode_trusted, struct file *file)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_inode(ac, file->f_inode);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/inode_unlink")
__description("rule 8 twin: the hook dentry's d_inode (trusted; on 7.3 trusted-or-NULL) after a NULL check loads")
__rule(8) __needs("bpf_audit")
__success
int BPF_PROG(dentry_d_inode_trusted, struct inode *dir, struct dentry *dentry)
{
	struct bpf_audit_context *ac;
	struct inode *inode = dentry->d_inode;

	if (!inode)
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_inode(ac, inode);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 8 twin: &file->f_path (embedded in a trusted file) loads")
__rule(8) __needs("bpf_audit")
__success
int BPF_PROG(file_f_path_embedded, struct file *file)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_path(ac, &file->f_path);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("rule 8: sock->sk->sk_socket (a walk the verifier does not mark trusted) passed to net_sock is rejected")
__rule(8) __needs("bpf_audit")
__failure __msg("must be referenced or trusted")
int BPF_PROG(socket_walk_untrusted, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;
	struct sock *sk = sock->sk;

	if (!sk)
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_net_sock(ac, 0, sk->sk_socket);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("rule 8 twin: the hook's own socket argument passed to net_sock loads")
__rule(8) __needs("bpf_audit")
__success
int BPF_PROG(socket_hook_arg, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;
	struct sock *sk = sock->sk;

	if (!sk)
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_net_sock(ac, 0, sock);
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("rule 8: a sockaddr on the program's stack (not a pointer the verifier trusts) passed to net_sockaddr is "
	      "rejected")
__rule(8) __needs("bpf_audit")
__failure
__msg_before("7.3", "arg#3 pointer type STRUCT sockaddr must point to scalar, or struct with scalar")
__msg_since("7.3", "R4 must be a kernel object STRUCT sockaddr, not program memory")
/*
 * 6.12's struct sockaddr ends in a flexible array: not a struct of scalars,
 * so only a BTF pointer fits. 7.3's is a plain 16-byte struct of scalars,
 * which its verifier takes as any 16 readable bytes (stack, map value): the
 * 7.3 series marks net_sockaddr KF_OBJ_ARGS (its patch 0002), since the
 * kfunc reads a sockaddr_in6's 28 bytes from it. The RFC as posted lacks
 * that: there a program's stack bytes next to the buffer reach the record.
 */
int BPF_PROG(sockaddr_on_stack, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct sockaddr_in own = { .sin_family = AF_INET, .sin_port = bpf_htons(4256) };
	struct bpf_audit_context *ac;

	own.sin_addr.s_addr = bpf_htonl(0x7f000001);
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_net_sockaddr(ac, 0, NULL, (const struct sockaddr *)&own, sizeof(own));
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("rule 8 twin: the hook's own address passed to net_sockaddr loads")
__rule(8) __needs("bpf_audit")
__success
int BPF_PROG(sockaddr_hook_arg, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;

	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_net_sockaddr(ac, 0, NULL, address, addrlen);
	bpf_audit_log_end(ac);
	return 0;
}
