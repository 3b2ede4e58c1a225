// SPDX-License-Identifier: GPL-2.0
/* Rules 12 and 14: a logger call rejected for a bad argument emits nothing and does not use up its field. */
#include "harness.h"

/*
 * Rule 14 says a bad argument emits nothing for that field; rule 12 says a
 * logger works once per context. Together: a call that failed on its
 * arguments did not log the field, so a later call with good arguments
 * must still log it (return 0), not return -EALREADY. Found by the mutant
 * patches/mutants/cap-claims-before-check.patch, which the rest of the
 * suite let through. Each program reports the second call's return value
 * through the cause string.
 */

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("rules 12+14 (decided here): bpf_audit_log_cap(4242) fails with -EINVAL, then a valid cap still logs")
__rule(12) __rule(14) __decided __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/capfree", "comm=bah_capfree")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=cap_field_free", "capability=21",
		"once=capability", "count=1")
int BPF_PROG(cap_field_free_after_einval, struct file *file)
{
	struct bpf_audit_context *ac;
	int first, second;

	if (!harness_comm_is("bah_capfree") || !harness_file_name_is(file, "capfree"))
		return 0;
	ac = harness_audit_start();
	if (!ac)
		return 0;
	first = bpf_audit_log_cap(ac, 4242);
	second = bpf_audit_log_cap(ac, HARNESS_CAP_SYS_ADMIN);
	if (first == -EINVAL && second == 0)
		bpf_audit_log_cause(ac, "cap_field_free");
	else if (second == -EALREADY)
		bpf_audit_log_cause(ac, "cap_field_used_up");
	else
		bpf_audit_log_cause(ac, "cap_other");
	bpf_audit_log_end(ac);
	return 0;
}

SEC("lsm/socket_connect")
__description("rules 12+14 (decided here): net_sockaddr with a netif naming no device fails, then netif 0 still logs")
__rule(12) __rule(14) __decided __needs("bpf_audit")
__success
__trigger("connect", "family=inet", "addr=127.0.0.1", "port=4251", "comm=bah_sockfree")
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "cause=sockaddr_field_free", "daddr=127.0.0.1",
		"dest=4251", "!netif", "once=daddr,dest", "count=1")
int BPF_PROG(sockaddr_field_free_after_enodev, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct bpf_audit_context *ac;
	int first, second;

	if (address->sa_family != AF_INET || !harness_comm_is("bah_sockfree"))
		return 0;
	ac = harness_audit_start();
	if (!ac)
		return 0;
	first = bpf_audit_log_net_sockaddr(ac, 4242424, address, addrlen);
	second = bpf_audit_log_net_sockaddr(ac, 0, address, addrlen);
	if (first == -ENODEV && second == 0)
		bpf_audit_log_cause(ac, "sockaddr_field_free");
	else if (second == -EALREADY)
		bpf_audit_log_cause(ac, "sockaddr_field_used_up");
	else
		bpf_audit_log_cause(ac, "sockaddr_other");
	bpf_audit_log_end(ac);
	return 0;
}
