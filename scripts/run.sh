#!/usr/bin/env bash
# The main job: builds heroctl, creates the default store if there is none, snapshots a
# directory into it (default: this project's docs/), and shows its history.
# Usage: scripts/run.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-docs}
cargo build --release -q -p heroctl
H=$PWD/target/release/heroctl
repo=$($H --json init 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["repository"])' || true)
[ -n "$repo" ] && echo "created the default store at $repo"
$H commit "$dir" -m "snapshot of $dir"
$H log -n 5
