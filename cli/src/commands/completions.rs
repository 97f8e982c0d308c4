//! `heroctl completions SHELL` and `heroctl man`: what shells and `man` read.

use std::io::Write;

use anyhow::Result;
use clap::CommandFactory;

use crate::commands::Cli;

/// Prints the completion script of `shell`.
pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "heroctl", &mut buf);
    std::io::stdout().lock().write_all(&buf)?;
    Ok(())
}

/// Prints the manual page, in roff.
pub fn man() -> Result<()> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut buf)?;
    std::io::stdout().lock().write_all(&buf)?;
    Ok(())
}
