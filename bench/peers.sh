#!/bin/bash
# peers.sh -- issue 9's side-by-side benchmark: lbuild against buildah (bud --layers, overlay,
# runc) and BuildKit (DOCKER_BUILDKIT=1 docker build on dockerd 20.10), same contexts, same base
# images, tools run in alternation within every run:
#   app        cold (caches wiped) / warm no-op / one source file edited
#   manyfiles  cold / warm no-op
#   steps150   cold, once (150 RUN steps: the peers stop near 128 layers)
#   twostage   cold: two independent stages of `RUN sleep 3` and a final stage copying from both
#              (a tool that builds independent stages in parallel takes ~3 s, one after the other ~6 s)
# Reports medians, min-max, the ratio lbuild / best peer per run pair, and lbuild's peak RSS, into
# bench/RESULTS-peers.md (raw per-run figures included). Needs root, buildah, docker.io,
# debootstrap, busybox-static, skopeo, python3, bc. The debian base comes from debootstrap
# (--variant=minbase bookworm) against the mirror apt already uses; builds run --network none.
# Usage: bench/peers.sh [RUNS] [CONTEXT...]   (default 3; app manyfiles steps150 twostage)
#   PHASES="cold" bench/peers.sh 3 app: only the phases named; PREREAD=0: no context pre-read
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
shift || true
contexts=("$@")
[ ${#contexts[@]} -gt 0 ] || contexts=(app manyfiles steps150 twostage)
work=${BENCH_DIR:-/var/tmp/lbuild-peers}
export LBUILD_ROOT=$work/lbuild-store
# run as a user runs it: the file itself, so that its shebang applies (bin/lbuild.js)
LB="$repo/bin/lbuild.js"
DOCKER=/usr/bin/docker   # Debian's 20.10 client (a newer client elsewhere on PATH may want buildx)
mkdir -p "$work/base" "$work/logs"
(cd "$repo" && npm run build --silent)
bash "$repo/bench/gen-contexts.sh" "$work" app manyfiles
if [ ! -f "$work/steps150/Dockerfile" ]; then
  mkdir -p "$work/steps150"
  { echo 'FROM bench-busybox:latest'; echo 'RUN mkdir /layers && echo 1 > /layers/f001'
    for i in $(seq 2 150); do printf 'RUN echo %d > /layers/f%03d\n' "$i" "$i"; done; } > "$work/steps150/Dockerfile"
fi

if [ ! -f "$work/twostage/Dockerfile" ]; then
  mkdir -p "$work/twostage"
  cat > "$work/twostage/Dockerfile" <<'EOF'
FROM bench-busybox:latest AS left
RUN sleep 3 && echo left > /left
FROM bench-busybox:latest AS right
RUN sleep 3 && echo right > /right
FROM bench-busybox:latest
COPY --from=left /left /left
COPY --from=right /right /right
EOF
fi

# ---------- base images: one tar each, imported into lbuild, then the same bytes into the peers ----------
apt_mirror() {
  { awk '/^URIs:/ {print $2}' /etc/apt/sources.list.d/*.sources 2>/dev/null
    awk '$1=="deb" {for (i=2;i<=NF;i++) if ($i ~ /^https?:/) print $i}' /etc/apt/sources.list 2>/dev/null; } | grep -v -- -security | head -n1
}
if [ ! -f "$work/base/busybox.tar" ]; then
  r=$work/base/rootfs-busybox; rm -rf "$r"; mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev,var}
  cp /bin/busybox "$r/bin/"; chroot "$r" /bin/busybox --install -s
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$r/etc/passwd"; printf 'root:x:0:\n' > "$r/etc/group"
  tar --numeric-owner --sort=name -C "$r" -cf "$work/base/busybox.tar.tmp" . && mv "$work/base/busybox.tar.tmp" "$work/base/busybox.tar"
fi
if [ ! -f "$work/base/debian.tar" ]; then
  r=$work/base/rootfs-debian
  [ -x "$r/bin/bash" ] || debootstrap --variant=minbase bookworm "$r" "$(apt_mirror)" > "$work/logs/debootstrap.log" 2>&1
  rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/*
  : > "$r/etc/apt/sources.list"   # the mirror's name stays out of the image
  tar --numeric-owner --sort=name --xattrs -C "$r" --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' \
    -cf "$work/base/debian.tar.tmp" . && mv "$work/base/debian.tar.tmp" "$work/base/debian.tar"
fi
declare -A base_tar=([bench-busybox:latest]=busybox.tar [bench-debian:bookworm]=debian.tar)
declare -A base_cmd=([bench-busybox:latest]='CMD ["/bin/sh"]' [bench-debian:bookworm]='CMD ["bash"]')

start_dockerd() {
  $DOCKER version >/dev/null 2>&1 && return 0
  mkdir -p /var/log/lbuild-bench
  setsid dockerd --storage-driver=overlay2 --bridge=none --iptables=false --ip-forward=false >> /var/log/lbuild-bench/dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 60); do $DOCKER version >/dev/null 2>&1 && return 0; sleep 0.5; done
  return 1
}
tools=(lbuild)
command -v buildah >/dev/null && tools+=(buildah)
[ -x "$DOCKER" ] && start_dockerd && tools+=(buildkit)
for ref in "${!base_tar[@]}"; do
  $LB inspect "$ref" >/dev/null 2>&1 || $LB import "$work/base/${base_tar[$ref]}" "$ref" --change "${base_cmd[$ref]}" >/dev/null
  arch=$work/base/${base_tar[$ref]%.tar}-image.tar
  [ -f "$arch" ] || $LB save "$ref" -o "$arch" --format docker
  for t in "${tools[@]}"; do
    case $t in
      buildah) buildah --storage-driver overlay images -q "localhost/$ref" >/dev/null 2>&1 ||
                 skopeo copy -q "docker-archive:$arch" "containers-storage:localhost/$ref" ;;
      buildkit) $DOCKER image inspect "$ref" >/dev/null 2>&1 || $DOCKER load -q -i "$arch" >/dev/null ;;
    esac
  done
done

# ---------- primitives ----------
build() {  # build TOOL CTX
  local dir=$work/$2
  case $1 in
    lbuild) /usr/bin/time -f '%M' -o "$work/rss" $LB build --progress plain --network none -t "bench/$2:lbuild" "$dir" ;;
    buildah) buildah --storage-driver overlay bud --runtime runc --isolation oci --network none --layers --pull=false -t "bench/$2:buildah" "$dir" ;;
    buildkit) DOCKER_BUILDKIT=1 $DOCKER build --network=none --progress=plain -t "bench/$2:buildkit" "$dir" ;;
  esac
}
wipe() {  # every built image and all build cache go; the base images stay
  case $1 in
    lbuild) $LB rmi "bench/$2:lbuild" >/dev/null 2>&1 || true
            $LB prune -f --all >/dev/null; rm -rf "$LBUILD_ROOT/cache/stat" ;;
    buildah) buildah --storage-driver overlay rm -a >/dev/null 2>&1 || true
             buildah --storage-driver overlay rmi -f "localhost/bench/$2:buildah" >/dev/null 2>&1 || true
             buildah --storage-driver overlay rmi --prune >/dev/null 2>&1 || true ;;
    buildkit) $DOCKER image rm -f "bench/$2:buildkit" >/dev/null 2>&1 || true
              $DOCKER builder prune -af >/dev/null ;;
  esac
}
edit() { printf '// edit %s\n' "$(date +%s%N)" >> "$work/app/src/mod07/file42.js"; }
now() { date +%s.%N; }

# ---------- runs: every tool once per run, in alternation ----------
raw=$work/raw.tsv
printf 'context\tphase\trun\ttool\tseconds\tstatus\tlbuild_rss_kb\n' > "$raw"
settle() {  # until no tool is still deleting (some collect garbage in the background), then 370 s
  local a b
  sync; a=$(df --output=iused "$work" | tail -n1)
  while sleep 5; b=$(df --output=iused "$work" | tail -n1); [ "$a" != "$b" ]; do a=$b; done
  sync; sleep "${WIPE_SETTLE:-370}"
}
measure() {  # measure CTX PHASE RUN TOOL
  local ctx=$1 phase=$2 i=$3 t=$4 s e st=ok rss=-
  [ "$phase" = edit ] && edit
  # every run starts with no dirty data of the previous tool still being written back
  sync
  # and with the context in the page cache for every tool alike: this machine kind pages out
  # memory idle for 60 s (DAMON pageout), so after a settle the first tool to read the context
  # read it from disk (BuildKit's "load build context" 0.8 s first, 0.4 s after lbuild)
  # (PREREAD=0 leaves it out, to compare)
  [ "${PREREAD:-1}" = 0 ] || find "$work/$ctx" -type f -exec cat {} + > /dev/null
  s=$(now)
  if [ "$t" = lbuild ]; then export LBUILD_TRACE=1; fi   # phase timings into the log
  build "$t" "$ctx" > "$work/logs/$t-$ctx-$phase-$i.log" 2>&1 || st=FAIL
  unset LBUILD_TRACE
  e=$(now)
  [ "$t" = lbuild ] && rss=$(tail -n1 "$work/rss")
  printf '%s\t%s\t%s\t%s\t%.3f\t%s\t%s\n' "$ctx" "$phase" "$i" "$t" "$(echo "$e - $s" | bc)" "$st" "$rss" | tee -a "$raw"
}
for ctx in "${contexts[@]}"; do
  case $ctx in app) phases=(cold warm edit) ;; steps150|twostage) phases=(cold) ;; *) phases=(cold warm) ;; esac
  # PHASES=cold: only those phases (of the ones the context has)
  if [ -n "${PHASES:-}" ]; then
    keep=(); for p in "${phases[@]}"; do [[ " $PHASES " == *" $p "* ]] && keep+=("$p"); done; phases=("${keep[@]}")
  fi
  for phase in "${phases[@]}"; do
    n=$runs; [ "$ctx" = steps150 ] && n=1
    # a warm or edit phase starts from a built cache
    if [ "$phase" != cold ]; then for t in "${tools[@]}"; do build "$t" "$ctx" > /dev/null 2>&1 || true; done; fi
    for i in $(seq 1 "$n"); do
      if [ "$phase" = cold ]; then
        # wipe every tool, then wait out ext4's inode-reuse delay: a filesystem without a journal
        # (as here) skips inodes freed in the last 60 s, or 360 s if their inode-table block is
        # dirty — and the next build's first new inodes in that block dirty it again, so a sync
        # and 65 s were not enough (bench/RESULTS.md, session 11: a cold COPY of 5,000 files
        # took 2.7-4.3 s instead of 0.4 s). Creating files then spends most of its time in that
        # scan (perf: recently_deleted), penalising whichever tool runs first after a wipe.
        for t in "${tools[@]}"; do wipe "$t" "$ctx"; done
        settle
      fi
      # lbuild and BuildKit alternate first; buildah runs last, since its build deletes its
      # build container (thousands of inodes) at the end, which would tax the next tool's build
      order=()
      for t in "${tools[@]}"; do [ "$t" = buildah ] || order+=("$t"); done
      rot=()
      for k in $(seq 0 $((${#order[@]} - 1))); do rot+=("${order[$(((i + k) % ${#order[@]}))]}"); done
      for t in "${tools[@]}"; do [ "$t" = buildah ] && rot+=(buildah); done
      for t in "${rot[@]}"; do
        measure "$ctx" "$phase" "$i" "$t"
      done
    done
  done
done

# ---------- report ----------
python3 - "$raw" "$repo/bench/RESULTS-peers.md" "${tools[*]}" <<PY
import csv, statistics, sys
raw, out, tools = sys.argv[1], sys.argv[2], sys.argv[3].split()
rows = list(csv.DictReader(open(raw), delimiter='\t'))
def cell(v): return f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})" if v else "n/a"
lines = ["# Peers side by side (bench/peers.sh)", "",
         "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, kernel $(uname -r), $(. /etc/os-release; echo "$PRETTY_NAME"); $(date -u +%Y-%m-%d).",
         "Versions: lbuild $(cd "$repo" && git rev-parse --short HEAD), node $(node --version), buildah $(buildah --version 2>/dev/null | awk '{print $3}'), docker $($DOCKER version --format '{{.Server.Version}}' 2>/dev/null || echo n/a), runc $(runc --version | awk 'NR==1 {print $3}').",
         "Cells: median (min-max) seconds of the runs; tools alternate within each run. Ratio: lbuild / fastest",
         "peer of the same run, median (min-max) over runs. FAIL: the build failed (see logs).", "",
         "| context | phase | " + " | ".join(tools) + " | lbuild / best peer | lbuild peak RSS |",
         "| --- | --- |" + " ---: |" * (len(tools) + 2)]
keys = []
for r in rows:
    k = (r["context"], r["phase"])
    if k not in keys: keys.append(k)
for ctx, phase in keys:
    sel = [r for r in rows if r["context"] == ctx and r["phase"] == phase]
    cells, ratios = [], []
    for t in tools:
        ok = [float(r["seconds"]) for r in sel if r["tool"] == t and r["status"] == "ok"]
        failed = any(r["tool"] == t and r["status"] != "ok" for r in sel)
        cells.append("FAIL" if failed and not ok else cell(ok))
    for run in sorted({r["run"] for r in sel}):
        per = {r["tool"]: float(r["seconds"]) for r in sel if r["run"] == run and r["status"] == "ok"}
        peers = [v for t, v in per.items() if t != "lbuild"]
        if "lbuild" in per and peers: ratios.append(per["lbuild"] / min(peers))
    ratio = f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})" if ratios else "n/a (no peer finished)"
    rss = [int(r["lbuild_rss_kb"]) for r in sel if r["tool"] == "lbuild" and r["lbuild_rss_kb"] not in ("-", "")]
    lines.append(f"| {ctx} | {phase} | " + " | ".join(cells) + f" | {ratio} | {max(rss) // 1024 if rss else 0} MB |")
lines += ["", "Raw runs:", "", "| context | phase | run | tool | seconds | status | lbuild RSS |", "| --- | --- | ---: | --- | ---: | --- | ---: |"]
lines += [f"| {r['context']} | {r['phase']} | {r['run']} | {r['tool']} | {r['seconds']} | {r['status']} | {r['lbuild_rss_kb']} |" for r in rows]
open(out, "w").write("\n".join(lines) + "\n")
PY
cat "$repo/bench/RESULTS-peers.md"
