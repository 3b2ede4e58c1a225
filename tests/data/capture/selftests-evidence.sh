#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Record what harness/selftests/evidence.py reads of a kernel the harness built: the tree's
# include/linux/bpf_types.h, the enum bpf_map_type of its vmlinux.h (the kernel's BTF) and its .config.
#
#   tests/data/capture/selftests-evidence.sh TREE KERNEL_ENTRY OUTDIR
#
# TREE: the unpacked source the kernel was built from (~/.cache/bpf-audit-harness/src/tar-*/tree);
# KERNEL_ENTRY: its cache entry (~/.cache/bpf-audit-harness/kernels/<key>, with vmlinux.h and config).
# Fails (exit 1) when any input is missing or the enum is not found.
set -eu
tree=$1 entry=$2 out=$3
mkdir -p "$out"
release=$(sed -n 's/.*"release": "\([^"]*\)".*/\1/p' "$entry/meta.json")
[ -n "$release" ] || { echo "no release in $entry/meta.json" >&2; exit 1; }
cp "$tree/include/linux/bpf_types.h" "$out/bpf_types-$release.h"
awk '/^enum bpf_map_type \{/,/^\};/' "$entry/vmlinux.h" > "$out/vmlinux-$release-enum-bpf_map_type.h"
grep -q BPF_MAP_TYPE_XSKMAP "$out/vmlinux-$release-enum-bpf_map_type.h" || {
    echo "enum bpf_map_type not found in $entry/vmlinux.h" >&2; exit 1; }
cp "$entry/config" "$out/config-$release"
echo "recorded $release into $out"
