#!/usr/bin/env bash
# The drive's resident memory under the workloads of ADR 0021, through the real
# `heroctl mount` (release build, its own allocator), with default settings.
#
#   fuse/benches/memory.sh            (as root: it drops the page cache before cold reads)
#
# Environment: HEROCTL (the binary measured, default: the release build of this tree),
# BENCH_DIR (work directory, default: a new one under /var/tmp; removed at the
# end unless KEEP=1); WORKLOADS (default "large tree stress"); LARGE_FILES and LARGE_MB (the
# large-file workload, default 20 files of 30 MB of random bytes); DIRS and FILES (the tree,
# default 100 x 1000); PROCS and OPS (the stress run, default 4 x 2000).
#
# Workloads, each on a fresh repository and a fresh mount process:
#   large  - LARGE_FILES files copied into the drive, each fsync'ed (a commit each); then the
#            page cache dropped and every file read cold, one after another; then four readers
#            reading every file at once.
#   tree   - a branch of DIRS x FILES small files (`--example make_tree`), mounted, then
#            `find` over it and `cat` of every file of one directory per ten.
#   stress - PROCS x OPS operations of fuse/benches/stress.py, then `cat` of every file.
#   corpus - (only when asked, with CORPUS=GIT_DIR) a real-shaped git history imported, every
#            file of main read cold, then `find` over the mount with `.snapshots`.
# Prints the mount's peak RSS (VmHWM) after each phase and its RSS at the end; the bound the
# documentation promises (docs/ARCHITECTURE.md, `fuse/`; ADR 0021) is 128 MiB.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORKLOADS=${WORKLOADS:-large tree stress}
LARGE_FILES=${LARGE_FILES:-20}
LARGE_MB=${LARGE_MB:-30}
DIRS=${DIRS:-100}
FILES=${FILES:-1000}
PROCS=${PROCS:-4}
OPS=${OPS:-2000}

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p heroctl -p hero-fuse --bin heroctl --example make_tree
TARGET=$(cargo metadata --format-version 1 --no-deps --manifest-path "$ROOT/Cargo.toml" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
HEROCTL=${HEROCTL:-$TARGET/release/heroctl}
MAKE_TREE=$TARGET/release/examples/make_tree

WORK=${BENCH_DIR:-$(mktemp -d /var/tmp/hero-memory.XXXXXX)}
MNT=$WORK/mnt
PID=
stop_mount() {
    if [ -n "$PID" ]; then
        kill -TERM "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
        PID=
    fi
    if mountpoint -q "$MNT"; then fusermount3 -u "$MNT" || true; fi
}
cleanup() {
    stop_mount
    if [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

drop_caches() {
    sync
    if [ -w /proc/sys/vm/drop_caches ]; then echo 3 >/proc/sys/vm/drop_caches; fi
}
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$PID/status"; }
mib() { python3 -c "print('%.1f MiB' % ($1 / 1024))"; }
results=()
record() {
    results+=("$(printf '%-8s %-58s %s' "$1" "$2" "$(mib "$(kib "$3")")")")
    echo "${results[-1]}" >&2
}

# start_mount REPO: heroctl mount in the background, returns once the mount answers.
start_mount() {
    mkdir -p "$MNT"
    "$HEROCTL" -R "$1" mount "$MNT" >"$WORK/mount.log" 2>&1 &
    PID=$!
    for _ in $(seq 1 300); do
        mountpoint -q "$MNT" && return 0
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.05
    done
    cat "$WORK/mount.log" >&2
    echo "the mount did not come up" >&2
    exit 1
}

large() {
    local repo=$WORK/large.hero src=$WORK/large-src
    mkdir -p "$src"
    for i in $(seq 1 "$LARGE_FILES"); do
        head -c "$((LARGE_MB * 1000000))" /dev/urandom >"$src/f$i"
    done
    "$HEROCTL" init "$repo" >/dev/null
    start_mount "$repo"
    record large "after mounting" VmHWM
    for i in $(seq 1 "$LARGE_FILES"); do
        cp "$src/f$i" "$MNT/f$i"
        sync "$MNT/f$i"
    done
    record large "peak after writing ${LARGE_FILES} x ${LARGE_MB} MB (fsync each)" VmHWM
    drop_caches
    for i in $(seq 1 "$LARGE_FILES"); do cat "$MNT/f$i" >/dev/null; done
    record large "peak after reading them cold, one after another" VmHWM
    drop_caches
    local readers=()
    for _ in 1 2 3 4; do
        (for i in $(seq 1 "$LARGE_FILES"); do cat "$MNT/f$i" >/dev/null; done) &
        readers+=($!)
    done
    wait "${readers[@]}" # not a bare `wait`: the mount is a child too
    record large "peak after 4 readers at once (cold)" VmHWM
    cmp "$src/f$LARGE_FILES" "$MNT/f$LARGE_FILES"
    record large "RSS at the end" VmRSS
    stop_mount
    rm -rf "$src" "$repo"
}

tree() {
    local repo=$WORK/tree.hero
    "$MAKE_TREE" "$repo" "$DIRS" "$FILES" >/dev/null
    drop_caches
    start_mount "$repo"
    local n
    # .snapshots is not listed in the root: walked by name.
    n=$(( $(find "$MNT" | wc -l) + $(find "$MNT/.snapshots" | wc -l) ))
    record tree "peak after find over $n entries" VmHWM
    find "$MNT" -path "$MNT/d???0/*" -type f -exec cat {} + >/dev/null
    record tree "peak after cat of every file in 1 directory of 10" VmHWM
    record tree "RSS at the end" VmRSS
    stop_mount
    rm -f "$repo"
}

stress() {
    local repo=$WORK/stress.hero
    "$HEROCTL" init "$repo" >/dev/null
    start_mount "$repo"
    local workers=()
    for p in $(seq 1 "$PROCS"); do
        python3 "$HERE/stress.py" "$MNT/w$p" "$OPS" 100 &
        workers+=($!)
    done
    wait "${workers[@]}"
    sync "$MNT/w1/log.txt"
    record stress "peak after ${PROCS} x ${OPS} operations" VmHWM
    drop_caches
    find "$MNT" -type f -exec cat {} + >/dev/null
    record stress "peak after cat of every file (cold)" VmHWM
    record stress "RSS at the end" VmRSS
    stop_mount
    rm -f "$repo"
}

# A real-shaped history: a git repository (benches/corpus.sh makes one: ~5,000 commits of real
# Rust sources at real sizes, 129 branches, 401 tags) imported, mounted, every file of the
# branch read cold, then `find` over the whole mount: `.snapshots` holds a tree per branch,
# tag and recent commit, hundreds of trees.
corpus() {
    [ -n "${CORPUS:-}" ] || { echo "the corpus workload needs CORPUS=GIT_DIR (benches/corpus.sh)" >&2; exit 1; }
    local repo=$WORK/corpus.hero
    "$HEROCTL" init "$repo" >/dev/null
    "$HEROCTL" -R "$repo" import git "$CORPUS" >/dev/null
    drop_caches
    start_mount "$repo"
    find "$MNT" -path "$MNT/.snapshots" -prune -o -type f -exec cat {} + >/dev/null
    record corpus "peak after cat of every file of main (cold)" VmHWM
    local n
    # .snapshots is not listed in the root: walked by name.
    n=$(( $(find "$MNT" | wc -l) + $(find "$MNT/.snapshots" | wc -l) ))
    record corpus "peak after find over $n entries (.snapshots included)" VmHWM
    record corpus "RSS at the end" VmRSS
    stop_mount
    rm -f "$repo"
}

for w in $WORKLOADS; do "$w"; done
echo "heroctl $(git -C "$ROOT" rev-parse --short HEAD), $(date -u '+%Y-%m-%d %H:%M UTC'), load $(uptime | sed 's/.*load average: //')"
printf '%s\n' "${results[@]}"
