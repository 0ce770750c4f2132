#!/bin/bash
# cache.sh -- warm no-op and one-file-edit rebuilds of a 5,000-file and a 50,000-file context,
# lbuild side by side with buildah (bud --layers, overlay, runc) and, where dockerd can be
# started, BuildKit (DOCKER_BUILDKIT=1 docker build). Medians of RUNS runs per phase, tools in
# alternation. Writes bench/RESULTS-cache.md. Needs root, buildah, docker.io (optional),
# busybox-static, hyperfine. Traffic stays on this machine (--network none, no registry).
# Usage: bench/cache.sh [RUNS]   (default 5)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
work=${BENCH_DIR:-/var/tmp/lbuild-cache-bench}
mkdir -p "$work"
export LBUILD_ROOT=$work/lbuild-store
LB="node $repo/bin/lbuild.js"
DOCKER=/usr/bin/docker
(cd "$repo" && npm run build --silent)
bash "$repo/bench/gen-contexts.sh" "$work"

# --- the busybox base, imported into each tool ---
if [ ! -f "$work/busybox.tar" ]; then
  r=$work/rootfs; rm -rf "$r"; mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev,var}
  cp /bin/busybox "$r/bin/"; chroot "$r" /bin/busybox --install -s
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$r/etc/passwd"; printf 'root:x:0:\n' > "$r/etc/group"
  tar --numeric-owner --sort=name -C "$r" -cf "$work/busybox.tar" .
fi
$LB inspect busybox:latest >/dev/null 2>&1 || $LB import "$work/busybox.tar" busybox:latest --change 'CMD ["/bin/sh"]' >/dev/null
$LB save busybox:latest -o "$work/busybox-image.tar" --format docker

tools=(lbuild)
if command -v buildah >/dev/null; then
  buildah --storage-driver overlay images -q localhost/busybox:latest >/dev/null 2>&1 ||
    skopeo copy -q "docker-archive:$work/busybox-image.tar" containers-storage:localhost/busybox:latest
  tools+=(buildah)
fi
if [ -x "$DOCKER" ]; then
  if ! $DOCKER version >/dev/null 2>&1; then
    mkdir -p /var/log/lbuild-bench
    setsid dockerd --storage-driver=overlay2 --bridge=none --iptables=false --ip-forward=false >> /var/log/lbuild-bench/dockerd.log 2>&1 < /dev/null &
    for _ in $(seq 1 60); do $DOCKER version >/dev/null 2>&1 && break; sleep 0.5; done
  fi
  if $DOCKER version >/dev/null 2>&1; then
    $DOCKER load -q -i "$work/busybox-image.tar" >/dev/null
    tools+=(buildkit)
  fi
fi

build() {  # build TOOL CTX
  local dir=$work/$2
  case $1 in
    lbuild) $LB build --progress plain --network none -t "bench/$2:lbuild" "$dir" ;;
    buildah) buildah --storage-driver overlay bud --runtime runc --isolation oci --network none --layers --pull=false -t "bench/$2:buildah" "$dir" ;;
    buildkit) DOCKER_BUILDKIT=1 $DOCKER build --network=none --progress=plain -t "bench/$2:buildkit" "$dir" ;;
  esac
}
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

declare -A result
for ctx in ctx-5k ctx-50k; do
  for t in "${tools[@]}"; do build "$t" "$ctx" > "$work/$t-$ctx-cold.log" 2>&1; done   # warm the caches
  for phase in noop edit; do
    for t in "${tools[@]}"; do : > "$work/$t-$ctx-$phase.times"; done
    for i in $(seq 1 "$runs"); do
      for t in "${tools[@]}"; do
        if [ "$phase" = edit ]; then
          f=$work/$ctx/src/mod0007/file0003.ts
          printf '// edit %s %s %s\n' "$t" "$i" "$(date +%s%N)" >> "$f"
        fi
        s=$(now); build "$t" "$ctx" > "$work/$t-$ctx-$phase.log" 2>&1; e=$(now)
        echo "$e - $s" | bc >> "$work/$t-$ctx-$phase.times"
      done
    done
    for t in "${tools[@]}"; do
      result[$t,$ctx,$phase]=$(median < "$work/$t-$ctx-$phase.times")
      result[$t,$ctx,$phase,range]=$(sort -g "$work/$t-$ctx-$phase.times" | awk 'NR==1{min=$1} {max=$1} END {printf "%.2f-%.2f", min, max}')
    done
  done
done

{
  echo "# Cache benchmark: warm rebuilds"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r); $(date -u +%Y-%m-%d)."
  echo "Versions: lbuild $(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo '?'), node $(node --version)$(command -v buildah >/dev/null && echo ", buildah $(buildah --version | awk '{print $3}')")$($DOCKER version --format ' , docker {{.Server.Version}}' 2>/dev/null || true)."
  echo "Each cell: median of $runs runs (min-max), seconds, tools run in alternation. Dockerfile: COPY package.json, RUN, COPY src/ (the context), RUN."
  echo
  echo "| context | phase | $(printf '%s | ' "${tools[@]}")lbuild / best peer |"
  echo "| --- | --- |$(for _ in "${tools[@]}"; do printf ' ---: |'; done) ---: |"
  for ctx in ctx-5k ctx-50k; do
    for phase in noop edit; do
      row="| $ctx | $([ $phase = noop ] && echo 'warm no-op rebuild' || echo 'one file edited') |"
      best=""
      for t in "${tools[@]}"; do
        row+=" ${result[$t,$ctx,$phase]} (${result[$t,$ctx,$phase,range]}) |"
        if [ "$t" != lbuild ]; then
          v=${result[$t,$ctx,$phase]}
          if [ -z "$best" ] || [ "$(echo "$v < $best" | bc)" = 1 ]; then best=$v; fi
        fi
      done
      if [ -n "$best" ]; then row+=" $(echo "scale=3; ${result[lbuild,$ctx,$phase]} / $best" | bc) |"; else row+=" n/a |"; fi
      echo "$row"
    done
  done
} > "$repo/bench/RESULTS-cache.md"
cat "$repo/bench/RESULTS-cache.md"
