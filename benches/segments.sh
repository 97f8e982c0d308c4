#!/usr/bin/env bash
# Read cost of segments (format 4) against loose records (format 3), same content, same binary,
# same run. A format-3 heroctl imports the corpus (the "before" file); a copy of it is upgraded
# with this build's `heroctl upgrade` (the "after" file: small records packed into segments).
# This build then reads both, each read cold (page cache dropped before it; needs root):
#   tree walk   `heroctl ls -r main` (every tree of the newest commit)
#   checkout    `heroctl checkout main DIR` (every tree and file of the newest commit)
#   log         `heroctl log` of every commit of main
#   verify      `heroctl verify` (every record decoded and hashed)
# Prints the file sizes and, per read, the median wall time of HSG_RUNS runs for both files
# and their ratio (after / before).
#
# usage: HSG_OLD_HEROCTL=/path/to/format-3/heroctl benches/segments.sh
# env:   HSG_CORPUS (default /tmp/corpus-real; benches/corpus.sh makes it), HSG_RUNS (default 3),
#        HSG_KEEP=1 keeps the work dir.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${HSG_RUNS:-3}
OLD=${HSG_OLD_HEROCTL:?"HSG_OLD_HEROCTL: a heroctl that writes format 3"}
C=${HSG_CORPUS:-/tmp/corpus-real}
[ -d "$C" ] || bash "$ROOT/benches/corpus.sh" "$C" >/dev/null
[ -w /proc/sys/vm/drop_caches ] || { echo "needs root (drop_caches)" >&2; exit 1; }
cargo build --release -q -p heroctl --manifest-path "$ROOT/Cargo.toml"
H=$ROOT/target/release/heroctl
WORK=$(mktemp -d /tmp/hero-segments-bench.XXXXXX)
cleanup() { if [ "${HSG_KEEP:-0}" = 1 ]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi; }
trap cleanup EXIT
export HERO_AUTHOR_NAME=bench HERO_AUTHOR_EMAIL=bench@example.com

"$OLD" -R "$WORK/before.hero" init >/dev/null
"$OLD" -R "$WORK/before.hero" import git "$C" >/dev/null 2>&1
cp "$WORK/before.hero" "$WORK/after.hero"
"$H" -R "$WORK/after.hero" upgrade >/dev/null
fmt() { "$H" -R "$1" --json stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["file_bytes"])'; }

median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
# cold FILE CMD...: wall ms of `heroctl -R FILE CMD...` after dropping the page cache; each run
# reads a fresh copy of FILE (a read may write, as the first write to an older format does).
cold() {
    local file=$1 ms=() t0
    shift
    for _ in $(seq "$RUNS"); do
        cp "$file" "$WORK/run.hero"
        rm -rf "$WORK/co"
        sync
        echo 3 >/proc/sys/vm/drop_caches
        t0=$(date +%s%N)
        "$H" -R "$WORK/run.hero" "$@" >/dev/null
        ms+=($((($(date +%s%N) - t0) / 1000000)))
    done
    median "${ms[@]}"
}

echo "## Reads of segments (format 4) against loose records (format 3)"
echo
echo "- command: \`HSG_OLD_HEROCTL=$OLD benches/segments.sh\` (release build; heroctl $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')), HSG_RUNS=$RUNS, corpus $C"
echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); load: $(uptime | sed 's/.*load/load/')"
echo "- file: before $(du -B1 "$WORK/before.hero" | cut -f1) B in use (length $(fmt "$WORK/before.hero")), after $(du -B1 "$WORK/after.hero" | cut -f1) B (length $(fmt "$WORK/after.hero"))"
echo
echo "| read (cold, median ms) | format 3 | format 4 | 4 / 3 |"
echo "|---|---|---|---|"
for read in "tree walk:ls -r main" "checkout:checkout main $WORK/co" "log:log" "verify:verify"; do
    name=${read%%:*}
    # shellcheck disable=SC2086 # the command's words
    b=$(cold "$WORK/before.hero" ${read#*:})
    # shellcheck disable=SC2086
    a=$(cold "$WORK/after.hero" ${read#*:})
    echo "| $name | $b | $a | $(python3 -c "print(f'{$a/max($b,1):.2f}')") |"
done
