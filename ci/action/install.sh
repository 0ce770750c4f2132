#!/bin/bash
# The action's first step: what lbuild needs on the runner, then lbuild itself on PATH.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
for tool in runc:runc getfattr:attr slirp4netns:slirp4netns newuidmap:uidmap; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# the bundle is made by npm ci (prepare); a checkout that has it already needs nothing
[ -f "$here/dist/lbuild.cjs" ] || (cd "$here" && npm ci --no-audit --no-fund)
# `lbuild` on PATH for this and later steps, as npm install -g would name it
mkdir -p "$RUNNER_TEMP/lbuild-bin"
ln -sf "$here/bin/lbuild.js" "$RUNNER_TEMP/lbuild-bin/lbuild"
echo "$RUNNER_TEMP/lbuild-bin" >> "$GITHUB_PATH"
"$RUNNER_TEMP/lbuild-bin/lbuild" --version
