#!/usr/bin/env bash
# `heroctl gc` on a 10,000-commit repository (benches/lib/gen-history.sh: 400 files in 40
# directories, one line changed per commit), against `git gc` of the same history in the same
# run: wall time and peak memory (/usr/bin/time -v, "Maximum resident set size"), and the
# repository's size before and after. Both get the same garbage: a branch of 200 commits, each
# adding 20 KB of random text, made and deleted (hero: after the import, through `heroctl
# commit`, so the git mapping does not keep it; git: in a clone, pushed, then `branch -D` and
# `reflog expire`). `--grace 0` / `--prune=now` remove it at once.
#
# usage: benches/gc.sh [COMMITS]   (default 10000)
# Needs: git, python3, /usr/bin/time (Debian package `time`). Prints a Markdown table.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-10000}
[ -x /usr/bin/time ] || { echo "missing: /usr/bin/time (apt-get install time)" >&2; exit 1; }
. "$ROOT/benches/lib/gen-history.sh"
cargo build --release -q -p heroctl --manifest-path "$ROOT/Cargo.toml"
H=$ROOT/target/release/heroctl
WORK=$(mktemp -d /tmp/hero-gc-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export HERO_AUTHOR_NAME=bench HERO_AUTHOR_EMAIL=bench@example.com
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com

generate_history "$WORK/g.git" "$N"
git clone -q --bare "$WORK/g.git" "$WORK/main-only.git"
# A side branch of 200 commits, each adding a file of 20 KB of random text.
git clone -q "$WORK/g.git" "$WORK/side" 2>/dev/null
git -C "$WORK/side" checkout -q -b side
for i in $(seq 200); do
    head -c 15000 /dev/urandom | base64 > "$WORK/side/side-$i.txt"
    git -C "$WORK/side" add "side-$i.txt"; git -C "$WORK/side" commit -qm "side $i"
done
git -C "$WORK/side" push -q origin side
# hero imports main only (the branch is made through heroctl below).
"$H" -R "$WORK/r.hero" init >/dev/null
"$H" -R "$WORK/r.hero" import git "$WORK/main-only.git" >/dev/null
"$H" -R "$WORK/r.hero" branch side main >/dev/null
"$H" -R "$WORK/r.hero" checkout side "$WORK/co" >/dev/null
for i in $(seq 200); do
    cp "$WORK/side/side-$i.txt" "$WORK/co/"
    "$H" -R "$WORK/r.hero" commit "$WORK/co" -b side -m "side $i" >/dev/null
done
"$H" -R "$WORK/r.hero" branch -d side >/dev/null
measure() { # prints "wall_s maxrss_kib"
    /usr/bin/time -v "$@" >/dev/null 2> "$WORK/time.txt"
    awk -F': ' '/Elapsed \(wall clock\)/ {w=$2} /Maximum resident/ {m=$2} END {print w, m}' "$WORK/time.txt"
}
hb=$(stat -c %s "$WORK/r.hero")
read -r hw hm < <(measure "$H" -R "$WORK/r.hero" gc --grace 0)
ha=$(stat -c %s "$WORK/r.hero")
git -C "$WORK/g.git" branch -q -D side
git -C "$WORK/g.git" reflog expire --expire=now --all
gb=$(du -sb "$WORK/g.git/objects" | cut -f1)
read -r gw gm < <(measure git -C "$WORK/g.git" gc -q --prune=now)
ga=$(du -sb "$WORK/g.git/objects" | cut -f1)
echo "run: $0 $N, $(date -u '+%Y-%m-%d %H:%M UTC'), heroctl $(git -C "$ROOT" rev-parse --short HEAD)"
echo
echo "| $N commits + a deleted 200-commit branch | wall | peak RSS | size before | size after |"
echo "|---|---|---|---|---|"
echo "| \`heroctl gc --grace 0\` | $hw | $((hm / 1024)) MiB | $hb | $ha |"
echo "| \`git gc --prune=now\` (after \`branch -D\`, \`reflog expire --expire=now --all\`) | $gw | $((gm / 1024)) MiB | $gb | $ga |"
