#!/usr/bin/env bash
# WebDAV benchmark: hero-dav (the store) vs dav-server's LocalFs vs `rclone serve webdav`, in
# one run, curl as the client (rclone only fills the 10,000-entry collection):
#   - sequential write (PUT) of a 1 GiB file of random bytes (once: a second write of the same
#     bytes would be deduplicated by the store)
#   - sequential read (GET) of it (best of 3)
#   - filling a collection with 10,000 small files (rclone copy --transfers 8)
#   - PROPFIND Depth: 1 of that collection (best of 5)
# Usage: dav/benches/dav.sh [WORKDIR]   (from the workspace root; needs curl, rclone, bc)
# SIZE_MIB and ENTRIES override the sizes.
set -euo pipefail
WORK=${1:-/tmp/hero-dav-bench}
SIZE_MIB=${SIZE_MIB:-1024}
ENTRIES=${ENTRIES:-10000}
rm -rf "$WORK" && mkdir -p "$WORK"
cargo build --release -q -p hero-dav --example serve
cargo build --release -q -p hero-dav --features localfs-example --example localfs
BIN=target/release/examples

echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')  commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "load: $(uptime)"
echo "sizes: ${SIZE_MIB} MiB file, ${ENTRIES} entries; rclone $(rclone version 2>/dev/null | head -1)"

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
for port in 4931 4932 4933; do
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break
    sleep 0.1
  done
done

secs() { local s e; s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
best() { echo "if ($1 < $2) $1 else $2" | bc; }
mibs() { echo "scale=1; $SIZE_MIB / $1" | bc; }

declare -A W R F P
for spec in hero:4931 localfs:4932 rclone:4933; do
  name=${spec%%:*}; port=${spec##*:}; url="http://127.0.0.1:$port"
  W[$name]=$(secs curl -sSf -T "$WORK/big.bin" "$url/big.bin")
  got=$(curl -sSf -o /dev/null -w '%{size_download}' "$url/big.bin")
  [ "$got" = $((SIZE_MIB << 20)) ] || { echo "$name: read $got bytes" >&2; exit 1; }
  r=999
  for _ in 1 2 3; do r=$(best "$(secs curl -sSf -o /dev/null "$url/big.bin")" "$r"); done
  R[$name]=$r
  curl -sSf -X MKCOL "$url/many/" > /dev/null
  F[$name]=$(secs rclone copy --config /dev/null --transfers 8 "$WORK/many" ":webdav,url='$url/':many")
  n=$(curl -sSf -X PROPFIND -H 'Depth: 1' "$url/many/" | grep -o '<D:response>' | wc -l)
  [ "$n" = $((ENTRIES + 1)) ] || { echo "$name: PROPFIND listed $n responses" >&2; exit 1; }
  p=999
  for _ in 1 2 3 4 5; do p=$(best "$(secs curl -sSf -X PROPFIND -H 'Depth: 1' "$url/many/")" "$p"); done
  P[$name]=$p
done

printf '\n%-8s %12s %12s %16s %16s\n' server 'write MiB/s' 'read MiB/s' "fill ${ENTRIES} (s)" 'PROPFIND (s)'
for name in hero localfs rclone; do
  printf '%-8s %12s %12s %16.2f %16.3f\n' "$name" "$(mibs "${W[$name]}")" "$(mibs "${R[$name]}")" "${F[$name]}" "${P[$name]}"
done
echo
echo "hero vs peer (time ratio peer/hero: above 1 = hero faster)"
for peer in localfs rclone; do
  printf '%-8s write %5.2f  read %5.2f  fill %5.2f  PROPFIND %5.2f\n' "$peer" \
    "$(echo "scale=3; ${W[$peer]} / ${W[hero]}" | bc)" \
    "$(echo "scale=3; ${R[$peer]} / ${R[hero]}" | bc)" \
    "$(echo "scale=3; ${F[$peer]} / ${F[hero]}" | bc)" \
    "$(echo "scale=3; ${P[$peer]} / ${P[hero]}" | bc)"
done
echo "load after: $(uptime)"
