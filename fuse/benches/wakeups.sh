#!/usr/bin/env bash
# What a wake-up across CPUs costs a FUSE round trip, whatever else runs on the machine.
#
#   fuse/benches/wakeups.sh       (as root: SCHED_FIFO, CPU affinity, drop_caches)
#
# A metadata request through FUSE is a round trip between the caller and the file system's
# thread; on an idle machine the scheduler puts them on different CPUs, so each round trip
# wakes a CPU from the other twice. On a loaded machine no CPU is idle and the figures move
# with the other work. Running the caller and the file systems under SCHED_FIFO makes them
# preempt the other work: a wake-up then goes to another CPU as on an idle machine (an
# interrupt across CPUs), or stays on one CPU when all are pinned to CPU 0.
#
# Prints, each as the median of REPS runs: the round trip of a pipe between two processes
# (across CPUs and on one CPU), then create and cold `stat` of FILES files on a native
# directory, on bindfs (a passthrough FUSE file system: the ceiling) and on the mount, across
# CPUs and on one CPU. The mount runs with its request polling off (`--spin-us 0`): a thread
# polling at a real-time priority starves the threads of the same priority on its CPU.
#
# Environment: FILES (default 10000), REPS (default 3), BIN (a mount binary built elsewhere;
# default: `cargo build --release -p hero-fuse --example mount` of this tree), BENCH_DIR.
# Needs bindfs, chrt, taskset, python3.
set -euo pipefail

FILES=${FILES:-10000}
REPS=${REPS:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p hero-fuse --example mount
    BIN=$(cargo metadata --format-version 1 --no-deps --manifest-path "$ROOT/Cargo.toml" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/examples/mount
fi
command -v bindfs >/dev/null || { echo "bindfs missing (scripts/deps.sh installs it)" >&2; exit 1; }
WORK=${BENCH_DIR:-$(mktemp -d /var/tmp/hero-wake.XXXXXX)}
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    for m in "$WORK"/*/mnt; do
        if mountpoint -q "$m" 2>/dev/null; then fusermount3 -u "$m" || true; fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

pipe_py='
import os, sys, time
n = 20000
a_r, a_w = os.pipe(); b_r, b_w = os.pipe()
if os.fork() == 0:
    for _ in range(n):
        os.read(a_r, 1); os.write(b_w, b"x")
    os._exit(0)
t = time.perf_counter()
for _ in range(n):
    os.write(a_w, b"x"); os.read(b_r, 1)
print("%.1f" % ((time.perf_counter() - t) / n * 1e6))
os.wait()
'
op_py='
import os, sys, time
d, n, what = sys.argv[1], int(sys.argv[2]), sys.argv[3]
names = [os.path.join(d, "f%05d" % i) for i in range(n)]
t = time.perf_counter()
if what == "create":
    for p in names:
        os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
else:
    for p in names:
        os.stat(p)
print("%.0f" % (n / (time.perf_counter() - t)))
'

# run SIDE PIN -> "create stat" rates on a fresh file system; PIN: "" or a CPU list
run() {
    local side=$1 pin=$2 dir pid="" pre=(chrt -f 50)
    dir=$(mktemp -d "$WORK/run.XXXX")
    mkdir -p "$dir/mnt" "$dir/src"
    case $side in
    native) ;;
    bindfs)
        bindfs -f --no-allow-other "$dir/src" "$dir/mnt" >"$dir/log" 2>&1 &
        pid=$! ;;
    mount) "$BIN" "$dir/store.hero" "$dir/mnt" --spin-us 0 >"$dir/log" 2>&1 & pid=$! ;;
    esac
    local target=$dir/mnt
    if [ -n "$pid" ]; then
        PIDS+=("$pid")
        for _ in $(seq 1 100); do mountpoint -q "$target" && break; sleep 0.1; done
        mountpoint -q "$target" || { cat "$dir/log"; echo "$side did not come up" >&2; exit 1; }
        chrt -a -f -p 50 "$pid" >/dev/null
        if [ -n "$pin" ]; then taskset -a -p -c "$pin" "$pid" >/dev/null; fi
    else
        target=$dir/src
    fi
    if [ -n "$pin" ]; then pre=(taskset -c "$pin" chrt -f 50); fi
    mkdir "$target/d"
    local c s
    c=$("${pre[@]}" python3 -c "$op_py" "$target/d" "$FILES" create)
    sync "$target/d"
    sync
    echo 3 >/proc/sys/vm/drop_caches
    s=$("${pre[@]}" python3 -c "$op_py" "$target/d" "$FILES" stat)
    echo "$c $s"
    if [ -n "$pid" ]; then
        kill -TERM "$pid"
        wait "$pid" 2>/dev/null || true
        if mountpoint -q "$target"; then fusermount3 -u "$target" || true; fi
    fi
    rm -rf "$dir"
}
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A rt
for _ in $(seq "$REPS"); do
    rt[pipe-across]+="$(chrt -f 50 python3 -c "$pipe_py") "
    rt[pipe-one]+="$(taskset -c 0 chrt -f 50 python3 -c "$pipe_py") "
    for side in native bindfs mount; do
        for where in across one; do
            pin=""
            if [ $where = one ]; then pin=0; fi
            read -r c s < <(run $side "$pin")
            rt[$side-$where-create]+="$c " rt[$side-$where-stat]+="$s "
        done
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
# shellcheck disable=SC2086
printf 'pipe round trip (us): across CPUs %s, on one CPU %s\n' \
    "$(median ${rt[pipe-across]})" "$(median ${rt[pipe-one]})"
printf '%-14s %-7s %10s %10s\n' "" "" create/s stat/s
for side in native bindfs mount; do
    for where in across one; do
        # shellcheck disable=SC2086
        printf '%-14s %-7s %10s %10s   (runs: %s/ %s)\n' $side $where \
            "$(median ${rt[$side-$where-create]})" "$(median ${rt[$side-$where-stat]})" \
            "${rt[$side-$where-create]}" "${rt[$side-$where-stat]}"
    done
done
