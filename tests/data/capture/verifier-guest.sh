#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Record verifier logs of LSM programs in a guest running Debian's 6.1 kernel (QEMU TCG): verifier.sh runs
# inside the guest, so vmlinux.h, the compile and the load all use the guest kernel.
#
#   tests/data/capture/verifier-guest.sh [OUTDIR] [PROG...]
#
# Writes OUTDIR/verifier-6.1-lsm-PROG.log (default OUTDIR: tests/data).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
outdir=$(cd "${1:-$here/..}" && pwd)
[ $# -gt 0 ] && shift
progs=${*:-ringbuf-unreleased ringbuf-possibly-null ringbuf-use-after-submit ringbuf-accepted missing-kfunc}
vng=${VNG:-/tmp/setup/venv/bin/vng}
PATH=$(dirname "$vng"):$PATH
export PATH
kernel=${KERNEL:-$(ls /boot/vmlinuz-6.1.* | tail -n 1)}
work=$(mktemp -d /tmp/verifier-guest.XXXXXX)
rc=0
timeout 600 "$vng" --run "$kernel" --disable-kvm --rwdir "$work" \
	--exec "sh $here/verifier.sh $work 6.1-lsm $progs" || rc=$?
echo "vng exit status $rc"
cp "$work"/verifier-6.1-lsm-*.log "$outdir/"
rm -rf "$work"
