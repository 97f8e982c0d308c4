#!/usr/bin/env bash
# The main job: builds heroctl, creates the default store if there is none, mounts it as a
# drive (default ~/hero, or $HERO_MOUNT) and serves it over WebDAV on 127.0.0.1:4918.
# Ctrl-C (or SIGTERM) commits what is pending, unmounts and stops the share.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release -q -p heroctl
H=$PWD/target/release/heroctl
mnt=${HERO_MOUNT:-$HOME/hero}
if $H --json init >/dev/null 2>&1; then echo "created the default store"; fi
$H serve dav --addr 127.0.0.1:4918 &
dav=$!
trap 'kill $dav 2>/dev/null || true' EXIT
echo "WebDAV share: http://127.0.0.1:4918/  (stop everything with Ctrl-C)"
$H mount "$mnt"
