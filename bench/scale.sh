#!/bin/bash
# scale.sh [STEPS...] -- build a Dockerfile of N RUN steps (default 10 100 1000) on the busybox base:
# cold time, per-step overhead, warm no-op time, peak RSS of lbuild, layers in the image.
# Past 200 lower layers lbuild flattens the bottom of the chain (chunks of 100, cached), so
# 1,000 steps work although the kernel stacks at most 500 lowers (Docker, buildah stop at 128).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
steps=("${@:-10 100 1000}")
[ $# -eq 0 ] && steps=(10 100 1000)
work=$(mktemp -d /var/tmp/lbuild-scale.XXXXXX)
(cd "$repo" && npm run build --silent)
r=$work/rootfs; mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev,var}
cp /bin/busybox "$r/bin/"; chroot "$r" /bin/busybox --install -s
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$r/etc/passwd"; tar --numeric-owner -C "$r" -cf "$work/bb.tar" .
echo "| steps | cold build | per step | warm no-op | peak RSS | layers |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
for n in "${steps[@]}"; do
  root=$work/store-$n; ctx=$work/ctx-$n; mkdir -p "$ctx"
  L=(node "$repo/bin/lbuild.js" --root "$root")
  "${L[@]}" import "$work/bb.tar" busybox >/dev/null
  { echo 'FROM busybox'; for i in $(seq 0 $((n - 1))); do echo "RUN echo $i > /s$((i % 10))"; done; } > "$ctx/Dockerfile"
  /usr/bin/time -f '%e %M' -o "$work/t-$n" "${L[@]}" build -t "scale:$n" "$ctx" >/dev/null 2>&1
  read -r cold rss < "$work/t-$n"
  s=$(date +%s.%N); "${L[@]}" build -t "scale:$n" "$ctx" >/dev/null 2>&1; e=$(date +%s.%N)
  layers=$("${L[@]}" inspect "scale:$n" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[0]["RootFS"]["Layers"]))')
  printf '| %s | %.1f s | %.0f ms | %.2f s | %s MB | %s |\n' "$n" "$cold" "$(echo "$cold * 1000 / $n" | bc -l)" "$(echo "$e - $s" | bc)" "$((rss / 1024))" "$layers"
done
rm -rf "$work"
