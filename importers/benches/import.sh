#!/usr/bin/env bash
# Git import benchmark: hero import vs `git fast-export --all | fossil import --git`, and the
# resulting repository size vs git's own after `git gc --aggressive`.
#
# usage: importers/benches/import.sh [N_COMMITS]   (default 10000 for the generated repository)
# Needs: git, fossil, python3, /usr/bin/time. Run from anywhere inside the workspace.
set -euo pipefail

N=${1:-10000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../benches/lib/gen-history.sh
source "$ROOT/benches/lib/gen-history.sh"
WORK=$(mktemp -d /tmp/hero-import-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

cargo build --release -q -p hero-importers --example import --manifest-path "$ROOT/Cargo.toml"
BIN="$ROOT/target/release/examples/import"

export GIT_CONFIG_NOSYSTEM=1 HOME="$WORK" USER="${USER:-bench}"

# time_cmd LABEL CMD...: prints "seconds max_rss_kib"
time_cmd() {
    local log="$WORK/time.$1"
    shift
    /usr/bin/time -v "$@" >"$log.out" 2>"$log"
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
    # h:mm:ss or m:ss.cc -> seconds
    local secs
    secs=$(echo "$wall" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
    echo "$secs $rss"
}


bench() {
    local name=$1 src=$2
    local commits
    commits=$(git -C "$src" rev-list --all --count)
    # hero
    read -r h_secs h_rss < <(time_cmd "hero-$name" "$BIN" "$src" "$WORK/$name.hero")
    local h_size
    h_size=$(stat -c %s "$WORK/$name.hero")
    # fossil
    read -r f_secs f_rss < <(time_cmd "fossil-$name" sh -c \
        "git -C '$src' fast-export --all | fossil import --git '$WORK/$name.fossil' >/dev/null")
    local f_size
    f_size=$(stat -c %s "$WORK/$name.fossil")
    # git gc --aggressive
    git clone -q --bare --no-local "$src" "$WORK/$name.gc.git"
    read -r g_secs _ < <(time_cmd "gc-$name" git -C "$WORK/$name.gc.git" gc -q --aggressive)
    local g_size
    g_size=$(du -sb "$WORK/$name.gc.git/objects" | cut -f1)
    printf '%-10s commits=%-6s | hero %7.2fs %6d KiB rss %10d B | fossil %7.2fs %6d KiB rss %10d B | git-gc-aggressive %7.2fs %10d B | speedup %.1fx size/git %.2fx\n' \
        "$name" "$commits" "$h_secs" "$h_rss" "$h_size" "$f_secs" "$f_rss" "$f_size" "$g_secs" "$g_size" \
        "$(echo "$f_secs / ($h_secs + 0.001)" | bc -l)" "$(echo "$h_size / $g_size" | bc -l)"
    cat "$WORK/time.hero-$name.out"
    # Second run: incremental no-op, then store statistics (not timed above).
    "$BIN" "$src" "$WORK/$name.hero" --stats --verify 2>/dev/null
}

if git -C "$ROOT" rev-parse -q --verify HEAD >/dev/null 2>&1; then
    git clone -q --bare --no-local "$ROOT" "$WORK/own.git"
    bench own "$WORK/own.git"
fi
generate_history "$WORK/gen.git" "$N"
bench generated "$WORK/gen.git"
