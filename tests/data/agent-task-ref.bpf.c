// SPDX-License-Identifier: GPL-2.0
/* Agent test fixture: lsm/file_open programs that leak (rejected) or release (accepted) a task reference. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;

SEC("lsm/file_open")
int BPF_PROG(leak_task, struct file *file, int ret)
{
	struct task_struct *t = bpf_task_acquire(bpf_get_current_task_btf());

	if (!t)
		return ret;
	return ret; /* the reference is never released: "Unreleased reference" */
}

SEC("lsm/file_open")
int BPF_PROG(release_task, struct file *file, int ret)
{
	struct task_struct *t = bpf_task_acquire(bpf_get_current_task_btf());

	if (!t)
		return ret;
	bpf_task_release(t);
	return ret;
}
