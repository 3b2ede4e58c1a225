// SPDX-License-Identifier: GPL-2.0
/* The network loggers on socket_connect: sockaddr for IPv4, IPv6 and AF_UNIX, netif=, and a bound socket's sock. */
#include "harness.h"

char _license[] SEC("license") = "GPL";

SEC("lsm/socket_connect")
__description("bpf_audit_log_net_sockaddr on an IPv4 connect logs daddr= dest=, no netif= for netif 0")
__needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=4242", "comm=bah_lnet4")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "daddr=127.0.0.1", "dest=4242", "!netif",
		"cause=log_inet", "order=daddr,dest", "count=1")
int BPF_PROG(sockaddr_inet, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;

	if (address->sa_family != AF_INET || !harness_comm_is("bah_lnet4"))
		return 0;
	ac = harness_audit_start();
	if (!ac)
		return 0;
	bpf_audit_log_net_sockaddr(ac, 0, address, addrlen);
	bpf_audit_log_cause(ac, "log_inet");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("bpf_audit_log_net_sockaddr on an IPv6 connect logs daddr= dest=")
__needs("bpf_audit")
__success
__trigger("connect", "family=inet6", "addr=::1", "port=4243", "comm=bah_lnet6")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "daddr=::1", "dest=4243", "!netif", "cause=log_inet6",
		"count=1")
int BPF_PROG(sockaddr_inet6, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;

	if (address->sa_family != AF_INET6 || !harness_comm_is("bah_lnet6"))
		return 0;
	ac = harness_audit_start();
	if (!ac)
		return 0;
	bpf_audit_log_net_sockaddr(ac, 0, address, addrlen);
	bpf_audit_log_cause(ac, "log_inet6");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("bpf_audit_log_net_sockaddr on an AF_UNIX connect logs path=")
__needs("bpf_audit")
__success
__trigger("connect", "family=unix", "path=/tmp/bah/lunix.sock", "comm=bah_lunix")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "path=/tmp/bah/lunix.sock", "!daddr", "cause=log_unix",
		"count=1")
int BPF_PROG(sockaddr_unix, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;

	if (address->sa_family != AF_UNIX || !harness_comm_is("bah_lunix"))
		return 0;
	ac = harness_audit_start();
	if (!ac)
		return 0;
	bpf_audit_log_net_sockaddr(ac, 0, address, addrlen);
	bpf_audit_log_cause(ac, "log_unix");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("bpf_audit_log_net_sockaddr with netif 1 (lo) adds netif=")
__needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=4244", "comm=bah_lnetif")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "daddr=127.0.0.1", "dest=4244", "netif",
		"cause=log_netif", "count=1")
int BPF_PROG(sockaddr_netif, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;

	if (address->sa_family != AF_INET || !harness_comm_is("bah_lnetif"))
		return 0;
	ac = harness_audit_start();
	if (!ac)
		return 0;
	bpf_audit_log_net_sockaddr(ac, 1, address, addrlen);
	bpf_audit_log_cause(ac, "log_netif");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("bpf_audit_log_net_sock on a bound, unconnected socket logs laddr= lport= and omits the zero faddr/fport")
__needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=4245", "bind_addr=127.0.0.1", "bind_port=4246",
	  "comm=bah_lsock")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "laddr=127.0.0.1", "lport=4246", "!faddr", "!fport",
		"!netif", "cause=log_sock", "count=1")
int BPF_PROG(net_sock_bound, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;
	struct sock *sk = sock->sk;

	if (!sk || address->sa_family != AF_INET || !harness_comm_is("bah_lsock"))
		return 0;
	ac = harness_audit_start();
	if (!ac)
		return 0;
	bpf_audit_log_net_sock(ac, 0, sk);
	bpf_audit_log_cause(ac, "log_sock");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("bpf_audit_log_net_sock with netif 1 (lo) adds netif=")
__needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=4247", "bind_addr=127.0.0.1", "bind_port=4248",
	  "comm=bah_lsockif")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "laddr=127.0.0.1", "lport=4248", "netif",
		"cause=log_sock_netif", "count=1")
int BPF_PROG(net_sock_netif, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;
	struct sock *sk = sock->sk;

	if (!sk || address->sa_family != AF_INET || !harness_comm_is("bah_lsockif"))
		return 0;
	ac = harness_audit_start();
	if (!ac)
		return 0;
	bpf_audit_log_net_sock(ac, 1, sk);
	bpf_audit_log_cause(ac, "log_sock_netif");
	bpf_audit_log_end(ac);
	return 0;
}
