// SPDX-License-Identifier: GPL-2.0
/* Rejected: bpf_task_release() called twice on the same reference. */
#include "common.h"

HOOK_FILE_OPEN
int BPF_PROG(double_release, struct file *file)
{
	struct task_struct *t = bpf_task_acquire(bpf_get_current_task_btf());

	if (!t)
		return 0;
	bpf_task_release(t);
	bpf_task_release(t);
	return 0;
}
