#!/bin/busybox sh
# shellcheck shell=dash
# SPDX-License-Identifier: GPL-2.0
# /init of the matrix's initramfs (busybox): loads the modules that reach the shared file
# systems (virtio-9p), mounts the guest root read-only with tmpfs where it is written, the
# kernel's own modules, the work tree and the results directory, and hands over to guest.sh.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() {
	echo "wsaudit-init: $*"
	echo b >/proc/sysrq-trigger
}
# In dependency order (made so by matrix.sh from the kernel's modules.dep).
for m in $(cat /modules.order); do
	insmod "/modules/$m" || echo "wsaudit-init: insmod $m failed"
done
o=trans=virtio,version=9p2000.L,msize=262144
mkdir -p /newroot
mount -t 9p -o ro,$o,cache=loose root /newroot || fail "cannot mount the guest root"
for d in tmp run var/tmp var/lib root; do
	mount -t tmpfs tmpfs "/newroot/$d" || fail "cannot mount tmpfs on /$d"
done
mount -t 9p -o ro,$o modules /newroot/usr/lib/modules || fail "cannot mount the modules"
mount -t 9p -o ro,$o wsaudit /newroot/wsaudit || fail "cannot mount the work tree"
mount -t 9p -o $o results /newroot/results || fail "cannot mount the results directory"
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /bin/bash /wsaudit/tests/kernels/guest.sh
