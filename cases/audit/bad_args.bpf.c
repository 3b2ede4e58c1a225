// SPDX-License-Identifier: GPL-2.0
/* Rule 14: bad arguments return -EINVAL/-ENODEV, do not crash, and emit nothing for that field. */
#include "harness.h"

/*
 * Each program reports the logger's return value through the cause string:
 * "<case>_einval" / "<case>_enodev" when right, "<case>_accepted" when the
 * call returned 0, "<case>_other" for any other error.
 */

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("rule 14: bpf_audit_log_cap with capability 4242 returns -EINVAL and logs no capability=")
__rule(14) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/badcap", "comm=bah_badcap")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=cap_einval", "!capability", "count=1")
int BPF_PROG(cap_out_of_range, struct file *file)
{
	struct bpf_audit_context *ac;
	int ret;

	if (!harness_comm_is("bah_badcap") || !harness_file_name_is(file, "badcap"))
		return 0;
	ac = harness_audit_start();
	if (!ac)
		return 0;
	ret = bpf_audit_log_cap(ac, 4242);
	if (ret == -EINVAL)
		bpf_audit_log_cause(ac, "cap_einval");
	else if (ret == 0)
		bpf_audit_log_cause(ac, "cap_accepted");
	else
		bpf_audit_log_cause(ac, "cap_other");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 14: bpf_audit_log_cap with capability -1 returns -EINVAL and logs no capability=")
__rule(14) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/negcap", "comm=bah_negcap")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=negcap_einval", "!capability", "count=1")
int BPF_PROG(cap_negative, struct file *file)
{
	struct bpf_audit_context *ac;
	int ret;

	if (!harness_comm_is("bah_negcap") || !harness_file_name_is(file, "negcap"))
		return 0;
	ac = harness_audit_start();
	if (!ac)
		return 0;
	ret = bpf_audit_log_cap(ac, -1);
	if (ret == -EINVAL)
		bpf_audit_log_cause(ac, "negcap_einval");
	else if (ret == 0)
		bpf_audit_log_cause(ac, "negcap_accepted");
	else
		bpf_audit_log_cause(ac, "negcap_other");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("rule 14: bpf_audit_log_net_sockaddr with a netif naming no device returns -ENODEV and logs nothing")
__rule(14) __needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=4250", "comm=bah_badnetif")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=sockaddr_enodev", "!netif", "!daddr", "!dest",
		"count=1")
int BPF_PROG(sockaddr_netif_missing, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;
	int ret;

	if (address->sa_family != AF_INET || !harness_comm_is("bah_badnetif"))
		return 0;
	ac = harness_audit_start();
	if (!ac)
		return 0;
	ret = bpf_audit_log_net_sockaddr(ac, 4242424, address, addrlen);
	if (ret == -ENODEV)
		bpf_audit_log_cause(ac, "sockaddr_enodev");
	else if (ret == 0)
		bpf_audit_log_cause(ac, "sockaddr_accepted");
	else
		bpf_audit_log_cause(ac, "sockaddr_other");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("rule 14: bpf_audit_log_net_sock with a netif naming no device returns -ENODEV and logs nothing")
__rule(14) __needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=4251", "bind_addr=127.0.0.1", "bind_port=4252",
	  "comm=bah_badsockif")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=sock_enodev", "!netif", "!laddr", "!lport",
		"count=1")
int BPF_PROG(sock_netif_missing, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;
	struct sock *sk = sock->sk;
	int ret;

	if (!sk || address->sa_family != AF_INET || !harness_comm_is("bah_badsockif"))
		return 0;
	ac = harness_audit_start();
	if (!ac)
		return 0;
	ret = bpf_audit_log_net_sock(ac, 4242424, sk);
	if (ret == -ENODEV)
		bpf_audit_log_cause(ac, "sock_enodev");
	else if (ret == 0)
		bpf_audit_log_cause(ac, "sock_accepted");
	else
		bpf_audit_log_cause(ac, "sock_other");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("rule 14: an IPv4 sockaddr with addrlen 2 (too short) returns -EINVAL and logs no daddr=")
__rule(14) __needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=4253", "comm=bah_shortlen")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=short4_einval", "!daddr", "!dest", "count=1")
int BPF_PROG(sockaddr_inet_too_short, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;
	int ret;

	if (address->sa_family != AF_INET || !harness_comm_is("bah_shortlen"))
		return 0;
	ac = harness_audit_start();
	if (!ac)
		return 0;
	ret = bpf_audit_log_net_sockaddr(ac, 0, address, 2);
	if (ret == -EINVAL)
		bpf_audit_log_cause(ac, "short4_einval");
	else if (ret == 0)
		bpf_audit_log_cause(ac, "short4_accepted");
	else
		bpf_audit_log_cause(ac, "short4_other");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("rule 14: an IPv6 sockaddr with the IPv4 length (16 < 28) returns -EINVAL and logs no daddr=")
__rule(14) __needs("bpf_audit")
__success
__trigger("connect", "family=inet6", "addr=::1", "port=4254", "comm=bah_shortlen6")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=short6_einval", "!daddr", "!dest", "count=1")
int BPF_PROG(sockaddr_inet6_too_short, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;
	int ret;

	if (address->sa_family != AF_INET6 || !harness_comm_is("bah_shortlen6"))
		return 0;
	ac = harness_audit_start();
	if (!ac)
		return 0;
	ret = bpf_audit_log_net_sockaddr(ac, 0, address, 16);
	if (ret == -EINVAL)
		bpf_audit_log_cause(ac, "short6_einval");
	else if (ret == 0)
		bpf_audit_log_cause(ac, "short6_accepted");
	else
		bpf_audit_log_cause(ac, "short6_other");
	bpf_audit_log_end(ac);
	return 0;
}
