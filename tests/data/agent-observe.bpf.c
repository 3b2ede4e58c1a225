// SPDX-License-Identifier: GPL-2.0
/* Agent test fixture: an lsm/file_open program that allows everything and records tasks whose comm starts "hx". */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

char last_comm[16] = {};
__u64 hits = 0;

SEC("lsm/file_open")
int BPF_PROG(observe_open, struct file *file, int ret)
{
	char comm[16];

	bpf_get_current_comm(comm, sizeof(comm));
	if (comm[0] == 'h' && comm[1] == 'x') {
		__builtin_memcpy(last_comm, comm, sizeof(comm));
		__sync_fetch_and_add(&hits, 1);
	}
	return ret; /* never changes the verdict */
}

SEC("kprobe/do_sys_openat2")
int BPF_KPROBE(observe_kprobe)
{
	char comm[16];

	bpf_get_current_comm(comm, sizeof(comm));
	if (comm[0] == 'h' && comm[1] == 'x') {
		__builtin_memcpy(last_comm, comm, sizeof(comm));
		__sync_fetch_and_add(&hits, 1);
	}
	return 0;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(observe_sys_enter, struct pt_regs *regs, long id)
{
	char comm[16];

	bpf_get_current_comm(comm, sizeof(comm));
	if (comm[0] == 'h' && comm[1] == 'x') {
		__builtin_memcpy(last_comm, comm, sizeof(comm));
		__sync_fetch_and_add(&hits, 1);
	}
	return 0;
}
