#!/usr/bin/env bash
# The most FUSE passthrough could give the mount: a file being written (its data in a spill
# file, the only content of the mount with a file descriptor to pass through) read through the
# mount and read from its spill file directly, cold (page cache dropped) and warm, 3 times.
#
#   fuse/benches/spill_read.sh      (as root: it drops the page cache)
#
# Environment: SIZE_MIB (default 512), BIN (a mount binary; default: build this tree's).
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-512}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p hero-fuse --example mount
    BIN=$(cargo metadata --format-version 1 --no-deps --manifest-path "$ROOT/Cargo.toml" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/examples/mount
fi
WORK=$(mktemp -d /var/tmp/hero-spill.XXXXXX)
mkdir -p "$WORK/mnt"
"$BIN" "$WORK/store.hero" "$WORK/mnt" >"$WORK/mount.log" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do
    mountpoint -q "$WORK/mnt" && break
    sleep 0.1
done
python3 - "$WORK" "$SIZE_MIB" <<'EOF'
import glob, os, sys, time
work, mib = sys.argv[1], int(sys.argv[2])
# Kept open for writing: the file stays in its spill file, not committed into the store.
f = open(work + "/mnt/big", "wb")
block = os.urandom(1 << 20)
for _ in range(mib):
    f.write(block)
f.flush()
spill = [p for p in glob.glob(work + "/store.hero.spill/**/*", recursive=True)
         if os.path.isfile(p) and os.path.getsize(p) == mib << 20][0]
def read_all(path):
    t = time.perf_counter()
    with open(path, "rb", buffering=0) as g:
        while g.read(1 << 20):
            pass
    return mib / (time.perf_counter() - t)
for _ in range(3):
    for name, path in (("mount", work + "/mnt/big"), ("spill file", spill)):
        os.system("sync; echo 3 > /proc/sys/vm/drop_caches")
        cold = read_all(path)
        warm = read_all(path)
        print("%-10s cold %6.0f MiB/s  warm %6.0f MiB/s" % (name, cold, warm))
f.close()
EOF
