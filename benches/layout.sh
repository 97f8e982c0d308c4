#!/usr/bin/env bash
# The repository file against what it holds, with git and Fossil in the same run.
# Per workload: the bytes of the objects (`heroctl stats`: stored bytes), the file's length and
# its blocks in use (`du`), and the peers' sizes for the same content:
#   large   1 GiB of incompressible files (8 files of 128 MiB from /dev/urandom) committed once;
#           git: `git add` + `commit` (loose objects), then `git gc` (pack); Fossil: `fossil
#           add` + `commit` of the same files.
#   corpus  `heroctl import git` of the realistic corpus (benches/corpus.sh, 4,962 commits);
#           git: the corpus's pack after `git gc` and after `git gc --aggressive` of a bare
#           clone; Fossil: `fossil import --git` of `git fast-export --all`. Then `heroctl
#           upgrade` (format 2 layout plus compaction) and the size again.
#   mountread  a 512 MiB incompressible file committed, then read cold (caches dropped) with
#           `cat` through `heroctl mount --read-only`: bytes the mount process read from disk
#           (/proc/PID/io read_bytes) against the file's size, and the speed. With
#           HSL_OLD_HEROCTL=PATH (a format-1 heroctl) the same with it, in the same run.
#   saves   2,000 small TOML files saved one by one through the WebDAV share (`heroctl serve
#           dav`, HTTP PUT with curl, each save waited for as its own commit) into one
#           directory; the file size every 500 saves.
#
# usage: benches/layout.sh [large] [corpus] [mountread] [saves]   (default: all four)
# env:   HSL_CORPUS (default /tmp/corpus-5000; built with benches/corpus.sh when missing),
#        HSL_KEEP=1 keeps the work dir.
# Needs: git, fossil, curl, python3 (scripts/deps.sh). Prints Markdown tables.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
for tool in git fossil curl python3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool (scripts/deps.sh)" >&2; exit 1; }
done
cargo build --release -q -p heroctl --manifest-path "$ROOT/Cargo.toml"
H=$ROOT/target/release/heroctl
WORK=$(mktemp -d /tmp/hero-layout-bench.XXXXXX)
cleanup() {
    [ -n "${DAV_PID:-}" ] && kill "$DAV_PID" 2>/dev/null || true
    if [ "${HSL_KEEP:-0}" = 1 ]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
export HERO_AUTHOR_NAME=bench HERO_AUTHOR_EMAIL=bench@example.com
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
export USER=${USER:-bench} # fossil needs a user name

len() { stat -c %s "$1"; }
blocks() { du -B1 -s "$1" | cut -f1; }
mb() { python3 -c "print(f'{$1/1e6:.1f} MB')"; }
ratio() { python3 -c "print(f'{$1/$2:.2f}x')"; }
stored() { "$H" -R "$1" --json stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["stored_bytes"])'; }
pack_bytes() { # all pack files under a git dir
    find "$1" -name '*.pack' -printf '%s\n' | awk '{s+=$1} END {print s+0}'
}

WHAT=${*:-large corpus mountread saves}
echo "run: $0 $WHAT, $(date -u '+%Y-%m-%d %H:%M UTC'), heroctl $(git -C "$ROOT" rev-parse --short HEAD)"

for w in $WHAT; do
case $w in
large)
    D=$WORK/large; mkdir -p "$D/files"
    for i in 1 2 3 4 5 6 7 8; do head -c $((128 << 20)) /dev/urandom > "$D/files/f$i.bin"; done
    data=$((1 << 30))
    "$H" -R "$D/l.hero" init >/dev/null
    "$H" -R "$D/l.hero" commit "$D/files" -m large >/dev/null
    s=$(stored "$D/l.hero")
    git -C "$D/files" init -q; git -C "$D/files" add -A; git -C "$D/files" commit -qm large
    gl=$(du -B1 -s "$D/files/.git" | cut -f1)
    git -C "$D/files" gc -q; gp=$(pack_bytes "$D/files/.git")
    rm -rf "$D/files/.git"
    (cd "$D/files" && fossil init "$D/l.fossil" >/dev/null && fossil open --force "$D/l.fossil" >/dev/null \
        && fossil add . >/dev/null && fossil commit -m large --no-warnings >/dev/null && fossil close --force >/dev/null) \
        || echo "fossil failed" >&2
    echo
    echo "| 1 GiB incompressible ($data bytes) | bytes | / data |"
    echo "|---|---|---|"
    echo "| hero stored bytes of all objects | $(mb $s) | $(ratio $s $data) |"
    echo "| hero file: length | $(mb $(len "$D/l.hero")) | $(ratio $(len "$D/l.hero") $data) |"
    echo "| hero file: blocks in use (du) | $(mb $(blocks "$D/l.hero")) | $(ratio $(blocks "$D/l.hero") $data) |"
    echo "| git: .git after add + commit (du) | $(mb $gl) | $(ratio $gl $data) |"
    echo "| git: pack after gc | $(mb $gp) | $(ratio $gp $data) |"
    [ -f "$D/l.fossil" ] && echo "| Fossil repository | $(mb $(len "$D/l.fossil")) | $(ratio $(len "$D/l.fossil") $data) |"
    "$H" -R "$D/l.hero" stats | sed -n '/^table/,$p' | sed 's/^/    /'
    rm -rf "$D"
    ;;
corpus)
    C=${HSL_CORPUS:-/tmp/corpus-5000}
    [ -d "$C" ] || bash "$ROOT/benches/corpus.sh" "$C" >/dev/null
    D=$WORK/corpus; mkdir -p "$D"
    "$H" -R "$D/c.hero" init >/dev/null
    "$H" -R "$D/c.hero" import git "$C" >/dev/null
    s=$(stored "$D/c.hero"); l1=$(len "$D/c.hero"); b1=$(blocks "$D/c.hero")
    "$H" -R "$D/c.hero" stats | sed -n '/^table/,$p' > "$D/usage-import.txt"
    "$H" -R "$D/c.hero" upgrade >/dev/null
    l2=$(len "$D/c.hero"); b2=$(blocks "$D/c.hero")
    "$H" -R "$D/c.hero" gc >/dev/null
    l3=$(len "$D/c.hero")
    git clone -q --bare "$C" "$D/g.git"
    git -C "$D/g.git" gc -q; gp=$(pack_bytes "$D/g.git")
    git -C "$D/g.git" gc -q --aggressive; ga=$(pack_bytes "$D/g.git")
    git -C "$C" fast-export --all 2>/dev/null | fossil import --git "$D/c.fossil" >/dev/null \
        || echo "fossil import failed" >&2
    fl=$( [ -f "$D/c.fossil" ] && len "$D/c.fossil" || echo 0)
    echo
    echo "| corpus import ($C) | bytes | / git gc --aggressive pack |"
    echo "|---|---|---|"
    echo "| hero stored bytes of all objects | $(mb $s) | $(ratio $s $ga) |"
    echo "| hero file after import: length | $(mb $l1) | $(ratio $l1 $ga) |"
    echo "| hero file after import: blocks (du) | $(mb $b1) | $(ratio $b1 $ga) |"
    echo "| hero file after \`heroctl upgrade\` (compaction): length | $(mb $l2) | $(ratio $l2 $ga) |"
    echo "| hero file after \`heroctl gc\` (compaction): length | $(mb $l3) | $(ratio $l3 $ga) |"
    echo "| git pack after gc | $(mb $gp) | $(ratio $gp $ga) |"
    echo "| git pack after gc --aggressive | $(mb $ga) | 1.00x |"
    echo "| Fossil repository | $(mb $fl) | $(ratio $fl $ga) |"
    sed 's/^/    /' "$D/usage-import.txt"
    rm -rf "$D"
    ;;
mountread)
    D=$WORK/mountread; mkdir -p "$D/files"
    size=$((512 << 20))
    head -c $size /dev/urandom > "$D/files/big.bin"
    echo
    echo "| cold read of a 512 MiB file through the mount | bytes read from disk | / file | wall | MB/s | file length / data |"
    echo "|---|---|---|---|---|---|"
    for bin in "$H" ${HSL_OLD_HEROCTL:-}; do
        rm -f "$D/m.hero" "$D/files/.herocheckout"; "$bin" -R "$D/m.hero" init >/dev/null
        "$bin" -R "$D/m.hero" commit "$D/files" -m big >/dev/null
        mkdir -p "$D/mnt"
        "$bin" -R "$D/m.hero" mount --read-only "$D/mnt" >/dev/null 2>&1 &
        MPID=$!
        for _ in $(seq 400); do [ -e "$D/mnt/big.bin" ] && break; sleep 0.05; done
        sync; echo 3 > /proc/sys/vm/drop_caches
        r0=$(awk '/^read_bytes/ {print $2}' /proc/$MPID/io)
        s0=$(date +%s.%N); cat "$D/mnt/big.bin" > /dev/null; s1=$(date +%s.%N)
        r1=$(awk '/^read_bytes/ {print $2}' /proc/$MPID/io)
        # (the mount process does not always end on fusermount -u: stop it)
        fusermount -u "$D/mnt"; kill $MPID 2>/dev/null || true; wait $MPID 2>/dev/null || true
        rb=$((r1 - r0)); wall=$(python3 -c "print(f'{$s1-$s0:.2f} s')")
        speed=$(python3 -c "print(f'{$size/1e6/($s1-$s0):.0f}')")
        label=$([ "$bin" = "$H" ] && echo "format 2 (this build)" || echo "format 1 ($bin)")
        echo "| $label | $(mb $rb) | $(ratio $rb $size) | $wall | $speed | $(ratio $(len "$D/m.hero") $size) |"
    done
    rm -rf "$D"
    ;;
saves)
    D=$WORK/saves; mkdir -p "$D"
    "$H" -R "$D/s.hero" init >/dev/null
    port=$((20000 + RANDOM % 20000))
    # The share's token (ADR 0022): made here and handed to the share and to curl.
    DAV_TOKEN=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    HERO_DAV_TOKEN=$DAV_TOKEN "$H" -R "$D/s.hero" serve dav --addr "127.0.0.1:$port" --commit-window-ms 0 >/dev/null 2>&1 &
    DAV_PID=$!
    for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
    curl -s -f -u "hero:$DAV_TOKEN" -X MKCOL "http://127.0.0.1:$port/conf/" >/dev/null
    echo
    echo "| saves through WebDAV | hero file length | blocks (du) | stored bytes | per save since last row (length) |"
    echo "|---|---|---|---|---|"
    prev=$(len "$D/s.hero")
    for i in $(seq 1 2000); do
        printf '[service]\nname = "svc-%d"\nport = %d\nreplicas = %d\n' "$i" $((8000 + i)) $((i % 7)) > "$D/f.toml"
        curl -s -f -u "hero:$DAV_TOKEN" -T "$D/f.toml" "http://127.0.0.1:$port/conf/svc-$i.toml" >/dev/null
        if [ $((i % 500)) = 0 ]; then
            l=$(len "$D/s.hero")
            echo "| $i | $(mb $l) | $(mb $(blocks "$D/s.hero")) | $(mb $(stored "$D/s.hero")) | $(( (l - prev) / 500 )) B |"
            prev=$l
        fi
    done
    kill "$DAV_PID"; wait "$DAV_PID" 2>/dev/null || true; DAV_PID=
    "$H" -R "$D/s.hero" gc >/dev/null
    l=$(len "$D/s.hero")
    echo "| after \`heroctl gc\` (compaction) | $(mb $l) | $(mb $(blocks "$D/s.hero")) | $(mb $(stored "$D/s.hero")) | $((l / 2000)) B per save overall |"
    "$H" -R "$D/s.hero" log | grep -c '^commit' | sed 's/^/    commits: /'
    "$H" -R "$D/s.hero" stats | sed -n '/^table/,$p' | sed 's/^/    /'
    rm -rf "$D"
    ;;
*) echo "unknown workload $w" >&2; exit 2 ;;
esac
done
