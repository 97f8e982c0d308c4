#!/usr/bin/env bash
# Replication benchmark on loopback, hero vs git vs fossil on the same data in the same run:
#   clone:  `heroctl clone` from `heroctl serve` (QUIC/UDP, iroh)
#           vs `git clone --bare git://` from `git daemon`
#           vs `fossil clone http://` from `fossil server`
#   pull:   nothing changed, then one line of one file changed on the origin (on the branch
#           that sorts last among the origin's branches), then `heroctl pull` / `git fetch` /
#           `fossil pull` on the clones; then hero's two pulls again with `heroctl daemon`
#           running for the clone (the pull goes through the daemon's open connection),
#           compared with git's and fossil's pulls (which have no such daemon).
# Bytes on the wire are counted the same way for all three: iptables byte counters on the
# server's port (INPUT --dport + OUTPUT --sport: IP packets both ways, headers included).
# hero's own count (bytes_in + bytes_out of its --json report: protocol payload) is shown too.
#
# Each tool clones, pulls nothing new and pulls a one-line change HSB_RUNS times (a new change
# each time), in turns; medians are reported. A command that fails does not stop the run: its
# error is printed, the figure reads FAILED (or "FAILED in k of n runs" next to the median of
# the others), and the errors are listed under the table.
#
# Data sets (HSB_SETS, default "own gen big corpus"):
#   own     this workspace's git history
#   gen     a generated single-branch repository with HSB_COMMITS commits (one line per commit)
#   big     BIG_MIB MiB of random files (16 files, one commit)
#   corpus  the realistic corpus of benches/corpus.sh (about 5,000 commits, 130+ branches,
#           merges, cherry-picks, 400 tags, real Rust sources); the change is made on the
#           branch that sorts last
#
# usage: benches/sync.sh [BIG_MIB]      (default 1024)
# env:   HSB_SETS (see above), HSB_RUNS (runs per tool and figure, median reported; default 3),
#        HSB_COMMITS (default 10000), HSB_CORPUS (an existing corpus repository to use instead
#        of building one), HSB_CORPUS_SEED / HSB_CORPUS_COMMITS (benches/corpus.sh -s / -n;
#        default 1 / 5000), HSB_PORT_BASE (default 47310), HSB_KEEP=1 (keep the work dir),
#        HSB_LOG (RUST_LOG for `heroctl serve`/clients, e.g. hero_sync=debug; logs land in the
#        work dir), HSB_PROFILE (default release; `dev` uses target/debug: bytes are the same,
#        times are not).
# Needs: root (iptables), git, fossil, python3, iptables. Work dir: /tmp/hero-sync-bench.*
set -euo pipefail

BIG_MIB=${1:-1024}
N=${HSB_COMMITS:-10000}
SETS_WANTED=${HSB_SETS:-own gen big corpus}
for s in $SETS_WANTED; do
    case $s in own | gen | big | corpus) ;; *) echo "unknown data set in HSB_SETS: $s" >&2; exit 1 ;; esac
done
RUNS=${HSB_RUNS:-3}
PORT_BASE=${HSB_PORT_BASE:-47310}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CMDLINE="$0${*:+ $*}"

for tool in git fossil python3 iptables ss; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run as root (iptables byte counters)" >&2; exit 1; }

PROFILE=${HSB_PROFILE:-release}
cargo build --profile "$PROFILE" -q -p heroctl --manifest-path "$ROOT/Cargo.toml"
if [ "$PROFILE" = dev ]; then H=$ROOT/target/debug/heroctl; else H=$ROOT/target/$PROFILE/heroctl; fi

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

# benches/corpus.sh reads the cargo registry under the real home
export CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
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

FAILURES=()
# failed LABEL WHAT: records a failure for the report (and says it now).
failed() {
    echo "FAILED: $1: $2" >&2
    FAILURES+=("$1: $2")
}

# measure LABEL PROTO PORT CMD...: runs CMD (stdout -> logs/LABEL.out, stderr -> .err) and
# sets MS (wall, ms) and WIRE (bytes both ways on PORT). If CMD fails: prints and records its
# error, and returns 1.
measure() {
    local label=$1 proto=$2 port=$3
    shift 3
    # Nothing another tool left dirty is written back during this run (fsyncs wait for it).
    sync
    wire_start "$proto" "$port"
    local t0 t1 rc=0
    t0=$(now_ms)
    "$@" >"$WORK/logs/$label.out" 2>"$WORK/logs/$label.err" || rc=$?
    t1=$(now_ms)
    WIRE=$(wire_stop "$proto" "$port")
    MS=$((t1 - t0))
    if [ "$rc" != 0 ]; then
        tail -20 "$WORK/logs/$label.err" >&2
        failed "$label" "exit status $rc: $(grep -v '^[[:space:]]*$' "$WORK/logs/$label.err" |
            tail -3 | tr '\n' ' ' | cut -c1-400)"
        return 1
    fi
}

# trial SET OP TOOL PROTO PORT CMD...: one run of CMD (see measure), kept in the run lists of
# SET.OP for TOOL; returns 1 if it failed.
trial() {
    local k=$1.$2 t=$3 proto=$4 port=$5
    shift 5
    local n=$((${R[$k.n.$t]:-0} + 1))
    R[$k.n.$t]=$n
    if measure "$k.$t.$n" "$proto" "$port" "$@"; then
        R[$k.mslist.$t]+="$MS "
        R[$k.wirelist.$t]+="$WIRE "
        R[$k.out.$t]=$WORK/logs/$k.$t.$n.out
        return 0
    fi
    R[$k.fail.$t]=$((${R[$k.fail.$t]:-0} + 1))
    return 1
}

# untrial SET OP TOOL WHY: the last run of TOOL did not do its job after all.
untrial() {
    local k=$1.$2 t=$3 l
    for l in mslist wirelist; do
        R[$k.$l.$t]=$(echo "${R[$k.$l.$t]}" | awk '{ for (i = 1; i < NF; i++) printf "%s ", $i }')
    done
    R[$k.fail.$t]=$((${R[$k.fail.$t]:-0} + 1))
    failed "$k.$t.${R[$k.n.$t]}" "$4"
}

# settle SET OP TOOL: R[SET.OP.ms.TOOL], R[SET.OP.wire.TOOL]: medians of the runs that worked,
# or FAILED.
settle() {
    local k=$1.$2 t=$3
    if [ -n "${R[$k.mslist.$t]:-}" ]; then
        # shellcheck disable=SC2086
        R[$k.ms.$t]=$(median ${R[$k.mslist.$t]})
        # shellcheck disable=SC2086
        R[$k.wire.$t]=$(median ${R[$k.wirelist.$t]})
    else
        R[$k.ms.$t]=FAILED
        R[$k.wire.$t]=FAILED
    fi
}

# hero_self SET OP: hero's own byte count (and objects) of its last good run of OP.
hero_self() {
    local k=$1.$2 f
    f=${R[$k.out.hero]:-}
    if [ -z "$f" ]; then
        R[$k.self.hero]=- R[$k.objects.hero]=-
        return
    fi
    R[$k.self.hero]=$(($(json_field "$f" bytes_in) + $(json_field "$f" bytes_out)))
    R[$k.objects.hero]=$(json_field "$f" objects)
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
        # (the file may not exist yet)
        TICKET=$(sed -n 's/^ticket: //p' "$out" 2>/dev/null || true)
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
# edit_git SERVED BRANCH PATH MARK: one line changed on BRANCH of a bare repository, with
# plumbing (same result as a work tree commit + push).
edit_git() {
    local served=$1 branch=$2 edit=$3 mark=$4 blob tree commit
    blob=$(git -C "$served" show "$branch:$edit" | sed "1s/\$/ $mark/" | git -C "$served" hash-object -w --stdin)
    export GIT_INDEX_FILE=$WORK/edit.index
    git -C "$served" read-tree "$branch"
    git -C "$served" update-index --cacheinfo "100644,$blob,$edit"
    tree=$(git -C "$served" write-tree)
    unset GIT_INDEX_FILE
    commit=$(git -C "$served" commit-tree "$tree" -p "$branch" -m "one line")
    git -C "$served" update-ref "refs/heads/$branch" "$commit"
}

# first_line_is CMD... -- MARK: the first line of CMD's output ends with MARK.
first_line_is() {
    local mark=${*: -1} line
    line=$("${@:1:$#-2}" 2>/dev/null | sed -n 1p) || return 1
    [ "${line% "$mark"}" != "$line" ]
}

# bench NAME SRC_GIT EDIT_PATH PORT_OFFSET [BRANCH]: BRANCH (default: the served repository's
# HEAD) is where the one-line change is made, in EDIT_PATH ("-": its first .rs file).
bench() {
    local name=$1 src=$2 edit=$3 off=$4 branch=${5:-}
    local hport=$((PORT_BASE + off)) fport=$((PORT_BASE + off + 1))
    local served=$WORK/git/$name.git a=$WORK/hero/$name.hero fa=$WORK/fossil/$name.fossil
    local t0 hero_ok=1 fossil_ok=1 t

    log "$name: preparing the served repositories"
    git clone -q --bare --no-local "$src" "$served"
    t0=$(now_ms)
    git -C "$served" -c pack.threads=2 gc -q
    R[$name.prep.gitgc]=$(($(now_ms) - t0))
    R[$name.git.packs]=$(git -C "$served" count-objects -v | awk '/^packs:/ {print $2}')
    R[$name.git.loose]=$(git -C "$served" count-objects -v | awk '/^count:/ {print $2}')
    R[$name.commits]=$(git -C "$served" rev-list --all --count)
    R[$name.refs]=$(git -C "$served" for-each-ref | wc -l)
    R[$name.branches]=$(git -C "$served" for-each-ref refs/heads | wc -l)
    [ -n "$branch" ] || branch=$(git -C "$served" symbolic-ref --short HEAD)
    if [ "$edit" = - ]; then
        edit=$(git -C "$served" ls-tree -r --name-only "$branch" | awk '/\.rs$/ && !f { print; f = 1 }')
    fi
    R[$name.branch]=$branch R[$name.edit]=$edit

    "$H" -R "$a" init >/dev/null
    t0=$(now_ms)
    if "$H" -R "$a" --json import git "$served" >"$WORK/logs/$name.import.json" 2>"$WORK/logs/$name.import.err"; then
        R[$name.prep.import]=$(($(now_ms) - t0))
    else
        R[$name.prep.import]=FAILED
        failed "$name.import.hero" "$(tail -3 "$WORK/logs/$name.import.err" | tr '\n' ' ')"
        hero_ok=0
    fi

    t0=$(now_ms)
    if git -C "$served" fast-export --all 2>/dev/null |
        fossil import --git -A bench "$fa" >/dev/null 2>"$WORK/logs/$name.fossil-import.err"; then
        R[$name.prep.fossil]=$(($(now_ms) - t0))
        fossil user capabilities nobody gjorz -R "$fa" >/dev/null
    else
        R[$name.prep.fossil]=FAILED
        failed "$name.import.fossil" "$(tail -3 "$WORK/logs/$name.fossil-import.err" | tr '\n' ' ')"
        fossil_ok=0
    fi

    R[$name.size.git]=$(disk "$served/objects")
    R[$name.size.hero]=$(disk "$a")
    R[$name.asize.hero]=$(stat -c %s "$a")
    R[$name.size.fossil]=$( [ -f "$fa" ] && disk "$fa" || echo FAILED)

    local hpid='' fpid='' ticket=''
    if [ $hero_ok = 1 ]; then
        start_hero "$a" "$hport"
        hpid=$HERO_PID ticket=$TICKET
    fi
    if [ $fossil_ok = 1 ]; then
        start_fossil "$fa" "$fport"
        fpid=$FOSSIL_PID
    fi

    # --- clone: each tool clones $RUNS times, in turns
    local b=$WORK/clones/$name.hero gb=$WORK/clones/$name.git fb=$WORK/clones/$name.fossil
    if [ $hero_ok = 1 ]; then "$H" -R "$a" allow add "$("$H" -R "$b" id)" >/dev/null; fi
    local run hero_c=0 git_c=0 fossil_c=0
    for run in $(seq "$RUNS"); do
        if [ $hero_ok = 1 ]; then
            rm -rf "$b"
            log "$name: clone (hero), run $run of $RUNS"
            hero_c=0
            trial "$name" clone hero udp "$hport" "$H" -R "$b" --json clone "$ticket" --net local && hero_c=1
        fi
        rm -rf "$gb"
        log "$name: clone (git), run $run of $RUNS"
        git_c=0
        trial "$name" clone git tcp "$GIT_PORT" git clone -q --bare "git://127.0.0.1:$GIT_PORT/$name.git" "$gb" && git_c=1
        if [ $fossil_ok = 1 ]; then
            rm -rf "$fb"
            log "$name: clone (fossil), run $run of $RUNS"
            fossil_c=0
            trial "$name" clone fossil tcp "$fport" fossil clone "http://127.0.0.1:$fport/" "$fb" && fossil_c=1
        fi
    done
    for t in hero git fossil; do settle "$name" clone "$t"; done
    hero_self "$name" clone
    R[$name.csize.hero]=$( [ $hero_c = 1 ] && disk "$b" || echo FAILED)
    R[$name.casize.hero]=$( [ $hero_c = 1 ] && stat -c %s "$b" || echo FAILED)
    R[$name.csize.git]=$( [ $git_c = 1 ] && disk "$gb" || echo FAILED)
    R[$name.csize.fossil]=$( [ $fossil_c = 1 ] && disk "$fb" || echo FAILED)

    # sanity: the clones hold the origin's head (a clone without it counts as failed)
    if [ $git_c = 1 ] && [ "$(git -C "$gb" rev-parse "$branch")" != "$(git -C "$served" rev-parse "$branch")" ]; then
        untrial "$name" clone git "the clone lacks $branch"
        git_c=0
    fi
    if [ $hero_c = 1 ] && ! "$H" -R "$b" cat "$branch:$edit" 2>/dev/null | cmp -s - <(git -C "$served" show "$branch:$edit"); then
        untrial "$name" clone hero "the clone differs at $branch:$edit"
        hero_c=0
    fi
    for t in hero git fossil; do settle "$name" clone "$t"; done

    # --- no-op pulls (nothing changed)
    for run in $(seq "$RUNS"); do
        log "$name: no-op pull, run $run of $RUNS"
        if [ $hero_c = 1 ]; then trial "$name" noop hero udp "$hport" "$H" -R "$b" --json pull --net local || true; fi
        if [ $git_c = 1 ]; then trial "$name" noop git tcp "$GIT_PORT" git -C "$gb" fetch -q origin "+refs/heads/*:refs/heads/*" || true; fi
        if [ $fossil_c = 1 ]; then trial "$name" noop fossil tcp "$fport" fossil pull -R "$fb" || true; fi
    done

    # --- a one-line change on each origin (not timed), then pulls; a new change every run
    local hw=$WORK/$name.hero-work fw=$WORK/$name.fossil-work mark
    for run in $(seq "$RUNS"); do
        mark="(edited $run)"
        log "$name: one-line change on $branch:$edit, run $run of $RUNS"
        if [ $hero_ok = 1 ]; then
            rm -rf "$hw"
            { "$H" -R "$a" checkout "$branch" "$hw" >/dev/null && sed -i "1s/\$/ $mark/" "$hw/$edit" &&
                "$H" -R "$a" commit "$hw" -b "$branch" -m "one line" >/dev/null; } 2>"$WORK/logs/$name.hero-edit.err" ||
                failed "$name.edit.hero.$run" "$(tail -3 "$WORK/logs/$name.hero-edit.err" | tr '\n' ' ')"
            rm -rf "$hw"
        fi
        edit_git "$served" "$branch" "$edit" "$mark"
        if [ $fossil_ok = 1 ]; then
            rm -rf "$fw"
            mkdir -p "$fw"
            (cd "$fw" && fossil open "$fa" "$branch" >/dev/null &&
                sed -i "1s/\$/ $mark/" "$edit" &&
                fossil commit -m "one line" --no-warnings >/dev/null &&
                fossil close >/dev/null)
            rm -rf "$fw"
        fi
        log "$name: pull the change, run $run of $RUNS"
        if [ $hero_c = 1 ] && trial "$name" pull hero udp "$hport" "$H" -R "$b" --json pull --net local; then
            first_line_is "$H" -R "$b" cat "$branch:$edit" -- "$mark" ||
                untrial "$name" pull hero "the change did not arrive ($branch:$edit)"
        fi
        if [ $git_c = 1 ] && trial "$name" pull git tcp "$GIT_PORT" git -C "$gb" fetch -q origin "+refs/heads/*:refs/heads/*"; then
            first_line_is git -C "$gb" show "$branch:$edit" -- "$mark" ||
                untrial "$name" pull git "the change did not arrive ($branch:$edit)"
        fi
        if [ $fossil_c = 1 ] && trial "$name" pull fossil tcp "$fport" fossil pull -R "$fb"; then
            first_line_is fossil cat -R "$fb" -r "$branch" "$edit" -- "$mark" ||
                untrial "$name" pull fossil "the change did not arrive ($branch:$edit)"
        fi
    done
    for t in hero git fossil; do
        settle "$name" noop "$t"
        settle "$name" pull "$t"
    done
    hero_self "$name" noop
    hero_self "$name" pull

    # --- the same pulls through a daemon running for the clone: `heroctl pull` asks it over
    # its control socket, and it runs the session on the connection it keeps open to the origin
    if [ $hero_c = 1 ]; then
        local dport=$((PORT_BASE + 20 + off)) dlog=$WORK/logs/$name.daemon dpid i
        port_free "$dport"
        "$H" -R "$b" daemon --net local --listen "127.0.0.1:$dport" >"$dlog.out" 2>"$dlog.err" &
        dpid=$!
        PIDS+=("$dpid")
        for i in $(seq 400); do
            grep -q '^ticket: ' "$dlog.out" 2>/dev/null && break
            kill -0 "$dpid" 2>/dev/null || break
            sleep 0.05
        done
        # iroh probes the path of a new connection again 5 s after it opened: wait that out.
        sleep 6
        for run in $(seq "$RUNS"); do
            log "$name: no-op pull through the daemon, run $run of $RUNS"
            if trial "$name" noopd hero udp "$hport" "$H" -R "$b" --json pull --net local &&
                [ "$(json_field "${R[$name.noopd.out.hero]}" via)" != daemon ]; then
                untrial "$name" noopd hero "the pull did not go through the daemon"
            fi
        done
        for run in $(seq "$RUNS"); do
            mark="(edited through the daemon $run)"
            rm -rf "$hw"
            { "$H" -R "$a" checkout "$branch" "$hw" >/dev/null && sed -i "1s/\$/ $mark/" "$hw/$edit" &&
                "$H" -R "$a" commit "$hw" -b "$branch" -m "one line" >/dev/null; } 2>"$WORK/logs/$name.hero-edit.err" ||
                failed "$name.edit.hero.d$run" "$(tail -3 "$WORK/logs/$name.hero-edit.err" | tr '\n' ' ')"
            rm -rf "$hw"
            log "$name: pull the change through the daemon, run $run of $RUNS"
            if trial "$name" pulld hero udp "$hport" "$H" -R "$b" --json pull --net local; then
                first_line_is "$H" -R "$b" cat "$branch:$edit" -- "$mark" ||
                    untrial "$name" pulld hero "the change did not arrive ($branch:$edit)"
            fi
        done
        stop "$dpid"
        settle "$name" noopd hero
        settle "$name" pulld hero
        hero_self "$name" noopd
        hero_self "$name" pulld
    fi

    if [ -n "$hpid" ]; then stop "$hpid"; fi
    if [ -n "$fpid" ]; then stop "$fpid"; fi
    return 0
}

# ---------------------------------------------------------------- run
wants() { [[ " $SETS_WANTED " == *" $1 "* ]]; }
START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_START=$(uptime)
SETS=()
if wants own && git -C "$ROOT" rev-parse -q --verify HEAD >/dev/null 2>&1; then
    git clone -q --bare --no-local "$ROOT" "$WORK/src/own.git"
    bench own "$WORK/src/own.git" README.md 1
    SETS+=(own)
fi
if wants gen; then
    log "generating $N commits"
    generate_history "$WORK/src/gen.git" "$N"
    bench gen "$WORK/src/gen.git" src/mod0/file0.txt 3
    SETS+=(gen)
fi
if wants big; then
    log "generating $BIG_MIB MiB of random files"
    make_big "$WORK/src/big.git" "$BIG_MIB"
    bench big "$WORK/src/big.git" README.txt 5
    SETS+=(big)
fi
CORPUS_SHAPE=
if wants corpus; then
    if [ -n "${HSB_CORPUS:-}" ]; then
        CORPUS_SRC=$HSB_CORPUS
        CORPUS_SHAPE="given: $HSB_CORPUS"
    else
        log "building the corpus (benches/corpus.sh)"
        CORPUS_SRC=$WORK/src/corpus.git
        HSC_AGGRESSIVE=0 "$ROOT/benches/corpus.sh" -s "${HSB_CORPUS_SEED:-1}" -n "${HSB_CORPUS_COMMITS:-5000}" \
            "$CORPUS_SRC" >"$WORK/logs/corpus.out" 2>"$WORK/logs/corpus.err" ||
            { cat "$WORK/logs/corpus.err" >&2; exit 1; }
        CORPUS_SHAPE=$(sed -n '1p' "$WORK/logs/corpus.out")
    fi
    last=$(git -C "$CORPUS_SRC" for-each-ref --sort=refname refs/heads --format='%(refname:short)' | tail -1)
    bench corpus "$CORPUS_SRC" - 7 "$last"
    SETS+=(corpus)
fi
LOAD_END=$(uptime)

# ---------------------------------------------------------------- report
num() { [[ ${1:-} =~ ^[0-9]+$ ]]; }
ratio() { if ! num "${1:-}" || ! num "${2:-}" || [ "$2" = 0 ]; then echo "-"; else echo "scale=2; $1 / $2" | bc; fi; }
secs() { if num "$1"; then echo "scale=2; $1 / 1000" | bc | sed 's/^\./0./'; else echo "$1"; fi; }
hb() { if num "$1"; then numfmt --to=iec-i --suffix=B --format='%.1f' "$1"; else echo "$1"; fi; }
ident() { echo "$1"; }
row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$@"; }
# cell FMT SET OP FIELD TOOL [EXTRA]: a median, formatted, with the failed runs if any.
cell() {
    local fmt=$1 k=$2.$3 f=$4 t=$5 extra=${6:-} v fails n
    v=${R[$k.$f.$t]:-FAILED}
    fails=${R[$k.fail.$t]:-0}
    n=${R[$k.n.$t]:-0}
    if [ "$v" = FAILED ]; then
        if [ "$n" = 0 ]; then echo "not run"; else echo "**FAILED** ($fails of $n runs)"; fi
        return
    fi
    v=$($fmt "$v")
    [ -n "$extra" ] && v="$v ($extra)"
    [ "$fails" != 0 ] && v="$v, **FAILED in $fails of $n runs**"
    echo "$v"
}
# fig SET OP FIELD FMT LABEL [HERO_EXTRA]: one row of the table.
fig() {
    local s=$1 op=$2 f=$3 fmt=$4 label=$5 extra=${6:-}
    row "$s: $label" "$(cell "$fmt" "$s" "$op" "$f" hero "$extra")" "$(cell "$fmt" "$s" "$op" "$f" git)" \
        "$(cell "$fmt" "$s" "$op" "$f" fossil)" \
        "$(ratio "${R[$s.$op.$f.hero]:-}" "${R[$s.$op.$f.git]:-}")" \
        "$(ratio "${R[$s.$op.$f.hero]:-}" "${R[$s.$op.$f.fossil]:-}")"
}
# figd SET OP PEER_OP FIELD FMT LABEL [HERO_EXTRA]: a row of hero's OP against git's and
# fossil's PEER_OP (they have no daemon; their pull opens a connection each time).
figd() {
    local s=$1 op=$2 pop=$3 f=$4 fmt=$5 label=$6 extra=${7:-}
    row "$s: $label" "$(cell "$fmt" "$s" "$op" "$f" hero "$extra")" "$(cell "$fmt" "$s" "$pop" "$f" git)" \
        "$(cell "$fmt" "$s" "$pop" "$f" fossil)" \
        "$(ratio "${R[$s.$op.$f.hero]:-}" "${R[$s.$pop.$f.git]:-}")" \
        "$(ratio "${R[$s.$op.$f.hero]:-}" "${R[$s.$pop.$f.fossil]:-}")"
}
desc() {
    case $1 in
    own) echo "this workspace's git history" ;;
    gen) echo "generated, $N commits" ;;
    big) echo "$BIG_MIB MiB of random files, 1 commit" ;;
    corpus) echo "realistic corpus (benches/corpus.sh)" ;;
    esac
}

echo
echo "## heroctl serve/clone/pull vs git daemon/clone/fetch vs fossil server/clone/pull (loopback)"
echo
echo "- command: \`$CMDLINE\` ($PROFILE build; heroctl $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "  HSB_SETS=\"$SETS_WANTED\" HSB_RUNS=$RUNS"
echo "- date: $START; $(git --version); fossil $(fossil version | awk '{print $5}')"
echo "- load at start: $LOAD_START"
echo "- load at end:   $LOAD_END"
echo "- wire bytes: iptables counters on the server port, both directions, IP headers included"
echo "  (hero: UDP/QUIC; git: TCP git://; fossil: TCP http). \"hero self\" = bytes_in + bytes_out"
echo "  from \`heroctl --json\` (protocol payload). git clones are \`--bare\` (no checkout), like"
echo "  hero's and fossil's clones. Served git repositories after \`git gc\` (packs/loose listed)."
echo "- sizes: bytes allocated on disk (du); hero's file length in parentheses (redb grows it sparsely)."
echo "- every figure but sizes: median of $RUNS runs per tool, tools in turns; each pull run pulls"
echo "  a new one-line change. The change is on branch (file): $(for s in "${SETS[@]}"; do printf '%s %s (%s); ' "$s" "${R[$s.branch]}" "${R[$s.edit]}"; done)"
echo "- every clone (ms): $(for s in "${SETS[@]}"; do printf '%s hero %s, git %s, fossil %s; ' "$s" "${R[$s.clone.mslist.hero]:-}" "${R[$s.clone.mslist.git]:-}" "${R[$s.clone.mslist.fossil]:-}"; done)"
[ -n "$CORPUS_SHAPE" ] && echo "- $CORPUS_SHAPE"
echo
echo "| figure | hero | git | fossil | hero/git | hero/fossil |"
echo "|---|---|---|---|---|---|"
for s in "${SETS[@]}"; do
    d=$(desc "$s")
    row "**$s**: $d; ${R[$s.commits]} commits, ${R[$s.branches]} branches, ${R[$s.refs]} refs; served, size on disk" \
        "$(hb "${R[$s.size.hero]}") (length $(hb "${R[$s.asize.hero]}"))" "$(hb "${R[$s.size.git]}") (${R[$s.git.packs]} pack, ${R[$s.git.loose]} loose)" \
        "$(hb "${R[$s.size.fossil]}")" "$(ratio "${R[$s.size.hero]}" "${R[$s.size.git]}")" \
        "$(ratio "${R[$s.size.hero]}" "${R[$s.size.fossil]}")"
    fig "$s" clone ms secs "clone, wall (s)"
    fig "$s" clone wire hb "clone, bytes on the wire" "self $(hb "${R[$s.clone.self.hero]}"), ${R[$s.clone.objects.hero]} objects"
    row "$s: clone, size on disk" "$(hb "${R[$s.csize.hero]}") (length $(hb "${R[$s.casize.hero]}"))" "$(hb "${R[$s.csize.git]}")" \
        "$(hb "${R[$s.csize.fossil]}")" "$(ratio "${R[$s.csize.hero]}" "${R[$s.csize.git]}")" \
        "$(ratio "${R[$s.csize.hero]}" "${R[$s.csize.fossil]}")"
    fig "$s" noop ms ident "pull, nothing new, wall (ms)"
    fig "$s" noop wire ident "pull, nothing new, bytes on the wire" "self ${R[$s.noop.self.hero]}"
    fig "$s" pull ms ident "pull one changed line, wall (ms)"
    fig "$s" pull wire ident "pull one changed line, bytes on the wire" "self ${R[$s.pull.self.hero]}, ${R[$s.pull.objects.hero]} objects"
    figd "$s" noopd noop ms ident "pull through the daemon, nothing new, wall (ms)"
    figd "$s" noopd noop wire ident "pull through the daemon, nothing new, bytes on the wire" "self ${R[$s.noopd.self.hero]:-}"
    figd "$s" pulld pull ms ident "pull one changed line through the daemon, wall (ms)"
    figd "$s" pulld pull wire ident "pull one changed line through the daemon, bytes on the wire" "self ${R[$s.pulld.self.hero]:-}, ${R[$s.pulld.objects.hero]:-} objects"
done
echo
echo "Preparation (not compared): $(for s in "${SETS[@]}"; do
    printf '%s: git gc %ss, heroctl import git %ss, fossil import %ss; ' "$s" \
        "$(secs "${R[$s.prep.gitgc]}")" "$(secs "${R[$s.prep.import]}")" "$(secs "${R[$s.prep.fossil]}")"
done)"
if [ ${#FAILURES[@]} -gt 0 ]; then
    echo
    echo "Failed commands (${#FAILURES[@]}; logs in the work dir, HSB_KEEP=1 keeps it):"
    for f in "${FAILURES[@]}"; do echo "- $f"; done
fi
