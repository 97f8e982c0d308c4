#!/usr/bin/env bash
# Benchmarks the hero-fuse mount against a native directory on the same disk.
#
#   fuse/benches/fio.sh            (as root: it drops the page cache for cold runs)
#
# Environment: BENCH_DIR (work directory, default: a new one under /var/tmp; removed at the
# end unless KEEP=1), SIZE (fio file size, default 1G), FILES (metadata test, default 10000),
# RUNTIME (seconds of random reads, default 15), REPS (cold sequential reads and cold stats per
# side, in turns, medians compared; default 3), MOUNT (`example`, the default: the hero-fuse
# example `mount`, glibc's allocator; `heroctl`: the real `heroctl mount`, its allocator and
# settings; HEROCTL: another heroctl binary than this tree's), SEQ_ONLY=1 (only the sequential
# write and cold reads).
#
# Prints one line per test: native figure, mount figure, mount/native ratio. Needs fio,
# python3, fusermount3. Builds only `cargo build --release -p hero-fuse --example mount` (or
# `-p heroctl` with MOUNT=heroctl).
set -euo pipefail

SIZE=${SIZE:-1G}
FILES=${FILES:-10000}
RUNTIME=${RUNTIME:-15}
REPS=${REPS:-3}
MOUNT=${MOUNT:-example}
SEQ_ONLY=${SEQ_ONLY:-0}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

TARGET=$(cargo metadata --format-version 1 --no-deps --manifest-path "$ROOT/Cargo.toml" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
case "$MOUNT" in
example)
    cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p hero-fuse --example mount
    BIN=$TARGET/release/examples/mount
    ;;
heroctl)
    if [ -z "${HEROCTL:-}" ]; then
        cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p heroctl
    fi
    BIN=${HEROCTL:-$TARGET/release/heroctl}
    ;;
*)
    echo "MOUNT is example or heroctl" >&2
    exit 2
    ;;
esac

WORK=${BENCH_DIR:-$(mktemp -d /var/tmp/hero-bench.XXXXXX)}
NATIVE=$WORK/native
MNT=$WORK/mnt
mkdir -p "$NATIVE" "$MNT"

if [ "$MOUNT" = heroctl ]; then
    "$BIN" init "$WORK/store.hero" >/dev/null
    "$BIN" -R "$WORK/store.hero" mount "$MNT" >"$WORK/mount.log" 2>&1 &
else
    "$BIN" "$WORK/store.hero" "$MNT" >"$WORK/mount.log" 2>&1 &
fi
PID=$!
cleanup() {
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    if mountpoint -q "$MNT"; then fusermount3 -u "$MNT" || true; fi
    if [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
for _ in $(seq 1 100); do
    mountpoint -q "$MNT" && break
    sleep 0.1
done
mountpoint -q "$MNT" || { cat "$WORK/mount.log"; echo "mount did not come up" >&2; exit 1; }

drop_caches() {
    sync
    if [ -w /proc/sys/vm/drop_caches ]; then echo 3 >/proc/sys/vm/drop_caches; fi
}

# fio_bw DIR RW BS EXTRA... -> prints MiB/s (or IOPS for random reads)
fio_run() {
    local dir=$1 name=$2 rw=$3 bs=$4
    shift 4
    fio --name="$name" --directory="$dir" --filename=bench.dat --rw="$rw" --bs="$bs" \
        --size="$SIZE" --ioengine=psync --fallocate=none --output-format=json "$@" |
        python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]
rw = sys.argv[1]
side = j["read"] if "read" in rw else j["write"]
if "rand" in rw:
    print("%.0f" % side["iops"])
else:
    print("%.1f" % (side["bw_bytes"] / 1048576))
' "$rw"
}

# meta_one DIR WHAT -> files per second for create | stat | readdir (scandir + stat)
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
elif what == "readdir":
    with os.scandir(d) as it:
        k = sum(1 for e in it if e.stat(follow_symlinks=False))
    assert k == n, (k, n)
dt = time.perf_counter() - t
print("%.0f" % (n / dt))
'
meta_one() { python3 -c "$meta_py" "$1/meta" "$FILES" "$2"; }

results=()
record() { # name unit native mount
    local ratio
    ratio=$(python3 -c "print('%.2f' % ($4 / $3))")
    results+=("$(printf '%-28s %12s %12s %8s  %s' "$1" "$3" "$4" "$ratio" "$2")")
}

dir_of() { if [ "$1" = mount ]; then echo "$MNT"; else echo "$NATIVE"; fi; }
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }

for side in native mount; do
    dir=$(dir_of "$side")
    drop_caches
    w=$(fio_run "$dir" seqwrite write 1M)
    # Make the file durable outside the timing (on the mount: commit it to the store).
    sync "$dir/bench.dat"
    declare "${side}_w=$w"
done
# Cold reads swing with the host's cache under this VM: both sides read REPS times, in
# turns, and the medians are compared.
native_rs=() mount_rs=()
for _ in $(seq "$REPS"); do
    for side in native mount; do
        drop_caches
        r=$(fio_run "$(dir_of "$side")" seqread read 1M)
        if [ "$side" = mount ]; then mount_rs+=("$r"); else native_rs+=("$r"); fi
    done
done
native_r=$(median "${native_rs[@]}") mount_r=$(median "${mount_rs[@]}")
if [ "$SEQ_ONLY" = 1 ]; then
    record "seq write 1M ($SIZE)" MiB/s "$native_w" "$mount_w"
    record "seq read 1M (cold, median)" MiB/s "$native_r" "$mount_r"
    printf '%-28s %12s %12s %8s\n' test native mount ratio
    printf '%s\n' "${results[@]}"
    echo "cold seq read runs (MiB/s): native ${native_rs[*]}; mount ${mount_rs[*]}"
    echo "mount: $MOUNT, MIMALLOC_PURGE_DELAY=${MIMALLOC_PURGE_DELAY-unset}, load $(uptime | sed 's/.*load average: //')"
    exit 0
fi
for side in native mount; do
    dir=$(dir_of "$side")
    drop_caches
    rr=$(fio_run "$dir" randread randread 4k --time_based --runtime="$RUNTIME")
    mkdir -p "$dir/meta"
    c=$(meta_one "$dir" create)
    sync -f "$dir/meta" 2>/dev/null || true
    s=$(meta_one "$dir" stat)
    rd=$(meta_one "$dir" readdir)
    declare "${side}_rr=$rr" "${side}_c=$c" "${side}_s=$s" "${side}_rd=$rd"
done
native_scs=() mount_scs=()
for _ in $(seq "$REPS"); do
    for side in native mount; do
        drop_caches
        sc=$(meta_one "$(dir_of "$side")" stat)
        if [ "$side" = mount ]; then mount_scs+=("$sc"); else native_scs+=("$sc"); fi
    done
done
native_sc=$(median "${native_scs[@]}") mount_sc=$(median "${mount_scs[@]}")

record "seq write 1M ($SIZE)" MiB/s "$native_w" "$mount_w"
record "seq read 1M (cold, median)" MiB/s "$native_r" "$mount_r"
record "rand read 4k (cold start)" IOPS "$native_rr" "$mount_rr"
record "create $FILES files" files/s "$native_c" "$mount_c"
record "stat $FILES (warm)" files/s "$native_s" "$mount_s"
record "readdir+stat $FILES" files/s "$native_rd" "$mount_rd"
record "stat $FILES (cold, median)" files/s "$native_sc" "$mount_sc"

printf '%-28s %12s %12s %8s\n' test native mount ratio
printf '%s\n' "${results[@]}"
echo "cold seq read runs (MiB/s): native ${native_rs[*]}; mount ${mount_rs[*]}"
echo "cold stat runs (files/s): native ${native_scs[*]}; mount ${mount_scs[*]}"
