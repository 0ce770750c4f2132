#!/bin/bash
# The README's demo: build lbuild, make a busybox base image from Debian's busybox-static, then
# build the two Dockerfiles of the "deleting a file in a later layer saves no space" lesson and
# show their histories and analyses: the image with the separate `RUN rm` is ~100 MB larger, and
# analyze names the 100 MB file, the line that added it and the line that deleted it.
set -euo pipefail
cd "$(dirname "$0")"
npm run build --silent
export LBUILD_ROOT=${LBUILD_ROOT:-/var/tmp/lbuild-demo}
L="node bin/lbuild.js"
if ! $L inspect busybox:latest >/dev/null 2>&1; then
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
fi
$L build --progress plain -t demo:separate testdata/demo/separate
$L build --progress plain -t demo:combined testdata/demo/combined
echo; echo "== lbuild history demo:separate"; $L history demo:separate
echo; echo "== lbuild history demo:combined"; $L history demo:combined
echo; echo "== lbuild analyze demo:separate"; $L analyze demo:separate
echo; echo "== lbuild analyze demo:combined"; $L analyze demo:combined
echo; $L images
