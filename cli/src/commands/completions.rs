//! `heroctl completions SHELL` and `heroctl man`: what shells and `man` read.

use std::io::Write;

use anyhow::Result;
/// Prints the completion script of `shell` for the command line `cli` (heroctl's).
pub fn completions(shell: clap_complete::Shell, mut cli: clap::Command) -> Result<()> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cli, "heroctl", &mut buf);
    std::io::stdout().lock().write_all(&buf)?;
    Ok(())
}

/// Prints the manual page of the command line `cli` (heroctl's), in roff.
pub fn man(cli: clap::Command) -> Result<()> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cli).render(&mut buf)?;
    std::io::stdout().lock().write_all(&buf)?;
    Ok(())
}
