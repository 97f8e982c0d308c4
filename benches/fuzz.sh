#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each, one after another: the decoders' targets in fuzz/
# (listed in fuzz/targets.txt), the daemon configuration's in cli/fuzz/ and the structured-file
# parsers' in formats/fuzz/ (formats_*). Each starts from
# its checked-in seeds (fuzz/seeds/<target>, read only) and the corpus earlier runs left in
# fuzz/corpus/<target> (not checked in). Prints one Markdown row per target: executions,
# executions per second, corpus size (inputs, bytes), crashes. A crash leaves its input in
# fuzz/artifacts/<target>/: add it to fuzz/seeds/<target>/ under a name saying what it pins
# and fix the decoder; cli/tests/fuzz_corpus.rs then replays it in every CI run.
#
# usage: benches/fuzz.sh [SECONDS] [TARGET...]   (default 60 s, every target)
# Needs: a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${1:-60}
shift || true
F=$ROOT/fuzz
if [ $# -gt 0 ]; then TARGETS=("$@"); else mapfile -t TARGETS < "$F/targets.txt"; TARGETS+=(daemon_config formats_toml formats_markdown formats_heroscript formats_query); fi
dir_of() {
  case $1 in
    daemon_config) echo "$ROOT/cli" ;;
    formats_*) echo "$ROOT/formats" ;;
    *) echo "$ROOT" ;;
  esac
}
for d in $(for t in "${TARGETS[@]}"; do dir_of "$t"; done | sort -u); do
  (cd "$d" && cargo +nightly fuzz build -O >/dev/null)
done
echo "| target | seconds | executions | exec/s | corpus inputs | corpus bytes | crashes |"
echo "|---|---|---|---|---|---|---|"
for t in "${TARGETS[@]}"; do
  mkdir -p "$F/corpus/$t" "$F/artifacts/$t"
  log=$(mktemp)
  status=0
  # -rss_limit_mb: a decoder may allocate what a record claims (at most 64 MiB per object).
  (cd "$(dir_of "$t")" && cargo +nightly fuzz run -O "$t" "$F/corpus/$t" "$F/seeds/$t" -- \
    -max_total_time="$SECS" -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$F/artifacts/$t/") >"$log" 2>&1 || status=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  persec=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  inputs=$(find "$F/corpus/$t" -type f | wc -l)
  bytes=$(find "$F/corpus/$t" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
  crashes=$(find "$F/artifacts/$t" -type f | wc -l)
  echo "| $t | $SECS | ${execs:-?} | ${persec:-?} | $inputs | $bytes | $crashes |"
  if [ "$status" -ne 0 ]; then
    grep -m5 -E 'panicked|ERROR|SUMMARY' "$log" | sed 's/^/    /' >&2 || true
  fi
  rm -f "$log"
done
