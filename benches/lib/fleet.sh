# Shared by the daemon benchmarks (daemon.sh, daemon_memory.sh, load.sh).
#
# fleet_config DIR N [EXTRA]: the fleet configuration of docs/daemon.md for N nodes whose
# repositories are DIR/n<I>.hero, listening on 127.0.0.1:PORT_BASE+I, all peers of each other
# (catch-up every 30 s, mount idle commit 100 ms, no share), with the TOML text EXTRA before the
# per-node sections; written to DIR/work/.hero/daemon.toml. Sets FLEET_IDS (the nodes' ids).
# Uses $H (heroctl) and $PORT_BASE.
#
# wait_ticket LOG: waits (up to 120 s) for a daemon's `ticket: ` line in LOG; on timeout prints
# the log and returns 1.
wait_ticket() {
    local log=$1 i
    for i in $(seq 1 6000); do
        if grep -q '^ticket: ' "$log"; then return 0; fi
        sleep 0.02
    done
    echo "no ticket in $log:" >&2
    cat "$log" >&2
    return 1
}

fleet_config() {
    local dir=$1 n=$2 extra=${3:-} i id port peers="" nodes=""
    mkdir -p "$dir/work/.hero"
    FLEET_IDS=()
    for ((i = 0; i < n; i++)); do
        id=$($H -R "$dir/n$i.hero" id)
        FLEET_IDS+=("$id")
        port=$((PORT_BASE + i))
        peers+="${peers:+, }\"$id@127.0.0.1:$port\""
        nodes+=$'\n'"[node.$id]"$'\n'"listen = \"127.0.0.1:$port\""$'\n'
    done
    cat >"$dir/work/.hero/daemon.toml" <<EOF
peers = [$peers]
catch_up_secs = 30

[mount]
idle_commit_ms = 100

[dav]
enabled = false
$extra$nodes
EOF
}
