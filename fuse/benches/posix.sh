#!/usr/bin/env bash
# An independent POSIX conformance suite (pjdfstest, its Rust port from crates.io) on the
# mount with allow_other, and on a tmpfs directory in the same run, as root.
#
#   fuse/benches/posix.sh        (as root)
#
# Environment: PJDFSTEST (the suite's binary; default: `cargo install pjdfstest --locked`
# into the work directory), BENCH_DIR (work directory, default: a new one under /var/tmp;
# removed at the end unless KEEP=1). The suite plays two accounts, `nobody`:`nogroup` and
# `tests`:`tests`; `tests` is created (useradd) when missing.
#
# Prints, per side, the test cases passed, failed and skipped, and the mount's pass rate over
# tmpfs's; the mount's failures are written to $WORK/failed.txt, grouped by cause.
# Builds only `cargo build --release -p hero-fuse --example mount`.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "run as root: the suite changes owners and plays other users" >&2; exit 1; }

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p hero-fuse --example mount
BIN=$(cargo metadata --format-version 1 --no-deps --manifest-path "$ROOT/Cargo.toml" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/examples/mount

WORK=${BENCH_DIR:-$(mktemp -d /var/tmp/hero-posix.XXXXXX)}
MNT=$WORK/mnt
REF=$(mktemp -d /dev/shm/hero-posix-ref.XXXXXX)
SEC=$(mktemp -d /dev/shm/hero-posix-sec.XXXXXX)
mkdir -p "$MNT"

PJD=${PJDFSTEST:-}
if [ -z "$PJD" ]; then
    cargo install --quiet --locked pjdfstest --root "$WORK/pjd"
    PJD=$WORK/pjd/bin/pjdfstest
fi
id tests >/dev/null 2>&1 || useradd -M -U -s /usr/sbin/nologin tests

cat >"$WORK/pjdfstest.toml" <<'TOML'
[features]
posix_fallocate = {}
rename_ctime = {}
utime_now = {}
utimensat = {}

[settings]
naptime = 0.001
allow_remount = false

[dummy_auth]
entries = [
  ["nobody", "nogroup"],
  ["tests", "tests"],
]
TOML

"$BIN" "$WORK/store.hero" "$MNT" --allow-other >"$WORK/mount.log" 2>&1 &
PID=$!
cleanup() {
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    if mountpoint -q "$MNT"; then fusermount3 -u "$MNT" || true; fi
    rm -rf "$REF" "$SEC"
    if [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
for _ in $(seq 1 100); do
    mountpoint -q "$MNT" && break
    sleep 0.1
done
mountpoint -q "$MNT" || { cat "$WORK/mount.log"; echo "mount did not come up" >&2; exit 1; }

# suite DIR NAME -> "passed failed skipped"; the per-case lines go to $WORK/NAME.txt
suite() {
    "$PJD" -c "$WORK/pjdfstest.toml" -p "$1" -s "$SEC" >"$WORK/$2.log" 2>&1 || true
    grep -E '^[a-z_]+::\S+\s+(ok|FAILED|skipped)$' "$WORK/$2.log" >"$WORK/$2.txt" || true
    echo "$(grep -c ' ok$' "$WORK/$2.txt") $(grep -c ' FAILED$' "$WORK/$2.txt") $(grep -c ' skipped$' "$WORK/$2.txt")"
}

read -r rp rf rs <<<"$(suite "$REF" tmpfs)"
read -r mp mf ms <<<"$(suite "$MNT" mount)"
printf '%-8s %7s %7s %8s\n' side passed failed skipped
printf '%-8s %7s %7s %8s\n' tmpfs "$rp" "$rf" "$rs" mount "$mp" "$mf" "$ms"
python3 -c "print('mount passes %.1f %% of what tmpfs passes (%d of %d)' % (100.0 * $mp / max($rp, 1), $mp, $rp))"

# The mount's failures by cause.
grep ' FAILED$' "$WORK/mount.txt" | awk '{print $1}' >"$WORK/failed.txt" || true
special=$(grep -c -E '::(fifo|char|block|socket)$|^(mknod|mkfifo)::|^open::(fifo|socket)' "$WORK/failed.txt" || true)
echo "mount failures: $mf, of which fifos, sockets and device nodes: $special; the rest:"
grep -v -E '::(fifo|char|block|socket)$|^(mknod|mkfifo)::|^open::(fifo|socket)' "$WORK/failed.txt" |
    awk -F'::' '{print $1}' | sort | uniq -c || true
