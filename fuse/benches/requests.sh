#!/usr/bin/env bash
# What one metadata operation costs the mount, and the same for `bindfs` (a passthrough FUSE
# file system over a native directory: the ceiling column of `metadata.sh`): the FUSE requests
# the kernel sends for it, by kind, and the serving process's CPU time and context switches,
# for creating FILES files, for a cold `stat` of each (the two rows of `metadata.sh`), and for
# `stat`s of FILES missing names, each twice ("missing": the second time the kernel may answer
# from a negative entry), with the rate of each.
#
#   fuse/benches/requests.sh        (as root: perf's tracepoints and drop_caches)
#
# Environment: FILES (default 10000), BIN (a mount binary built elsewhere, e.g. at another
# commit, to compare; default: `cargo build --release -p hero-fuse --example mount` of this
# tree), BENCH_DIR (work directory, default a new one under /var/tmp, removed at the end).
# For the mount, also the time its request thread spent per request of each kind (the mount
# prints its request counters on SIGUSR1), "in mount": its share of the round trip.
# Needs perf (with the `fuse:fuse_request_send` tracepoint), bindfs and python3. Requests are
# counted system wide, for the measured file system's FUSE connection only.
set -euo pipefail

FILES=${FILES:-10000}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p hero-fuse --example mount
    BIN=$(cargo metadata --format-version 1 --no-deps --manifest-path "$ROOT/Cargo.toml" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/examples/mount
fi
command -v bindfs >/dev/null || { echo "bindfs missing (scripts/deps.sh installs it)" >&2; exit 1; }
WORK=${BENCH_DIR:-$(mktemp -d /var/tmp/hero-req.XXXXXX)}
MNT=$WORK/mnt
BIND_SRC=$WORK/bind-src
BIND=$WORK/bind
mkdir -p "$MNT" "$BIND_SRC" "$BIND"
"$BIN" "$WORK/store.hero" "$MNT" >"$WORK/mount.log" 2>&1 &
MOUNT_PID=$!
# In the foreground (its pid is ours to stop), single-threaded like the mount's one reader.
bindfs -f --no-allow-other "$BIND_SRC" "$BIND" >"$WORK/bindfs.log" 2>&1 &
BIND_PID=$!
cleanup() {
    kill -TERM "$MOUNT_PID" "$BIND_PID" 2>/dev/null || true
    wait "$MOUNT_PID" "$BIND_PID" 2>/dev/null || true
    if mountpoint -q "$MNT"; then fusermount3 -u "$MNT" || true; fi
    if mountpoint -q "$BIND"; then fusermount3 -u "$BIND" || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
    mountpoint -q "$MNT" && mountpoint -q "$BIND" && break
    sleep 0.1
done
mountpoint -q "$MNT" || { cat "$WORK/mount.log"; echo "mount did not come up" >&2; exit 1; }
mountpoint -q "$BIND" || { cat "$WORK/bindfs.log"; echo "bindfs did not come up" >&2; exit 1; }
mkdir -p "$MNT/d" "$BIND/d"

op_py='
import os, sys, time
d, n, what = sys.argv[1], int(sys.argv[2]), sys.argv[3]
names = [os.path.join(d, "f%05d" % i) for i in range(n)]
t = time.perf_counter()
if what == "create":
    for p in names:
        os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
elif what == "stat":
    for p in names:
        os.stat(p)
else:
    for _ in range(2):
        for p in names:
            try:
                os.stat(p + ".missing")
            except FileNotFoundError:
                pass
print("%.0f" % (n / (time.perf_counter() - t)))
'

count_py='
import collections, re, sys
name, what, n, rate, conn = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
kinds = collections.Counter()
for line in open(sys.argv[6]):
    m = re.search(r"connection (\d+) .*\(FUSE_(\w+)\)", line)
    if m and m.group(1) == conn:
        kinds[m.group(2)] += 1
proc = {}
for line in open(sys.argv[7]):
    f = line.strip().split(",")
    if len(f) > 2 and f[0] and f[0][0].isdigit():
        proc[f[2]] = float(f[0])
by_kind = " ".join("%s %.2f" % (k, v / n) for k, v in kinds.most_common())
print("%-6s %-7s %8s ops/s  %5.2f requests/op (%s)  %6.2f us CPU/op  %5.2f switches/op" % (
    name, what, rate, sum(kinds.values()) / n, by_kind,
    proc.get("task-clock", 0) * 1000 / n, proc.get("context-switches", 0) / n))
'

# mount_requests FILE: the mount's request counters now, into FILE.
ENDS=0
mount_requests() {
    ENDS=$((ENDS + 1))
    kill -USR1 "$MOUNT_PID"
    for _ in $(seq 1 100); do
        [ "$(grep -c '^requests: end' "$WORK/mount.log")" -ge $ENDS ] && break
        sleep 0.05
    done
    awk -v n=$ENDS '/^requests: end/ { b++; next } /^requests: / && b == n - 1 { print $2, $3, $4 }' \
        "$WORK/mount.log" >"$1"
}

in_mount_py='
import sys
n = int(sys.argv[1])
def load(p):
    return {f[0]: (int(f[1]), int(f[2])) for f in (l.split() for l in open(p)) if len(f) == 3}
a, b = load(sys.argv[2]), load(sys.argv[3])
out = []
for k, (c, ns) in sorted(b.items(), key=lambda kv: -kv[1][0]):
    c0, ns0 = a.get(k, (0, 0))
    if c - c0 >= n / 100:
        out.append("%s %.2f us" % (k, (ns - ns0) / 1000 / (c - c0)))
print("       in mount per request: " + ", ".join(out))
'

# measure NAME PID DIR WHAT: the requests to DIR's FUSE connection, by kind, and PID's counters
# while WHAT runs in DIR.
measure() {
    local name=$1 pid=$2 dir=$3 what=$4 conn
    conn=$(mountpoint -d "$(dirname "$dir")" | cut -d: -f2)
    if [ "$name" = mount ]; then mount_requests "$WORK/before"; fi
    perf stat -x, -e task-clock,context-switches -p "$pid" -o "$WORK/proc.csv" -- \
        perf record -q -a -e fuse:fuse_request_send -o "$WORK/req.data" -- \
        python3 -c "$op_py" "$dir" "$FILES" "$what" >"$WORK/rate" 2>"$WORK/perf.log"
    perf script -i "$WORK/req.data" -F trace 2>/dev/null >"$WORK/req.txt"
    python3 -c "$count_py" "$name" "$what" "$FILES" "$(cat "$WORK/rate")" "$conn" \
        "$WORK/req.txt" "$WORK/proc.csv"
    if [ "$name" = mount ]; then
        mount_requests "$WORK/after"
        python3 -c "$in_mount_py" "$FILES" "$WORK/before" "$WORK/after"
    fi
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for side in mount bindfs; do
    if [ $side = mount ]; then pid=$MOUNT_PID dir=$MNT/d; else pid=$BIND_PID dir=$BIND/d; fi
    measure $side "$pid" "$dir" create
    sync "$dir"
    sync
    echo 3 >/proc/sys/vm/drop_caches
    measure $side "$pid" "$dir" stat
    measure $side "$pid" "$dir" missing
done
