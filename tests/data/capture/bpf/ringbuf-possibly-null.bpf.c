// SPDX-License-Identifier: GPL-2.0
/* Rejected on any BPF-LSM kernel: the unchecked (maybe NULL) ring buffer record is submitted. */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");

HOOK_FILE_OPEN
int BPF_PROG(ringbuf_unchecked, struct file *file)
{
	int *rec = bpf_ringbuf_reserve(&rb, sizeof(*rec), 0);

	bpf_ringbuf_submit(rec, 0);
	return 0;
}
