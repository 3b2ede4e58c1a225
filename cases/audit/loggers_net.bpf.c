// SPDX-License-Identifier: GPL-2.0
/* The network loggers: net_sockaddr's source and destination (IPv4, IPv6), net_sock on inet and AF_UNIX, netif=. */
#include "harness.h"

/*
 * bpf_audit_log_net_sockaddr(ac, netif, saddr, daddr, addrlen) logs
 * "saddr= src=" for the source and "daddr= dest=" for the destination;
 * bpf_audit_log_net_sock(ac, netif, sock) logs the socket's own addresses
 * ("laddr= lport= faddr= fport=", zero parts left out) or, for AF_UNIX, its
 * path=; both add netif=<device> when netif names a device (lo is 1).
 */

char _license[] SEC("license") = "GPL";

SEC("lsm/socket_connect")
__description("net_sockaddr with the connect address as destination logs daddr= dest= (IPv4), no netif= for netif 0")
__needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=4242", "comm=bah_lnet4")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "daddr=127.0.0.1", "dest=4242", "cause=log_inet",
		"fields=prog-id,pid,comm,daddr,dest,cause", "count=1")
int BPF_PROG(sockaddr_inet, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;

	if (address->sa_family != AF_INET || !harness_comm_is("bah_lnet4"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_net_sockaddr(ac, 0, NULL, address, addrlen);
	bpf_audit_log_cause(ac, "log_inet");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("net_sockaddr with the connect address as destination logs daddr= dest= (IPv6)")
__needs("bpf_audit")
__success
__trigger("connect", "family=inet6", "addr=::1", "port=4243", "comm=bah_lnet6")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "daddr=::1", "dest=4243", "cause=log_inet6",
		"fields=prog-id,pid,comm,daddr,dest,cause", "count=1")
int BPF_PROG(sockaddr_inet6, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;

	if (address->sa_family != AF_INET6 || !harness_comm_is("bah_lnet6"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_net_sockaddr(ac, 0, NULL, address, addrlen);
	bpf_audit_log_cause(ac, "log_inet6");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_bind")
__description("net_sockaddr with the bind address as source logs saddr= src= (IPv4)")
__needs("bpf_audit")
__success
__trigger("bind", "family=inet", "addr=127.0.0.1", "port=4246", "comm=bah_lsrc4")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "saddr=127.0.0.1", "src=4246", "cause=log_src4",
		"fields=prog-id,pid,comm,saddr,src,cause", "count=1")
int BPF_PROG(sockaddr_source_inet, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;

	if (address->sa_family != AF_INET || !harness_comm_is("bah_lsrc4"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_net_sockaddr(ac, 0, address, NULL, addrlen);
	bpf_audit_log_cause(ac, "log_src4");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("net_sockaddr with the same address as source and destination logs saddr= src= daddr= dest=")
__needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=4247", "comm=bah_lboth")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "saddr=127.0.0.1", "src=4247", "daddr=127.0.0.1",
		"dest=4247", "fields=prog-id,pid,comm,saddr,src,daddr,dest,cause", "count=1")
int BPF_PROG(sockaddr_both, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;

	if (address->sa_family != AF_INET || !harness_comm_is("bah_lboth"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_net_sockaddr(ac, 0, address, address, addrlen);
	bpf_audit_log_cause(ac, "log_both");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("net_sockaddr with netif 1 (lo) adds netif=lo")
__needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=4244", "comm=bah_lnetif")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "daddr=127.0.0.1", "dest=4244", "netif=lo",
		"cause=log_netif", "fields=prog-id,pid,comm,daddr,dest,netif,cause", "count=1")
int BPF_PROG(sockaddr_netif, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;

	if (address->sa_family != AF_INET || !harness_comm_is("bah_lnetif"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_net_sockaddr(ac, HARNESS_LO_IFINDEX, NULL, address, addrlen);
	bpf_audit_log_cause(ac, "log_netif");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("net_sock on a bound, unconnected socket logs laddr= lport= and leaves out the zero faddr/fport")
__needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=4245", "bind_addr=127.0.0.1", "bind_port=4248",
	  "comm=bah_lsock")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "laddr=127.0.0.1", "lport=4248", "cause=log_sock",
		"fields=prog-id,pid,comm,laddr,lport,cause", "count=1")
int BPF_PROG(net_sock_bound, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;

	if (address->sa_family != AF_INET || !harness_comm_is("bah_lsock"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_net_sock(ac, 0, sock);
	bpf_audit_log_cause(ac, "log_sock");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_getsockopt")
__description("net_sock on a connected IPv4 socket logs laddr= lport= faddr= fport=, then netif=lo for netif 1")
__needs("bpf_audit")
__success
__trigger("getsockopt", "family=inet", "addr=127.0.0.1", "port=4249", "connect=self", "comm=bah_lsockc")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "laddr=127.0.0.1", "lport=4249", "faddr=127.0.0.1",
		"fport=4249", "netif=lo", "cause=log_sock_conn",
		"fields=prog-id,pid,comm,laddr,lport,faddr,fport,netif,cause", "count=1")
int BPF_PROG(net_sock_connected, struct socket *sock, int level, int optname)
{
	struct bpf_audit_context *ac;

	if (level != SOL_SOCKET || optname != SO_REUSEADDR || !harness_comm_is("bah_lsockc"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_net_sock(ac, HARNESS_LO_IFINDEX, sock);
	bpf_audit_log_cause(ac, "log_sock_conn");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_getsockopt")
__description("net_sock on a bound AF_UNIX socket logs its path=")
__needs("bpf_audit")
__success
__trigger("getsockopt", "family=unix", "path=/tmp/bah/lunix.sock", "comm=bah_lunix")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "path=/tmp/bah/lunix.sock", "cause=log_unix",
		"fields=prog-id,pid,comm,path,cause", "count=1")
int BPF_PROG(net_sock_unix, struct socket *sock, int level, int optname)
{
	struct bpf_audit_context *ac;

	if (level != SOL_SOCKET || optname != SO_REUSEADDR || !harness_comm_is("bah_lunix"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_net_sock(ac, 0, sock);
	bpf_audit_log_cause(ac, "log_unix");
	bpf_audit_log_end(ac);
	return 0;
}
