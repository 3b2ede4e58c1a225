#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs as root inside a fresh guest (vng --exec): network up, then the run's own sshd in the foreground.
# $1: the run's ssh directory on the host (read-only in the guest): sshd_config, host key, authorized_keys.
set -eu
sshdir=$1
say() { echo "harness-boot: $*" > /dev/kmsg 2>/dev/null || true; }

# QEMU user networking: fixed addresses, no DHCP client needed. The host forwards only 127.0.0.1:PORT here.
# A distro kernel (Debian's 6.1) has virtio-net as a module; ours has it built in.
modprobe virtio_net 2>/dev/null || true
nic=
for i in 1 2 3 4 5 6 7 8 9 10; do
	for d in /sys/class/net/*; do
		[ "${d##*/}" = lo ] || { nic=${d##*/}; break; }
	done
	[ -n "$nic" ] && break
	sleep 0.5
done
[ -n "$nic" ] || { say "no network interface: $(ls /sys/class/net)"; exit 1; }
ip link set lo up
ip link set "$nic" up
ip addr add 10.0.2.15/24 dev "$nic"
ip route add default via 10.0.2.2

# The guest shares the host's root: make root's login shell dash so each SSH command does not source the
# host root's bash rc files (pyenv and all: seconds per command under TCG).
sed 's#^\(root:[^:]*:0:0:[^:]*:[^:]*:\).*$#\1/bin/sh#' /etc/passwd > /run/harness-passwd
mount --bind /run/harness-passwd /etc/passwd
# Key-only login, but sshd (without PAM) refuses a locked account ('!' password): the guest's shadow file is one
# line of its own for root, with no password ('*': no login by password). Nothing of the host's /etc/shadow
# (password hashes) is read into the guest.
umask 077
printf 'root:*:1:0:99999:7:::\n' > /run/harness-shadow
umask 022
mount --bind /run/harness-shadow /etc/shadow

mkdir -p /run/sshd
chmod 0755 /run/sshd
say "starting sshd on 10.0.2.15:22"
exec /usr/sbin/sshd -D -e -f "$sshdir/sshd_config"
