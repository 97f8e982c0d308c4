#!/usr/bin/env bash
# The web face against `fossil ui` on the same history, same run, loopback: time to first byte
# and full load (the page's HTML, curl's time_starttransfer and time_total; the pages' style
# sheets and scripts are small and cached) of
#   - the timeline (hero `/`, fossil `/timeline`, 50 entries each),
#   - a 10,000-entry directory (hero `/tree/fleet/`, fossil `/dir?name=fleet&ci=tip`),
#   - a file's history (hero `/history/etc/app.toml`, fossil `/finfo?name=etc/app.toml&n=50`),
# on a 10,000-commit history: FILES small TOML files under fleet/ in the first commit, then
# COMMITS commits each changing etc/app.toml. The history is made in git and imported into
# both (heroctl import git; git fast-export | fossil import --git). Fossil is served by
# `fossil server --localauth` (what `fossil ui` runs, without opening a browser).
# With CORPUS=GIT_DIR (e.g. the real-shaped corpus of benches/corpus.sh: its branches, tags,
# merges and real source files), that history is imported instead, and the pages are the
# timeline, the largest directory at main's head and the history of the file main changed
# most often.
# Usage: benches/web.sh [WORKDIR]   (COMMITS=10000 FILES=10000 RUNS=20 by default)
# Prints a Markdown table: medians over RUNS requests after one warm-up request.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p heroctl
H=$PWD/target/release/heroctl
WORK=${1:-$(mktemp -d)}
COMMITS=${COMMITS:-10000}
FILES=${FILES:-10000}
RUNS=${RUNS:-20}
mkdir -p "$WORK"
for tool in git fossil curl python3; do
    command -v "$tool" >/dev/null || { echo "needs $tool (scripts/deps.sh)" >&2; exit 1; }
done
export HERO_AUTHOR_NAME=bench HERO_AUTHOR_EMAIL=bench@example.com
# fossil names the importing user from $USER.
export USER=${USER:-$(id -un)}

rm -rf "$WORK/s.hero"* "$WORK/f.fossil"
if [ -n "${CORPUS:-}" ]; then
    G=$CORPUS
    COMMITS=$(git -C "$G" rev-list --count main)
    # The largest directory at main's head, and the file main's history changed most often.
    DIR=$(git -C "$G" ls-tree -r --name-only main | awk -F/ 'NF > 1 {NF--; print}' OFS=/ |
        sort | uniq -c | sort -rn | awk 'NR == 1 {print $2}')
    FILES=$(git -C "$G" ls-tree --name-only "main:$DIR" | wc -l)
    FILE=$(git -C "$G" log --first-parent --format= --name-only main | grep -v '^$' |
        sort | uniq -c | sort -rn | awk 'NR == 1 {print $2}')
else
    G=$WORK/src.git
    DIR=fleet
    FILE=etc/app.toml
    rm -rf "$G"
git init -q --bare "$G"
python3 - "$COMMITS" "$FILES" <<'PY' | git -C "$G" fast-import --quiet
import sys
commits, files = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout
def blob(data):
    b = data.encode()
    out.write(f"data {len(b)}\n"); out.write(data); out.write("\n")
t = 1_700_000_000
for i in range(commits + 1):
    out.write("commit refs/heads/main\n")
    out.write(f"committer bench <bench@example.com> {t + i * 60} +0000\n")
    msg = "fleet" if i == 0 else f"change {i}"
    out.write(f"data {len(msg)}\n{msg}\n")
    if i == 0:
        for k in range(files):
            out.write(f"M 100644 inline fleet/node{k:05d}.toml\n")
            blob(f'name = "node{k}"\nport = {8000 + k % 100}\n')
    out.write("M 100644 inline etc/app.toml\n")
    blob(f'[server]\nport = {8000 + i // 100}\n\n[stats]\ncounter = {i}\n')
PY
fi
$H -R "$WORK/s.hero" init >/dev/null
$H -R "$WORK/s.hero" import git "$G" >/dev/null
git -C "$G" fast-export --all 2>/dev/null | fossil import --git "$WORK/f.fossil" >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HP=$(free_port)
FP=$(free_port)
TOKEN=bench-token
HERO_UI_TOKEN=$TOKEN $H -R "$WORK/s.hero" ui --addr "127.0.0.1:$HP" >"$WORK/ui.log" 2>&1 &
HPID=$!
fossil server --localauth --localhost --port "$FP" "$WORK/f.fossil" >"$WORK/fossil.log" 2>&1 &
FPID=$!
trap 'kill $HPID $FPID 2>/dev/null || true' EXIT
# Both answer before anything is timed (a deadline, not a fixed wait).
for _ in $(seq 1 300); do
    curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$HP/" &&
        curl -sf -o /dev/null "http://127.0.0.1:$FP/timeline" && break
    sleep 0.1
done

# median of time_starttransfer and time_total (ms) over RUNS requests of URL (with curl args)
measure() {
    local url=$1; shift
    curl -s -o /dev/null "$@" "$url" # warm-up
    for _ in $(seq 1 "$RUNS"); do
        curl -s -o /dev/null -w '%{time_starttransfer} %{time_total} %{http_code}\n' "$@" "$url"
    done | python3 -c '
import sys, statistics
rows = [l.split() for l in sys.stdin if l.strip()]
bad = [r[2] for r in rows if r[2] != "200"]
if bad: sys.exit("HTTP " + bad[0])
t = statistics.median(float(r[0]) for r in rows) * 1000
f = statistics.median(float(r[1]) for r in rows) * 1000
print(f"{t:.1f} {f:.1f}")'
}

echo "| page | hero TTFB ms | hero full ms | fossil TTFB ms | fossil full ms | hero/fossil (full) |"
echo "|---|---|---|---|---|---|"
row() { # name hero-path fossil-path
    read -r ht hf < <(measure "http://127.0.0.1:$HP$2" -H "Authorization: Bearer $TOKEN")
    read -r ft ff < <(measure "http://127.0.0.1:$FP$3")
    printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$ht" "$hf" "$ft" "$ff" \
        "$(python3 -c "print(f'{$hf / $ff:.2f}')")"
}
row "timeline (50 of $COMMITS commits on main)" "/" "/timeline?n=50"
row "directory of $FILES entries ($DIR)" "/tree/$DIR/" "/dir?name=$DIR&ci=tip"
row "file history, 50 versions ($FILE)" "/history/$FILE" "/finfo?name=$FILE&n=50"
echo
echo "history: ${CORPUS:-generated}, $COMMITS commits on main, $FILES entries in $DIR/; $RUNS requests each, medians; loopback"
