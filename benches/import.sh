#!/usr/bin/env bash
# Import benchmark on the realistic corpus (benches/corpus.sh), hero vs fossil in the same run:
#   hero:   `heroctl import git SRC` into a new repository file (after `heroctl init`, not timed)
#   fossil: `fossil import --git NEW.fossil` reading `git fast-export --all` of the same
#           repository (the export is timed on its own and added for the total)
# Measured: wall time and peak memory (/usr/bin/time -v, "Maximum resident set size"), medians of
# HSI_RUNS runs (tools in turns, a new file each run); then the sizes: hero's file (blocks in use
# and length), fossil's file, and git's pack after `git gc` and after `git gc --aggressive` of a
# bare clone of the same repository. A failed command does not stop the run: its figure reads
# FAILED and its error is printed under the table. After the runs, `heroctl import git --verify`
# (a fresh import that compares every imported commit's tree with git's; not timed) says whether
# the import is faithful.
#
# usage: benches/import.sh
# env:   HSI_RUNS (default 3), HSI_CORPUS (an existing corpus repository instead of building
#        one), HSI_CORPUS_SEED / HSI_CORPUS_COMMITS (benches/corpus.sh -s / -n; default 1 / 5000),
#        HSI_KEEP=1 (keep the work dir /tmp/hero-import-bench.*).
# Needs: git, fossil, python3, /usr/bin/time (Debian package `time`). Prints a Markdown table.
# (importers/benches/import.sh measures the importer library on generated single-branch
# histories.)
set -euo pipefail

RUNS=${HSI_RUNS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CMDLINE="$0${*:+ $*}"

for tool in git fossil python3 numfmt; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "missing: /usr/bin/time (apt-get install time)" >&2; exit 1; }

cargo build --release -q -p heroctl --manifest-path "$ROOT/Cargo.toml"
H=$ROOT/target/release/heroctl

WORK=$(mktemp -d /tmp/hero-import-bench.XXXXXX)
cleanup() {
    if [ "${HSI_KEEP:-0}" = 1 ]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK/logs"

# benches/corpus.sh reads the cargo registry under the real home
export CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
export GIT_CONFIG_NOSYSTEM=1 HOME="$WORK" USER=bench
export HERO_AUTHOR_NAME=bench HERO_AUTHOR_EMAIL=bench@example.com
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
disk() { du -s -B1 "$1" | cut -f1; }
packs() { du -cb "$1"/objects/pack/*.pack | tail -1 | cut -f1; }
num() { [[ ${1:-} =~ ^[0-9]+$ ]]; }
hb() { if num "$1"; then numfmt --to=iec-i --suffix=B --format='%.1f' "$1"; else echo "$1"; fi; }
secs() { if num "$1"; then echo "scale=2; $1 / 1000" | bc | sed 's/^\./0./'; else echo "$1"; fi; }
ratio() { if ! num "${1:-}" || ! num "${2:-}" || [ "$2" = 0 ]; then echo "-"; else echo "scale=2; $1 / $2" | bc; fi; }

FAILURES=()
# timed LABEL STDIN CMD...: runs CMD under /usr/bin/time -v with STDIN (a file or /dev/null);
# sets MS (wall, ms) and KIB (peak RSS); on failure records the error and returns 1.
timed() {
    local label=$1 in=$2 rc=0 t0 t1
    shift 2
    sync
    t0=$(date +%s%N)
    /usr/bin/time -v -o "$WORK/logs/$label.time" "$@" <"$in" >"$WORK/logs/$label.out" \
        2>"$WORK/logs/$label.err" || rc=$?
    t1=$(date +%s%N)
    MS=$(((t1 - t0) / 1000000))
    KIB=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/logs/$label.time")
    if [ "$rc" != 0 ]; then
        tail -5 "$WORK/logs/$label.err" >&2
        FAILURES+=("$label: exit status $rc: $(grep -v '^[[:space:]]*$' "$WORK/logs/$label.err" | tail -3 | tr '\n' ' ' | cut -c1-400)")
        echo "FAILED: $label" >&2
        return 1
    fi
}

# ---------------------------------------------------------------- the corpus
START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_START=$(uptime)
if [ -n "${HSI_CORPUS:-}" ]; then
    SRC=$HSI_CORPUS
    SHAPE="corpus given: $SRC"
else
    log "building the corpus (benches/corpus.sh)"
    SRC=$WORK/corpus.git
    "$ROOT/benches/corpus.sh" -s "${HSI_CORPUS_SEED:-1}" -n "${HSI_CORPUS_COMMITS:-5000}" "$SRC" \
        >"$WORK/logs/corpus.out" 2>"$WORK/logs/corpus.err" || { cat "$WORK/logs/corpus.err" >&2; exit 1; }
    SHAPE=$(cat "$WORK/logs/corpus.out")
fi
COMMITS=$(git -C "$SRC" rev-list --all --count)
BRANCHES=$(git -C "$SRC" for-each-ref refs/heads | wc -l)
TAGS=$(git -C "$SRC" for-each-ref refs/tags | wc -l)
OBJECTS=$(git -C "$SRC" cat-file --batch-all-objects --batch-check | wc -l)

log "git: gc and gc --aggressive of bare clones"
git clone -q --bare --no-local "$SRC" "$WORK/gc.git"
t0=$(date +%s%N)
git -C "$WORK/gc.git" gc -q --prune=now
GC_MS=$((($(date +%s%N) - t0) / 1000000))
git clone -q --bare --no-local "$SRC" "$WORK/aggr.git"
t0=$(date +%s%N)
git -C "$WORK/aggr.git" gc -q --aggressive --prune=now
AGGR_MS=$((($(date +%s%N) - t0) / 1000000))
GIT_PACK=$(packs "$WORK/gc.git") GIT_DISK=$(disk "$WORK/gc.git/objects")
AGGR_PACK=$(packs "$WORK/aggr.git") AGGR_DISK=$(disk "$WORK/aggr.git/objects")

# ---------------------------------------------------------------- runs
h_ms=() h_kib=() f_ms=() f_kib=() e_ms=() e_kib=()
h_fail=0 f_fail=0 e_fail=0
for run in $(seq "$RUNS"); do
    log "hero: heroctl import git, run $run of $RUNS"
    rm -f "$WORK/h.hero"
    "$H" -R "$WORK/h.hero" init >/dev/null
    if timed "hero.$run" /dev/null "$H" -R "$WORK/h.hero" --json import git "$SRC"; then
        h_ms+=("$MS") h_kib+=("$KIB")
        H_DISK=$(disk "$WORK/h.hero") H_LEN=$(stat -c %s "$WORK/h.hero")
        cp "$WORK/logs/hero.$run.out" "$WORK/hero-report.json"
    else
        h_fail=$((h_fail + 1))
    fi
    log "fossil: git fast-export --all, run $run of $RUNS"
    rm -f "$WORK/export.stream" "$WORK/f.fossil"
    # shellcheck disable=SC2016 # $1 and $2 are sh's
    if timed "export.$run" /dev/null sh -c 'exec git -C "$1" fast-export --all >"$2"' sh "$SRC" "$WORK/export.stream"; then
        e_ms+=("$MS") e_kib+=("$KIB")
        log "fossil: fossil import --git, run $run of $RUNS"
        if timed "fossil.$run" "$WORK/export.stream" fossil import --git -A bench "$WORK/f.fossil"; then
            f_ms+=("$MS") f_kib+=("$KIB")
            F_DISK=$(disk "$WORK/f.fossil") F_LEN=$(stat -c %s "$WORK/f.fossil")
        else
            f_fail=$((f_fail + 1))
        fi
    else
        e_fail=$((e_fail + 1)) f_fail=$((f_fail + 1))
    fi
done
EXPORT_BYTES=$(stat -c %s "$WORK/export.stream" 2>/dev/null || echo FAILED)

# settle VALUES...: the median of the runs that worked, or FAILED.
settle() { if [ $# = 0 ]; then echo FAILED; else median "$@"; fi; }
H_MS=$(settle "${h_ms[@]}") H_KIB=$(settle "${h_kib[@]}")
F_MS=$(settle "${f_ms[@]}") F_KIB=$(settle "${f_kib[@]}")
E_MS=$(settle "${e_ms[@]}") E_KIB=$(settle "${e_kib[@]}")
FE_MS=FAILED
if num "$F_MS" && num "$E_MS"; then FE_MS=$((F_MS + E_MS)); fi
H_DISK=${H_DISK:-FAILED} H_LEN=${H_LEN:-FAILED} F_DISK=${F_DISK:-FAILED} F_LEN=${F_LEN:-FAILED}

VERIFY="not run (import failed)"
if [ ${#h_ms[@]} -gt 0 ]; then
    log "hero: heroctl import git --verify (not timed)"
    rm -f "$WORK/v.hero"
    "$H" -R "$WORK/v.hero" init >/dev/null
    if "$H" -R "$WORK/v.hero" import git --verify "$SRC" >"$WORK/logs/verify.out" 2>"$WORK/logs/verify.err"; then
        VERIFY="ok: $(grep -v '^[[:space:]]*$' "$WORK/logs/verify.out" | tail -1)"
    else
        VERIFY="**FAILED**: $(grep -v '^[[:space:]]*$' "$WORK/logs/verify.err" | tail -3 | tr '\n' ' ' | cut -c1-400)"
    fi
fi
LOAD_END=$(uptime)

# ---------------------------------------------------------------- report
fails() { [ "$1" = 0 ] || echo ", **FAILED in $1 of $RUNS runs**"; }
mib() { if num "$1"; then echo "$(echo "scale=1; $1 / 1024" | bc | sed 's/^\./0./') MiB"; else echo "$1"; fi; }
echo
echo "## Import of the realistic corpus: heroctl import git vs fossil import --git"
echo
echo "- command: \`$CMDLINE\` (release build; heroctl $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')), HSI_RUNS=$RUNS"
echo "- date: $START; $(git --version); fossil $(fossil version | awk '{print $5}')"
echo "- load at start: $LOAD_START"
echo "- load at end:   $LOAD_END"
echo "- repository: $COMMITS commits, $BRANCHES branches, $TAGS tags, $OBJECTS git objects; fast-export stream $(hb "$EXPORT_BYTES")"
echo "- times and peak RSS: median of $RUNS runs (/usr/bin/time -v); every run (ms): hero ${h_ms[*]:-}; fossil import ${f_ms[*]:-}; fast-export ${e_ms[*]:-}"
echo "- sizes: blocks in use (du); file length or pack bytes in parentheses"
while IFS= read -r line; do echo "  $line"; done <<<"$SHAPE"
echo
echo "| figure | hero | fossil | git | hero/fossil | hero/git |"
echo "|---|---|---|---|---|---|"
printf '| import, wall (s) | %s%s | %s%s (import %s + fast-export %s) | | %s | |\n' \
    "$(secs "$H_MS")" "$(fails "$h_fail")" "$(secs "$FE_MS")" "$(fails "$f_fail")" "$(secs "$F_MS")" \
    "$(secs "$E_MS")" "$(ratio "$H_MS" "$FE_MS")"
printf '| import, peak RSS | %s | %s (fast-export %s) | | %s | |\n' \
    "$(mib "$H_KIB")" "$(mib "$F_KIB")" "$(mib "$E_KIB")" "$(ratio "$H_KIB" "$F_KIB")"
printf '| repository size | %s (length %s) | %s (length %s) | %s after gc (pack %s); %s after gc --aggressive (pack %s) | %s | %s / %s |\n' \
    "$(hb "$H_DISK")" "$(hb "$H_LEN")" "$(hb "$F_DISK")" "$(hb "$F_LEN")" "$(hb "$GIT_DISK")" "$(hb "$GIT_PACK")" \
    "$(hb "$AGGR_DISK")" "$(hb "$AGGR_PACK")" "$(ratio "$H_DISK" "$F_DISK")" "$(ratio "$H_DISK" "$GIT_DISK")" \
    "$(ratio "$H_DISK" "$AGGR_DISK")"
echo
echo "git gc took $(secs "$GC_MS") s, gc --aggressive $(secs "$AGGR_MS") s (not compared). \`heroctl import git --verify\`: $VERIFY"
if [ -f "$WORK/hero-report.json" ]; then
    echo
    echo "hero's import report: $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(", ".join("%s %s" % (k, v) for k, v in r.items() if not isinstance(v, (list, dict))))' "$WORK/hero-report.json" 2>/dev/null || echo '?')"
fi
if [ ${#FAILURES[@]} -gt 0 ]; then
    echo
    echo "Failed commands (${#FAILURES[@]}; logs in the work dir, HSI_KEEP=1 keeps it):"
    for f in "${FAILURES[@]}"; do echo "- $f"; done
fi
