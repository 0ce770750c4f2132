#!/bin/bash
# scale.sh [steps N...] [files N...] -- how lbuild scales, on the busybox base.
#   steps: a Dockerfile of N RUN steps (default 10 100 1000): cold time, per-step overhead, warm
#          no-op time, peak RSS, layers. Past 200 lower layers lbuild flattens the bottom of the
#          chain (chunks of 100, cached), so 1,000 steps work although the kernel stacks at most
#          500 lowers (Docker, buildah stop at 128).
#   files: COPY of a context of N thousand files (default 5 50 200; bench/gen-contexts.sh ctx-Nk):
#          cold time, warm no-op time (median of 3) and its cost per 1,000 files, one file edited
#          (median of 3: the incremental COPY), peak RSS.
# No argument: both. Contexts of the files mode are kept in $BENCH_DIR (default /var/tmp/lbuild-scale).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
keep=${BENCH_DIR:-/var/tmp/lbuild-scale}
work=$(mktemp -d /var/tmp/lbuild-scale-run.XXXXXX)
trap 'rm -rf "$work"' EXIT
(cd "$repo" && npm run build --silent)
r=$work/rootfs; mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev,var}
cp /bin/busybox "$r/bin/"; chroot "$r" /bin/busybox --install -s
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$r/etc/passwd"; tar --numeric-owner -C "$r" -cf "$work/bb.tar" .

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
timed() {  # timed OUT CMD...: seconds and peak RSS (KB) of one run into OUT
  /usr/bin/time -f '%e %M' -o "$1" "${@:2}" >/dev/null 2>&1
}

steps_mode() {
  echo "| steps | cold build | per step | warm no-op | peak RSS | layers |"
  echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
  for n in "$@"; do
    local root=$work/store-$n ctx=$work/ctx-$n cold rss warm layers
    mkdir -p "$ctx"
    local L=(node "$repo/bin/lbuild.js" --root "$root")
    "${L[@]}" import "$work/bb.tar" busybox >/dev/null
    { echo 'FROM busybox'; for i in $(seq 0 $((n - 1))); do echo "RUN echo $i > /s$((i % 10))"; done; } > "$ctx/Dockerfile"
    timed "$work/t" "${L[@]}" build -t "scale:$n" "$ctx"; read -r cold rss < "$work/t"
    timed "$work/t" "${L[@]}" build -t "scale:$n" "$ctx"; read -r warm _ < "$work/t"
    layers=$("${L[@]}" inspect "scale:$n" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[0]["RootFS"]["Layers"]))')
    printf '| %s | %.1f s | %.0f ms | %.2f s | %s MB | %s |\n' "$n" "$cold" "$(echo "$cold * 1000 / $n" | bc -l)" "$warm" "$((rss / 1024))" "$layers"
    rm -rf "$root"
  done
}

files_mode() {
  echo "| files | cold build | warm no-op (median of 3) | warm per 1,000 files | one file edited (median of 3) | peak RSS cold / warm / edit |"
  echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
  for k in "$@"; do
    local root=$work/store-files-$k ctx=$keep/ctx-${k}k cold rss warm wrss t
    bash "$repo/bench/gen-contexts.sh" "$keep" "ctx-${k}k"
    local L=(node "$repo/bin/lbuild.js" --root "$root")
    "${L[@]}" import "$work/bb.tar" busybox:latest >/dev/null
    timed "$work/t" "${L[@]}" build -t "files:$k" "$ctx"; read -r cold rss < "$work/t"
    : > "$work/w"; wrss=0
    for _ in 1 2 3; do
      timed "$work/t" "${L[@]}" build -t "files:$k" "$ctx"; read -r t m < "$work/t"
      echo "$t" >> "$work/w"; [ "$m" -gt "$wrss" ] && wrss=$m
    done
    warm=$(median < "$work/w")
    : > "$work/e"; erss=0
    local first; first=$(find "$ctx" -type f -path '*/src/*' -name '*.ts' | sort | awk 'NR == 1')
    for i in 1 2 3; do
      printf 'edit %s\n' "$i" >> "$first"
      timed "$work/t" "${L[@]}" build -t "files:$k" "$ctx"; read -r t m < "$work/t"
      echo "$t" >> "$work/e"; [ "$m" -gt "$erss" ] && erss=$m
    done
    edit=$(median < "$work/e")
    printf '| %sk | %.1f s | %.2f s | %.1f ms | %.2f s | %s / %s / %s MB |\n' "$k" "$cold" "$warm" "$(echo "$warm * 1000 / $k" | bc -l)" "$edit" "$((rss / 1024))" "$((wrss / 1024))" "$((erss / 1024))"
    rm -rf "$root"
  done
}

if [ $# -eq 0 ]; then steps_mode 10 100 1000; echo; files_mode 5 50 200; exit 0; fi
mode=$1; shift
case $mode in
  steps) if [ $# -gt 0 ]; then steps_mode "$@"; else steps_mode 10 100 1000; fi ;;
  files) if [ $# -gt 0 ]; then files_mode "$@"; else files_mode 5 50 200; fi ;;
  *) echo "usage: scale.sh [steps N...] [files N...]" >&2; exit 2 ;;
esac
