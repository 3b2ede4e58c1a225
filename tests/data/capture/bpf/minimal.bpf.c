// SPDX-License-Identifier: GPL-2.0
/* Accepted everywhere: the smallest socket filter, loaded and unloaded to make AUDIT_BPF LOAD/UNLOAD records. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("socket")
int accept_all(struct __sk_buff *skb)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
