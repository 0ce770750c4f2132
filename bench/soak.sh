#!/bin/bash
# soak.sh [N] -- crash-safety soak test (not run in CI): N builds (default 50) on one store, each
# interrupted at a random moment by SIGKILL or SIGINT, or left to finish, while a second loop runs
# `lbuild prune` against the same store. Then a final build must succeed, `lbuild fsck` must
# accept the store, and no overlay mount may be left. Prints the figures.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-50}
work=$(mktemp -d /var/tmp/lbuild-soak.XXXXXX)
root=$work/store
L=(node "$repo/bin/lbuild.js" --root "$root")
trap 'touch "$work/stop"' EXIT

r=$work/rootfs; mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev,var}
cp /bin/busybox "$r/bin/"; chroot "$r" /bin/busybox --install -s
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$r/etc/passwd"; printf 'root:x:0:\n' > "$r/etc/group"
tar --numeric-owner --sort=name -C "$r" -cf "$work/busybox.tar" .
"${L[@]}" import "$work/busybox.tar" busybox:latest >/dev/null

ctx=$work/ctx; mkdir -p "$ctx/src"
for i in $(seq 1 200); do head -c 4096 /dev/urandom > "$ctx/src/f$i"; done
cat > "$ctx/Dockerfile" <<'DF'
FROM busybox
ARG SEED=0
COPY src /src
RUN echo $SEED > /seed && head -c 3000000 /dev/urandom > /blob-a && sleep 0.3
RUN cat /src/* > /all && sleep 0.3
WORKDIR /app
RUN head -c 1000000 /dev/urandom > /app/b && rm /blob-a
DF

( while [ ! -f "$work/stop" ]; do "${L[@]}" prune >/dev/null 2>&1; sleep 0.7; done ) &
pruner=$!

killed=0; interrupted=0; finished=0; failed=0
start=$(date +%s)
for i in $(seq 1 "$n"); do
  "${L[@]}" build --progress plain --build-arg SEED=$((i % 7)) -t "soak:$i" "$ctx" > "$work/build-$i.log" 2>&1 &
  pid=$!
  sleep "$((RANDOM % 2)).$((RANDOM % 10))"
  case $((RANDOM % 3)) in
    0) kill -KILL "$pid" 2>/dev/null && killed=$((killed + 1)) ;;
    1) kill -INT "$pid" 2>/dev/null && interrupted=$((interrupted + 1)) ;;
    *) : ;;
  esac
  if wait "$pid"; then finished=$((finished + 1)); else failed=$((failed + 1)); fi
done
touch "$work/stop"; wait "$pruner"
final=ok
"${L[@]}" build --build-arg SEED=99 -t soak:final "$ctx" > "$work/final.log" 2>&1 || final=FAILED
"${L[@]}" fsck > "$work/fsck.log" 2>&1; fsck_rc=$?
mounts=$(grep -c " $root" /proc/mounts || true)
leftover=$(ls "$root/tmp" | wc -l)
echo "soak: $n builds in $(( $(date +%s) - start ))s: $killed SIGKILLed, $interrupted SIGINTed, $finished finished, $failed ended non-zero (killed or interrupted)"
echo "soak: final build $final; fsck exit $fsck_rc ($(tail -1 "$work/fsck.log")); overlay mounts left: $mounts; temp entries left: $leftover"
echo "soak: logs in $work"
[ "$final" = ok ] && [ "$fsck_rc" = 0 ] && [ "$mounts" = 0 ]
