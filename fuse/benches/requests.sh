#!/usr/bin/env bash
# What one metadata operation costs the mount: the FUSE requests the kernel sends for it, and
# the mount process's CPU time and context switches, for creating FILES files, for a cold
# `stat` of each (the two rows of `metadata.sh`), and for `stat`s of FILES missing names, each
# twice ("missing": the second time the kernel may answer from a negative entry), with the
# rate of each.
#
#   fuse/benches/requests.sh        (as root: perf's tracepoints and drop_caches)
#
# Environment: FILES (default 10000), BIN (a mount binary built elsewhere, e.g. at another
# commit, to compare; default: `cargo build --release -p hero-fuse --example mount` of this
# tree), BENCH_DIR (work directory, default a new one under /var/tmp, removed at the end).
# Needs perf (with the `fuse:fuse_request_send` tracepoint) and python3.
set -euo pipefail

FILES=${FILES:-10000}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p hero-fuse --example mount
    BIN=$(cargo metadata --format-version 1 --no-deps --manifest-path "$ROOT/Cargo.toml" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/examples/mount
fi
WORK=${BENCH_DIR:-$(mktemp -d /var/tmp/hero-req.XXXXXX)}
MNT=$WORK/mnt
mkdir -p "$MNT"
"$BIN" "$WORK/store.hero" "$MNT" >"$WORK/mount.log" 2>&1 &
PID=$!
cleanup() {
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    if mountpoint -q "$MNT"; then fusermount3 -u "$MNT" || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
    mountpoint -q "$MNT" && break
    sleep 0.1
done
mountpoint -q "$MNT" || { cat "$WORK/mount.log"; echo "mount did not come up" >&2; exit 1; }
mkdir -p "$MNT/d"

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

# measure WHAT: the requests (system wide, so only this run should use a FUSE mount) and
# the mount process's counters while WHAT runs.
measure() {
    local what=$1 rate
    perf stat -x, -e task-clock,context-switches -p "$PID" -o "$WORK/proc.csv" -- \
        perf stat -x, -a -e fuse:fuse_request_send -o "$WORK/req.csv" -- \
        python3 -c "$op_py" "$MNT/d" "$FILES" "$what" >"$WORK/rate"
    rate=$(cat "$WORK/rate")
    python3 - "$what" "$FILES" "$rate" "$WORK/req.csv" "$WORK/proc.csv" <<'EOF'
import sys
what, n, rate, req, proc = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def counters(path):
    out = {}
    for line in open(path):
        f = line.strip().split(",")
        if len(f) > 2 and f[0] and f[0][0].isdigit():
            out[f[2]] = float(f[0])
    return out
r = counters(req).get("fuse:fuse_request_send", 0)
p = counters(proc)
print("%-6s %8s ops/s  %5.2f requests/op  %6.2f us mount CPU/op  %5.2f switches/op" % (
    what, rate, r / n, p.get("task-clock", 0) * 1000 / n, p.get("context-switches", 0) / n))
EOF
}

measure create
sync "$MNT/d"
sync
echo 3 >/proc/sys/vm/drop_caches
measure stat
measure missing
