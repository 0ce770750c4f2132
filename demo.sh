#!/bin/bash
# The README's demo: build lbuild, make a busybox base image from Debian's busybox-static and show it.
set -euo pipefail
cd "$(dirname "$0")"
npm run build --silent
export LBUILD_ROOT=${LBUILD_ROOT:-/var/tmp/lbuild-demo}
L="node bin/lbuild.js"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev,var}
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
chroot "$root" /bin/busybox --install -s
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
tar --numeric-owner --sort=name -C "$root" -cf "$work/busybox.tar" .
$L import "$work/busybox.tar" busybox:latest --change 'CMD ["/bin/sh"]'
$L images
$L history busybox:latest
