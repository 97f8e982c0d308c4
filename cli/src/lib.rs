//! `heroctl`: the hero store command line, as a library (every command, the daemon) and a
//! thin binary (`main.rs`). [`run_main`] parses the command line, runs the command and maps
//! its error to an exit code.

// stdout goes through `output::write_stdout`, which survives a closed pipe.
#![deny(clippy::print_stdout)]

mod alloc;
mod authority;
mod commands;
mod context;
mod control;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod netcheck;
mod output;

use std::process::ExitCode;

use clap::Parser;

use commands::{Cli, Command};

/// Runs `heroctl` with this process's arguments: the exit code of what happened.
pub fn run_main() -> ExitCode {
    let cli = match Cli::try_parse_from(net_after_subcommand(std::env::args_os().collect())) {
        Ok(cli) => cli,
        Err(e) => return command_line_error(e),
    };
    if matches!(
        cli.command,
        Command::Mount(_) | Command::Daemon { what: None, .. } | Command::Serve { .. }
    ) {
        // Processes that stay give freed memory back at once (ADR 0021); still one thread.
        alloc::return_freed_memory_promptly();
    }
    if matches!(
        cli.command,
        Command::Daemon { what: None, .. } | Command::Serve { what: None, .. }
    ) {
        // A daemon without a network would log every failed relay and lookup attempt; it
        // says once that it runs without them, and its own lines stay visible.
        output::init_tracing_with(&format!("{},heroctl=info", output::QUIET_NET));
    } else {
        output::init_tracing();
    }
    let json = cli.json;
    match error::contain_engine_panics(|| commands::run(cli)) {
        Ok(code) => code,
        // The reader went away (`heroctl log | head -1`): nothing more to say.
        Err(e) if error::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let e = error::CommandError::from(e);
            e.print(json);
            e.exit_code()
        }
    }
}

/// Help, version, or a usage error from clap: as clap prints it, or as a JSON error with
/// `--json`. Help and version exit 0, usage errors 2.
fn command_line_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let code = u8::try_from(e.exit_code()).unwrap_or(2);
    let json = std::env::args_os().any(|a| a == "--json");
    if !json || matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        // Help on a closed pipe is no failure either.
        let _ = e.print();
        return ExitCode::from(code);
    }
    let message = if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        // clap renders the help here, whose first line is no error message.
        "a subcommand is missing".to_owned()
    } else {
        let text = e.render().to_string();
        text.lines()
            .next()
            .unwrap_or("invalid command line")
            .trim_start_matches("error: ")
            .to_owned()
    };
    let err = error::CommandError {
        kind: error::Kind::Usage,
        err: anyhow::anyhow!(message),
        hint: Some("`heroctl --help` lists the commands and options".to_owned()),
    };
    err.print(true);
    err.exit_code()
}

/// `--net MODE` is an option of the commands that use the network; given before the
/// subcommand (`heroctl --net local daemon`) it is moved right after it, where they read it.
fn net_after_subcommand(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut net: Vec<std::ffi::OsString> = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let a = args[i].to_string_lossy().into_owned();
        if a == "--net" && i + 1 < args.len() {
            net.extend(args.drain(i..i + 2));
            continue;
        }
        if a.starts_with("--net=") {
            net.push(args.remove(i));
            continue;
        }
        if a == "-R" || a == "--repo" {
            i += 2;
            continue;
        }
        if a == "--" || !a.starts_with('-') {
            break;
        }
        i += 1;
    }
    if !net.is_empty() {
        // `i` is the subcommand's position (or the end: clap then reports what is missing).
        let at = (i + 1).min(args.len());
        for (k, a) in net.into_iter().enumerate() {
            args.insert(at + k, a);
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moved(args: &[&str]) -> Vec<String> {
        net_after_subcommand(args.iter().map(std::ffi::OsString::from).collect())
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn net_is_accepted_before_the_subcommand() {
        assert_eq!(
            moved(&[
                "heroctl", "--net", "local", "-R", "r", "daemon", "--mount", "m"
            ]),
            [
                "heroctl", "-R", "r", "daemon", "--net", "local", "--mount", "m"
            ]
        );
        assert_eq!(
            moved(&["heroctl", "--net=local", "pull"]),
            ["heroctl", "pull", "--net=local"]
        );
        // After the subcommand, or absent: untouched.
        assert_eq!(
            moved(&["heroctl", "daemon", "--net", "local"]),
            ["heroctl", "daemon", "--net", "local"]
        );
        let parsed = Cli::try_parse_from(net_after_subcommand(
            ["heroctl", "--net", "local", "daemon", "--mount", "m"]
                .iter()
                .map(std::ffi::OsString::from)
                .collect(),
        ));
        assert!(parsed.is_ok(), "{parsed:?}");
    }
}
