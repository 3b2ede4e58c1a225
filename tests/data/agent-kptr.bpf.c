// SPDX-License-Identifier: GPL-2.0
/* Agent test fixture: bpf_kptr_xchg on a map value whose __kptr type (struct file) has no destructor. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define __kptr __attribute__((btf_type_tag("kptr")))

extern struct file *bpf_get_task_exe_file(struct task_struct *task) __ksym;
extern void bpf_put_file(struct file *file) __ksym;

struct value {
	struct file __kptr *f;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, struct value);
} m SEC(".maps");

SEC("lsm/file_open")
int BPF_PROG(stash_file, struct file *file, int ret)
{
	struct file *f, *old;
	struct value *v;
	int key = 0;

	v = bpf_map_lookup_elem(&m, &key);
	if (!v)
		return ret;
	f = bpf_get_task_exe_file(bpf_get_current_task_btf());
	if (!f)
		return ret;
	old = bpf_kptr_xchg(&v->f, f);
	if (old)
		bpf_put_file(old);
	return ret;
}

/* The same BTF refusal from a program type any host can load: the verifier then names the map. */
SEC("tc")
int stash_nothing(struct __sk_buff *skb)
{
	struct file *old;
	struct value *v;
	int key = 0;

	v = bpf_map_lookup_elem(&m, &key);
	if (!v)
		return 0;
	old = bpf_kptr_xchg(&v->f, NULL);
	if (old)
		bpf_put_file(old);
	return 0;
}
