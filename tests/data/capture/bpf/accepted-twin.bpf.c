// SPDX-License-Identifier: GPL-2.0
/* Accepted: acquire, check for NULL, release once (the twin of the rejected programs). */
#include "common.h"

HOOK_FILE_OPEN
int BPF_PROG(release_once, struct file *file)
{
	struct task_struct *t = bpf_task_acquire(bpf_get_current_task_btf());

	if (!t)
		return 0;
	bpf_task_release(t);
	return 0;
}
