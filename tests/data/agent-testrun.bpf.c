// SPDX-License-Identifier: GPL-2.0
/* Agent test fixture: programs for the test_run op (tc, socket, syscall) and a map only a privileged loader may
 * create (a hash with BPF_F_ZERO_SEED), for load's no_autocreate_maps. Loads on any host. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(map_flags, 64); /* BPF_F_ZERO_SEED */
	__type(key, int);
	__type(value, int);
} zero_seed SEC(".maps");

int runs; /* .bss: an internal map named after the object ("<object name>.bss", the name cut short) */

SEC("tc")
int skb_len(struct __sk_buff *skb)
{
	runs++;
	return skb->len; /* the test run's input size: 64 by default */
}

SEC("socket")
int minus_one(struct __sk_buff *skb)
{
	return -1;
}

SEC("tc")
int use_zero_seed(struct __sk_buff *skb)
{
	int key = 0, *value = bpf_map_lookup_elem(&zero_seed, &key);

	return value ? *value : 7;
}

SEC("syscall")
int syscall_42(void *ctx)
{
	return 42;
}
