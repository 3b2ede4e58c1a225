// SPDX-License-Identifier: GPL-2.0
/* Rule 4: a context cannot be stored in a map as a __kptr (no destructor); twin in kptr_store_task.bpf.c. */
#include "harness.h"

/*
 * Alone in its file on purpose: the kernel refuses the whole object's BTF
 * because of this map value, so any other program in the same object would
 * lose BTF too. The accepted twin (struct task_struct __kptr *, which has a
 * destructor) is kptr_store_task.bpf.c, the same code with the type swapped.
 */

char _license[] SEC("license") = "GPL";

struct ctx_slot {
	struct bpf_audit_context __kptr *ac;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, struct ctx_slot);
} m SEC(".maps");

SEC("lsm/file_open")
__description("rule 4: bpf_kptr_xchg of a context into a map is rejected (kernel refuses the BTF, then the map has none)")
__rule(4) __needs("bpf_audit", "btf_type_tag")
__failure
__libbpf_msg("Error loading .BTF into kernel")
__msg("map 'm' has to have BTF in order to use bpf_kptr_xchg")
int BPF_PROG(kptr_store_context, struct file *file)
{
	struct bpf_audit_context *ac, *old;
	struct ctx_slot *slot;
	int key = 0;

	slot = bpf_map_lookup_elem(&m, &key);
	if (!slot)
		return 0;
	ac = bpf_audit_log_start();
	if (!ac)
		return 0;
	old = bpf_kptr_xchg(&slot->ac, ac);
	if (old)
		bpf_audit_log_end(old);
	return 0;
}
