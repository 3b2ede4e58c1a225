// SPDX-License-Identifier: GPL-2.0
/* Rule 20 (decided here): net_sockaddr with one address prints only that side, whatever was on the kernel stack. */
#include "harness.h"

/*
 * The source alone prints saddr= src= and no daddr=/dest=, the destination
 * alone the reverse. Right before the one-sided call each program makes a
 * call with both addresses on a second context, from the same call depth:
 * it leaves a source and a destination in the kernel stack where the
 * kfunc keeps its network data, and nothing runs in between. A kernel that
 * does not zero that data prints the stale side when built with
 * CONFIG_INIT_STACK_NONE=y; these cases must pass on every kernel, and fail
 * on one that copies the wrong side.
 */

char _license[] SEC("license") = "GPL";

/* Both sides on `filler`, then one side (or net_sock) on `ac`, back to back; each record gets its cause. */
static __always_inline int after_both(struct bpf_audit_context *ac, struct bpf_audit_context *filler,
				      struct socket *sock, struct sockaddr *address, int addrlen, int side)
{
	bpf_audit_log_net_sockaddr(filler, 0, address, address, addrlen);
	if (side == 1)
		bpf_audit_log_net_sockaddr(ac, 0, address, NULL, addrlen);
	else if (side == 2)
		bpf_audit_log_net_sockaddr(ac, 0, NULL, address, addrlen);
	else
		bpf_audit_log_net_sock(ac, 0, sock);
	bpf_audit_log_cause(filler, "filler");
	bpf_audit_log_end(filler);
	return 0;
}

SEC("lsm/socket_bind")
__description("rule 20 (decided here): net_sockaddr with only a source (IPv4) prints saddr= src= and no daddr=/dest=")
__rule(20) __decided __needs("bpf_audit")
__success
__trigger("bind", "family=inet", "addr=127.0.0.1", "port=4281", "comm=bah_src4")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=source_only", "saddr=127.0.0.1", "src=4281",
		"fields=prog-id,pid,comm,saddr,src,cause", "count=1")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=filler",
		"fields=prog-id,pid,comm,saddr,src,daddr,dest,cause", "count=1")
int BPF_PROG(source_only_inet, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac, *filler;

	if (address->sa_family != AF_INET || !harness_comm_is("bah_src4"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	filler = bpf_audit_log_start();
	if (!filler) {
		bpf_audit_log_end(ac);
		return 0;
	}
	after_both(ac, filler, sock, address, addrlen, 1);
	bpf_audit_log_cause(ac, "source_only");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_bind")
__description("rule 20 (decided here): net_sockaddr with only a source (IPv6) prints saddr= src= and no daddr=/dest=")
__rule(20) __decided __needs("bpf_audit")
__success
__trigger("bind", "family=inet6", "addr=::1", "port=4282", "comm=bah_src6")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=source_only6", "saddr=::1", "src=4282",
		"fields=prog-id,pid,comm,saddr,src,cause", "count=1")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=filler",
		"fields=prog-id,pid,comm,saddr,src,daddr,dest,cause", "count=1")
int BPF_PROG(source_only_inet6, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac, *filler;

	if (address->sa_family != AF_INET6 || !harness_comm_is("bah_src6"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	filler = bpf_audit_log_start();
	if (!filler) {
		bpf_audit_log_end(ac);
		return 0;
	}
	after_both(ac, filler, sock, address, addrlen, 1);
	bpf_audit_log_cause(ac, "source_only6");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("rule 20 (decided here): net_sockaddr with only a destination (IPv4) prints daddr= dest= and no "
	      "saddr=/src=")
__rule(20) __decided __needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=4283", "comm=bah_dst4")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=dest_only", "daddr=127.0.0.1", "dest=4283",
		"fields=prog-id,pid,comm,daddr,dest,cause", "count=1")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=filler",
		"fields=prog-id,pid,comm,saddr,src,daddr,dest,cause", "count=1")
int BPF_PROG(dest_only_inet, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac, *filler;

	if (address->sa_family != AF_INET || !harness_comm_is("bah_dst4"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	filler = bpf_audit_log_start();
	if (!filler) {
		bpf_audit_log_end(ac);
		return 0;
	}
	after_both(ac, filler, sock, address, addrlen, 2);
	bpf_audit_log_cause(ac, "dest_only");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("rule 20 (decided here): net_sockaddr with only a destination (IPv6) prints daddr= dest= and no "
	      "saddr=/src=")
__rule(20) __decided __needs("bpf_audit")
__success
__trigger("connect", "family=inet6", "addr=::1", "port=4284", "comm=bah_dst6")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=dest_only6", "daddr=::1", "dest=4284",
		"fields=prog-id,pid,comm,daddr,dest,cause", "count=1")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=filler",
		"fields=prog-id,pid,comm,saddr,src,daddr,dest,cause", "count=1")
int BPF_PROG(dest_only_inet6, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac, *filler;

	if (address->sa_family != AF_INET6 || !harness_comm_is("bah_dst6"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	filler = bpf_audit_log_start();
	if (!filler) {
		bpf_audit_log_end(ac);
		return 0;
	}
	after_both(ac, filler, sock, address, addrlen, 2);
	bpf_audit_log_cause(ac, "dest_only6");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("rule 20 (decided here): net_sock on a bound, unconnected socket prints no saddr=/daddr= of its own")
__rule(20) __decided __needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=4285", "bind_addr=127.0.0.1", "bind_port=4286",
	  "comm=bah_sockonly")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=sock_only", "laddr=127.0.0.1", "lport=4286",
		"fields=prog-id,pid,comm,laddr,lport,cause", "count=1")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=filler",
		"fields=prog-id,pid,comm,saddr,src,daddr,dest,cause", "count=1")
int BPF_PROG(net_sock_no_sockaddr_fields, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac, *filler;

	if (address->sa_family != AF_INET || !harness_comm_is("bah_sockonly"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	filler = bpf_audit_log_start();
	if (!filler) {
		bpf_audit_log_end(ac);
		return 0;
	}
	after_both(ac, filler, sock, address, addrlen, 3);
	bpf_audit_log_cause(ac, "sock_only");
	bpf_audit_log_end(ac);
	return 0;
}
