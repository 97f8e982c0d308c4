#!/usr/bin/env bash
# Mounting a large branch: time to the first `stat` and memory of the mount process.
#
#   fuse/benches/mount_large.sh        (as root for the drop_caches step; DIRS, FILES,
#                                       BENCH_DIR, KEEP=1 as in fio.sh)
#
# Builds a branch of DIRS x FILES small files (default 100 x 1000 = 100,000, plus one file
# eight directories deep) with `--example make_tree`, then for the release `--example mount`:
#   - time from starting the mount process to the first successful stat of the mount root,
#     and to the first stat of the deep file (lazy loading: nothing is read up front);
#   - peak RSS (VmHWM) after mounting, after `ls -R` of one directory, after `find` over
#     everything, and the current RSS and inode count once the kernel has dropped its caches
#     (`echo 2 > /proc/sys/vm/drop_caches`; the mount forgets inodes the kernel forgot), and
#     the peak after walking everything a second time.
set -euo pipefail

DIRS=${DIRS:-100}
FILES=${FILES:-1000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p hero-fuse --example mount --example make_tree
TARGET=$(cargo metadata --format-version 1 --no-deps --manifest-path "$ROOT/Cargo.toml" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
BIN=$TARGET/release/examples

WORK=${BENCH_DIR:-$(mktemp -d /var/tmp/hero-mount-bench.XXXXXX)}
MNT=$WORK/mnt
mkdir -p "$MNT"
PID=
cleanup() {
    if [ -n "$PID" ]; then
        kill -TERM "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    if mountpoint -q "$MNT"; then fusermount3 -u "$MNT" || true; fi
    if [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

"$BIN/make_tree" "$WORK/store.hero" "$DIRS" "$FILES"
DEEP=deep/a/b/c/d/e/f/g/leaf.txt
sync
if [ -w /proc/sys/vm/drop_caches ]; then echo 3 >/proc/sys/vm/drop_caches; fi

now() { date +%s.%N; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$PID/status"; }
# The mount example prints its inode count on SIGUSR1.
inodes() {
    kill -USR1 "$PID"
    sleep 0.3
    grep '^inodes:' "$WORK/mount.log" | tail -1 | awk '{print $2}'
}
rss() { awk '/^VmRSS/ {print $2}' "/proc/$PID/status"; }
start=$(now)
"$BIN/mount" "$WORK/store.hero" "$MNT" --read-only >"$WORK/mount.log" 2>&1 &
PID=$!
# The mount point only answers once the mount is up; until then stat sees the empty dir
# beneath it, so wait for the root of the branch (d0000) to appear.
until stat "$MNT/d0000" >/dev/null 2>&1; do
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/mount.log"; exit 1; }
    sleep 0.002
done
e_root=$(now)
stat "$MNT/$DEEP" >/dev/null
e_deep=$(now)
t_root=$(python3 -c "print('%.3f' % ($e_root - $start))")
t_deep=$(python3 -c "print('%.3f' % ($e_deep - $start))")
[ "$(cat "$MNT/$DEEP")" = "the deep leaf" ] || { echo "deep file reads wrong" >&2; exit 1; }
h_mount=$(hwm)
n_ls=$(ls -R "$MNT/d0001" | wc -l)
h_ls=$(hwm)
t0=$(now)
n_find=$(find "$MNT" | wc -l)
t1=$(now)
t_find=$(python3 -c "print('%.2f' % ($t1 - $t0))")
h_find=$(hwm)
r_find=$(rss)
i_find=$(inodes)
if [ -w /proc/sys/vm/drop_caches ]; then echo 2 >/proc/sys/vm/drop_caches; fi
sleep 1.5 # the mount sweeps forgotten inodes on its 200 ms tick
r_drop=$(rss)
i_drop=$(inodes)
# Memory freed by forgotten inodes is reused (the allocator keeps it): a second full walk
# must not raise the peak much.
find "$MNT" >/dev/null
h_again=$(hwm)

echo "branch: $((DIRS * FILES + 1)) files ($DIRS x $FILES + 1 deep), load: $(uptime | sed 's/.*load average: //')"
printf '%-44s %s\n' "mount start -> first stat of root entry" "${t_root} s" \
    "mount start -> first stat of $DEEP" "${t_deep} s" \
    "peak RSS after mount + deep stat" "$h_mount KiB" \
    "peak RSS after ls -R d0001 ($n_ls lines)" "$h_ls KiB" \
    "find over all ($n_find entries)" "${t_find} s" \
    "peak RSS after find" "$h_find KiB" \
    "RSS / inodes after find" "$r_find KiB / $i_find" \
    "RSS / inodes after drop_caches (2) + 1.5 s" "$r_drop KiB / $i_drop" \
    "peak RSS after a second find" "$h_again KiB"
