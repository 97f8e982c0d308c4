//! `heroctl`: the hero store command line.

mod commands;
mod git;
mod history;
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
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// hero store: a versioned, replicated datastore you mount as a drive.
#[derive(Parser, Debug)]
#[command(name = "heroctl", version, about, propagate_version = true)]
pub struct Cli {
    /// The repository file (default: $HERO_REPO, else $XDG_DATA_HOME/hero/store.hero).
    #[arg(short = 'R', long = "repo", global = true)]
    pub repo: Option<PathBuf>,
    /// Machine-readable JSON output.
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
    /// Replication: id, clone, pull, push, sync, remote, allow, conflicts.
    #[command(flatten)]
    Sync(sync::SyncCommand),
    /// Earlier states: reflog, restore, revert, undo.
    #[command(flatten)]
    History(history::HistoryCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    output::init_tracing();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            if output::is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
