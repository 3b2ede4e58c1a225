// SPDX-License-Identifier: GPL-2.0
/* Baseline (upstream, no series): AUDIT_BPF op=LOAD and op=UNLOAD records carry the loader's prog-id. */
#include "harness.h"

char _license[] SEC("license") = "GPL";

SEC("lsm/file_open")
__description("baseline: loading and unloading a BPF LSM program gives AUDIT_BPF op=LOAD then op=UNLOAD")
__needs("bpf_lsm")
__success
__expect_record("BPF", "prog-id=${prog_id}", "op=LOAD", "count=1")
__expect_record("BPF", "prog-id=${prog_id}", "op=UNLOAD", "count=1")
int BPF_PROG(baseline_lsm_load_unload, struct file *file)
{
	return 0;
}

SEC("tp_btf/sched_process_exec")
__description("baseline: the same records for a tracing program (no BPF LSM needed)")
__success
__expect_record("BPF", "prog-id=${prog_id}", "op=LOAD", "count=1")
__expect_record("BPF", "prog-id=${prog_id}", "op=UNLOAD", "count=1")
int BPF_PROG(baseline_tracing_load_unload, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return 0;
}
