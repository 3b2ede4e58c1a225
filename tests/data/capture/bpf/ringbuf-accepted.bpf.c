// SPDX-License-Identifier: GPL-2.0
/* Accepted on any BPF-LSM kernel: reserve, check for NULL, submit (the twin of the rejected ringbuf programs). */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");

HOOK_FILE_OPEN
int BPF_PROG(ringbuf_ok, struct file *file)
{
	int *rec = bpf_ringbuf_reserve(&rb, sizeof(*rec), 0);

	if (!rec)
		return 0;
	*rec = 1;
	bpf_ringbuf_submit(rec, 0);
	return 0;
}
