#!/bin/bash
# The action's build step: one lbuild build from the action's inputs (LBUILD_* variables). The
# cache report lands in $GITHUB_STEP_SUMMARY (lbuild appends it), the JSON and HTML reports in
# $RUNNER_TEMP, the image ID and pushed digest in $GITHUB_OUTPUT.
set -euo pipefail
args=(build --progress plain --report "$RUNNER_TEMP/lbuild-report.json" --report-html "$RUNNER_TEMP/lbuild-report.html" --metadata-file "$RUNNER_TEMP/lbuild-metadata.json")
[ -n "${LBUILD_FILE:-}" ] && args+=(-f "$LBUILD_FILE")
while IFS= read -r t; do [ -n "$t" ] && args+=(-t "$t"); done < <(printf '%s\n' "${LBUILD_TAGS:-}" | tr ',' '\n' | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
while IFS= read -r a; do [ -n "$a" ] && args+=(--build-arg "$a"); done <<< "${LBUILD_BUILD_ARGS:-}"
if [ -n "${LBUILD_CACHE_REF:-}" ]; then
  args+=(--cache-from "type=registry,ref=$LBUILD_CACHE_REF" --cache-to "type=registry,ref=$LBUILD_CACHE_REF,mode=max")
fi
[ "${LBUILD_PUSH:-false}" = true ] && args+=(--push)
args+=("${LBUILD_CONTEXT:-.}")
# lbuild builds rootless when not root; a hosted runner's user has sudo, which needs no user
# namespace (the user's docker login is kept: DOCKER_CONFIG points at it)
run=(lbuild)
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then
  run=(sudo -E env "PATH=$PATH" "DOCKER_CONFIG=${DOCKER_CONFIG:-$HOME/.docker}" lbuild)
fi
id=$("${run[@]}" "${args[@]}")
echo "image-id=$id" >> "$GITHUB_OUTPUT"
digest=$(sed -n 's/.*"containerimage.digest": *"\([^"]*\)".*/\1/p' "$RUNNER_TEMP/lbuild-metadata.json")
echo "digest=$digest" >> "$GITHUB_OUTPUT"
