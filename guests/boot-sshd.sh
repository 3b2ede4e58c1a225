#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs as root inside a fresh guest (vng --exec): network up, then the run's own sshd in the foreground.
# $1: the run's ssh directory on the host (read-only in the guest): sshd_config, host key, authorized_keys.
set -eu
# This file lives on the host (in the checkout) and the host's paths are hidden below: run from a copy.
if [ "${HARNESS_BOOT_COPY:-}" != 1 ]; then
	cp "$0" /run/harness-boot.sh
	HARNESS_BOOT_COPY=1 exec /bin/sh /run/harness-boot.sh "$@"
fi
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

# The guest sees only what a run needs. virtme shares the host's whole root (read-only, over 9p, with the
# harness user's rights): a patch under test could print any of it to the console log. Keep the system
# directories; hide every other top-level directory (/root, /home, the checkout, the harness cache with other
# runs' keys, /var, /opt, ...) under an empty read-only tmpfs, and the secrets /etc holds. The run's own key
# directory is put back at its host path, read-only.
mkdir -p /run/harness-ssh
mount --bind "$sshdir" /run/harness-ssh
mount -o remount,bind,ro /run/harness-ssh
hide() { mount -t tmpfs -o ro,nosuid,nodev,noexec,size=4k,mode=0755 harness-hidden "$1"; }
for d in /*; do
	case "${d#/}" in
	bin|sbin|lib|lib32|lib64|libx32|usr|etc|dev|proc|sys|run|tmp) continue ;; # /tmp: below
	esac
	if [ -L "$d" ]; then
		continue
	elif [ -d "$d" ]; then
		hide "$d" || say "could not hide $d"
	elif [ -f "$d" ]; then
		mount --bind /dev/null "$d" || say "could not hide $d"
	fi
done
# /tmp: an empty writable one. virtme lays the host's /tmp under it, and a harness cache there
# (BPF_AUDIT_HARNESS_CACHE=$(mktemp -d)) holds other runs' keys.
mount -t tmpfs -o nosuid,nodev,mode=1777 harness-tmp /tmp
# /var: an empty writable one (tools expect /var/tmp, /var/log, /var/run).
mount -t tmpfs -o nosuid,nodev,mode=0755 harness-var /var
mkdir -p /var/tmp /var/log /var/lib /var/empty
chmod 1777 /var/tmp
ln -s /run /var/run
# Secrets under /etc: shadow files (the guest's own shadow is above), host keys, private TLS keys.
for f in /etc/gshadow /etc/shadow- /etc/gshadow- /etc/security/opasswd; do
	[ -e "$f" ] && mount --bind /dev/null "$f"
done
for d in /etc/ssh /etc/ssl/private /etc/sudoers.d /etc/credstore /etc/credstore.encrypted; do
	[ -d "$d" ] && hide "$d"
done
# The run's key directory back at its own path (sshd_config names it), on a small tmpfs over the hidden tree.
case "$sshdir" in
/bin/* | /sbin/* | /lib*/* | /usr/* | /etc/* | /dev/* | /proc/* | /sys/* | /run/*) ;;
/tmp/*) # on the guest's own /tmp, which stays writable
	mkdir -p "$sshdir"
	mount --bind /run/harness-ssh "$sshdir"
	mount -o remount,bind,ro "$sshdir"
	;;
*)
	top=/$(echo "$sshdir" | cut -d/ -f2)
	mount -t tmpfs -o nosuid,nodev,mode=0755,size=64k harness-keys "$top"
	mkdir -p "$sshdir"
	mount --bind /run/harness-ssh "$sshdir"
	mount -o remount,bind,ro "$sshdir"
	mount -o remount,ro "$top"
	;;
esac

mkdir -p /run/sshd
chmod 0755 /run/sshd
say "starting sshd on 10.0.2.15:22"
exec /usr/sbin/sshd -D -e -f "$sshdir/sshd_config"
