#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks need (idempotent; root or sudo);
# with --main-job only what the main job needs.
set -euo pipefail
pkgs=(fuse3 bindfs util-linux iproute2 libfuse3-dev pkg-config litmus rclone davfs2 fio fossil git hyperfine b3sum zstd bc python3 time iptables curl sqlite3 vim chromium chromium-driver)
# The main job (scripts/run.sh) needs only the mount's fuse3, not the test and benchmark tools.
if [ "${1:-}" = "--main-job" ]; then pkgs=(fuse3); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
