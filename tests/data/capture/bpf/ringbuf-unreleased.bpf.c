// SPDX-License-Identifier: GPL-2.0
/* Rejected on any BPF-LSM kernel (6.1 too): a ring buffer record is reserved and never submitted. */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");

HOOK_FILE_OPEN
int BPF_PROG(ringbuf_leak, struct file *file)
{
	int *rec = bpf_ringbuf_reserve(&rb, sizeof(*rec), 0);

	if (!rec)
		return 0;
	*rec = 1;
	return 0;	/* rec is neither submitted nor discarded */
}
