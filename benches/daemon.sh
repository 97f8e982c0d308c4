#!/usr/bin/env bash
# Daemon benchmark on loopback (`--net local`), every daemon with its own repository and a real
# FUSE mount, all of them peers of each other (the fleet configuration of docs/daemon.md):
#
#   propagation  a one-line edit written and closed in one mount, then the time until it is
#                readable with the new content in the next node's mount ("one") and in every
#                other mount ("all"); HDB_EDITS edits, each from the next node in turn, each
#                after the previous one arrived everywhere; median, p99 and max, for each
#                fleet size in HDB_SIZES. The mount's idle commit (mount.idle_commit_ms, default
#                100 ms) is part of the figure.
#   bytes        one one-line change between two daemons whose connection is open, counted with
#                iptables on the daemons' UDP ports (IP packets both ways, headers included,
#                keep-alives in the window too; from a quiet moment after a warm-up edit, the
#                5 s from writing the change, and the same 5 s with nothing changing before it:
#                their difference is the change's cost), vs `git fetch` of the same kind of change from
#                `git daemon` (TCP port, both ways), and `fossil pull` from `fossil server` when
#                fossil is installed.
#   idle         CPU time and RSS of one daemon of the largest fleet over HDB_IDLE_SECS seconds
#                with nothing changing.
#
# usage: benches/daemon.sh
# env:   HDB_SIZES (default "3 10"; empty: bytes only), HDB_EDITS (default 100), HDB_IDLE_SECS (default 60),
#        HDB_PORT_BASE (default 47600), HDB_KEEP=1 (keep the work dir and its logs),
#        HDB_PROFILE (default release; `dev` uses target/debug: bytes are the same, times are not),
#        HDB_CORPUS=GIT_DIR (bytes also with the history of that git repository, e.g. the corpus
#        of benches/corpus.sh: its branches and tags imported, the configuration committed
#        on its main branch).
# Needs: root (FUSE, iptables), fusermount3, python3, git, iptables. Work dir /tmp/hero-daemon-bench.*
set -euo pipefail

SIZES=${HDB_SIZES-3 10}
EDITS=${HDB_EDITS:-100}
IDLE_SECS=${HDB_IDLE_SECS:-60}
PORT_BASE=${HDB_PORT_BASE:-47600}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
for tool in python3 git iptables fusermount3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run as root (FUSE mounts, iptables byte counters)" >&2; exit 1; }
[ -e /dev/fuse ] || { echo "missing: /dev/fuse" >&2; exit 1; }

PROFILE=${HDB_PROFILE:-release}
cargo build --profile "$PROFILE" -q -p heroctl --manifest-path "$ROOT/Cargo.toml"
if [ "$PROFILE" = dev ]; then H=$ROOT/target/debug/heroctl; else H=$ROOT/target/$PROFILE/heroctl; fi
export HERO_NET=local HERO_AUTHOR_NAME=bench HERO_AUTHOR_EMAIL=bench@localhost
WORK=$(mktemp -d /tmp/hero-daemon-bench.XXXXXX)
TAG="hdb$$"
PIDS=()
MNTS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    for m in "${MNTS[@]}"; do fusermount3 -u -z "$m" 2>/dev/null || true; done
    iptables -S INPUT 2>/dev/null | grep -- "$TAG" | sed 's/^-A /-D /' | while read -r rule; do
        eval iptables "$rule" || true
    done
    if [ "${HDB_KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# shellcheck source=lib/fleet.sh
source "$ROOT/benches/lib/fleet.sh"

# fleet DIR N: N nodes under DIR, all peers of each other; daemons started, mounts up.
# Sets NODE_PIDS and NODE_MNTS.
fleet() {
    local dir=$1 n=$2 i
    fleet_config "$dir" "$n"
    local -a ids=("${FLEET_IDS[@]}")
    if [ -n "${CORPUS:-}" ]; then
        # The corpus's history, the configuration committed on its main branch.
        $H -R "$dir/n0.hero" init >/dev/null
        $H -R "$dir/n0.hero" import git "$CORPUS" >/dev/null
        $H -R "$dir/n0.hero" checkout main "$dir/co" >/dev/null
        mkdir -p "$dir/co/.hero"
        cp "$dir/work/.hero/daemon.toml" "$dir/co/.hero/"
        $H -R "$dir/n0.hero" commit "$dir/co" -m "fleet configuration" >/dev/null
        rm -rf "$dir/co"
    else
        $H -R "$dir/n0.hero" init >/dev/null
        $H -R "$dir/n0.hero" commit "$dir/work" -m "fleet configuration" >/dev/null
    fi
    # Listing a peer lets no one in: an owner makes them members.
    for ((i = 1; i < n; i++)); do $H -R "$dir/n0.hero" member add "${ids[$i]}" --role owner >/dev/null; done
    NODE_PIDS=()
    NODE_MNTS=()
    for ((i = 0; i < n; i++)); do
        if ((i > 0)); then
            $H -R "$dir/n$i.hero" clone "${ids[0]}@127.0.0.1:$PORT_BASE" >/dev/null
        fi
        mkdir -p "$dir/mnt$i"
        $H -R "$dir/n$i.hero" daemon --mount "$dir/mnt$i" >"$dir/n$i.log" 2>&1 &
        PIDS+=($!)
        NODE_PIDS+=($!)
        MNTS+=("$dir/mnt$i")
        NODE_MNTS+=("$dir/mnt$i")
        wait_ticket "$dir/n$i.log"
    done
}

stop_fleet() {
    local p
    for p in "${NODE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${NODE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}

PROPAGATE=$(
    cat <<'PY'
import os, statistics, sys, time
edits = int(sys.argv[1]); mnts = sys.argv[2:]; n = len(mnts)
one, every = [], []
def pct(v, q):
    v = sorted(v); return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]
for k in range(edits):
    src = k % n
    name = f"bench-{src}.txt"
    content = f"line {k} from node {src} at {time.time_ns()}\n"
    with open(os.path.join(mnts[src], name), "w") as f:
        f.write(content)
    t0 = time.perf_counter()  # after close()
    pending = {i for i in range(n) if i != src}
    nxt = (src + 1) % n
    while pending:
        for i in list(pending):
            try:
                with open(os.path.join(mnts[i], name)) as f:
                    ok = f.read() == content
            except FileNotFoundError:
                ok = False
            if ok:
                pending.discard(i)
                if i == nxt:
                    one.append(time.perf_counter() - t0)
        if time.perf_counter() - t0 > 60:
            sys.exit(f"edit {k}: not everywhere after 60 s (missing on nodes {sorted(pending)})")
        time.sleep(0.001)
    every.append(time.perf_counter() - t0)
ms = lambda s: f"{s * 1000:.0f} ms"
for label, v in (("one", one), ("all", every)):
    print(f"  {label}: median {ms(statistics.median(v))}, p99 {ms(pct(v, 0.99))}, max {ms(max(v))} ({len(v)} edits)")
PY
)

echo "hero daemon benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(git -C "$ROOT" rev-parse --short HEAD)"
echo "command: benches/daemon.sh (HDB_SIZES='$SIZES' HDB_EDITS=$EDITS HDB_IDLE_SECS=$IDLE_SECS HDB_PROFILE=$PROFILE)"

last=""
for n in $SIZES; do
    echo "propagation, $n daemons (close() -> readable in the next node's mount / in all $((n - 1)) others):"
    fleet "$WORK/f$n" "$n"
    python3 -c "$PROPAGATE" "$EDITS" "${NODE_MNTS[@]}"
    last=$n
    if [ "$n" != "$(echo "$SIZES" | awk '{print $NF}')" ]; then stop_fleet; fi
done

# Idle cost of one daemon of the last (largest) fleet.
if [ -n "$last" ]; then
    pid=${NODE_PIDS[0]}
    tck=$(getconf CLK_TCK)
    cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
    c0=$(cpu "$pid")
    sleep "$IDLE_SECS"
    c1=$(cpu "$pid")
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    echo "idle, one daemon of $last (peers: $((last - 1))), ${IDLE_SECS} s: CPU $(python3 -c "print(f'{($c1 - $c0) / $tck:.2f} s ({($c1 - $c0) / $tck / $IDLE_SECS * 100:.2f} %)')"), RSS $((rss / 1024)) MiB"
    stop_fleet
fi

# Bytes on the wire for a one-line change.
ipt_add() { iptables -I INPUT -p "$1" --"$2" "$3" -m comment --comment "$TAG-$4" -j ACCEPT; }
ipt_bytes() {
    iptables -L INPUT -v -x -n | awk -v t="$TAG-$1" '$0 ~ t {s += $2} END {print s + 0}'
}
ipt_packets() {
    iptables -L INPUT -v -x -n | awk -v t="$TAG-$1" '$0 ~ t {s += $1} END {print s + 0}'
}
# Zeroes this run's rules only (other users of the machine may count with their own).
ipt_zero() {
    local n
    for n in $(iptables -L INPUT -n --line-numbers | awk -v t="$TAG" '$0 ~ t {print $1}'); do
        iptables -Z INPUT "$n"
    done
}

# hero_bytes DIR LABEL: two daemons under DIR, a warm-up edit, then the measured one.
hero_bytes() {
fleet "$1" 2
printf 'a line\n' >"${NODE_MNTS[0]}/wire.txt"
python3 - "${NODE_MNTS[1]}/wire.txt" <<'PY'
import sys, time
t = time.time()
while time.time() - t < 60:
    try:
        if open(sys.argv[1]).read() == "a line\n": sys.exit(0)
    except FileNotFoundError: pass
    time.sleep(0.005)
sys.exit("the warm-up edit did not arrive")
PY
for p in $PORT_BASE $((PORT_BASE + 1)); do ipt_add udp dport "$p" hero; done
# Start from a quiet connection: no start-up dial or retry still under way. iroh tries to
# holepunch to a peer when a connection to it opens and once more 5 s later (padded path
# probes, ~6 KB): wait those out, then for the counters to stay unchanged for 2 s.
sleep 6
quiet=$(ipt_bytes hero); still=0
for i in $(seq 1 300); do
    sleep 0.1
    now=$(ipt_bytes hero)
    if [ "$now" = "$quiet" ]; then still=$((still + 1)); else still=0; quiet=$now; fi
    [ "$still" -ge 20 ] && break
done
# The same 5 s with nothing changing: keep-alives.
ipt_zero
sleep 5
idle_bytes=$(ipt_bytes hero)
echo "  hero daemons$2, 5 s with nothing changing: $idle_bytes bytes ($(ipt_packets hero) packets)"
ipt_zero
t0=$(date +%s.%N)
printf 'a line, changed\n' >"${NODE_MNTS[0]}/wire.txt"
python3 - "${NODE_MNTS[1]}/wire.txt" <<'PY'
import sys, time
t = time.time()
while time.time() - t < 60:
    try:
        if open(sys.argv[1]).read() == "a line, changed\n": sys.exit(0)
    except FileNotFoundError: pass
    time.sleep(0.005)
sys.exit("the edit did not arrive")
PY
# The last acknowledgements, and a push the sender makes when no peer confirmed (1 s): the
# window ends 5 s after the change was written.
python3 -c "import time; time.sleep(max(0.0, $t0 + 5 - time.time()))"
change_bytes=$(ipt_bytes hero)
echo "  hero daemons$2, connection open, 5 s from the change: $change_bytes bytes ($(ipt_packets hero) packets); less the idle 5 s: $((change_bytes - idle_bytes)) bytes"
stop_fleet
iptables -S INPUT | grep -- "$TAG-hero" | sed 's/^-A /-D /' | while read -r rule; do
    eval iptables "$rule"
done
}

echo "bytes on the wire, one one-line change:"
hero_bytes "$WORK/bytes" ""
if [ -n "${HDB_CORPUS:-}" ]; then
    CORPUS=$HDB_CORPUS hero_bytes "$WORK/bytes-corpus" " (repository: the corpus $HDB_CORPUS)"
fi

# git: the same kind of change, fetched from git daemon.
G=$WORK/git
mkdir -p "$G"
git init -q "$G/origin"
printf 'a line\n' >"$G/origin/wire.txt"
git -C "$G/origin" add wire.txt
git -C "$G/origin" -c user.name=b -c user.email=b@l commit -qm one
GPORT=$((PORT_BASE + 50))
git daemon --reuseaddr --base-path="$G" --export-all --port="$GPORT" --listen=127.0.0.1 "$G" &
PIDS+=($!)
for i in $(seq 1 500); do git ls-remote "git://127.0.0.1:$GPORT/origin" >/dev/null 2>&1 && break; sleep 0.02; done
git clone -q "git://127.0.0.1:$GPORT/origin" "$G/clone"
printf 'a line, changed\n' >"$G/origin/wire.txt"
git -C "$G/origin" -c user.name=b -c user.email=b@l commit -qam two
ipt_add tcp dport "$GPORT" git
ipt_add tcp sport "$GPORT" git
ipt_zero
git -C "$G/clone" fetch -q
echo "  git fetch (git://, new connection): $(ipt_bytes git) bytes ($(ipt_packets git) packets)"

if command -v fossil >/dev/null; then
    export USER=${USER:-bench}
    F=$WORK/fossil
    mkdir -p "$F/work"
    fossil init -A bench "$F/origin.fossil" >/dev/null
    (cd "$F/work" && fossil open "$F/origin.fossil" >/dev/null && printf 'a line\n' >wire.txt &&
        fossil add wire.txt >/dev/null && fossil commit -m one --no-warnings >/dev/null)
    FPORT=$((PORT_BASE + 51))
    fossil server --port "$FPORT" --localhost "$F/origin.fossil" >/dev/null 2>&1 &
    PIDS+=($!)
    for i in $(seq 1 500); do fossil clone -A bench "http://127.0.0.1:$FPORT/" "$F/clone.fossil" >/dev/null 2>&1 && break; sleep 0.02; done
    (cd "$F/work" && printf 'a line, changed\n' >wire.txt && fossil commit -m two --no-warnings >/dev/null)
    ipt_add tcp dport "$FPORT" fossil
    ipt_add tcp sport "$FPORT" fossil
    ipt_zero
    fossil pull -R "$F/clone.fossil" "http://127.0.0.1:$FPORT/" >/dev/null 2>&1
    echo "  fossil pull (http, new connection): $(ipt_bytes fossil) bytes ($(ipt_packets fossil) packets)"
fi
