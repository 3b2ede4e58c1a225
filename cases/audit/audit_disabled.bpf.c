// SPDX-License-Identifier: GPL-2.0
/* Rule 15: with audit disabled bpf_audit_log_start returns NULL, nothing is logged, and the verdict is unchanged. */
#include "harness.h"

/*
 * The harness runs the trigger between `auditctl -e 0` and restoring the
 * previous state. The kernel booted with audit=0 is the other half of the
 * rule and needs its own guest: not covered here.
 */

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("rule 15: audit disabled: a denying program still denies (-EPERM) and emits no record")
__rule(15) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/offdeny", "comm=bah_offdeny")
__audit_disabled
__expect_errno(EPERM)
__expect_no_record("BPF_LSM_ACCESS", "prog-id=${prog_id}")
int BPF_PROG(deny_with_audit_off, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_offdeny") || !harness_file_name_is(file, "offdeny"))
		return 0;
	ac = bpf_audit_log_start();
	if (ac) {
		bpf_audit_log_cause(ac, "off_denied");
		bpf_audit_log_end(ac);
	}
	return -EPERM;
}

SEC("lsm/file_open")
__description("rule 15: audit disabled: an allowing program still allows and emits no record")
__rule(15) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/offallow", "comm=bah_offallow")
__audit_disabled
__expect_errno(0)
__expect_no_record("BPF_LSM_ACCESS", "prog-id=${prog_id}")
int BPF_PROG(allow_with_audit_off, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_offallow") || !harness_file_name_is(file, "offallow"))
		return 0;
	ac = bpf_audit_log_start();
	if (ac) {
		bpf_audit_log_cause(ac, "off_allowed");
		bpf_audit_log_end(ac);
	}
	return 0;
}
