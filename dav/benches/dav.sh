#!/usr/bin/env bash
# WebDAV benchmark: hero-dav (the store) vs dav-server's LocalFs vs `rclone serve webdav`.
#   - sequential write (PUT) and read (GET) of a 1 GiB file
#   - PROPFIND Depth: 1 of a 10,000-entry collection (best of 5)
# Usage: dav/benches/dav.sh [WORKDIR]   (run from the workspace root; needs curl and rclone)
set -euo pipefail
WORK=${1:-/tmp/hero-dav-bench}
SIZE_MIB=${SIZE_MIB:-1024}
ENTRIES=${ENTRIES:-10000}
rm -rf "$WORK" && mkdir -p "$WORK"
cargo build --release -q -p hero-dav --example serve
cargo build --release -q -p hero-dav --features localfs-example --example localfs
BIN=target/release/examples

head -c $((SIZE_MIB << 20)) /dev/urandom > "$WORK/big.bin"
mkdir -p "$WORK/many"
for i in $(seq 1 "$ENTRIES"); do printf 'file %d\n' "$i" > "$WORK/many/f$i.txt"; done

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

mkdir -p "$WORK/localfs" "$WORK/rclone"
"$BIN/serve" "$WORK/store.hero" 127.0.0.1:4931 > "$WORK/serve.log" 2>&1 & PIDS+=($!)
"$BIN/localfs" "$WORK/localfs" 127.0.0.1:4932 > "$WORK/localfs.log" 2>&1 & PIDS+=($!)
rclone serve webdav --config /dev/null --addr 127.0.0.1:4933 "$WORK/rclone" > "$WORK/rclone.log" 2>&1 & PIDS+=($!)
sleep 2

secs() { local s e; s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
mibs() { echo "scale=1; $SIZE_MIB / $1" | bc; }

printf '%-10s %14s %14s %18s\n' server 'write MiB/s' 'read MiB/s' 'PROPFIND 10k (s)'
for spec in hero:4931 localfs:4932 rclone:4933; do
  name=${spec%%:*}; port=${spec##*:}; url="http://127.0.0.1:$port"
  w=$(secs curl -sf -T "$WORK/big.bin" "$url/big.bin")
  r=$(secs curl -sf -o /dev/null "$url/big.bin")
  curl -sf -X MKCOL "$url/many/" > /dev/null || true
  rclone copy --config /dev/null --transfers 8 "$WORK/many" ":webdav,url='$url/':many" > /dev/null 2>&1
  best=999
  for _ in 1 2 3 4 5; do
    t=$(secs curl -sf -X PROPFIND -H 'Depth: 1' "$url/many/")
    best=$(echo "if ($t < $best) $t else $best" | bc)
  done
  printf '%-10s %14s %14s %18s\n' "$name" "$(mibs "$w")" "$(mibs "$r")" "$best"
done
