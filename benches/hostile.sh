#!/usr/bin/env bash
# An honest clone while a flooding attacker works on the same server, against the same clone
# without it, in the same run (the peer measured is the server undisturbed):
#   server:   `heroctl serve --net local` of a generated history (HH_COMMITS commits, imported
#             from git; benches/lib/gen-history.sh)
#   honest:   `heroctl clone` by a reader, from 127.0.0.1
#   attacker: sync/examples/flood.rs, every connection from HH_ATTACKER_IP (another loopback
#             address: Linux answers every 127.x.y.z), so the server tells the two apart by
#             address as it would on a network: HH_STRANGERS new keys that connect and stay silent, over
#             and over; a member claiming 4 GiB frames; a member that pulls everything, then
#             asks for 200,000 signatures in one SIG_WANT (refused), over and over (HH_FLOODERS
#             such loops; 0 leaves only the strangers and the 4 GiB claims)
# Clones alternate, HH_RUNS of each (undisturbed first); medians and the ratio
# attacked / undisturbed are printed, with what the attacker managed meanwhile.
#
# usage: benches/hostile.sh
# env:   HH_COMMITS (default 2000), HH_RUNS (default 3), HH_STRANGERS (default 8), HH_FLOODERS
#        (default 1), HH_ATTACKER_IP (default 127.0.0.3; 127.0.0.1 puts it beside the honest
#        client),
#        HH_PROFILE (release or debug; default release), HH_KEEP=1 (keep the work dir)
# Needs: git, python3. Work dir: /tmp/hero-hostile-bench.*
set -euo pipefail

N=${HH_COMMITS:-2000}
RUNS=${HH_RUNS:-3}
STRANGERS=${HH_STRANGERS:-8}
FLOODERS=${HH_FLOODERS:-1}
ATTACKER_IP=${HH_ATTACKER_IP:-127.0.0.3}
PROFILE=${HH_PROFILE:-release}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CMDLINE="$0"
# shellcheck source=lib/gen-history.sh
. "$ROOT/benches/lib/gen-history.sh"

for tool in git python3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

case $PROFILE in
    release) flags=(--release) ;;
    debug) flags=() ;;
    *) echo "HH_PROFILE is release or debug" >&2; exit 1 ;;
esac
cargo build "${flags[@]}" -q -p heroctl --manifest-path "$ROOT/Cargo.toml"
cargo build "${flags[@]}" -q -p hero-sync --example flood --manifest-path "$ROOT/Cargo.toml"
H=$ROOT/target/$PROFILE/heroctl
FLOOD=$ROOT/target/$PROFILE/examples/flood

WORK=$(mktemp -d /tmp/hero-hostile-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ "${HH_KEEP:-}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
export HERO_AUTHOR_NAME=Bench HERO_AUTHOR_EMAIL=bench@example.com HERO_NET=local

generate_history "$WORK/git" "$N"
A=$WORK/a.hero
"$H" -R "$A" init >/dev/null
"$H" -R "$A" import git "$WORK/git" >/dev/null

"$H" -R "$A" serve >"$WORK/serve.out" 2>"$WORK/serve.err" &
PIDS+=($!)
TICKET=
for _ in $(seq 400); do
    TICKET=$(sed -n 's/^ticket: //p' "$WORK/serve.out" 2>/dev/null || true)
    [ -n "$TICKET" ] && break
    sleep 0.05
done
[ -n "$TICKET" ] || { echo "heroctl serve printed no ticket" >&2; cat "$WORK/serve.err" >&2; exit 1; }

member() { # REPO ROLE: makes REPO's key a member of the server's repository
    "$H" -R "$A" member add "$("$H" -R "$1" id)" --role "$2" >/dev/null
}
member "$WORK/attacker.hero" writer

clone_secs() { # NAME -> seconds of one honest clone by a new reader
    local b=$WORK/$1.hero t0 t1
    member "$b" reader
    t0=$(date +%s.%N)
    "$H" -R "$b" --json clone "$TICKET" >"$WORK/$1.json"
    t1=$(date +%s.%N)
    python3 -c "print(f'{$t1 - $t0:.3f}')"
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

calm=() stormy=()
for i in $(seq "$RUNS"); do
    calm+=("$(clone_secs "calm$i")")
    "$FLOOD" "$TICKET" "$WORK/attacker.hero" "$STRANGERS" "$FLOODERS" "$ATTACKER_IP" >"$WORK/flood$i.out" 2>"$WORK/flood$i.err" &
    fp=$!
    PIDS+=("$fp")
    # The attacker is at work once its first session ended.
    for _ in $(seq 600); do
        grep -qv 'held 0 garbage 0 ' "$WORK/flood$i.out" 2>/dev/null && break
        sleep 0.05
    done
    stormy+=("$(clone_secs "storm$i")")
    kill "$fp" 2>/dev/null || true
    wait "$fp" 2>/dev/null || true
    done_line=$(tail -n 1 "$WORK/flood$i.out" || true)
    echo "run $i: undisturbed ${calm[-1]} s, attacked ${stormy[-1]} s (attacker: $done_line)"
done

m_calm=$(median "${calm[@]}")
m_storm=$(median "${stormy[@]}")
echo
echo "command: $CMDLINE (HH_COMMITS=$N HH_RUNS=$RUNS HH_STRANGERS=$STRANGERS HH_FLOODERS=$FLOODERS HH_ATTACKER_IP=$ATTACKER_IP HH_PROFILE=$PROFILE)"
echo "honest clone of $N commits, median of $RUNS: undisturbed $m_calm s, under attack $m_storm s"
python3 -c "print(f'ratio attacked / undisturbed: {$m_storm / $m_calm:.2f}')"
# What the server refused before the handshake (one audit line per address per minute, each
# with the count since the one before).
"$H" -R "$A" --json audit | python3 -c '
import json, re, sys
lines = [e for e in json.load(sys.stdin) if e.get("action") == "connect" and e.get("rule") == "rate"]
n = sum(int(re.match(r"(\d+)", e["reason"]).group(1)) for e in lines)
print(f"server: {n} connection(s) refused before the handshake in {len(lines)} audit line(s), by address: "
      + ", ".join(sorted({e["reason"].split(" from ")[1].split(" ")[0] for e in lines})))
'
