//! Presentation: logging, progress bars, JSON.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Logs go to stderr, filtered by RUST_LOG (default: warnings); colored only on a terminal.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// Whether an error chain ends in a broken pipe (`heroctl log | head`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// A progress bar on stderr when stdout is a terminal and output is not JSON; hidden otherwise.
pub fn progress_bar(json: bool, what: &str) -> ProgressBar {
    if json || !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(bar_style());
    bar.set_message(what.to_owned());
    bar
}

/// A bar with a total: position, total, rate, time left.
pub fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A count whose total is not known yet (a sender still listing what it sends).
pub fn count_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg} {pos} objects ({per_sec})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Prints a JSON value on stdout.
pub fn print_json(v: &serde_json::Value) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}
