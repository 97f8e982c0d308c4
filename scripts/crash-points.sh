#!/usr/bin/env bash
# Crash points at full count: kill -9 of real heroctl processes during gc, upgrade, member add,
# a mount's commit, git import and repair, HERO_CRASH_TRIALS trials in all (default 120; `cargo test`
# alone runs fewer). Prints one line per command: trials, kills that landed mid-run, results.
#
# usage: scripts/crash-points.sh [TRIALS]
set -euo pipefail
cd "$(dirname "$0")/.."
export HERO_CRASH_TRIALS="${1:-${HERO_CRASH_TRIALS:-120}}"
cargo test -p heroctl --test main crash_points -- --nocapture 2>&1 | grep -E '^crash points:|test result|panicked'
