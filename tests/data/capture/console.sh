#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Record one console-log scenario for tests/data/: boot Debian's 6.1 kernel under QEMU TCG and provoke a report.
#
#   tests/data/capture/console.sh SCENARIO [OUTDIR]
#
# SCENARIO: clean-boot panic-sysrq warning bug oops hung-task soft-lockup rcu-stall panic-mid-case
# Writes OUTDIR/console-SCENARIO.log (default OUTDIR: tests/data). The console is what vng --verbose
# prints on stderr (the guest's ttyS0). Needs: linux-image-6.1.0-*-amd64 and its linux-headers (to build
# provoke.ko), virtme-ng (vng), qemu-system-x86. KVM is never used (it hangs guests on the recording host).
set -eu
scenario=$1
here=$(cd "$(dirname "$0")" && pwd)
outdir=$(cd "${2:-$here/..}" && pwd)
vng=${VNG:-/tmp/setup/venv/bin/vng}
PATH=$(dirname "$vng"):$PATH
export PATH
kernel=${KERNEL:-$(ls /boot/vmlinuz-6.1.* | tail -n 1)}
kver=${kernel#/boot/vmlinuz-}

work=$(mktemp -d /tmp/provoke.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp "$here/provoke/provoke.c" "$here/provoke/Makefile" "$work/"
make -s -C "$work" KDIR="/usr/src/linux-headers-$kver" >/dev/null
ko=$work/provoke.ko

case $scenario in
clean-boot)     cmd="uname -r" ;;
panic-sysrq)    cmd="echo c > /proc/sysrq-trigger" ;;
warning)        cmd="insmod $ko action=warn || true" ;;
bug)            cmd="insmod $ko action=bug" ;;
oops)           cmd="sysctl -w kernel.panic_on_oops=0; insmod $ko action=null; echo insmod exited \$?" ;;
hung-task)      cmd="sysctl -w kernel.hung_task_timeout_secs=3; insmod $ko action=hung secs=20 || true" ;;
soft-lockup)    cmd="sysctl -w kernel.watchdog_thresh=1; insmod $ko action=spin secs=8 || true" ;;
rcu-stall)      cmd="echo 3 > /sys/module/rcupdate/parameters/rcu_cpu_stall_timeout; sysctl -w kernel.soft_watchdog=0;"
                cmd="$cmd insmod $ko action=spin secs=15 || true" ;;
panic-mid-case) cmd="sysctl -w kernel.panic_on_oops=1;"
                cmd="$cmd echo 'harness-agent: load cases/verifier/unreleased.bpf.c prog=leak' > /dev/kmsg;"
                cmd="$cmd echo 'harness-agent: result prog=leak verdict=rejected errno=13' > /dev/kmsg;"
                cmd="$cmd echo 'harness-agent: running case cases/audit/file_open.bpf.c trigger=open' > /dev/kmsg;"
                cmd="$cmd insmod $ko action=null" ;;
*) echo "unknown scenario $scenario" >&2; exit 2 ;;
esac

out=$outdir/console-$scenario.log
set -x
rc=0
timeout 300 "$vng" --run "$kernel" --disable-kvm --verbose --exec "$cmd" 2>"$out" || rc=$?
set +x
echo "vng exit status $rc; console log in $out ($(wc -c <"$out") bytes)"
