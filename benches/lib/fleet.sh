# Shared by the daemon benchmarks (daemon.sh, daemon_memory.sh, load.sh).
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
