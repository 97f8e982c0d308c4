#!/usr/bin/env bash
# Metadata-heavy work on the hero-fuse mount against a native directory on the same disk and
# against the ceiling FUSE sets: `bindfs`, a passthrough FUSE file system over a native
# directory on the same disk (every request crosses the kernel to a user process, which
# does the native call).
#
#   fuse/benches/metadata.sh       (as root: it drops the page cache for the cold stats)
#
# Environment: BENCH_DIR (work directory, default: a new one under /var/tmp; removed at the
# end unless KEEP=1), FILES (files created and stat'ed, default 10000), PROCS and OPS (the
# stress run: PROCS processes of OPS operations each, default 4 x 2000), REPS (runs per side,
# in turns, medians compared; default 3).
#
# The stress run: each process works in its own directory; per 10 operations it creates and
# writes four 4 KiB files, stats one, renames one, unlinks one, makes a directory, appends
# a line to a log (open, write, close), and reads one back; every 100th operation is an
# fsync. Its time includes a final `sync FILE` (on the mount: the commit of everything).
# The "fsync each file" variant is the same with an fsync of every file written (a database
# or an editor: each fsync is a commit on the mount, shared by processes that fsync together).
#
# Prints one line per test: native figure, FUSE ceiling (bindfs) figure, mount figure, and the
# ratios mount/native and mount/ceiling (for times, native/mount and ceiling/mount, so that
# higher is better everywhere). Needs python3, fusermount3, bindfs (scripts/deps.sh). Builds
# only `cargo build --release -p hero-fuse --example mount`.
set -euo pipefail

FILES=${FILES:-10000}
PROCS=${PROCS:-4}
OPS=${OPS:-2000}
REPS=${REPS:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p hero-fuse --example mount
BIN=$(cargo metadata --format-version 1 --no-deps --manifest-path "$ROOT/Cargo.toml" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/examples/mount

WORK=${BENCH_DIR:-$(mktemp -d /var/tmp/hero-meta.XXXXXX)}
NATIVE=$WORK/native
MNT=$WORK/mnt
BIND_SRC=$WORK/bind-src
BIND=$WORK/bind
mkdir -p "$NATIVE" "$MNT" "$BIND_SRC" "$BIND"
command -v bindfs >/dev/null || { echo "bindfs missing (scripts/deps.sh installs it)" >&2; exit 1; }

"$BIN" "$WORK/store.hero" "$MNT" >"$WORK/mount.log" 2>&1 &
PID=$!
# In the foreground (its pid is ours to stop), single-threaded like the mount's one reader,
# without allow_other like the mount.
bindfs -f --no-allow-other "$BIND_SRC" "$BIND" >"$WORK/bindfs.log" 2>&1 &
BIND_PID=$!
cleanup() {
    kill -TERM "$PID" "$BIND_PID" 2>/dev/null || true
    wait "$PID" "$BIND_PID" 2>/dev/null || true
    if mountpoint -q "$MNT"; then fusermount3 -u "$MNT" || true; fi
    if mountpoint -q "$BIND"; then fusermount3 -u "$BIND" || true; fi
    if [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
for _ in $(seq 1 100); do
    mountpoint -q "$MNT" && mountpoint -q "$BIND" && break
    sleep 0.1
done
mountpoint -q "$MNT" || { cat "$WORK/mount.log"; echo "mount did not come up" >&2; exit 1; }
mountpoint -q "$BIND" || { cat "$WORK/bindfs.log"; echo "bindfs did not come up" >&2; exit 1; }

drop_caches() {
    sync
    if [ -w /proc/sys/vm/drop_caches ]; then echo 3 >/proc/sys/vm/drop_caches; fi
}

# meta DIR WHAT -> files per second for create | stat
meta_py='
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
print("%.0f" % (n / (time.perf_counter() - t)))
'
meta() { python3 -c "$meta_py" "$1" "$FILES" "$2"; }

# stress DIR EVERY -> seconds for PROCS x OPS operations (an fsync every EVERY-th) and a
# final sync
stress() {
    local dir=$1 every=$2 start end
    start=$(date +%s.%N)
    for p in $(seq 1 "$PROCS"); do
        python3 "$HERE/stress.py" "$dir/w$p" "$OPS" "$every" &
    done
    wait
    echo done >"$dir/end"
    sync "$dir/end"
    end=$(date +%s.%N)
    python3 -c "print('%.2f' % ($end - $start))"
}

results=()
record() { # name unit native ceiling mount higher_is_better(1|0)
    local ratios
    if [ "$6" = 1 ]; then
        ratios=$(python3 -c "print('%.2f %.2f' % ($5 / $3, $5 / $4))")
    else
        ratios=$(python3 -c "print('%.2f %.2f' % ($3 / $5, $4 / $5))")
    fi
    # shellcheck disable=SC2086
    results+=("$(printf '%-32s %10s %10s %10s %8s %8s  %s' "$1" "$3" "$4" "$5" $ratios "$2")")
}
dir_of() {
    case $1 in
    mount) echo "$MNT" ;;
    ceiling) echo "$BIND" ;;
    *) echo "$NATIVE" ;;
    esac
}
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A runs
for rep in $(seq "$REPS"); do
    for side in native ceiling mount; do
        base=$(dir_of "$side")/r$rep
        mkdir -p "$base/meta" "$base/stress" "$base/stress-sync"
        c=$(meta "$base/meta" create)
        sync "$base/meta" 2>/dev/null || true
        drop_caches
        s=$(meta "$base/meta" stat)
        st=$(stress "$base/stress" 100)
        sf=$(stress "$base/stress-sync" 1)
        runs[$side-create]+="$c " runs[$side-stat]+="$s " runs[$side-stress]+="$st "
        runs[$side-stress-sync]+="$sf "
    done
done

row() { # name unit key higher_is_better
    # shellcheck disable=SC2086
    record "$1" "$2" "$(median ${runs[native-$3]})" "$(median ${runs[ceiling-$3]})" \
        "$(median ${runs[mount-$3]})" "$4"
}
row "create $FILES files (median)" files/s create 1
row "stat $FILES (cold, median)" files/s stat 1
row "stress ${PROCS}x$OPS ops (median)" s stress 0
row "same, fsync each file (median)" s stress-sync 0
echo "load average before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-32s %10s %10s %10s %8s %8s\n' test native ceiling mount /native /ceiling
printf '%s\n' "${results[@]}"
for k in create stat stress stress-sync; do
    echo "$k runs: native ${runs[native-$k]}; ceiling ${runs[ceiling-$k]}; mount ${runs[mount-$k]}"
done
