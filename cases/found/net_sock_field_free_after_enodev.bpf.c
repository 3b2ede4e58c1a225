// SPDX-License-Identifier: GPL-2.0
/* Rules 12+14: a net_sock call rejected for its netif (-ENODEV) must not use up the field (found by the property). */
#include "harness.h"

/*
 * Found by tests/test_property.py (hypothesis, shrunk to these four operations) on a local mutant whose
 * bpf_audit_log_net_sock claims its field before checking the netif: the second, valid call then
 * returns -EALREADY and the record has no laddr=/lport=. The hand-written suite passed on that mutant
 * (86 passed: cases/audit/failed_call.bpf.c covers the cap and sockaddr loggers, not net_sock).
 * The generated filter, comm and ports are kept as the generator made them.
 */

char _license[] SEC("license") = "GPL";

SEC("lsm/socket_connect")
__description("rules 12+14 (decided here): net_sock with a netif naming no device fails and leaves the field free: "
	      "a second call with netif 0 logs laddr= lport=")
__rule(12) __rule(14) __decided __needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=57170", "bind_addr=127.0.0.1", "bind_port=57171",
		"comm=bp_0ccbb9fdde")
__expect_errno(111)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "pid=${pid}", "comm=${comm}", "laddr=127.0.0.1",
		"lport=57171", "!cause", "!capability", "!path", "!dev", "!ino", "!ioctlcmd", "!name", "!opid", "!ocomm", "!faddr",
		"!fport", "!daddr", "!dest", "!netif", "leading=prog-id,pid,comm,laddr,lport", "once=prog-id,pid,comm,laddr,lport",
		"count=1")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "count=1")
int BPF_PROG(net_sock_field_free_after_enodev, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac0;
	struct sock *sk = sock->sk;

	if (!sk || address->sa_family != AF_INET || !harness_comm_is("bp_0ccbb9fdde"))
		return 0;
	/* op 1 */
	ac0 = harness_audit_start();
	if (!ac0)
		return 0;
	/* op 2 */
	bpf_audit_log_net_sock(ac0, 4242424, sk);
	/* op 3 */
	bpf_audit_log_net_sock(ac0, 0, sk);
	/* op 4 */
	bpf_audit_log_end(ac0);
	return 0;
}
