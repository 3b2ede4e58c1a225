// SPDX-License-Identifier: GPL-2.0
/* Rule 14: bad arguments do not crash and log nothing for their field; cap and netif are not validated. */
#include "harness.h"

/*
 * Each program reports the logger's return value through the cause string:
 * "<case>_einval" / "<case>_eafnosupport" / "<case>_ok" when right, other
 * names when not. The spec (rule 14): net_sockaddr returns -EINVAL for both
 * addresses NULL, families that differ or an addrlen too short for the
 * family, -EAFNOSUPPORT for a family other than AF_INET/AF_INET6;
 * bpf_audit_log_cap logs the number it is given; a netif that names no
 * device adds no netif= and is not an error.
 *
 * Not here: two addresses of different families. A program has no way to
 * pass them: no hook hands it two sockaddrs, and a sockaddr of its own
 * (stack, map value) is not a pointer the verifier trusts (rule 8,
 * verifier/untrusted.bpf.c::sockaddr_on_stack).
 */

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("rule 14: bpf_audit_log_cap logs the number as given: 4242 (no such capability) returns 0, capability=4242")
__rule(14) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/bigcap", "comm=bah_bigcap")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "capability=4242", "cause=bigcap_ok",
		"fields=prog-id,pid,comm,capability,cause", "count=1")
int BPF_PROG(cap_out_of_range, struct file *file)
{
	struct bpf_audit_context *ac;
	int ret;

	if (!harness_comm_is("bah_bigcap") || !harness_file_name_is(file, "bigcap"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	ret = bpf_audit_log_cap(ac, 4242);
	if (ret == 0)
		bpf_audit_log_cause(ac, "bigcap_ok");
	else if (ret == -EINVAL)
		bpf_audit_log_cause(ac, "bigcap_einval");
	else
		bpf_audit_log_cause(ac, "bigcap_other");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/file_open")
__description("rule 14: bpf_audit_log_cap logs the number as given: -1 returns 0, capability=-1")
__rule(14) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/negcap", "comm=bah_negcap")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "capability=-1", "cause=negcap_ok",
		"fields=prog-id,pid,comm,capability,cause", "count=1")
int BPF_PROG(cap_negative, struct file *file)
{
	struct bpf_audit_context *ac;
	int ret;

	if (!harness_comm_is("bah_negcap") || !harness_file_name_is(file, "negcap"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	ret = bpf_audit_log_cap(ac, -1);
	if (ret == 0)
		bpf_audit_log_cause(ac, "negcap_ok");
	else if (ret == -EINVAL)
		bpf_audit_log_cause(ac, "negcap_einval");
	else
		bpf_audit_log_cause(ac, "negcap_other");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("rule 14: net_sockaddr with a netif naming no device returns 0, logs the address and no netif=")
__rule(14) __needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=4250", "comm=bah_badnetif")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "daddr=127.0.0.1", "dest=4250", "cause=sockaddr_ok",
		"fields=prog-id,pid,comm,daddr,dest,cause", "count=1")
int BPF_PROG(sockaddr_netif_missing, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;
	int ret;

	if (address->sa_family != AF_INET || !harness_comm_is("bah_badnetif"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	ret = bpf_audit_log_net_sockaddr(ac, 4242424, NULL, address, addrlen);
	if (ret == 0)
		bpf_audit_log_cause(ac, "sockaddr_ok");
	else
		bpf_audit_log_cause(ac, "sockaddr_failed");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("rule 14: net_sock with a netif naming no device returns 0, logs the socket and no netif=")
__rule(14) __needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=4251", "bind_addr=127.0.0.1", "bind_port=4252",
	  "comm=bah_badsockif")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "laddr=127.0.0.1", "lport=4252", "cause=sock_ok",
		"fields=prog-id,pid,comm,laddr,lport,cause", "count=1")
int BPF_PROG(sock_netif_missing, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;
	int ret;

	if (address->sa_family != AF_INET || !harness_comm_is("bah_badsockif"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	ret = bpf_audit_log_net_sock(ac, 4242424, sock);
	if (ret == 0)
		bpf_audit_log_cause(ac, "sock_ok");
	else
		bpf_audit_log_cause(ac, "sock_failed");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("rule 14: an IPv4 sockaddr with addrlen 2 (too short) returns -EINVAL and logs no address")
__rule(14) __needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=4253", "comm=bah_shortlen")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=short4_einval", "fields=prog-id,pid,comm,cause",
		"count=1")
int BPF_PROG(sockaddr_inet_too_short, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;
	int ret;

	if (address->sa_family != AF_INET || !harness_comm_is("bah_shortlen"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	ret = bpf_audit_log_net_sockaddr(ac, 0, NULL, address, 2);
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
__description("rule 14: an IPv6 sockaddr with the IPv4 length (16 < 24) returns -EINVAL and logs no address")
__rule(14) __needs("bpf_audit")
__success
__trigger("connect", "family=inet6", "addr=::1", "port=4254", "comm=bah_shortlen6")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=short6_einval", "fields=prog-id,pid,comm,cause",
		"count=1")
int BPF_PROG(sockaddr_inet6_too_short, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;
	int ret;

	if (address->sa_family != AF_INET6 || !harness_comm_is("bah_shortlen6"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	ret = bpf_audit_log_net_sockaddr(ac, 0, address, NULL, 16);
	if (ret == -EINVAL)
		bpf_audit_log_cause(ac, "short6_einval");
	else if (ret == 0)
		bpf_audit_log_cause(ac, "short6_accepted");
	else
		bpf_audit_log_cause(ac, "short6_other");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("rule 14: net_sockaddr with both addresses NULL returns -EINVAL and logs no address")
__rule(14) __needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=4255", "comm=bah_bothnull")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=both_null_einval", "fields=prog-id,pid,comm,cause",
		"count=1")
int BPF_PROG(sockaddr_both_null, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;
	int ret;

	if (address->sa_family != AF_INET || !harness_comm_is("bah_bothnull"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	ret = bpf_audit_log_net_sockaddr(ac, HARNESS_LO_IFINDEX, NULL, NULL, addrlen);
	if (ret == -EINVAL)
		bpf_audit_log_cause(ac, "both_null_einval");
	else if (ret == 0)
		bpf_audit_log_cause(ac, "both_null_accepted");
	else
		bpf_audit_log_cause(ac, "both_null_other");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("rule 14: net_sockaddr with an AF_UNIX address returns -EAFNOSUPPORT and logs no path= or address")
__rule(14) __needs("bpf_audit")
__success
__trigger("connect", "family=unix", "path=/tmp/bah/badfam.sock", "comm=bah_badfam")
__expect_errno(2)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=unix_eafnosupport", "fields=prog-id,pid,comm,cause",
		"count=1")
int BPF_PROG(sockaddr_unix_family, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;
	int ret;

	if (address->sa_family != AF_UNIX || !harness_comm_is("bah_badfam"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	ret = bpf_audit_log_net_sockaddr(ac, 0, NULL, address, addrlen);
	if (ret == -EAFNOSUPPORT)
		bpf_audit_log_cause(ac, "unix_eafnosupport");
	else if (ret == 0)
		bpf_audit_log_cause(ac, "unix_accepted");
	else
		bpf_audit_log_cause(ac, "unix_other");
	bpf_audit_log_end(ac);
	return 0;
}
