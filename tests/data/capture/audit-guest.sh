#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs INSIDE a guest booted with audit=1 (see audit.sh): make audit records and save them, first as the
# kernel prints them on the console (no audit daemon), then as auditd writes them to audit.log.
#
#   audit-guest.sh OUTDIR MINIMAL_BPF_OBJECT
set -u
out=$1
obj=$2
mkdir -p "$out"
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
# kauditd prints through printk_ratelimit(); without this, records are dropped ("printk limit exceeded")
sysctl -q -w kernel.printk_ratelimit=0 kernel.printk_ratelimit_burst=100000

phase() { # NAME: save the kernel messages since the last phase
	dmesg > "$out/$1.dmesg"
	dmesg -C
}

bpf_load_unload() {
	bpftool prog load "$obj" /sys/fs/bpf/minimal type socket
	bpftool prog show pinned /sys/fs/bpf/minimal
	rm -f /sys/fs/bpf/minimal
	sleep 1	# the program is freed (UNLOAD) after an RCU grace period
}

hex_comm() {
	cp /bin/cat "/tmp/a b"
	cp /bin/cat '/tmp/q"t'
	cat /etc/hostname
	"/tmp/a b" /etc/hostname
	'/tmp/q"t' /etc/hostname
}

dmesg -C
auditctl -D
# SYSCALL records for bpf(2) share the serial of the AUDIT_BPF records made inside the syscall
auditctl -a always,exit -F arch=b64 -S bpf -k bpf-syscall
auditctl -a always,exit -F arch=b64 -S openat -F path=/etc/hostname -k hostname-read
phase console-rules
bpf_load_unload
phase console-bpf-load-unload
hex_comm
phase console-syscall-hex-comm

# the same with auditd running (it takes over from the console)
mkdir -p /var/log/audit
auditd -n -s nochange > "$out/auditd.stderr" 2>&1 &
auditd_pid=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -s /var/log/audit/audit.log ] && break; sleep 1; done
bpf_load_unload
hex_comm
sleep 1
auditctl -D
kill "$auditd_pid"
wait "$auditd_pid"
cp /var/log/audit/audit.log "$out/auditd.log"
phase after-auditd
auditctl -s > "$out/auditctl-status.txt"
echo "audit capture done"
