#!/bin/bash
# Run an external conformance suite (../shared/conformance by default) against this checkout's lbuild, on a private copy of the suite with
# the context symlinks of testdata/conformance-symlinks.txt restored. Extra args go to run.sh.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
# `npm run conformance -- DIR [run.sh args]`: DIR is the suite (default: ../shared/conformance)
suite=${CONFORMANCE_DIR:-$repo/../shared/conformance}
if [ $# -gt 0 ] && [ -d "$1" ]; then suite=$(cd "$1" && pwd); shift; fi
[ -d "$suite" ] || { echo "conformance suite not found at $suite" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -a "$suite" "$work/conformance"
chmod -R u+w "$work/conformance"
while read -r rel arrow target; do
  case "$rel" in ''|'#'*) continue ;; esac
  f="$work/conformance/cases/$rel"
  if [ -f "$f" ] && [ ! -L "$f" ] && [ "$(cat "$f")" = "$target" ]; then rm "$f"; ln -s "$target" "$f"; fi
done < "$repo/testdata/conformance-symlinks.txt"
root=${CONFORMANCE_ROOT:-$work/root}
"$work/conformance/run.sh" --lbuild "node $repo/bin/lbuild.js" --root "$root" "$@"
