#!/usr/bin/env bash
# Runs every test: installs what the tests need, then the whole workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --workspace --bins
cargo test --workspace -- --test-threads="${HERO_TEST_THREADS:-2}"
