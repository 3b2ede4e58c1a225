// SPDX-License-Identifier: GPL-2.0
/* Baseline (upstream, no series): a BPF LSM file_open program returning -EPERM denies exactly the open it targets. */
#include "harness.h"

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("baseline: lsm/file_open returning -EPERM denies the trigger's open with EPERM")
__needs("bpf_lsm")
__success
__trigger("open", "path=/tmp/bah/basedeny", "comm=bah_basedeny")
__expect_errno(EPERM)
int BPF_PROG(baseline_file_open_deny, struct file *file)
{
	if (!harness_comm_is("bah_basedeny") || !harness_file_name_is(file, "basedeny"))
		return 0;
	return -EPERM;
}

SEC("lsm/file_open")
__description("baseline twin: the same program lets the same process open another file")
__needs("bpf_lsm")
__success
__trigger("open", "path=/tmp/bah/baseother", "comm=bah_basedeny")
__expect_errno(0)
int BPF_PROG(baseline_file_open_other_file, struct file *file)
{
	if (!harness_comm_is("bah_basedeny") || !harness_file_name_is(file, "basedeny"))
		return 0;
	return -EPERM;
}
