//! The commands of `heroctl`: the command line (`Cli`, `Command`) and one module per command
//! or family of commands, each owning its arguments and its `run`. What they share is in
//! [`crate::context`], which imports none of them.

pub mod branch;
pub mod cat;
pub mod check;
pub mod checkout;
pub mod completions;
pub mod daemon;
pub mod diff;
pub mod gc;
pub mod get;
pub mod git;
pub mod history;
pub mod init;
pub mod log;
pub mod ls;
pub mod member;
pub mod query;
pub mod repair;
pub mod script;
pub mod serve;
pub mod stats;
pub mod status;
pub mod sync;
pub mod tag;
pub mod ui;
pub mod upgrade;
pub mod verify;
pub mod workdir;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};

use crate::context::{IMPORT_BUDGET, open_repo, open_repo_with_budget, repo_path};
use crate::output::refuse_json;

/// hero store: a versioned, replicated datastore you mount as a drive.
#[derive(Parser, Debug)]
#[command(
    name = "heroctl",
    version,
    about,
    propagate_version = true,
    after_help = crate::error::EXIT_CODES_HELP
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
    Commit(workdir::CommitArgs),
    /// Bring a checked-out directory up to date: merge the branch's new commits into it,
    /// keeping local edits.
    Update(workdir::UpdateArgs),
    /// Write a revision into a directory.
    Checkout(checkout::CheckoutArgs),
    /// Compare a directory with a revision.
    Status(status::StatusArgs),
    /// Show history.
    Log(log::LogArgs),
    /// List a directory of a revision.
    Ls(ls::LsArgs),
    /// Print a file of a revision.
    Cat(cat::CatArgs),
    /// Print a value of a structured file (TOML, Markdown, HeroScript) at a revision:
    /// `heroctl get main:etc/app.toml server.port`.
    Get(get::GetArgs),
    /// Query every structured file of a revision: `heroctl query main 'node.define[*].ipaddr'`.
    Query(query::QueryArgs),
    /// Check a revision: every structured file parses and keeps the rules of the schemas
    /// under `.hero/schemas/` (exit 2 naming path:line:column).
    Check(check::CheckArgs),
    /// Run a HeroScript of `!!hero.*` actions (FILE, or `-` for stdin): all are checked
    /// before any runs; one JSON result per action.
    Script(script::ScriptArgs),
    /// Show changes between revisions.
    Diff(diff::DiffArgs),
    /// List, create or delete branches.
    Branch(branch::BranchArgs),
    /// List, create or delete tags.
    Tag(tag::TagArgs),
    /// Recompute every hash and report corrupt or missing objects.
    Verify,
    /// Objects, sizes, dedupe and delta ratios.
    Stats,
    /// Remove what no branch, tag or recent reflog entry reaches, and give the space back.
    Gc(gc::GcArgs),
    /// Convert the repository to this heroctl's format in place (atomic: an interrupted
    /// upgrade leaves the old repository), then compact it.
    Upgrade,
    /// Rebuild a damaged repository from every object that still verifies (the damaged file
    /// is kept aside as `<repo>.damaged-<time>`), report what was lost, and with
    /// `--from PEER|TICKET` fetch it from a peer. Stop mounts, shares and daemons using the
    /// repository first.
    Repair(repair::RepairArgs),
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
    /// Serve the web face: timeline, any revision's files, diffs, histories, decision
    /// records, peers and audit, live (http://127.0.0.1:4917/; --open signs a browser in).
    Ui(ui::UiArgs),
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

/// Runs a parsed command line.
/// A command line of a script's action, parsed to run against `repo` ([`script::ParseFn`]).
fn parse_for_script(
    argv: Vec<String>,
    repo: &Option<PathBuf>,
) -> std::result::Result<script::Runnable, clap::Error> {
    let mut cli = Cli::try_parse_from(argv)?;
    cli.repo = repo.clone();
    Ok(Box::new(move || run(cli)))
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    let json = cli.json;
    match cli.command {
        Command::Init { path } => init::run(&cli.repo, path, json)?,
        Command::Commit(a) => workdir::commit(&open_repo(&cli.repo)?, a, json)?,
        Command::Update(a) => workdir::update(&open_repo(&cli.repo)?, a, json)?,
        Command::Checkout(a) => checkout::run(&open_repo(&cli.repo)?, a, json)?,
        Command::Status(a) => return status::run(&open_repo(&cli.repo)?, a, json),
        Command::Log(a) => log::run(&open_repo(&cli.repo)?, a, json)?,
        Command::Ls(a) => ls::run(&open_repo(&cli.repo)?, a, json)?,
        Command::Cat(a) => {
            refuse_json(json, "cat", "it prints the file's bytes")?;
            cat::run(&open_repo(&cli.repo)?, a)?
        }
        Command::Get(a) => get::run(&open_repo(&cli.repo)?, a, json)?,
        Command::Query(a) => query::run(&open_repo(&cli.repo)?, a, json)?,
        Command::Check(a) => check::run(&open_repo(&cli.repo)?, a, json)?,
        Command::Script(a) => script::run(&cli.repo, a, parse_for_script)?,
        Command::Diff(a) => diff::run(&open_repo(&cli.repo)?, a, json)?,
        Command::Branch(a) => branch::run(&open_repo(&cli.repo)?, a, json)?,
        Command::Tag(a) => tag::run(&open_repo(&cli.repo)?, a, json)?,
        Command::Verify => return verify::run(&open_repo(&cli.repo)?, json),
        Command::Stats => stats::run(&open_repo(&cli.repo)?, json)?,
        Command::Upgrade => upgrade::run(open_repo(&cli.repo)?, json)?,
        Command::Repair(a) => return repair::run(&cli.repo, json, a),
        Command::Gc(a) => gc::run(open_repo(&cli.repo)?, a, json)?,
        Command::Import { what } => {
            git::import(open_repo_with_budget(&cli.repo, IMPORT_BUDGET)?, what, json)?
        }
        Command::Export { what } => git::export(&open_repo(&cli.repo)?, what, json)?,
        Command::Mount(a) => {
            refuse_json(json, "mount", "it runs until stopped and prints a log")?;
            serve::mount(&repo_path(&cli.repo)?, a)?
        }
        Command::Serve {
            what: Some(what), ..
        } => {
            refuse_json(json, "serve dav", "it runs until stopped and prints a log")?;
            serve::run(&repo_path(&cli.repo)?, what)?
        }
        Command::Serve { what: None, sync } => sync::serve(&cli.repo, json, sync)?,
        Command::Ui(a) => {
            refuse_json(json, "ui", "it runs until stopped and prints a log")?;
            ui::run(&repo_path(&cli.repo)?, a)?
        }
        Command::Daemon {
            what: None,
            mut args,
        } => {
            // The machine's local file fills in what the command line leaves out.
            let local = daemon::config::read_local();
            let env_repo = std::env::var_os("HERO_REPO").filter(|p| !p.is_empty());
            let repo = match (&cli.repo, env_repo, local.repo) {
                (None, None, Some(r)) => r,
                _ => repo_path(&cli.repo)?,
            };
            if args.mount.is_none() {
                args.mount = local.mount;
            }
            daemon::run(&repo, json, args)?
        }
        Command::Daemon {
            what: Some(what), ..
        } => daemon::command(&repo_path(&cli.repo)?, json, what)?,
        Command::Watch(a) => {
            refuse_json(json, "watch", "it runs until stopped and prints a log")?;
            daemon::watch::watch_command(&repo_path(&cli.repo)?, a)?
        }
        Command::Config { what } => daemon::config_command(&repo_path(&cli.repo)?, json, what)?,
        Command::Sync(c) => sync::run(&cli.repo, json, c)?,
        Command::Membership(c) => member::run(&cli.repo, json, c)?,
        Command::History(c) => history::run(&open_repo(&cli.repo)?, c, json)?,
        Command::Completions { shell } => {
            refuse_json(json, "completions", "it prints a shell script")?;
            completions::completions(shell, Cli::command())?
        }
        Command::Man => {
            refuse_json(json, "man", "it prints a manual page")?;
            completions::man(Cli::command())?
        }
    }
    Ok(ExitCode::SUCCESS)
}
