// SPDX-License-Identifier: GPL-2.0
/* Rule 4 twin: kptr_store.bpf.c with a type that has a destructor (struct task_struct) loads. */
#include "harness.h"

/* Same shape as kptr_store.bpf.c; see there why the two are separate objects. */

char _license[] SEC("license") = "GPL";

struct ctx_slot {
	struct task_struct __kptr *ac;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, struct ctx_slot);
} m SEC(".maps");

SEC("lsm/file_open")
__description("rule 4 twin: bpf_kptr_xchg of an acquired task_struct (has a destructor) into the same map loads")
__rule(4) __needs("btf_type_tag", "task_kfuncs")
__success
int BPF_PROG(kptr_store_task, struct file *file)
{
	struct task_struct *ac, *old;
	struct ctx_slot *slot;
	int key = 0;

	slot = bpf_map_lookup_elem(&m, &key);
	if (!slot)
		return 0;
	ac = bpf_task_acquire(bpf_get_current_task_btf());
	if (!ac)
		return 0;
	old = bpf_kptr_xchg(&slot->ac, ac);
	if (old)
		bpf_task_release(old);
	return 0;
}
