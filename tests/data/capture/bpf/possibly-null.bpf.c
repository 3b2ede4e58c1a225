// SPDX-License-Identifier: GPL-2.0
/* Rejected: the unchecked (maybe NULL) result of bpf_task_acquire() is passed to bpf_task_release(). */
#include "common.h"

HOOK_FILE_OPEN
int BPF_PROG(unchecked_release, struct file *file)
{
	struct task_struct *t = bpf_task_acquire(bpf_get_current_task_btf());

	bpf_task_release(t);
	return 0;
}
