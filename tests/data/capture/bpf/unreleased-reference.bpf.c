// SPDX-License-Identifier: GPL-2.0
/* Rejected: a bpf_task_acquire() reference is not released on the path that returns. */
#include "common.h"

HOOK_FILE_OPEN
int BPF_PROG(leak_task_ref, struct file *file)
{
	struct task_struct *t = bpf_task_acquire(bpf_get_current_task_btf());

	if (!t)
		return 0;
	return 0;	/* t leaks here */
}
