#!/usr/bin/env bash
# The main job: builds heroctl, creates the default store if there is none, writes the default
# daemon configuration into it (.hero/daemon.toml, if it has none), and runs the daemon: the
# drive mounted (default ~/hero, or $HERO_MOUNT), served over WebDAV on 127.0.0.1:4918 and kept
# in sync with its peers. Ctrl-C (or SIGTERM) commits what is pending, unmounts and stops.
# Extra arguments go to the daemon (e.g. --net local on a LAN without internet).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --main-job
cargo build --release -q -p heroctl
H=$PWD/target/release/heroctl
mnt=${HERO_MOUNT:-$HOME/hero}
if $H --json init >/dev/null 2>&1; then echo "created the default store"; fi
if $H config check >/dev/null 2>&1; then
    :
elif $H daemon --init-config >/dev/null 2>&1; then
    echo "wrote the default configuration (edit it at $mnt/.hero/daemon.toml)"
else
    echo "the store's .hero/daemon.toml is invalid; the daemon runs on the defaults:" >&2
    $H config check >&2 || true
fi
exec $H daemon --mount "$mnt" "$@"
