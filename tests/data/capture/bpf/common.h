/* SPDX-License-Identifier: GPL-2.0 */
/* Shared includes and kfunc declarations for the verifier-log capture programs (tests/data/capture/bpf). */
#ifndef CAPTURE_COMMON_H
#define CAPTURE_COMMON_H
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;

/*
 * The hook every program attaches to: lsm/file_open by default. -DCAPTURE_TP_BTF makes it a
 * tp_btf/sched_switch program instead, for kernels that refuse to load LSM programs: on the recording
 * host (6.18) every BPF_PROG_TYPE_LSM and fentry load fails with EPERM before the verifier runs, while
 * tp_btf loads are verified. The programs never read their arguments and return 0, so the verifier's
 * verdict is about the kfunc/helper use alone and the same source fits both program types.
 */
#ifdef CAPTURE_TP_BTF
#define HOOK_FILE_OPEN SEC("tp_btf/sched_switch")
#else
#define HOOK_FILE_OPEN SEC("lsm/file_open")
#endif

char LICENSE[] SEC("license") = "GPL";
#endif
