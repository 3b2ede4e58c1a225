// SPDX-License-Identifier: GPL-2.0
/* Rule 18: the program the load test drives; as a case it checks one trigger gives exactly one whole record. */
#include "harness.h"

/*
 * The load half of rule 18 (many hook calls per second, records lost only
 * as audit loses them and counted in `lost`, no crash, no leaked context,
 * no half-written record) is a plain Python test that loads this program
 * and opens /tmp/bah/load in a loop as comm bah_load, reading `lost` before
 * and after. This case is its single-shot sanity check.
 */

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("rule 18 (single shot; the flood is a Python test): one open gives one complete record")
__rule(18) __needs("bpf_audit")
__success
__trigger("open", "path=/tmp/bah/load", "comm=bah_load")
__expect_errno(0)
__expect_record("BPF_LSM_ACCESS", "prog-id=${prog_id}", "pid=${pid}", "comm=${comm}", "path=/tmp/bah/load", "dev",
		"ino", "cause=load", "leading=prog-id,pid,comm", "order=path,dev,ino,cause", "count=1")
int BPF_PROG(load_flood, struct file *file)
{
	struct bpf_audit_context *ac;

	if (!harness_comm_is("bah_load") || !harness_file_name_is(file, "load"))
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	bpf_audit_log_file(ac, file);
	bpf_audit_log_cause(ac, "load");
	bpf_audit_log_end(ac);
	return 0;
}
