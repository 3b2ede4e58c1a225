#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Record verifier logs for tests/data/: compile BPF programs against the running kernel's BTF and load them.
#
#   tests/data/capture/verifier.sh OUTDIR TAG PROG...      (PROG: a name in tests/data/capture/bpf/, no .bpf.c)
#
# For each PROG writes OUTDIR/verifier-TAG-PROG.log (or verifier-PROG.log when TAG is "-"): the whole
# output of `bpftool -d prog load PROG.o /sys/fs/bpf/PROG`, i.e. libbpf's debug log with the verifier log
# between "-- BEGIN PROG LOAD LOG --" and "-- END PROG LOAD LOG --", then bpftool's own error line.
# Loads run in a private mount namespace with its own bpffs, so nothing stays pinned or mounted.
# Needs root, clang-19, bpftool, libbpf-dev headers. Works on the host and inside a vng guest.
# CAPTURE_CFLAGS adds compiler flags, e.g. CAPTURE_CFLAGS=-DCAPTURE_TP_BTF (see bpf/common.h).
set -eu
outdir=$(cd "$1" && pwd)
tag=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/verifier-capture.XXXXXX)
trap 'rm -rf "$work"' EXIT
bpftool btf dump file /sys/kernel/btf/vmlinux format c > "$work/vmlinux.h"
for prog in "$@"; do
	# shellcheck disable=SC2086
	clang-19 -g -O2 -target bpf -D__TARGET_ARCH_x86 ${CAPTURE_CFLAGS:-} -I"$work" -I"$here/bpf" \
		-c "$here/bpf/$prog.bpf.c" -o "$work/$prog.o"
	if [ "$tag" = "-" ]; then out=$outdir/verifier-$prog.log; else out=$outdir/verifier-$tag-$prog.log; fi
	rc=0
	unshare -m sh -c 'mount -t bpf bpf /sys/fs/bpf && exec bpftool -d prog load "$1" "/sys/fs/bpf/$2"' \
		sh "$work/$prog.o" "$prog" > "$out" 2>&1 || rc=$?
	echo "$prog: bpftool exit $rc, $(wc -l < "$out") lines -> $out"
done
