#!/bin/bash
# gen-contexts.sh OUT_DIR [NAME...] -- deterministic build contexts for the benchmarks.
# The same inputs always give the same bytes and mtimes (content from a counter, no randomness).
#   ctx-5k, ctx-50k, ctx-200k  COPY of 5,000 / 50,000 / 200,000 files (50-2,000 dirs, 1-8 KiB each)
#                              + a RUN reading them (bench/cache.sh, file-count scaling)
#   app        issue 9's node-style app: COPY package.json, a RUN making 2,000 files + 20 MiB,
#              COPY . of 5,001 source files (200-1,700 bytes), metadata; FROM the debian base
#   manyfiles  issue 9's COPY . of 50,000 files (100 dirs x 500, 512-7,679 bytes, ~207 MB); FROM busybox
# Default NAMEs: ctx-5k ctx-50k. A finished context has a .complete marker and is not rewritten
# (the marker itself is excluded by .dockerignore so it never enters an image).
set -euo pipefail
out=${1:?usage: gen-contexts.sh OUT_DIR [NAME...]}
shift
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(ctx-5k ctx-50k)

# files ROOT DIRS PER PREFIX EXT MIN SPAN WIDTH: DIRS x PER files, sizes MIN..MIN+SPAN-1, dir numbers WIDTH wide
files() {
  python3 - "$@" <<'PY'
import os, sys
root, dirs, per, prefix, ext, lo, span, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
fw = 4 if width == 4 else max(2, len(str(per - 1)))
for d in range(dirs):
    p = os.path.join(root, f"{prefix}{d:0{width}d}")
    os.makedirs(p, exist_ok=True)
    for f in range(per):
        n = d * per + f
        size = lo + (n * 2654435761) % span
        line = (f"// file {n} of {prefix}{d}: the quick brown fox jumps over the lazy dog {n * 7919 % 10007}\n").encode()
        with open(os.path.join(p, f"file{f:0{fw}d}{ext}"), "wb") as fh:
            fh.write((line * (size // len(line) + 1))[:size])
PY
}

finish() {  # pin mtimes (reruns give identical contexts) and mark the context complete
  printf '.complete\n' > "$1/.dockerignore"
  find "$1" -exec touch -h -d '2000-01-01 00:00:00Z' {} +
  touch "$1/.complete"
}

make_copy_ctx() {  # make_copy_ctx NAME DIRS FILES_PER_DIR
  local dir=$out/$1
  rm -rf "$dir"; mkdir -p "$dir/src"
  files "$dir/src" "$2" "$3" mod .ts 1024 7169 4
  printf 'FROM busybox:latest\nCOPY package.json /app/\nRUN echo installing > /app/installed\nCOPY src/ /app/src/\nRUN find /app/src -type f | wc -l > /app/count\n' > "$dir/Dockerfile"
  printf '{"name":"bench","version":"1.0.0"}\n' > "$dir/package.json"
  finish "$dir"
}

make_app() {
  local dir=$out/app
  rm -rf "$dir"; mkdir -p "$dir/src"
  cat > "$dir/Dockerfile" <<'EOF'
FROM bench-debian:bookworm
LABEL org.opencontainers.image.title="lbuild-bench-app" \
      org.opencontainers.image.version="1.0.0"
ENV NODE_ENV=production \
    APP_HOME=/app
WORKDIR /app
COPY package.json /app/package.json
# stand-in for "npm ci": 2,000 small files plus one 20 MiB file
RUN set -e; mkdir -p node_modules/.bin; i=0; \
    while [ $i -lt 2000 ]; do \
      d=node_modules/pkg$((i % 100)); mkdir -p $d; \
      echo "module.exports = { id: $i, name: 'pkg$i' };" > $d/m$i.js; \
      i=$((i + 1)); \
    done; \
    seq 1 3000000 | head -c 20971520 > node_modules/.bin/blob.bin
COPY . /app
EXPOSE 8080
CMD ["node", "src/index.js"]
EOF
  printf '{\n  "name": "lbuild-bench-app",\n  "version": "1.0.0",\n  "main": "src/index.js"\n}\n' > "$dir/package.json"
  printf "console.log('hello from the lbuild bench');\n" > "$dir/src/index.js"
  files "$dir/src" 50 100 mod .js 200 1501 2
  finish "$dir"
}

make_manyfiles() {
  local dir=$out/manyfiles
  rm -rf "$dir"; mkdir -p "$dir"
  files "$dir" 100 500 dir .txt 512 7168 2
  printf 'FROM bench-busybox:latest\nCOPY . /data\nCMD ["/bin/sh"]\n' > "$dir/Dockerfile"
  finish "$dir"
}

mkdir -p "$out"
for n in "${names[@]}"; do
  [ -f "$out/$n/.complete" ] && continue
  case $n in
    ctx-5k) make_copy_ctx ctx-5k 100 50 ;;
    ctx-50k) make_copy_ctx ctx-50k 500 100 ;;
    ctx-200k) make_copy_ctx ctx-200k 2000 100 ;;
    app) make_app ;;
    manyfiles) make_manyfiles ;;
    *) echo "gen-contexts.sh: unknown context $n" >&2; exit 2 ;;
  esac
done
