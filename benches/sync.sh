#!/usr/bin/env bash
# Replication benchmark on loopback, hero vs git vs fossil on the same data in the same run:
#   clone:  `heroctl clone` from `heroctl serve` (QUIC/UDP, iroh)
#           vs `git clone --bare git://` from `git daemon`
#           vs `fossil clone http://` from `fossil server`
#   pull:   one line of one file changed on the origin, then `heroctl pull` / `git fetch` /
#           `fossil pull` on the clones.
# Bytes on the wire are counted the same way for all three: iptables byte counters on the
# server's port (INPUT --dport + OUTPUT --sport: IP packets both ways, headers included).
# hero's own count (bytes_in + bytes_out of its --json report: protocol payload) is shown too.
#
# Data sets: this workspace's git history; a generated git repository with N commits; a
# repository holding BIG_MIB MiB of random files (16 files, one commit).
#
# usage: benches/sync.sh [BIG_MIB]      (default 1024)
# env:   HSB_RUNS (clones per tool, median reported; default 3), HSB_COMMITS (default 10000), HSB_PORT_BASE (default 47310), HSB_KEEP=1 (keep the
#        work dir), HSB_LOG (RUST_LOG for `heroctl serve`/clients, e.g. hero_sync=debug;
#        logs land in the work dir).
# Needs: root (iptables), git, fossil, python3, iptables. Work dir: /tmp/hero-sync-bench.*
set -euo pipefail

BIG_MIB=${1:-1024}
N=${HSB_COMMITS:-10000}
RUNS=${HSB_RUNS:-3}
PORT_BASE=${HSB_PORT_BASE:-47310}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CMDLINE="$0${*:+ $*}"

for tool in git fossil python3 iptables ss; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run as root (iptables byte counters)" >&2; exit 1; }

cargo build --release -q -p heroctl --manifest-path "$ROOT/Cargo.toml"
H=$ROOT/target/release/heroctl

WORK=$(mktemp -d /tmp/hero-sync-bench.XXXXXX)
TAG="hsb$$"
PIDS=()

ipt_clear() {
    local ch line
    for ch in INPUT OUTPUT; do
        { iptables -S "$ch" 2>/dev/null || true; } | { grep -- "--comment $TAG" || true; } |
            sed 's/^-A /-D /' | while read -r line; do
                # shellcheck disable=SC2086
                iptables $line || true
            done
    done
}

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    ipt_clear
    if [ "${HSB_KEEP:-0}" = 1 ]; then
        echo "work dir kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export GIT_CONFIG_NOSYSTEM=1 HOME="$WORK" USER=bench
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
export HERO_AUTHOR_NAME=bench HERO_AUTHOR_EMAIL=bench@example.com
if [ -n "${HSB_LOG:-}" ]; then export RUST_LOG=$HSB_LOG; fi
git config --global init.defaultBranch main
mkdir -p "$WORK/src" "$WORK/git" "$WORK/hero" "$WORK/fossil" "$WORK/clones" "$WORK/logs"

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# median N...: the middle value (the lower middle of an even count).
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }

# Byte counters: wire_start PROTO PORT; ... ; wire_stop PROTO PORT -> prints bytes both ways.
wire_start() {
    iptables -I INPUT -p "$1" --dport "$2" -m comment --comment "$TAG" -j ACCEPT
    iptables -I OUTPUT -p "$1" --sport "$2" -m comment --comment "$TAG" -j ACCEPT
}
wire_stop() {
    local i o
    i=$(iptables -L INPUT -v -x -n | awk -v p="$1" -v m="dpt:$2" -v t="$TAG" \
        'index($0, "/* " t " */") { for (k=2;k<=NF;k++) if ($k==m && $(k-1)==p) s+=$2 } END {print s+0}')
    o=$(iptables -L OUTPUT -v -x -n | awk -v p="$1" -v m="spt:$2" -v t="$TAG" \
        'index($0, "/* " t " */") { for (k=2;k<=NF;k++) if ($k==m && $(k-1)==p) s+=$2 } END {print s+0}')
    iptables -D INPUT -p "$1" --dport "$2" -m comment --comment "$TAG" -j ACCEPT
    iptables -D OUTPUT -p "$1" --sport "$2" -m comment --comment "$TAG" -j ACCEPT
    echo $((i + o))
}

# measure LABEL PROTO PORT CMD...: runs CMD (stdout -> logs/LABEL.out, stderr -> .err) and
# sets MS (wall, ms) and WIRE (bytes both ways on PORT).
measure() {
    local label=$1 proto=$2 port=$3
    shift 3
    # Nothing another tool left dirty is written back during this run (fsyncs wait for it).
    sync
    wire_start "$proto" "$port"
    local t0 t1
    t0=$(now_ms)
    if ! "$@" >"$WORK/logs/$label.out" 2>"$WORK/logs/$label.err"; then
        echo "FAILED: $label: $*" >&2
        tail -20 "$WORK/logs/$label.err" >&2
        wire_stop "$proto" "$port" >/dev/null
        exit 1
    fi
    t1=$(now_ms)
    WIRE=$(wire_stop "$proto" "$port")
    MS=$((t1 - t0))
}

wait_tcp() {
    local i
    for i in $(seq 200); do
        if ss -Hltn "sport = :$1" | grep -q .; then return 0; fi
        sleep 0.05
    done
    echo "nothing listens on tcp port $1" >&2
    exit 1
}

port_free() {
    if ss -Hlntu "sport = :$1" | grep -q .; then
        echo "port $1 is in use; set HSB_PORT_BASE" >&2
        exit 1
    fi
}

declare -A R
# disk PATH: bytes allocated on disk (redb grows its file sparsely, so its length says less).
disk() { du -s -B1 "$1" | cut -f1; }
json_field() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); print(v[sys.argv[2]])' "$1" "$2"; }

# ---------------------------------------------------------------- data sets (sources)
# shellcheck source=lib/gen-history.sh
source "$ROOT/benches/lib/gen-history.sh"

# make_big DIR MIB: one commit with 16 files of random bytes (MIB/16 MiB each) and a README.
make_big() {
    local dir=$1 mib=$2
    git init -q --bare "$dir"
    python3 - "$mib" <<'PY' | git -C "$dir" fast-import --quiet
import os, sys
mib = int(sys.argv[1])
out = sys.stdout.buffer
each = mib * 1024 * 1024 // 16
msg = b"random data\n"
out.write(b"commit refs/heads/main\n")
out.write(b"committer Bench <bench@example.com> 1600000000 +0000\n")
out.write(b"data %d\n" % len(msg) + msg)
readme = b"".join(b"line %d of the readme\n" % i for i in range(100))
out.write(b"M 644 inline README.txt\n")
out.write(b"data %d\n" % len(readme) + readme + b"\n")
for k in range(16):
    out.write(b"M 644 inline data/file%02d.bin\n" % k)
    out.write(b"data %d\n" % each)
    left = each
    while left:
        chunk = os.urandom(min(left, 1 << 22))
        out.write(chunk)
        left -= len(chunk)
    out.write(b"\n")
PY
}

# ---------------------------------------------------------------- servers
GIT_PORT=$PORT_BASE
port_free "$GIT_PORT"
git daemon --export-all --base-path="$WORK/git" --reuseaddr --listen=127.0.0.1 \
    --port="$GIT_PORT" >"$WORK/logs/git-daemon.log" 2>&1 &
PIDS+=($!)
wait_tcp "$GIT_PORT"

start_hero() { # REPO PORT -> sets HERO_PID, TICKET
    local repo=$1 port=$2 out i
    out="$WORK/logs/serve-$(basename "$repo").out"
    port_free "$port"
    "$H" -R "$repo" serve --net local --bind "127.0.0.1:$port" >"$out" \
        2>"$WORK/logs/serve-$(basename "$repo").err" &
    HERO_PID=$!
    PIDS+=("$HERO_PID")
    TICKET=
    for i in $(seq 400); do
        TICKET=$(sed -n 's/^ticket: //p' "$out")
        [ -n "$TICKET" ] && return 0
        kill -0 "$HERO_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "heroctl serve printed no ticket" >&2
    cat "$WORK/logs/serve-$(basename "$repo").err" >&2
    exit 1
}

start_fossil() { # REPO PORT -> sets FOSSIL_PID
    port_free "$2"
    fossil server --port "$2" --localhost "$1" >"$WORK/logs/fossil-$2.log" 2>&1 &
    FOSSIL_PID=$!
    PIDS+=("$FOSSIL_PID")
    wait_tcp "$2"
}

stop() { # PID
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    local p keep=()
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# ---------------------------------------------------------------- one data set
# bench NAME SRC_GIT EDIT_PATH PORT_OFFSET
bench() {
    local name=$1 src=$2 edit=$3 off=$4
    local hport=$((PORT_BASE + off)) fport=$((PORT_BASE + off + 1))
    local served=$WORK/git/$name.git a=$WORK/hero/$name.hero fa=$WORK/fossil/$name.fossil
    local t0

    log "$name: preparing the served repositories"
    git clone -q --bare --no-local "$src" "$served"
    t0=$(now_ms)
    git -C "$served" -c pack.threads=2 gc -q
    R[$name.prep.gitgc]=$(($(now_ms) - t0))
    R[$name.git.packs]=$(git -C "$served" count-objects -v | awk '/^packs:/ {print $2}')
    R[$name.git.loose]=$(git -C "$served" count-objects -v | awk '/^count:/ {print $2}')
    R[$name.commits]=$(git -C "$served" rev-list --all --count)
    R[$name.refs]=$(git -C "$served" for-each-ref | wc -l)
    local branch
    branch=$(git -C "$served" symbolic-ref --short HEAD)

    "$H" -R "$a" init >/dev/null
    t0=$(now_ms)
    "$H" -R "$a" --json import git "$served" >"$WORK/logs/$name.import.json"
    R[$name.prep.import]=$(($(now_ms) - t0))

    t0=$(now_ms)
    git -C "$served" fast-export --all 2>/dev/null | fossil import --git -A bench "$fa" >/dev/null
    R[$name.prep.fossil]=$(($(now_ms) - t0))
    fossil user capabilities nobody gjorz -R "$fa" >/dev/null

    R[$name.size.git]=$(disk "$served/objects")
    R[$name.size.hero]=$(disk "$a")
    R[$name.asize.hero]=$(stat -c %s "$a")
    R[$name.size.fossil]=$(disk "$fa")

    start_hero "$a" "$hport"
    local hpid=$HERO_PID ticket=$TICKET
    start_fossil "$fa" "$fport"
    local fpid=$FOSSIL_PID

    # --- clone
    local b=$WORK/clones/$name.hero gb=$WORK/clones/$name.git fb=$WORK/clones/$name.fossil
    "$H" -R "$a" allow add "$("$H" -R "$b" id)" >/dev/null
    # Each tool clones $RUNS times, in turns; the median time is reported.
    local run hero_ms=() git_ms=() fossil_ms=()
    for run in $(seq "$RUNS"); do
        rm -rf "$b" "$gb" "$fb"
        log "$name: clone (hero), run $run of $RUNS"
        measure "$name.clone.hero" udp "$hport" "$H" -R "$b" --json clone "$ticket" --net local
        hero_ms+=("$MS")
        R[$name.clone.wire.hero]=$WIRE
        log "$name: clone (git), run $run of $RUNS"
        measure "$name.clone.git" tcp "$GIT_PORT" git clone -q --bare "git://127.0.0.1:$GIT_PORT/$name.git" "$gb"
        git_ms+=("$MS")
        R[$name.clone.wire.git]=$WIRE
        log "$name: clone (fossil), run $run of $RUNS"
        measure "$name.clone.fossil" tcp "$fport" fossil clone "http://127.0.0.1:$fport/" "$fb"
        fossil_ms+=("$MS")
        R[$name.clone.wire.fossil]=$WIRE
    done
    R[$name.clone.ms.hero]=$(median "${hero_ms[@]}")
    R[$name.clone.ms.git]=$(median "${git_ms[@]}")
    R[$name.clone.ms.fossil]=$(median "${fossil_ms[@]}")
    R[$name.clone.runs.hero]="${hero_ms[*]}" R[$name.clone.runs.git]="${git_ms[*]}"
    R[$name.clone.self.hero]=$(($(json_field "$WORK/logs/$name.clone.hero.out" bytes_in) + \
        $(json_field "$WORK/logs/$name.clone.hero.out" bytes_out)))
    R[$name.clone.objects.hero]=$(json_field "$WORK/logs/$name.clone.hero.out" objects)
    R[$name.csize.hero]=$(disk "$b")
    R[$name.casize.hero]=$(stat -c %s "$b")
    R[$name.csize.git]=$(disk "$gb")
    R[$name.csize.fossil]=$(disk "$fb")

    # sanity: the clones hold the origin's head
    local gh
    gh=$(git -C "$gb" rev-parse "$branch")
    [ "$gh" = "$(git -C "$served" rev-parse "$branch")" ] || { echo "git clone differs" >&2; exit 1; }
    "$H" -R "$b" cat "$branch:$edit" | cmp -s - <(git -C "$served" show "$branch:$edit") ||
        { echo "hero clone differs at $branch:$edit" >&2; exit 1; }

    # --- no-op pull (nothing changed)
    log "$name: no-op pull"
    measure "$name.noop.hero" udp "$hport" "$H" -R "$b" --json pull --net local
    R[$name.noop.ms.hero]=$MS R[$name.noop.wire.hero]=$WIRE
    R[$name.noop.self.hero]=$(($(json_field "$WORK/logs/$name.noop.hero.out" bytes_in) + \
        $(json_field "$WORK/logs/$name.noop.hero.out" bytes_out)))
    measure "$name.noop.git" tcp "$GIT_PORT" git -C "$gb" fetch -q origin "+refs/heads/*:refs/heads/*"
    R[$name.noop.ms.git]=$MS R[$name.noop.wire.git]=$WIRE
    measure "$name.noop.fossil" tcp "$fport" fossil pull -R "$fb"
    R[$name.noop.ms.fossil]=$MS R[$name.noop.wire.fossil]=$WIRE

    # --- one-line change on each origin (not timed)
    log "$name: one-line change on the origins"
    # hero: checkout, edit, commit (while `heroctl serve` runs)
    local hw=$WORK/$name.hero-work
    "$H" -R "$a" checkout "$branch" "$hw" >/dev/null
    sed -i '1s/$/ (edited)/' "$hw/$edit"
    "$H" -R "$a" commit "$hw" -b "$branch" -m "one line" >/dev/null
    rm -rf "$hw"
    # git: plumbing in the served bare repository (same result as a work tree commit + push)
    local blob tree commit
    blob=$(git -C "$served" show "$branch:$edit" | sed '1s/$/ (edited)/' | git -C "$served" hash-object -w --stdin)
    export GIT_INDEX_FILE=$WORK/$name.index
    git -C "$served" read-tree "$branch"
    git -C "$served" update-index --cacheinfo "100644,$blob,$edit"
    tree=$(git -C "$served" write-tree)
    unset GIT_INDEX_FILE
    commit=$(git -C "$served" commit-tree "$tree" -p "$branch" -m "one line")
    git -C "$served" update-ref "refs/heads/$branch" "$commit"
    # fossil: a checkout of the served repository, commit
    local fw=$WORK/$name.fossil-work
    mkdir -p "$fw"
    (cd "$fw" && fossil open "$fa" "$branch" >/dev/null &&
        sed -i '1s/$/ (edited)/' "$edit" &&
        fossil commit -m "one line" --no-warnings >/dev/null &&
        fossil close >/dev/null)
    rm -rf "$fw"

    # --- pull the change
    log "$name: pull the change"
    measure "$name.pull.hero" udp "$hport" "$H" -R "$b" --json pull --net local
    R[$name.pull.ms.hero]=$MS R[$name.pull.wire.hero]=$WIRE
    R[$name.pull.self.hero]=$(($(json_field "$WORK/logs/$name.pull.hero.out" bytes_in) + \
        $(json_field "$WORK/logs/$name.pull.hero.out" bytes_out)))
    R[$name.pull.objects.hero]=$(json_field "$WORK/logs/$name.pull.hero.out" objects)
    measure "$name.pull.git" tcp "$GIT_PORT" git -C "$gb" fetch -q origin "+refs/heads/*:refs/heads/*"
    R[$name.pull.ms.git]=$MS R[$name.pull.wire.git]=$WIRE
    measure "$name.pull.fossil" tcp "$fport" fossil pull -R "$fb"
    R[$name.pull.ms.fossil]=$MS R[$name.pull.wire.fossil]=$WIRE

    # sanity: the change arrived everywhere
    "$H" -R "$b" cat "$branch:$edit" | sed -n 1p | grep -q '(edited)$' ||
        { echo "hero pull: the change did not arrive" >&2; exit 1; }
    git -C "$gb" show "$branch:$edit" | sed -n 1p | grep -q '(edited)$' ||
        { echo "git fetch: the change did not arrive" >&2; exit 1; }
    fossil cat -R "$fb" -r "$branch" "$edit" | sed -n 1p | grep -q '(edited)$' ||
        { echo "fossil pull: the change did not arrive" >&2; exit 1; }

    stop "$hpid"
    stop "$fpid"
}

# ---------------------------------------------------------------- run
START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_START=$(uptime)
SETS=()
if git -C "$ROOT" rev-parse -q --verify HEAD >/dev/null 2>&1; then
    git clone -q --bare --no-local "$ROOT" "$WORK/src/own.git"
    bench own "$WORK/src/own.git" README.md 1
    SETS+=(own)
fi
log "generating $N commits"
generate_history "$WORK/src/gen.git" "$N"
bench gen "$WORK/src/gen.git" src/mod0/file0.txt 3
SETS+=(gen)
log "generating $BIG_MIB MiB of random files"
make_big "$WORK/src/big.git" "$BIG_MIB"
bench big "$WORK/src/big.git" README.txt 5
SETS+=(big)
LOAD_END=$(uptime)

# ---------------------------------------------------------------- report
ratio() { if [ "${2:-0}" = 0 ]; then echo "-"; else echo "scale=2; $1 / $2" | bc; fi; }
secs() { echo "scale=2; $1 / 1000" | bc | sed 's/^\./0./'; }
hb() { numfmt --to=iec-i --suffix=B --format='%.1f' "$1"; }
row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$@"; }
desc() {
    case $1 in
    own) echo "this workspace's git history" ;;
    gen) echo "generated, $N commits" ;;
    big) echo "$BIG_MIB MiB of random files, 1 commit" ;;
    esac
}

echo
echo "## heroctl serve/clone/pull vs git daemon/clone/fetch vs fossil server/clone/pull (loopback)"
echo
echo "- command: \`$CMDLINE\` (release build; heroctl $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "- date: $START; $(git --version); fossil $(fossil version | awk '{print $5}')"
echo "- load at start: $LOAD_START"
echo "- load at end:   $LOAD_END"
echo "- wire bytes: iptables counters on the server port, both directions, IP headers included"
echo "  (hero: UDP/QUIC; git: TCP git://; fossil: TCP http). \"hero self\" = bytes_in + bytes_out"
echo "  from \`heroctl --json\` (protocol payload). git clones are \`--bare\` (no checkout), like"
echo "  hero's and fossil's clones. Served git repositories after \`git gc\` (packs/loose listed)."
echo "- sizes: bytes allocated on disk (du); hero's file length in parentheses (redb grows it sparsely)."
echo "- clones: each tool clones $RUNS times into a fresh directory, in turns; the median wall time"
echo "  is shown. Every run (ms): $(for s in "${SETS[@]}"; do printf '%s hero %s, git %s; ' "$s" "${R[$s.clone.runs.hero]}" "${R[$s.clone.runs.git]}"; done)"
echo
echo "| figure | hero | git | fossil | hero/git | hero/fossil |"
echo "|---|---|---|---|---|---|"
for s in "${SETS[@]}"; do
    d=$(desc "$s")
    row "**$s**: $d; ${R[$s.commits]} commits, ${R[$s.refs]} refs; served, size on disk" \
        "$(hb "${R[$s.size.hero]}") (length $(hb "${R[$s.asize.hero]}"))" "$(hb "${R[$s.size.git]}") (${R[$s.git.packs]} pack, ${R[$s.git.loose]} loose)" \
        "$(hb "${R[$s.size.fossil]}")" "$(ratio "${R[$s.size.hero]}" "${R[$s.size.git]}")" \
        "$(ratio "${R[$s.size.hero]}" "${R[$s.size.fossil]}")"
    row "$s: clone, wall (s, median of $RUNS)" "$(secs "${R[$s.clone.ms.hero]}")" "$(secs "${R[$s.clone.ms.git]}")" \
        "$(secs "${R[$s.clone.ms.fossil]}")" "$(ratio "${R[$s.clone.ms.hero]}" "${R[$s.clone.ms.git]}")" \
        "$(ratio "${R[$s.clone.ms.hero]}" "${R[$s.clone.ms.fossil]}")"
    row "$s: clone, bytes on the wire" "$(hb "${R[$s.clone.wire.hero]}") (self $(hb "${R[$s.clone.self.hero]}"), ${R[$s.clone.objects.hero]} objects)" \
        "$(hb "${R[$s.clone.wire.git]}")" "$(hb "${R[$s.clone.wire.fossil]}")" \
        "$(ratio "${R[$s.clone.wire.hero]}" "${R[$s.clone.wire.git]}")" \
        "$(ratio "${R[$s.clone.wire.hero]}" "${R[$s.clone.wire.fossil]}")"
    row "$s: clone, size on disk" "$(hb "${R[$s.csize.hero]}") (length $(hb "${R[$s.casize.hero]}"))" "$(hb "${R[$s.csize.git]}")" \
        "$(hb "${R[$s.csize.fossil]}")" "$(ratio "${R[$s.csize.hero]}" "${R[$s.csize.git]}")" \
        "$(ratio "${R[$s.csize.hero]}" "${R[$s.csize.fossil]}")"
    row "$s: pull, nothing new, wall (ms)" "${R[$s.noop.ms.hero]}" "${R[$s.noop.ms.git]}" \
        "${R[$s.noop.ms.fossil]}" "$(ratio "${R[$s.noop.ms.hero]}" "${R[$s.noop.ms.git]}")" \
        "$(ratio "${R[$s.noop.ms.hero]}" "${R[$s.noop.ms.fossil]}")"
    row "$s: pull, nothing new, bytes on the wire" "${R[$s.noop.wire.hero]} (self ${R[$s.noop.self.hero]})" \
        "${R[$s.noop.wire.git]}" "${R[$s.noop.wire.fossil]}" \
        "$(ratio "${R[$s.noop.wire.hero]}" "${R[$s.noop.wire.git]}")" \
        "$(ratio "${R[$s.noop.wire.hero]}" "${R[$s.noop.wire.fossil]}")"
    row "$s: pull one changed line, wall (ms)" "${R[$s.pull.ms.hero]}" "${R[$s.pull.ms.git]}" \
        "${R[$s.pull.ms.fossil]}" "$(ratio "${R[$s.pull.ms.hero]}" "${R[$s.pull.ms.git]}")" \
        "$(ratio "${R[$s.pull.ms.hero]}" "${R[$s.pull.ms.fossil]}")"
    row "$s: pull one changed line, bytes on the wire" "${R[$s.pull.wire.hero]} (self ${R[$s.pull.self.hero]}, ${R[$s.pull.objects.hero]} objects)" \
        "${R[$s.pull.wire.git]}" "${R[$s.pull.wire.fossil]}" \
        "$(ratio "${R[$s.pull.wire.hero]}" "${R[$s.pull.wire.git]}")" \
        "$(ratio "${R[$s.pull.wire.hero]}" "${R[$s.pull.wire.fossil]}")"
done
echo
echo "Preparation (not compared): $(for s in "${SETS[@]}"; do
    printf '%s: git gc %ss, heroctl import git %ss, fossil import %ss; ' "$s" \
        "$(secs "${R[$s.prep.gitgc]}")" "$(secs "${R[$s.prep.import]}")" "$(secs "${R[$s.prep.fossil]}")"
done)"
