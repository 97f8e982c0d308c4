#!/usr/bin/env bash
# A daemon's weight over time on loopback (`--net local`): HDM_NODES daemons (default 3), each
# with its own repository, a real FUSE mount and a WebDAV share, all peers of each other.
#
#   fresh      RSS of every daemon once all are ready, and after HDM_SETTLE s (default 10)
#   idle       over HDM_IDLE s (default 60) with nothing changing: CPU of daemon 0, and UDP
#              bytes between the daemons (iptables counters on their ports, both ways,
#              headers included), given per 10 s
#   saves      HDM_SAVES one-line saves (default 200), round robin over the mounts, each
#              waited for in every mount before the next; RSS of every daemon every
#              HDM_EVERY saves (default 50)
#   rest       RSS after HDM_REST s (default 30) without changes
#
# usage: benches/daemon_memory.sh
# env:   HDM_NODES, HDM_SAVES, HDM_EVERY, HDM_IDLE, HDM_REST, HDM_SETTLE, HDM_PORT_BASE (47700),
#        HDM_PROFILE (release), HDM_KEEP=1 (keep the work dir and logs), HDM_HEAPTRACK=1 (run
#        daemon 0 under heaptrack; the report's path is printed at the end), HDM_CORPUS=GIT_DIR
#        (the fleet's repository is that history — e.g. benches/corpus.sh's real-shaped one,
#        its branches and tags imported — with the configuration committed on its main)
# Needs: root (FUSE, iptables), fusermount3, python3, iptables. Work dir /tmp/hero-daemon-mem.*
set -euo pipefail

N=${HDM_NODES:-3}
SAVES=${HDM_SAVES:-200}
EVERY=${HDM_EVERY:-50}
IDLE=${HDM_IDLE:-60}
REST=${HDM_REST:-30}
SETTLE=${HDM_SETTLE:-10}
PORT_BASE=${HDM_PORT_BASE:-47700}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
for tool in python3 iptables fusermount3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run as root (FUSE mounts, iptables byte counters)" >&2; exit 1; }
PROFILE=${HDM_PROFILE:-release}
cargo build --profile "$PROFILE" -q -p heroctl --manifest-path "$ROOT/Cargo.toml"
if [ "$PROFILE" = dev ]; then H=$ROOT/target/debug/heroctl; else H=$ROOT/target/$PROFILE/heroctl; fi
export HERO_NET=local HERO_AUTHOR_NAME=bench HERO_AUTHOR_EMAIL=bench@localhost
WORK=$(mktemp -d /tmp/hero-daemon-mem.XXXXXX)
TAG="hdm$$"
PIDS=()
MNTS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    for m in "${MNTS[@]}"; do fusermount3 -u -z "$m" 2>/dev/null || true; done
    iptables -S INPUT 2>/dev/null | grep -- "$TAG" | sed 's/^-A /-D /' | while read -r rule; do
        eval iptables "$rule" || true
    done
    if [ "${HDM_KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# shellcheck source=lib/fleet.sh
source "$ROOT/benches/lib/fleet.sh"

# The fleet: node 0 initialises, the others clone it; every node mounts and shares.
mkdir -p "$WORK/work/.hero"
ids=()
peers=""
nodes=""
for ((i = 0; i < N; i++)); do
    id=$($H -R "$WORK/n$i.hero" id)
    ids+=("$id")
    port=$((PORT_BASE + i))
    peers+="${peers:+, }\"$id@127.0.0.1:$port\""
    nodes+=$'\n'"[node.$id]"$'\n'"listen = \"127.0.0.1:$port\""$'\n'"[node.$id.dav]"$'\n'"addr = \"127.0.0.1:$((PORT_BASE + 100 + i))\""$'\n'
    iptables -I INPUT -p udp --dport "$port" -m comment --comment "$TAG" -j ACCEPT
    iptables -I INPUT -p udp --sport "$port" -m comment --comment "$TAG" -j ACCEPT
done
cat >"$WORK/work/.hero/daemon.toml" <<CONF
peers = [$peers]

[mount]
idle_commit_ms = 100

[dav]
enabled = true
$nodes
CONF
$H -R "$WORK/n0.hero" init >/dev/null
if [ -n "${HDM_CORPUS:-}" ]; then
    $H -R "$WORK/n0.hero" import git "$HDM_CORPUS" >/dev/null
    $H -R "$WORK/n0.hero" checkout main "$WORK/co" >/dev/null
    mkdir -p "$WORK/co/.hero"
    cp "$WORK/work/.hero/daemon.toml" "$WORK/co/.hero/"
    $H -R "$WORK/n0.hero" commit "$WORK/co" -m "fleet configuration" >/dev/null
    rm -rf "$WORK/co"
else
    $H -R "$WORK/n0.hero" commit "$WORK/work" -m "fleet configuration" >/dev/null
fi
# Listing a peer lets no one in: an owner makes them members.
for ((i = 1; i < N; i++)); do $H -R "$WORK/n0.hero" member add "${ids[$i]}" --role owner >/dev/null; done
for ((i = 0; i < N; i++)); do
    if ((i > 0)); then
        $H -R "$WORK/n$i.hero" clone "${ids[0]}@127.0.0.1:$PORT_BASE" >/dev/null
    fi
    mkdir -p "$WORK/mnt$i"
    if [ "$i" = 0 ] && [ "${HDM_HEAPTRACK:-0}" = 1 ]; then
        heaptrack -o "$WORK/heap" "$H" -R "$WORK/n$i.hero" daemon --mount "$WORK/mnt$i" >"$WORK/n$i.log" 2>&1 &
    else
        "$H" -R "$WORK/n$i.hero" daemon --mount "$WORK/mnt$i" >"$WORK/n$i.log" 2>&1 &
    fi
    PIDS+=($!)
    MNTS+=("$WORK/mnt$i")
    wait_ticket "$WORK/n$i.log"
done
# The daemon's own pid (under heaptrack, the child of the shell it starts).
dpid() {
    local p=${PIDS[$1]} c
    c=$(pgrep -P "$p" -x heroctl || true)
    echo "${c:-$p}"
}
rss_all() {
    local i out=""
    for ((i = 0; i < N; i++)); do
        out+="$(( $(awk '/VmRSS/ {print $2}' "/proc/$(dpid "$i")/status") / 1024 )) "
    done
    echo "$out"
}
bytes() { iptables -L INPUT -v -x -n | awk -v t="$TAG" '$0 ~ t {s += $2} END {print s + 0}'; }

echo "hero daemon memory benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(git -C "$ROOT" rev-parse --short HEAD)"
echo "command: benches/daemon_memory.sh (HDM_NODES=$N HDM_SAVES=$SAVES HDM_IDLE=$IDLE HDM_REST=$REST HDM_PROFILE=$PROFILE HDM_CORPUS=${HDM_CORPUS:-})"
echo "RSS MiB per daemon, fresh: $(rss_all)"
sleep "$SETTLE"
echo "RSS MiB per daemon, after $SETTLE s: $(rss_all)"

tck=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
p0=$(dpid 0)
c0=$(cpu "$p0")
b0=$(bytes)
sleep "$IDLE"
c1=$(cpu "$p0")
b1=$(bytes)
python3 - "$c0" "$c1" "$tck" "$IDLE" "$b0" "$b1" "$N" <<'PY'
import sys
c0, c1, tck, idle, b0, b1, n = (float(x) for x in sys.argv[1:])
print(f"idle {idle:.0f} s: daemon 0 CPU {(c1 - c0) / tck:.2f} s ({(c1 - c0) / tck / idle * 100:.3f} %); "
      f"UDP between the {n:.0f} daemons {(b1 - b0) / idle * 10:.0f} B per 10 s")
PY

SAVE=$(
    cat <<'PY'
import os, sys, time
start, count, mnts = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
n = len(mnts)
for k in range(start, start + count):
    src = k % n
    content = f"line {k} from node {src} at {time.time_ns()}\n"
    with open(os.path.join(mnts[src], f"edit-{src}.txt"), "w") as f:
        f.write(content)
    t0 = time.monotonic()
    pending = set(range(n)) - {src}
    while pending:
        for i in list(pending):
            try:
                with open(os.path.join(mnts[i], f"edit-{src}.txt")) as f:
                    if f.read() == content:
                        pending.discard(i)
            except FileNotFoundError:
                pass
        if time.monotonic() - t0 > 60:
            sys.exit(f"save {k}: not everywhere after 60 s")
        time.sleep(0.002)
PY
)
done_saves=0
while ((done_saves < SAVES)); do
    step=$((SAVES - done_saves < EVERY ? SAVES - done_saves : EVERY))
    python3 -c "$SAVE" "$done_saves" "$step" "${MNTS[@]}"
    done_saves=$((done_saves + step))
    echo "RSS MiB per daemon after $done_saves saves: $(rss_all)"
done
sleep "$REST"
echo "RSS MiB per daemon after $REST s of rest: $(rss_all)"
if [ "${HDM_HEAPTRACK:-0}" = 1 ]; then
    kill "$(dpid 0)"
    wait "${PIDS[0]}" || true
    echo "heaptrack report: $(ls "$WORK"/heap* | head -1)"
    HDM_KEEP=1
fi
