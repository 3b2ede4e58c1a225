// SPDX-License-Identifier: GPL-2.0
/* Refused by libbpf on a kernel without bpf_task_acquire (6.1): the kfunc is not in vmlinux BTF. Loads on 6.2+. */
#include "common.h"

HOOK_FILE_OPEN
int BPF_PROG(needs_task_acquire, struct file *file)
{
	struct task_struct *t = bpf_task_acquire(bpf_get_current_task_btf());

	if (t)
		bpf_task_release(t);
	return 0;
}
