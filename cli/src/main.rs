//! `heroctl`: the hero store command line.

// stdout goes through `output::write_stdout`, which survives a closed pipe.
#![deny(clippy::print_stdout)]

mod alloc;
mod authority;
mod commands;
mod daemon;
mod error;
mod git;
mod history;
mod member;
mod netcheck;
mod output;
mod serve;
mod sync;
mod workdir;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// Sync and import allocate many small, short-lived buffers per object: with glibc's
// allocator a 10,000-commit clone spent about a fifth of its CPU time in malloc and free.
// Transparent huge pages stay off (feature `no_thp`): zeroing 2 MiB pages on first touch
// cost a short-lived command up to a third of a second.
// mimalloc 2 (feature `v2`): with freed memory returned at once, as the mount, the daemon and
// the servers ask (`alloc.rs`), it kept the mount under its memory bound where mimalloc 3 did
// not (ADR 0021).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// hero store: a versioned, replicated datastore you mount as a drive.
#[derive(Parser, Debug)]
#[command(
    name = "heroctl",
    version,
    about,
    propagate_version = true,
    after_help = error::EXIT_CODES_HELP
)]
pub struct Cli {
    /// The repository file (default: $HERO_REPO, else $XDG_DATA_HOME/hero/store.hero).
    #[arg(short = 'R', long = "repo", global = true)]
    pub repo: Option<PathBuf>,
    /// Machine-readable JSON output (errors too, on stderr). Commands whose output is not a
    /// report (`cat`, `mount`, `serve dav`, `completions`, `man`) refuse it.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a repository (default path when none is given).
    Init {
        /// Where to create it.
        path: Option<PathBuf>,
    },
    /// Commit a directory: what changed in it since it was checked out, merged onto the
    /// branch (a directory never checked out may only fill an empty branch, or --replace).
    Commit(commands::CommitArgs),
    /// Bring a checked-out directory up to date: merge the branch's new commits into it,
    /// keeping local edits.
    Update(workdir::UpdateArgs),
    /// Write a revision into a directory.
    Checkout(commands::CheckoutArgs),
    /// Compare a directory with a revision.
    Status(commands::StatusArgs),
    /// Show history.
    Log(commands::LogArgs),
    /// List a directory of a revision.
    Ls(commands::LsArgs),
    /// Print a file of a revision.
    Cat(commands::CatArgs),
    /// Show changes between revisions.
    Diff(commands::DiffArgs),
    /// List, create or delete branches.
    Branch(commands::BranchArgs),
    /// List, create or delete tags.
    Tag(commands::TagArgs),
    /// Recompute every hash and report corrupt or missing objects.
    Verify,
    /// Objects, sizes, dedupe and delta ratios.
    Stats,
    /// Remove what no branch, tag or recent reflog entry reaches, and give the space back.
    Gc(commands::GcArgs),
    /// Convert the repository to this heroctl's format in place (atomic: an interrupted
    /// upgrade leaves the old repository), then compact it.
    Upgrade,
    /// Import history from elsewhere (`import git PATH`).
    Import {
        /// What to import from.
        #[command(subcommand)]
        what: git::ImportKind,
    },
    /// Export the store's history (`export git DIR`).
    Export {
        /// What to export to.
        #[command(subcommand)]
        what: git::ExportKind,
    },
    /// Mount a branch as a drive: every save becomes a commit, changes from elsewhere appear.
    Mount(serve::MountArgs),
    /// Serve the store: without a subcommand, to peers (sync over iroh; prints a ticket);
    /// `serve dav`: a WebDAV share.
    Serve {
        /// What to serve (nothing: the sync server).
        #[command(subcommand)]
        what: Option<serve::ServeKind>,
        /// Options of the sync server.
        #[command(flatten)]
        sync: sync::SyncServeArgs,
    },
    /// Run the daemon: the drive mounted, shared over WebDAV and kept in sync with its peers,
    /// configured by `.hero/daemon.toml` in the repository. `daemon status`: ask the running one.
    Daemon {
        /// `status` or `reload` (nothing: run the daemon).
        #[command(subcommand)]
        what: Option<daemon::DaemonCommand>,
        /// Options of the daemon.
        #[command(flatten)]
        args: daemon::DaemonArgs,
    },
    /// Run a command when files matching a glob change on the default branch, here or from a
    /// peer (`heroctl watch 'etc/**/*.conf' --check 'nginx -t' -- systemctl reload nginx`).
    Watch(daemon::watch::WatchArgs),
    /// The daemon's configuration: `config check [FILE]`.
    Config {
        /// What to do.
        #[command(subcommand)]
        what: daemon::ConfigCommand,
    },
    /// Replication: id, clone, pull, push, sync, remote, allow, conflicts.
    #[command(flatten)]
    Sync(sync::SyncCommand),
    /// Membership: member, invite, join, audit.
    #[command(flatten)]
    Membership(member::MembershipCommand),
    /// Earlier states: reflog, restore, revert, undo.
    #[command(flatten)]
    History(history::HistoryCommand),
    /// Print a shell completion script (`heroctl completions bash > /etc/bash_completion.d/heroctl`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page, in roff (`heroctl man | man -l -`).
    Man,
}

fn main() -> ExitCode {
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
    match commands::run(cli) {
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
