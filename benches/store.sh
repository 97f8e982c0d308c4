#!/usr/bin/env bash
# Store benchmarks against git, measured in the same run. Prints a Markdown table.
# Usage: benches/store.sh [WORKDIR]   (needs ~6 GiB free in WORKDIR; default a temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p heroctl -p hero-tests --bins
cargo build --release -q -p hero-store --example onefile
H=$PWD/target/release/heroctl
W=$PWD/target/release/hero-writer
ONE=$PWD/target/release/examples/onefile
WORK=${1:-$(mktemp -d)}
mkdir -p "$WORK"
export HERO_AUTHOR_NAME=bench HERO_AUTHOR_EMAIL=bench@example.com
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
t() { local s=$(date +%s.%N); "$@" >/dev/null; local e=$(date +%s.%N); echo "$e - $s" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }
row() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4"; }
sync_drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

echo "| benchmark | hero | git | hero advantage (git/hero) |"
echo "|---|---|---|---|"

# 1. ingest 10,000 small files
SMALL=$WORK/small; rm -rf "$SMALL"; mkdir -p "$SMALL"
python3 - "$SMALL" <<'PY'
import os, sys, random
random.seed(1)
root = sys.argv[1]
for i in range(10000):
    d = os.path.join(root, f"dir{i % 100:02d}", f"sub{(i // 100) % 10}")
    os.makedirs(d, exist_ok=True)
    words = " ".join(random.choice(["alpha","beta","gamma","delta","port","host","name","value"]) for _ in range(random.randint(20, 200)))
    with open(os.path.join(d, f"file{i}.toml"), "w") as f:
        f.write(f"# config {i}\nkey = \"{words}\"\n")
PY
rm -f "$WORK/s.hero"; $H -R "$WORK/s.hero" init >/dev/null
sync_drop; th=$(t $H -R "$WORK/s.hero" commit "$SMALL" -m ingest)
rm -rf "$SMALL/.git"; git -C "$SMALL" init -q
sync_drop; tg=$(t bash -c "cd '$SMALL' && git add -A && git commit -qm ingest")
row "ingest 10,000 small files (s)" "$th" "$tg" "$(ratio $tg $th)x"

# 2. checkout of the 10,000-file tree into an empty directory
rm -rf "$WORK/co-hero"; sync_drop; th=$(t $H -R "$WORK/s.hero" checkout main "$WORK/co-hero")
rm -rf "$WORK/co-git"; mkdir "$WORK/co-git"; sync_drop
tg=$(t git --git-dir="$SMALL/.git" --work-tree="$WORK/co-git" checkout -f HEAD -- .)
row "checkout 10,000 files (s)" "$th" "$tg" "$(ratio $tg $th)x"

# 3. ingest one 1 GiB file
BIG=$WORK/big; rm -rf "$BIG"; mkdir -p "$BIG"
head -c $((1024*1024*1024)) /dev/urandom > "$BIG/one.bin"
rm -f "$WORK/b.hero"; $H -R "$WORK/b.hero" init >/dev/null
sync_drop; th=$(t $H -R "$WORK/b.hero" commit "$BIG" -m big)
git -C "$BIG" init -q
sync_drop; tg=$(t bash -c "cd '$BIG' && git add -A && git commit -qm big")
row "ingest one 1 GiB file (s)" "$th" "$tg" "$(ratio $tg $th)x"
tb=$(t b3sum --num-threads 1 "$BIG/one.bin")
row "BLAKE3 alone, 1 thread, 1 GiB (s)" "$tb" "" "hero at $(ratio $tb $th)x of BLAKE3-only speed"
rm -rf "$BIG"

# 4. size: 200 MB file, 1 KB changed in the middle
MID=$WORK/mid; rm -rf "$MID"; mkdir -p "$MID"
head -c 200000000 /dev/urandom > "$MID/f.bin"
echo ".git/" > "$MID/.heroignore"
rm -f "$WORK/m.hero"; $H -R "$WORK/m.hero" init >/dev/null
$H -R "$WORK/m.hero" commit "$MID" -m v1 >/dev/null
s1=$($H -R "$WORK/m.hero" --json stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["stored_bytes"])')
git -C "$MID" init -q; git -C "$MID" add -A; git -C "$MID" commit -qm v1; git -C "$MID" gc -q --aggressive
g1=$(du -sb "$MID/.git/objects" | cut -f1)
python3 - "$MID/f.bin" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(100_000_000); f.write(bytes((i * 7) % 256 for i in range(1024)))
PY
$H -R "$WORK/m.hero" commit "$MID" -m v2 >/dev/null
s2=$($H -R "$WORK/m.hero" --json stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["stored_bytes"])')
git -C "$MID" add -A; git -C "$MID" commit -qm v2; git -C "$MID" gc -q --aggressive
g2=$(du -sb "$MID/.git/objects" | cut -f1)
row "200 MB file, 1 KB changed: bytes added by 2nd commit" "$((s2 - s1))" "$((g2 - g1)) (after gc --aggressive)" "target < 65536"
rm -rf "$MID"

# 5. size: 10 KB Markdown edited 100 times
MD=$WORK/md; rm -rf "$MD"; mkdir -p "$MD"
rm -f "$WORK/d.hero"; $H -R "$WORK/d.hero" init >/dev/null; git -C "$MD" init -q
echo ".git/" > "$MD/.heroignore"
# Real prose: the first 10 KB of the project's own docs (ARCHITECTURE.md, then the ADRs),
# taken once so every version starts from the same text; version v rewrites one line.
cat docs/ARCHITECTURE.md docs/adr/*.md | head -c 10240 > "$WORK/md-base.txt"
for v in $(seq 0 99); do
  python3 - "$MD/adr.md" "$v" "$WORK/md-base.txt" <<'PY'
import sys
v = int(sys.argv[2])
lines = open(sys.argv[3]).read().splitlines(keepends=True)
n = len(lines)
for k in range(1, v + 1):
    i = (k * 37) % n
    words = lines[i].rstrip("\n").split(" ")
    words.insert(len(words) // 2, f"(revised in v{k})")
    lines[i] = " ".join(words) + "\n"
open(sys.argv[1], "w").write("".join(lines))
PY
  $H -R "$WORK/d.hero" commit "$MD" -m "v$v" >/dev/null
  git -C "$MD" add -A; git -C "$MD" commit -qm "v$v"
done
git -C "$MD" gc -q --aggressive
blobs=$($H -R "$WORK/d.hero" --json stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["stored_bytes"])')
blobonly=$($H -R "$WORK/d.hero" --json stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["stored_by_type"]["blob"])')
comp=$(zstd -3 -c "$MD/adr.md" 2>/dev/null | wc -c || gzip -9 -c "$MD/adr.md" | wc -c)
gsize=$(du -sb "$MD/.git/objects/pack" | cut -f1)
row "10 KB Markdown x100 edits: stored bytes, all objects / file contents only" "$blobs / $blobonly" "$gsize (pack after gc --aggressive)" "file $(wc -c < "$MD/adr.md") B, zstd -3 $comp B, target < 3x = $((3 * comp)) B for contents"

# 6. one-file commits in a 100,000-file tree
rm -f "$WORK/o.hero"
json=$($ONE "$WORK/o.hero" 100000 300)
hr=$(echo "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["commits_per_sec"])')
G=$WORK/gone; rm -rf "$G"; mkdir -p "$G"
python3 - "$G" <<'PY'
import os, sys
root = sys.argv[1]
for i in range(100000):
    d = os.path.join(root, f"d{i % 10}", f"e{(i // 10) % 10}", f"f{(i // 100) % 10}")
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, f"file{i}.txt"), "w").write(f"line one of {i}\nline two\n")
PY
git -C "$G" init -q; git -C "$G" add -A; git -C "$G" commit -qm tree
s=$(date +%s.%N)
for c in $(seq 0 49); do
  i=$(( (c * 7919) % 100000 )); f="d$((i % 10))/e$(((i / 10) % 10))/f$(((i / 100) % 10))/file$i.txt"
  printf 'line one of %s changed %s\nline two\n' "$i" "$c" > "$G/$f"
  git -C "$G" add "$f"; git -C "$G" commit -qm "change $c"
done
e=$(date +%s.%N)
gr=$(echo "scale=1; 50 / ($e - $s)" | bc)
row "one-file commits/s, 100,000-file tree (library API vs git add+commit)" "$hr" "$gr" "$(ratio $hr $gr)x"
rm -rf "$G"

# 7. two processes, 1,000 commits each, one branch
rm -f "$WORK/p.hero"; $H -R "$WORK/p.hero" init >/dev/null
s=$(date +%s.%N)
$W "$WORK/p.hero" main alpha 1000 & a=$!
$W "$WORK/p.hero" main beta 1000 & b=$!
wait $a; wait $b
e=$(date +%s.%N)
n=$($H -R "$WORK/p.hero" --json log | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
row "two processes x 1,000 commits on one branch" "$n commits present, $(echo "scale=1; 2000 / ($e - $s)" | bc) commits/s" "" "all 2000 kept: $([ "$n" = 2000 ] && echo yes || echo NO)"
