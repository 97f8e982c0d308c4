//! `heroctl`: the hero store command line.

use std::process::ExitCode;

// Sync and import allocate many small, short-lived buffers per object: with glibc's
// allocator a 10,000-commit clone spent about a fifth of its CPU time in malloc and free.
// Transparent huge pages stay off (feature `no_thp`): zeroing 2 MiB pages on first touch
// cost a short-lived command up to a third of a second.
// mimalloc 2 (feature `v2`): with freed memory returned at once, as the mount, the daemon and
// the servers ask (`alloc.rs`), it kept the mount under its memory bound where mimalloc 3 did
// not (ADR 0021). Feature `system-alloc` leaves the system allocator in place, for heap
// profilers that hook malloc (heaptrack; benches/load.sh HLD_HEAPTRACK=1).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    heroctl::run_main()
}
