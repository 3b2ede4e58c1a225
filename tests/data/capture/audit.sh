#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Record the audit-record files of tests/data/ from Debian's 6.1 kernel booted with audit=1 under QEMU TCG.
#
#   tests/data/capture/audit.sh [OUTDIR]
#
# Boots the guest once and runs audit-guest.sh in it, then writes (default OUTDIR: tests/data):
#   audit-console-bpf-load-unload.log   kernel console lines (dmesg) while a socket filter is loaded and unloaded
#   audit-console-syscall-hex-comm.log  ... while programs named "a b" and q"t (hex-encoded comm/exe) read /etc/hostname
#   audit-auditd.log                    auditd's audit.log (ENRICHED format) of the same two steps
#   console-audit-boot.log              the guest console of that run
# Needs auditd (Debian package auditd) installed on the host root that the guest shares, clang-19, bpftool.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
outdir=$(cd "${1:-$here/..}" && pwd)
vng=${VNG:-/tmp/setup/venv/bin/vng}
PATH=$(dirname "$vng"):$PATH
export PATH
kernel=${KERNEL:-$(ls /boot/vmlinuz-6.1.* | tail -n 1)}
work=$(mktemp -d /tmp/audit-capture.XXXXXX)
clang-19 -g -O2 -target bpf -I/usr/include/x86_64-linux-gnu -c "$here/bpf/minimal.bpf.c" -o "$work/minimal.o"
mkdir "$work/out"
rc=0
timeout 400 "$vng" --run "$kernel" --disable-kvm --verbose --append "audit=1" --rwdir "$work/out" \
	--exec "sh $here/audit-guest.sh $work/out $work/minimal.o" >"$work/out/guest.stdout" 2>"$work/console.log" || rc=$?
echo "vng exit status $rc"
ls -la "$work/out"
cp "$work/console.log" "$outdir/console-audit-boot.log"
cp "$work/out/console-bpf-load-unload.dmesg" "$outdir/audit-console-bpf-load-unload.log"
cp "$work/out/console-syscall-hex-comm.dmesg" "$outdir/audit-console-syscall-hex-comm.log"
cp "$work/out/auditd.log" "$outdir/audit-auditd.log"
rm -rf "$work"
