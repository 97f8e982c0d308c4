//! Presentation: logging, standard output, progress bars, human numbers, JSON.
//!
//! Everything `heroctl` prints on stdout goes through [`write_stdout`] (the `outln!` and
//! `out!` macros, [`print_json`]): a write error comes back as an `io::Error`, and `main` ends
//! quietly with status 0 when it is a broken pipe (`heroctl log | head -1`), as `cat` does.
//! `println!` would panic there instead; clippy's `print_stdout` lint keeps it out.

use std::io::{IsTerminal, Write};

use indicatif::{HumanBytes, HumanCount, ProgressBar, ProgressState, ProgressStyle};

/// Logs go to stderr, filtered by RUST_LOG (default: warnings); colored only on a terminal.
pub fn init_tracing() {
    init_tracing_with(QUIET_NET);
}

/// The default log filter: warnings, but not iroh's about relays and lookups (DNS, mDNS) that cannot be
/// reached (offline, or on a LAN without internet, they fail every few seconds and are not
/// ours to act on: a peer that cannot be reached is an error of the command itself), nor the
/// line iroh logs at every endpoint's close while a relay connection was still starting.
pub const QUIET_NET: &str = "warn,iroh=error,iroh_relay=error,iroh::socket::transports::relay=off,\
     iroh_mdns_address_lookup=error,swarm_discovery=error";

/// Logs filtered by RUST_LOG, else by `default`.
pub fn init_tracing_with(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        // A log that cannot be written (stderr on a full disk) loses the line. By default the
        // subscriber reports that with `eprintln!`, which panics when stderr fails too: on a
        // full disk every thread that logged panicked, the mount's watcher among them.
        .log_internal_errors(false)
        .try_init();
}

/// Writes formatted text on stdout; the error of a closed pipe comes back to the caller.
/// Inside [`capture`], the text is kept instead.
pub fn write_stdout(args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    let captured = CAPTURE.with(|c| match c.borrow_mut().as_mut() {
        Some(buf) => {
            use std::fmt::Write as _;
            let _ = buf.write_fmt(args);
            true
        }
        None => false,
    });
    if captured {
        return Ok(());
    }
    std::io::stdout().lock().write_fmt(args)
}

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` keeping what it writes through [`write_stdout`] on this thread, and returns it
/// with `f`'s result: how `heroctl script` turns a command's JSON report into its result.
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, String) {
    let outer = CAPTURE.with(|c| c.replace(Some(String::new())));
    let out = f();
    let text = CAPTURE.with(|c| c.replace(outer)).unwrap_or_default();
    (out, text)
}

/// `println!` that returns the write error (a broken pipe ends `heroctl` quietly).
macro_rules! outln {
    () => {
        $crate::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;

/// Prints a JSON value on stdout.
pub fn print_json(v: &serde_json::Value) -> anyhow::Result<()> {
    // Serialized first: serde_json's writer error hides the io::Error from the error chain.
    let text = serde_json::to_string_pretty(v)?;
    outln!("{text}")?;
    Ok(())
}

/// A progress bar on stderr when stderr is a terminal and output is not JSON; hidden otherwise.
pub fn progress_bar(json: bool, what: &str) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(bar_style());
    bar.set_message(what.to_owned());
    bar
}

fn rate(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{}/s", HumanCount(state.per_sec() as u64));
}

/// A bar with a total: position, total, rate, time left (the message says the bytes).
pub fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg} [{bar:30}] {human_pos}/{human_len} ({rate}, eta {eta})")
        .map(|s| s.with_key("rate", rate))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A count whose total is not known yet (a sender still listing what it sends).
pub fn count_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg} {human_pos} objects ({rate})")
        .map(|s| s.with_key("rate", rate))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// A size for people: `1.20 MiB` (JSON keeps the raw number).
pub fn bytes(n: u64) -> String {
    HumanBytes(n).to_string()
}

/// A count for people: `17,268` (JSON keeps the raw number).
pub fn count(n: u64) -> String {
    HumanCount(n).to_string()
}

/// Refuses `--json` for a command whose output is not a report (file bytes, a server's log).
pub fn refuse_json(json: bool, command: &str, why: &str) -> anyhow::Result<()> {
    if json {
        return Err(crate::error::tagged(
            crate::error::Kind::Usage,
            format!("`heroctl {command}` has no --json output: {why}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_for_people() {
        assert_eq!(bytes(1_258_291), "1.20 MiB");
        assert_eq!(bytes(12), "12 B");
        assert_eq!(count(17_268), "17,268");
    }
}
