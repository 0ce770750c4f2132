#!/bin/bash
# gen-contexts.sh OUT_DIR -- deterministic build contexts for bench/cache.sh:
#   ctx-5k   COPY of 5,000 files (100 dirs x 50 files, 1-8 KiB each) + a RUN reading them
#   ctx-50k  the same with 50,000 files (500 dirs x 100 files)
# The same inputs always give the same bytes (content from a counter, no randomness).
set -euo pipefail
out=${1:?usage: gen-contexts.sh OUT_DIR}
make_ctx() {  # make_ctx NAME DIRS FILES_PER_DIR
  local dir=$out/$1 dirs=$2 per=$3
  [ -f "$dir/.complete" ] && return 0
  rm -rf "$dir"; mkdir -p "$dir/src"
  python3 - "$dir/src" "$dirs" "$per" <<'PY'
import os, sys
root, dirs, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for d in range(dirs):
    p = os.path.join(root, f"mod{d:04d}")
    os.makedirs(p, exist_ok=True)
    for f in range(per):
        n = d * per + f
        size = 1024 * (1 + n % 8)
        line = (f"// file {n} of module {d}: " + "x" * 60 + "\n").encode()
        with open(os.path.join(p, f"file{f:04d}.ts"), "wb") as fh:
            fh.write((line * (size // len(line) + 1))[:size])
PY
  printf 'FROM busybox:latest\nCOPY package.json /app/\nRUN echo installing > /app/installed\nCOPY src/ /app/src/\nRUN find /app/src -type f | wc -l > /app/count\n' > "$dir/Dockerfile"
  printf '{"name":"bench","version":"1.0.0"}\n' > "$dir/package.json"
  touch "$dir/.complete"
}
make_ctx ctx-5k 100 50
make_ctx ctx-50k 500 100
