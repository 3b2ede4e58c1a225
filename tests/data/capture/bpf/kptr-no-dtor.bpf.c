// SPDX-License-Identifier: GPL-2.0
/* Rejected: a map value holds a __kptr to a type without a destructor (struct file); the kernel
 * refuses the object's BTF, libbpf retries without it, and bpf_kptr_xchg() then needs BTF. */
#include "common.h"

extern struct file *bpf_get_task_exe_file(struct task_struct *task) __ksym;
extern void bpf_put_file(struct file *file) __ksym;

struct val {
	struct file __kptr *f;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, struct val);
} m SEC(".maps");

HOOK_FILE_OPEN
int BPF_PROG(stash_file, struct file *file)
{
	struct file *f = bpf_get_task_exe_file(bpf_get_current_task_btf());
	struct val *v;
	int key = 0;

	if (!f)
		return 0;
	v = bpf_map_lookup_elem(&m, &key);
	if (!v) {
		bpf_put_file(f);
		return 0;
	}
	f = bpf_kptr_xchg(&v->f, f);
	if (f)
		bpf_put_file(f);
	return 0;
}
