//! Tuning of the allocator (mimalloc) for the commands that stay running.
//!
//! heroctl links mimalloc 2 (the crate's `v2` feature). mimalloc keeps memory that was freed
//! committed for a while (`purge_delay`: 10 ms in mimalloc 2, 1 s in mimalloc 3) and returns
//! it only at its next allocation or free after that delay, so a mount that has just read
//! large files stays idle with freed buffers resident. The long-running commands (mount,
//! daemon, serve, serve dav) return freed memory at once instead; short commands keep the
//! default, which suits their bursts. Why mimalloc 2 and this delay: ADR 0021.

use std::ffi::c_long;

use libmimalloc_sys::mi_option_t;

/// mimalloc's `mi_option_purge_delay` (milliseconds before freed memory is returned to the
/// system; 0: at once, -1: never). libmimalloc-sys 0.1.49 names no constant for it: this is
/// its position in `mi_option_e` of the mimalloc headers the crate builds (15 in both
/// `c_src/mimalloc/v2/include/mimalloc.h` and `v3`), checked by the tests below.
const PURGE_DELAY: mi_option_t = 15;

/// The purge delay of the long-running commands: freed memory goes back at once.
pub const RESIDENT_PURGE_DELAY_MS: c_long = 0;

/// The environment variable with which mimalloc reads the purge delay at start; when it is
/// set, the user's value is kept.
const PURGE_DELAY_ENV: &str = "MIMALLOC_PURGE_DELAY";

/// Makes the allocator return freed memory to the system at once, unless
/// `MIMALLOC_PURGE_DELAY` says otherwise, and keeps the C allocator's arenas few. Call it
/// before other threads start (mimalloc's option setters are not synchronised).
pub fn return_freed_memory_promptly() {
    limit_c_arenas();
    if std::env::var_os(PURGE_DELAY_ENV).is_some() {
        return;
    }
    set_option(PURGE_DELAY, RESIDENT_PURGE_DELAY_MS);
}

/// The most arenas glibc's allocator keeps for the C code linked in (zstd's compression and
/// decompression contexts; Rust's own allocations go to mimalloc).
pub const C_ARENAS: i32 = 2;

/// glibc's variable for the arena count; when it is set, the user's value is kept.
const C_ARENAS_ENV: &str = "MALLOC_ARENA_MAX";

/// Keeps glibc's allocator to [`C_ARENAS`] arenas. By default it gives each new thread an
/// arena of its own, up to eight per core, and memory freed in one is reused only by the
/// threads that share it. In a daemon whose sessions move between threads, the zstd contexts
/// then left 3–4 MiB resident in each of a dozen arenas: 40 of a daemon's 120 MiB under load,
/// 16 MiB with two arenas (ten daemons, `benches/load.sh`).
fn limit_c_arenas() {
    if std::env::var_os(C_ARENAS_ENV).is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` sets one of glibc's allocator parameters; it is called before other
    // threads exist, and M_ARENA_MAX only bounds how many arenas later threads are given.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, C_ARENAS);
    }
}

fn set_option(option: mi_option_t, value: c_long) {
    // SAFETY: `mi_option_set` takes any option number and value (it ignores numbers outside
    // its table) and only stores the value; it is called before other threads exist, so no
    // allocation reads the option while it changes.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(option, value);
    }
}

#[cfg(test)]
fn get_option(option: mi_option_t) -> c_long {
    // SAFETY: `mi_option_get` reads one entry of mimalloc's option table (0 for a number
    // outside it).
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_get(option)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Set when this test runs as its own child process.
    const CHILD: &str = "HEROCTL_TEST_PURGE_DELAY_CHILD";

    /// `PURGE_DELAY` is mimalloc's purge delay: the test runs itself again in a process started
    /// with `MIMALLOC_PURGE_DELAY=4321`, which reads that value through it (no option has it
    /// by default) and keeps it. Here, without the variable, the long-running commands' value
    /// is set.
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        if std::env::var_os(CHILD).is_some() {
            assert_eq!(get_option(PURGE_DELAY), 4321);
            return_freed_memory_promptly();
            assert_eq!(get_option(PURGE_DELAY), 4321);
            return;
        }
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "alloc::tests::the_purge_delay_option_is_the_one_set",
                "--exact",
            ])
            .env(PURGE_DELAY_ENV, "4321")
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if std::env::var_os(PURGE_DELAY_ENV).is_none() {
            return_freed_memory_promptly();
            assert_eq!(get_option(PURGE_DELAY), RESIDENT_PURGE_DELAY_MS);
        }
    }
}
