#!/usr/bin/env bash
# startup.sh [N] -- median wall time of N runs (default 21) of short commands: what every lbuild
# command pays before its work, run as a user runs it (the file, by its shebang). LBUILD_BIN picks
# another build of lbuild to compare with.
set -euo pipefail
n=${1:-21}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${LBUILD_BIN:-$here/bin/lbuild.js}
root=$(mktemp -d /tmp/lbuild-startup.XXXXXX)
trap 'rm -rf "$root"' EXIT
median() { # command... -> median seconds of n runs
  local times=()
  for _ in $(seq "$n"); do
    local t0 t1
    t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N)
    times+=($(( (t1 - t0) / 1000000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (n + 1) / 2 ))p"
}
printf '| command | median ms (%s runs) |\n| --- | ---: |\n' "$n"
printf '| node -e 1 | %s |\n' "$(median node -e 1)"
printf '| lbuild version | %s |\n' "$(median "$bin" version)"
printf '| lbuild images (empty store) | %s |\n' "$(median "$bin" --root "$root" images)"
printf '| lbuild --help | %s |\n' "$(median "$bin" --help)"
printf '| lbuild lint (testdata/demo) | %s |\n' "$(median "$bin" lint "$here/testdata/demo/combined/Dockerfile")"
