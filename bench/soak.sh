#!/bin/bash
# soak.sh [N] [SEED] -- seeded crash-safety soak (not run in CI). One store on a small tmpfs
# (SOAK_DISK_MB, default 400: some builds fill it), N builds (default 50): each is SIGKILLed,
# SIGINTed at a random moment or left to finish, and every fifth one also writes 300 MB (a full
# disk); meanwhile a second loop runs `prune` and `prune --all` against the same store. Then a
# final build must succeed, `fsck` must accept the store, every surviving image must save (every
# blob re-hashed) and run, and no mount or temp file may be left. The same SEED gives the same
# sequence of faults. Prints the figures.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-50}
RANDOM=${2:-1}
seed=${2:-1}
work=$(mktemp -d /var/tmp/lbuild-soak.XXXXXX)
root=$work/store
mkdir -p "$root"
mount -t tmpfs -o "size=${SOAK_DISK_MB:-400}m" tmpfs "$root"
L=(node "$repo/bin/lbuild.js" --root "$root")
cleanup() { touch "$work/stop"; wait 2>/dev/null; grep -o " $root[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l; }
trap cleanup EXIT

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
ARG FILL=0
COPY src /src
RUN echo $SEED > /seed && head -c 3000000 /dev/urandom > /blob-a && sleep 0.3
RUN cat /src/* > /all && sleep 0.3
RUN if [ "$FILL" != 0 ]; then head -c 300000000 /dev/zero > /fill; fi
WORKDIR /app
RUN head -c 1000000 /dev/urandom > /app/b && rm /blob-a
DF

( i=0; while [ ! -f "$work/stop" ]; do i=$((i + 1)); if [ $((i % 4)) = 0 ]; then "${L[@]}" prune -f --all >/dev/null 2>&1; else "${L[@]}" prune -f >/dev/null 2>&1; fi; sleep 0.7; done ) &
pruner=$!

killed=0; interrupted=0; finished=0; failed=0; fills=0; nospace=0
start=$(date +%s)
for i in $(seq 1 "$n"); do
  fill=0; [ $((i % 5)) = 0 ] && fill=1 && fills=$((fills + 1))
  "${L[@]}" build --progress plain --build-arg SEED=$((i % 7)) --build-arg FILL=$fill -t "soak:$i" "$ctx" > "$work/build-$i.log" 2>&1 &
  pid=$!
  sleep "$((RANDOM % 2)).$((RANDOM % 10))"
  case $((RANDOM % 3)) in
    0) kill -KILL "$pid" 2>/dev/null && killed=$((killed + 1)) ;;
    1) kill -INT "$pid" 2>/dev/null && interrupted=$((interrupted + 1)) ;;
    *) : ;;
  esac
  if wait "$pid"; then finished=$((finished + 1)); else failed=$((failed + 1)); fi
  grep -q "no space left" "$work/build-$i.log" && nospace=$((nospace + 1))
done
touch "$work/stop"; wait "$pruner"
final=ok
"${L[@]}" build --build-arg SEED=99 -t soak:final "$ctx" > "$work/final.log" 2>&1 || final=FAILED
"${L[@]}" fsck > "$work/fsck.log" 2>&1; fsck_rc=$?
images=0; verified=0
for img in $("${L[@]}" images | awk 'NR > 1 && $1 != "<none>" {print $1 ":" $2}'); do
  images=$((images + 1))
  "${L[@]}" save "$img" -o /dev/null >> "$work/verify.log" 2>&1 && "${L[@]}" run "$img" true >> "$work/verify.log" 2>&1 && verified=$((verified + 1))
done
mounts=$(grep " $root" /proc/mounts | grep -vc "^tmpfs $root " || true)
leftover=$(ls "$root/tmp" | wc -l)
echo "soak (seed $seed): $n builds in $(( $(date +%s) - start ))s: $killed SIGKILLed, $interrupted SIGINTed, $finished finished, $failed ended non-zero; $fills filled the disk ($nospace reported no space)"
echo "soak: final build $final; fsck exit $fsck_rc ($(tail -1 "$work/fsck.log")); images verified (save + run): $verified of $images; mounts left: $mounts; temp entries left: $leftover"
echo "soak: logs in $work"
[ "$final" = ok ] && [ "$fsck_rc" = 0 ] && [ "$mounts" = 0 ] && [ "$verified" = "$images" ]
