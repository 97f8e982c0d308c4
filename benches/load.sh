#!/usr/bin/env bash
# Load run on loopback (`--net local`): HLD_NODES daemons (default 10), each with its own
# repository and a real FUSE mount, all peers of each other (the fleet configuration of
# docs/daemon.md), with edits going on in every mount at once for HLD_SECS seconds.
#
#   edits        every mount, every HLD_INTERVAL seconds (default 5): a new file
#                `load/n<I>/<K>.txt` holding the marker `n<I>-e<K>`, and the same marker appended
#                as a line to the node's own `load/n<I>.log` (one writer per file: an existing
#                file edited again and again); every HLD_SHARED_EVERY-th edit (default 20) also
#                rewrites `load/shared.txt`, which every node writes (concurrent edits of one
#                file: merges and conflict copies).
#   lost edits   at the end (edits stopped), every marker must be on every mount, as its file and
#                as a line of its node's log or of one of that log's conflict copies
#                (`n<I>.log.conflict-…`), within HLD_SETTLE seconds (default 180) (the files are
#                listed; HLD_READ_ALL=1 reads every one back too, slow through ten mounts); then
#                `heroctl verify` of every repository. Exit 1 when an edit is missing.
#   memory       each daemon's RSS every HLD_SAMPLE seconds (default 5): first, last and max per
#                daemon, and the RSS over time in the work dir (rss.csv).
#   propagation  every HLD_PROBE seconds (default 5) a probe file written and closed in one mount
#                (each time the next node), then the time until it is readable with its content
#                in every other mount; median and p99 per minute of the run. The mount's idle
#                commit (mount.idle_commit_ms, 100 ms here) is part of the figure.
#
# usage: benches/load.sh
# env:   HLD_SECS (default 600), HLD_NODES (default 10), HLD_INTERVAL, HLD_SHARED_EVERY,
#        HLD_PROBE, HLD_SAMPLE, HLD_SETTLE, HLD_PORT_BASE (default 47800), HLD_KEEP=1 (keep the
#        work dir and its logs), HLD_PROFILE (default release; `dev` uses target/debug),
#        HLD_HEAPTRACK=1 (node 0's daemon runs under heaptrack with the system allocator, built
#        with feature `system-alloc`; its profile is kept in the work dir, and its RSS column is
#        heaptrack's own process, not the daemon).
# Needs: root (FUSE), fusermount3, python3. Work dir /tmp/hero-load.*
set -euo pipefail

SECS=${HLD_SECS:-600}
NODES=${HLD_NODES:-10}
INTERVAL=${HLD_INTERVAL:-5}
SHARED_EVERY=${HLD_SHARED_EVERY:-20}
PROBE=${HLD_PROBE:-5}
SAMPLE=${HLD_SAMPLE:-5}
SETTLE=${HLD_SETTLE:-180}
PORT_BASE=${HLD_PORT_BASE:-47800}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
for tool in python3 fusermount3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run as root (FUSE mounts)" >&2; exit 1; }
[ -e /dev/fuse ] || { echo "missing: /dev/fuse" >&2; exit 1; }

PROFILE=${HLD_PROFILE:-release}
FEATURES=()
WRAP0=()
if [ "${HLD_HEAPTRACK:-0}" = 1 ]; then
    command -v heaptrack >/dev/null || { echo "missing: heaptrack" >&2; exit 1; }
    FEATURES=(--features system-alloc)
    HLD_KEEP=1
fi
cargo build --profile "$PROFILE" -q -p heroctl "${FEATURES[@]}" --manifest-path "$ROOT/Cargo.toml"
if [ "$PROFILE" = dev ]; then H=$ROOT/target/debug/heroctl; else H=$ROOT/target/$PROFILE/heroctl; fi
export HERO_NET=local HERO_AUTHOR_NAME=bench HERO_AUTHOR_EMAIL=bench@localhost
WORK=$(mktemp -d /tmp/hero-load.XXXXXX)
if [ "${HLD_HEAPTRACK:-0}" = 1 ]; then WRAP0=(heaptrack -o "$WORK/heap-n0"); fi
PIDS=()
MNTS=()

cleanup() {
    # A daemon under heaptrack is the child of heaptrack's script: stop the daemon itself.
    for p in "${PIDS[@]}"; do pkill -TERM -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    for m in "${MNTS[@]}"; do fusermount3 -u -z "$m" 2>/dev/null || true; done
    if [ "${HLD_KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# shellcheck source=lib/fleet.sh
source "$ROOT/benches/lib/fleet.sh"

# The fleet: NODES nodes, all peers of each other, owners all; daemons started, mounts up.
dir=$WORK
mkdir -p "$dir/work/load"
fleet_config "$dir" "$NODES" $'\n[ui]\nenabled = false\n'
ids=("${FLEET_IDS[@]}")
printf 'shared\n' >"$dir/work/load/shared.txt"
$H -R "$dir/n0.hero" init >/dev/null
$H -R "$dir/n0.hero" commit "$dir/work" -m "fleet configuration" >/dev/null
for ((i = 1; i < NODES; i++)); do $H -R "$dir/n0.hero" member add "${ids[$i]}" --role owner >/dev/null; done
DAEMONS=()
for ((i = 0; i < NODES; i++)); do
    if ((i > 0)); then
        $H -R "$dir/n$i.hero" clone "${ids[0]}@127.0.0.1:$PORT_BASE" >/dev/null
    fi
    mkdir -p "$dir/mnt$i"
    wrap=()
    if ((i == 0)); then wrap=("${WRAP0[@]}"); fi
    "${wrap[@]}" $H -R "$dir/n$i.hero" daemon --mount "$dir/mnt$i" >"$dir/n$i.log" 2>&1 &
    PIDS+=($!)
    DAEMONS+=($!)
    MNTS+=("$dir/mnt$i")
    wait_ticket "$dir/n$i.log"
done

echo "hero load run: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(git -C "$ROOT" rev-parse --short HEAD)"
echo "command: benches/load.sh (HLD_SECS=$SECS HLD_NODES=$NODES HLD_INTERVAL=$INTERVAL HLD_SHARED_EVERY=$SHARED_EVERY HLD_PROBE=$PROBE HLD_PROFILE=$PROFILE)"

set +e
python3 - "$SECS" "$INTERVAL" "$SHARED_EVERY" "$PROBE" "$SAMPLE" "$SETTLE" "$WORK" "$H" \
    "${MNTS[@]}" -- "${DAEMONS[@]}" <<'PY'
import os, statistics, subprocess, sys, threading, time

secs, interval, shared_every, probe_every, sample_every, settle = (
    float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]),
    float(sys.argv[5]), float(sys.argv[6]))
work, heroctl = sys.argv[7], sys.argv[8]
rest = sys.argv[9:]
sep = rest.index("--")
mnts, pids = rest[:sep], [int(p) for p in rest[sep + 1:]]
n = len(mnts)
start = time.monotonic()
stop = threading.Event()
made = [0] * n          # edits made per node
errors = []             # write errors (the mount refused or failed a write)
probes = []             # (minute, seconds to every other mount) ; None when it never arrived
rss = []                # (seconds, [kB per daemon])

def editor(i):
    mnt = mnts[i]
    os.makedirs(os.path.join(mnt, "load", f"n{i}"), exist_ok=True)
    log = os.path.join(mnt, "load", f"n{i}.log")
    k = 0
    nxt = time.monotonic()
    while not stop.is_set():
        marker = f"n{i}-e{k}"
        try:
            with open(os.path.join(mnt, "load", f"n{i}", f"{k}.txt"), "w") as f:
                f.write(marker + "\n")
            with open(log, "a") as f:
                f.write(marker + "\n")
            if shared_every and k % shared_every == shared_every - 1:
                with open(os.path.join(mnt, "load", "shared.txt"), "w") as f:
                    f.write(f"{marker} was here\n")
            k += 1
            made[i] = k
        except OSError as e:
            errors.append(f"node {i} edit {k}: {e}")
        nxt += interval
        stop.wait(max(0.0, nxt - time.monotonic()))

def prober():
    j = 0
    nxt = time.monotonic() + probe_every
    while not stop.is_set():
        stop.wait(max(0.0, nxt - time.monotonic()))
        if stop.is_set():
            break
        nxt += probe_every
        src = j % n
        name = f"probe-{j}.txt"
        content = f"probe {j} from node {src}\n"
        with open(os.path.join(mnts[src], name), "w") as f:
            f.write(content)
        t0 = time.monotonic()  # after close()
        minute = int((t0 - start) // 60)
        pending = {i for i in range(n) if i != src}
        while pending and time.monotonic() - t0 < 120:
            for i in list(pending):
                try:
                    with open(os.path.join(mnts[i], name)) as f:
                        if f.read() == content:
                            pending.discard(i)
                except OSError:
                    pass
            time.sleep(0.005)
        probes.append((minute, None if pending else time.monotonic() - t0))
        j += 1

def sampler():
    with open(os.path.join(work, "rss.csv"), "w") as out:
        out.write("seconds," + ",".join(f"n{i}" for i in range(n)) + "\n")
        while True:
            row = []
            for p in pids:
                kb = 0
                try:
                    with open(f"/proc/{p}/status") as f:
                        for line in f:
                            if line.startswith("VmRSS:"):
                                kb = int(line.split()[1])
                except OSError:
                    pass
                row.append(kb)
            t = time.monotonic() - start
            rss.append((t, row))
            out.write(f"{t:.0f}," + ",".join(map(str, row)) + "\n")
            out.flush()
            if stop.wait(sample_every):
                break

threads = [threading.Thread(target=editor, args=(i,)) for i in range(n)]
threads += [threading.Thread(target=prober), threading.Thread(target=sampler)]
for t in threads:
    t.start()
last_report = 0
while time.monotonic() - start < secs:
    time.sleep(1)
    el = time.monotonic() - start
    if el - last_report >= 60:
        last_report = el
        print(f"  {el / 60:.0f} min: {sum(made)} edits made, {len(probes)} probes", flush=True)
stop.set()
for t in threads:
    t.join()
ended = time.monotonic()

# Every marker on every mount: its file, and its line in its node's log or a conflict copy.
# While waiting, a file counts when it is listed (cheap); the last pass reads every file.
def missing_on(mnt, read_files):
    miss = []
    d = os.path.join(mnt, "load")
    try:
        names = os.listdir(d)
    except OSError:
        names = []
    for i in range(n):
        lines = set()
        for name in names:
            if name == f"n{i}.log" or name.startswith(f"n{i}.log.conflict-"):
                try:
                    with open(os.path.join(d, name)) as f:
                        lines.update(f.read().split("\n"))
                except OSError:
                    pass
        try:
            files = set(os.listdir(os.path.join(d, f"n{i}")))
        except OSError:
            files = set()
        for k in range(made[i]):
            marker = f"n{i}-e{k}"
            as_file = f"{k}.txt" in files
            if as_file and read_files:
                try:
                    with open(os.path.join(d, f"n{i}", f"{k}.txt")) as f:
                        as_file = f.read() == marker + "\n"
                except OSError:
                    as_file = False
            if not as_file or marker not in lines:
                miss.append(marker)
    return miss

missing = {}
while True:
    missing = {m: v for m in mnts if (v := missing_on(m, False))}
    if not missing or time.monotonic() - ended > settle:
        break
    time.sleep(1)
settled = time.monotonic() - ended
if not missing and os.environ.get("HLD_READ_ALL") == "1":
    missing = {m: v for m in mnts if (v := missing_on(m, True))}

ms = lambda s: f"{s * 1000:.0f} ms"
def pct(v, q):
    v = sorted(v); return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]
total = sum(made)
print(f"edits: {total} made ({', '.join(str(m) for m in made)} per node) in {secs:.0f} s, "
      f"{len(errors)} write errors")
for e in errors[:10]:
    print(f"  {e}")
if missing:
    lost = sum(len(v) for v in missing.values())
    print(f"NOT EVERYWHERE: {lost} marker copies missing after {settle:.0f} s of settling "
          "(each mount has its own edits; the others' had not arrived)")
    for m, v in missing.items():
        print(f"  {m}: {len(v)} missing, e.g. {v[:5]}")
else:
    print(f"lost edits: none (every marker on all {n} mounts {settled:.1f} s after the edits stopped)")
conflicts = sum(1 for name in os.listdir(os.path.join(mnts[0], "load")) if ".conflict-" in name)
print(f"conflict copies in load/ at the end: {conflicts}")

print("RSS per daemon (MiB, first / last / max):")
for i in range(n):
    v = [row[i] for _, row in rss if row[i]]
    if v:
        print(f"  n{i}: {v[0] / 1024:.0f} / {v[-1] / 1024:.0f} / {max(v) / 1024:.0f}")
print("propagation (close() -> readable on every other mount), per minute:")
for minute in sorted({m for m, _ in probes}):
    v = [s for m, s in probes if m == minute and s is not None]
    lost = sum(1 for m, s in probes if m == minute and s is None)
    if v:
        print(f"  minute {minute + 1}: median {ms(statistics.median(v))}, p99 {ms(pct(v, 0.99))}, "
              f"max {ms(max(v))} ({len(v)} probes{f', {lost} not everywhere after 120 s' if lost else ''})")
    else:
        print(f"  minute {minute + 1}: {lost} probes, none arrived everywhere")
allv = [s for _, s in probes if s is not None]
if allv:
    print(f"  whole run: median {ms(statistics.median(allv))}, p99 {ms(pct(allv, 0.99))}, "
          f"max {ms(max(allv))} ({len(allv)} probes)")

bad = 0
for i in range(n):
    r = subprocess.run([heroctl, "-R", os.path.join(work, f"n{i}.hero"), "verify"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        bad += 1
        print(f"verify n{i}: exit {r.returncode}: {r.stdout}{r.stderr}")
print(f"verify: {n - bad} of {n} clean")
sys.exit(1 if missing or bad or any(s is None for _, s in probes) else 0)
PY
rc=$?
set -e
exit $rc
