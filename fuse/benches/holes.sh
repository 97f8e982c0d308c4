#!/usr/bin/env bash
# Holes: a write far past the end of a file, and a punched hole, cost what the data costs.
#
#   fuse/benches/holes.sh        (RUNS=3; BENCH_DIR, KEEP=1 as in fio.sh)
#
# On the mount (release `--example mount`, its spill directory on tmpfs so that a file past
# 16 TiB fits), on tmpfs (/dev/shm) and on the file system of BENCH_DIR (ext4 here), each RUNS
# times, the median wall time of:
#   - `dd` of 4 KiB of random bytes at 16 GiB into a new file, with fsync (conv=fsync; on the
#     mount fsync commits the file);
#   - the same at 16 TiB (ext4 stops just short of 16 TiB: it answers EFBIG);
#   - punching 512 MiB out of the middle of a 1 GiB file of random bytes
#     (`fallocate -p`, then fsync); the file is written and synced before the clock starts.
# Also reported: what `du` counts for each file, and how much the repository file grew.
set -euo pipefail

RUNS=${RUNS:-3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p hero-fuse --example mount
TARGET=$(cargo metadata --format-version 1 --no-deps --manifest-path "$ROOT/Cargo.toml" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
BIN=$TARGET/release/examples

WORK=${BENCH_DIR:-$(mktemp -d /var/tmp/hero-holes-bench.XXXXXX)}
SHM=$(mktemp -d /dev/shm/hero-holes-bench.XXXXXX)
MNT=$WORK/mnt
EXT=$WORK/native
mkdir -p "$MNT" "$EXT" "$SHM/spill" "$SHM/native"
PID=
cleanup() {
    if [ -n "$PID" ]; then
        kill -TERM "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    if mountpoint -q "$MNT"; then fusermount3 -u "$MNT" || true; fi
    rm -rf "$SHM"
    if [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

"$BIN/mount" "$WORK/store.hero" "$MNT" --spill-dir "$SHM/spill" >"$WORK/mount.log" 2>&1 &
PID=$!
until mountpoint -q "$MNT"; do
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/mount.log"; exit 1; }
    sleep 0.01
done

# Seconds taken by a command (its output dropped), or its error.
timed() {
    local t0 t1 err
    t0=$(date +%s.%N)
    if ! err=$("$@" 2>&1 >/dev/null); then
        echo "failed: $(echo "$err" | tail -1 | sed 's/.*: //')"
        return
    fi
    t1=$(date +%s.%N)
    python3 -c "print('%.3f' % ($t1 - $t0))"
}
median() { python3 -c "import sys,statistics as s; v=[float(x) for x in sys.argv[1:] if x[0].isdigit()]; print('%.3f s' % s.median(v) if v else ' '.join(sys.argv[1:2]))" "$@"; }
far_write() { dd if=/dev/urandom of="$1" bs=4k count=1 seek="$2" conv=fsync,notrunc status=none; }
punch() {
    fallocate -p -o 256MiB -l 512MiB "$1"
    python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDWR); os.fsync(fd)' "$1"
}
du_of() { du -k "$1" 2>/dev/null | awk '{print $1 " KiB"}'; }

declare -A res du
repo_before=$(stat -c %s "$WORK/store.hero")
for dir in "$MNT" "$SHM/native" "$EXT"; do
    for r in $(seq "$RUNS"); do
        res[$dir,g16]+="$(timed far_write "$dir/g16-$r" 4194304) "
        res[$dir,t16]+="$(timed far_write "$dir/t16-$r" 4294967296) "
        dd if=/dev/urandom of="$dir/big-$r" bs=1M count=1024 conv=fsync status=none
        res[$dir,punch]+="$(timed punch "$dir/big-$r") "
    done
    du[$dir,g16]=$(du_of "$dir/g16-1")
    du[$dir,t16]=$(du_of "$dir/t16-1")
    du[$dir,punch]=$(du_of "$dir/big-1")
done
repo_after=$(stat -c %s "$WORK/store.hero")

name() {
    case $1 in
    "$MNT") echo "mount" ;;
    "$SHM/native") echo "tmpfs" ;;
    *) df --output=fstype "$EXT" | tail -1 ;;
    esac
}
echo "holes: $RUNS runs each, medians; load: $(uptime | sed 's/.*load average: //')"
printf '%-8s %-34s %-30s %s\n' "" "4 KiB at 16 GiB + fsync" "4 KiB at 16 TiB + fsync" "punch 512 MiB of 1 GiB + fsync"
for dir in "$MNT" "$SHM/native" "$EXT"; do
    printf '%-8s %-34s %-30s %s\n' "$(name "$dir")" \
        "$(median ${res[$dir,g16]}) (du ${du[$dir,g16]:-?})" \
        "$(median ${res[$dir,t16]}) (du ${du[$dir,t16]:-?})" \
        "$(median ${res[$dir,punch]}) (du ${du[$dir,punch]:-?})"
done
for dir in "$MNT" "$SHM/native" "$EXT"; do echo "$(name "$dir") runs: g16 ${res[$dir,g16]}| t16 ${res[$dir,t16]}| punch ${res[$dir,punch]}"; done
ratio() { python3 -c "import sys; a,b=sys.argv[1].split()[0],sys.argv[2].split()[0]; print('%.1f' % (float(a)/float(b)) if a[0].isdigit() and b[0].isdigit() else '—')" "$1" "$2"; }
for k in g16 t16 punch; do
    m=$(median ${res[$MNT,$k]})
    echo "$k: mount/tmpfs $(ratio "$m" "$(median ${res[$SHM/native,$k]})"), mount/$(name "$EXT") $(ratio "$m" "$(median ${res[$EXT,$k]})")"
done
echo "repository file grew by $(((repo_after - repo_before) / 1048576)) MiB for ${RUNS} x (4 KiB + 4 KiB + 1 GiB of random data)"
