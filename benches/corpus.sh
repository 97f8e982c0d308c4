#!/usr/bin/env bash
# Realistic benchmark corpus: builds a bare git repository shaped like a real project, offline,
# deterministically (same seed, commit count and inputs -> same commit, tree and tag ids).
#
# What it holds (benches/lib/corpus.py does the work, through `git fast-import`):
# - a vendored Rust workspace: the sources of pinned crate versions from the local cargo
#   registry (~/.cargo/registry/src/*/NAME-VERSION, all in the workspace's Cargo.lock), edited
#   commit by commit: lines changed, functions inserted (copied from other real files), moved
#   and deleted, identifiers renamed across a crate, files and module directories added,
#   renamed (with their `mod` lines) and deleted, crates moved into groups; 14 vendored crates
#   are upgraded to their next real version a few upstream hunks per commit;
# - main with direct commits and merge commits of feature branches (some conflicted and
#   resolved), feature branches that are merged and deleted or kept, stale branches (forked
#   long ago, never merged), branch names deleted and recreated on a new history, merges of main
#   into feature branches, two long-lived release branches with cherry-picks (`-x` messages) of
#   main's fixes and patch releases;
# - annotated tags (releases, nightlies: 300+ by default) and lightweight ones (builds, archived
#   branches).
# Defaults: about 5,000 commits, 40,000-50,000 objects, 130 branches, ~340 annotated tags; the
# script takes well under a minute on 2 cores. At the end it prints the shape: commits, merges,
# branches, tags, objects by type, pack size after `git gc` and after `git gc --aggressive`.
# The repository is packed as a fresh `git gc` of a real server would leave it: deltas recomputed
# (`git repack -adf`, git's default window), no loose or unreachable objects.
#
# usage: benches/corpus.sh [-s SEED] [-n COMMITS] OUT_DIR     build the corpus in OUT_DIR (new)
#        benches/corpus.sh --inputs                            list the pinned crate versions
#        benches/corpus.sh --fetch                             put the pinned crate sources in
#                                                              the cargo registry (needs crates.io;
#                                                              only if a build did not already)
# env:   HSC_SEED (default 1), HSC_COMMITS (default 5000), CARGO_HOME (default ~/.cargo),
#        HSC_AGGRESSIVE=0 to skip measuring `git gc --aggressive` (on a copy).
# Needs: git, python3 (stdlib only). No network: a missing input is an error, not a download.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=$ROOT/benches/lib/corpus.py
SEED=${HSC_SEED:-1}
COMMITS=${HSC_COMMITS:-5000}
CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}

die() { echo "corpus.sh: $*" >&2; exit 2; }
for tool in git python3; do
    command -v "$tool" >/dev/null || die "missing: $tool"
done

case "${1:-}" in
--inputs)
    python3 "$PY" --list-inputs --registry / --git-dir /
    exit 0
    ;;
--fetch)
    command -v cargo >/dev/null || die "missing: cargo"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    {
        printf '[package]\nname = "corpus-inputs"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n\n'
        printf '[lib]\npath = "lib.rs"\n\n[dependencies]\n'
        python3 "$PY" --list-inputs --registry / --git-dir / | while read -r name ver; do
            printf '%s = { package = "%s", version = "=%s", default-features = false }\n' \
                "$(echo "${name}_$ver" | tr -c 'a-zA-Z0-9_\n' _)" "$name" "$ver"
        done
    } >"$tmp/Cargo.toml"
    : >"$tmp/lib.rs"
    cargo fetch --manifest-path "$tmp/Cargo.toml"
    exit 0
    ;;
esac

while getopts "s:n:h" opt; do
    case $opt in
    s) SEED=$OPTARG ;;
    n) COMMITS=$OPTARG ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# = 1 ] || die "usage: benches/corpus.sh [-s SEED] [-n COMMITS] OUT_DIR (see the header)"
OUT=$1
if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT" 2>/dev/null)" ]; then
    die "$OUT exists and is not empty"
fi

shopt -s nullglob
REGS=("$CARGO_HOME"/registry/src/*/)
shopt -u nullglob
[ ${#REGS[@]} -gt 0 ] || die "no cargo registry sources under $CARGO_HOME/registry/src (build the workspace or run --fetch)"
REG_ARGS=()
for r in "${REGS[@]}"; do REG_ARGS+=(--registry "$r"); done

export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
# A half-built corpus is removed; so is the copy for gc --aggressive.
DONE=0 tmp=
trap '[ $DONE = 1 ] || rm -rf "$OUT"; [ -z "$tmp" ] || rm -rf "$tmp"' EXIT
t0=$(date +%s)
git init -q --bare -b main "$OUT"
PYTHONHASHSEED=0 python3 "$PY" --seed "$SEED" --commits "$COMMITS" "${REG_ARGS[@]}" --git-dir "$OUT"
t1=$(date +%s)
# fast-import's own deltas are poor (it only deltas against the previous version of a path);
# recompute them as a server's `git gc` on a repository built from pushes would have them.
git -C "$OUT" repack -q -a -d -f
git -C "$OUT" prune --expire=now
git -C "$OUT" gc -q --prune=now
t2=$(date +%s)

g() { git -C "$OUT" "$@"; }
commits=$(g rev-list --all --count)
merges=$(g rev-list --all --merges --count)
main_commits=$(g rev-list --count main)
branches=$(g for-each-ref refs/heads --format=x | wc -l)
annotated=$(g for-each-ref refs/tags --format='%(objecttype)' | grep -c '^tag$' || true)
light=$(g for-each-ref refs/tags --format='%(objecttype)' | grep -c '^commit$' || true)
last=$(g for-each-ref --sort=refname refs/heads --format='%(refname:short)' | tail -1)
stale=$(g for-each-ref refs/heads --format='%(refname:short)' | while read -r b; do
    [ -z "$(g rev-list -1 "main..$b")" ] || [ "$(g log -1 --format=%ct "$b")" -gt \
        "$(($(g log -1 --format=%ct main) - 180 * 86400))" ] || echo "$b"
done | wc -l)
types=$(g cat-file --batch-all-objects --batch-check='%(objecttype)' | sort | uniq -c |
    awk '{printf "%s%s %s", (NR>1?", ":""), $1, $2}')
objects=$(g count-objects -v | awk '/^in-pack:/ {print $2}')
loose=$(g count-objects -v | awk '/^count:/ {print $2}')
pack=$(du -cb "$OUT"/objects/pack/*.pack | tail -1 | cut -f1)
files=$(g ls-tree -r main | wc -l)
tree_bytes=$(g ls-tree -r -l main | awk '{s+=$4} END {print s}')
id=$(g show-ref | sha256sum | cut -c1-16)

aggr="skipped (HSC_AGGRESSIVE=0)"
if [ "${HSC_AGGRESSIVE:-1}" != 0 ]; then
    tmp=$(mktemp -d)
    git clone -q --bare --no-local "$OUT" "$tmp/a.git"
    ta=$(date +%s)
    git -C "$tmp/a.git" gc -q --aggressive --prune=now
    aggr="$(du -cb "$tmp"/a.git/objects/pack/*.pack | tail -1 | cut -f1) B ($(($(date +%s) - ta)) s)"
    rm -rf "$tmp"
    tmp=
fi
DONE=1

cat <<EOF
corpus: $OUT (seed $SEED, $COMMITS commits asked; refs id $id)
  commits:   $commits ($merges merges; $main_commits reachable from main)
  branches:  $branches ($stale stale: unmerged into main, last commit 180+ days before main's); last in sort order: $last
  tags:      $annotated annotated, $light lightweight
  objects:   $objects in 1 pack, $loose loose ($types)
  main tree: $files files, $tree_bytes bytes
  pack:      $pack B after git gc (repack -adf), $aggr after git gc --aggressive
  time:      $((t1 - t0)) s to write the history, $((t2 - t1)) s to pack
EOF
