// SPDX-License-Identifier: GPL-2.0
/* Rejected: a field of the task is read after its reference was released ("invalid mem access 'scalar'"). */
#include "common.h"

int seen_pid;

HOOK_FILE_OPEN
int BPF_PROG(use_after_release, struct file *file)
{
	struct task_struct *t = bpf_task_acquire(bpf_get_current_task_btf());
	int pid;

	if (!t)
		return 0;
	bpf_task_release(t);
	asm volatile("" : "+r"(t));	/* keep the compiler from reordering the load before the release */
	pid = t->pid;
	seen_pid = pid;
	return 0;
}
