//! The commands of `heroctl`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};
use hero_store::{
    Author, CheckoutOptions, DiffKind, EntryKind, LineDiff, ObjectId, Progress, RefValue, Repo,
    RepoPath, Signature, StatusKind, Tag, TargetKind, line_diff,
};
use serde_json::json;

use crate::error::{Kind, tagged};
use crate::output::{bytes, count, outln, print_json, progress_bar, refuse_json};
use crate::{Cli, Command};

/// The default repository: `$XDG_DATA_HOME/hero/store.hero` (or `~/.local/share/...`).
pub fn default_repo_path() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("hero").join("store.hero"));
    }
    let home = std::env::var_os("HOME").context("neither XDG_DATA_HOME nor HOME is set")?;
    Ok(PathBuf::from(home)
        .join(".local")
        .join("share")
        .join("hero")
        .join("store.hero"))
}

/// `-R`, then `HERO_REPO`, then the default.
pub fn repo_path(cli_repo: &Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = cli_repo {
        return Ok(p.clone());
    }
    if let Some(p) = std::env::var_os("HERO_REPO").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    default_repo_path()
}

fn open_repo(cli_repo: &Option<PathBuf>) -> Result<Repo> {
    open_repo_with_cache(cli_repo, None)
}

/// Page cache of an import: its lookups hit recent objects, which it keeps itself (bounds the
/// import's memory).
const IMPORT_CACHE_BYTES: usize = 16 << 20;

fn open_repo_with_cache(cli_repo: &Option<PathBuf>, cache: Option<usize>) -> Result<Repo> {
    let path = repo_path(cli_repo)?;
    let opened = match cache {
        Some(bytes) => Repo::open_with_cache(&path, bytes),
        None => Repo::open(&path),
    };
    with_open_context(opened, &path)
}

/// Adds the path to an error opening a repository, except where the error names it already.
/// The hint (`heroctl init` for a missing file only) comes from the error's kind.
pub fn with_open_context(opened: hero_store::Result<Repo>, path: &std::path::Path) -> Result<Repo> {
    match opened {
        Ok(repo) => Ok(repo),
        Err(
            e @ (hero_store::Error::NoRepository(_) | hero_store::Error::NotARepository { .. }),
        ) => Err(e.into()),
        // A directory is a wrong argument, not a damaged repository.
        Err(_) if path.is_dir() => Err(tagged(
            Kind::Usage,
            format!(
                "{} is a directory; name the repository file (e.g. {})",
                path.display(),
                path.join("store.hero").display()
            ),
        )),
        Err(e) => {
            Err(anyhow::Error::new(e)
                .context(format!("cannot open the repository {}", path.display())))
        }
    }
}

/// The author of the commits this process makes: `HERO_AUTHOR_NAME`/`HERO_AUTHOR_EMAIL`, else
/// the user name, in the local time zone, with no peer. The one place the environment is read
/// for it; the mount, the share, the daemon and every command take what this returns.
pub fn author() -> Author {
    let name = std::env::var("HERO_AUTHOR_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "hero".to_owned());
    let email = std::env::var("HERO_AUTHOR_EMAIL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("{name}@localhost"));
    Author::new(name, email).with_zone(local_offset_minutes)
}

/// The local time zone's offset from UTC at `time` (seconds since the Unix epoch), in minutes.
fn local_offset_minutes(time: i64) -> i32 {
    use chrono::TimeZone;
    chrono::Local
        .timestamp_opt(time, 0)
        .earliest()
        .map_or(0, |t| t.offset().local_minus_utc() / 60)
}

/// [`author`] recording this repository's peer id in each commit (the endpoint id of its key
/// beside the repository file, created on first use).
pub fn author_for(repo: &std::path::Path) -> Result<Author> {
    let key = hero_sync::key_path(repo);
    let verb = if key.exists() { "reading" } else { "creating" };
    let id = hero_sync::endpoint_id(repo)
        .with_context(|| format!("{verb} the peer key {} of this repository", key.display()))?;
    Ok(author().with_peer(id.to_string()))
}

fn show_time(sig: &Signature) -> String {
    let offset = chrono::FixedOffset::east_opt(sig.tz_offset_minutes.saturating_mul(60));
    match (chrono::DateTime::from_timestamp(sig.time, 0), offset) {
        (Some(t), Some(offset)) => t
            .with_timezone(&offset)
            .format("%Y-%m-%d %H:%M:%S %z")
            .to_string(),
        _ => format!("@{} {}", sig.time, sig.tz_string()),
    }
}

/// The branch named, or the repository's default branch, for a command that writes to it:
/// hero's reserved branches (`hero/...`, the membership) are refused.
pub fn writable_branch(repo: &Repo, branch: Option<String>) -> Result<String> {
    let b = or_default_branch(repo, branch)?;
    check_writable(&b)?;
    Ok(b)
}

/// Refuses hero's reserved branch names (`hero/...`) for ordinary commands.
pub fn check_writable(branch: &str) -> Result<()> {
    if hero_sync::membership::is_reserved(branch) {
        return Err(crate::error::tagged_hint(
            Kind::Refused,
            format!(
                "branch {branch} is reserved: only hero writes {}* branches",
                hero_sync::membership::RESERVED_PREFIX
            ),
            "change the membership with `heroctl member`",
        ));
    }
    Ok(())
}

/// The branch named, or the repository's default branch.
pub fn or_default_branch(repo: &Repo, branch: Option<String>) -> Result<String> {
    match branch {
        Some(b) => Ok(b),
        None => Ok(repo.default_branch()?),
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Arguments of `commit`.
#[derive(Args, Debug)]
pub struct CommitArgs {
    /// The directory to snapshot.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The branch (default: the repository's default branch).
    #[arg(short, long)]
    pub branch: Option<String>,
    /// The message.
    #[arg(short, long, default_value = "snapshot")]
    pub message: String,
    /// Commit even if nothing changed.
    #[arg(long)]
    pub allow_empty: bool,
    /// Make the branch exactly the directory, even when the directory was not checked out from
    /// it (files of the branch that are not in the directory are deleted).
    #[arg(long, conflicts_with = "prefix")]
    pub replace: bool,
    /// Put the directory's files under this path of the branch (replacing what is there),
    /// leaving the rest of the branch alone.
    #[arg(long, value_name = "PATH")]
    pub prefix: Option<String>,
}

/// Arguments of `checkout`.
#[derive(Args, Debug)]
pub struct CheckoutArgs {
    /// The revision (branch, tag, id).
    pub rev: String,
    /// The directory to write (created if missing; must be empty unless --force).
    pub dir: PathBuf,
    /// Write into a non-empty directory, overwriting files the revision holds.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The revision to compare with (HEAD: what the directory was checked out or last
    /// committed as, else the default branch).
    #[arg(short, long, default_value = "HEAD")]
    pub rev: String,
}

/// Arguments of `log`.
#[derive(Args, Debug)]
pub struct LogArgs {
    /// Where to start (HEAD: the default branch).
    #[arg(default_value = "HEAD")]
    pub rev: String,
    /// At most this many commits.
    #[arg(short = 'n', long)]
    pub limit: Option<usize>,
    /// Only first parents.
    #[arg(long)]
    pub first_parent: bool,
    /// Only commits that changed this file or directory, following renames (`log -- PATH`).
    #[arg(last = true, value_name = "PATH")]
    pub path: Option<String>,
}

/// Arguments of `ls`.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// The revision (HEAD: the default branch).
    #[arg(default_value = "HEAD")]
    pub rev: String,
    /// The directory inside it.
    #[arg(default_value = "")]
    pub path: String,
    /// List everything below, recursively.
    #[arg(short, long)]
    pub recursive: bool,
}

/// Arguments of `cat`.
#[derive(Args, Debug)]
pub struct CatArgs {
    /// `REV:PATH`, or a PATH in the default branch, or a content id.
    pub spec: String,
}

/// Arguments of `diff`.
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The old revision (default: the new one's first parent).
    pub old: Option<String>,
    /// The new revision (default: the default branch).
    pub new: Option<String>,
    /// Only the changed paths.
    #[arg(long)]
    pub name_status: bool,
}

/// Arguments of `branch`.
#[derive(Args, Debug)]
pub struct BranchArgs {
    /// Create a branch with this name (lists branches when absent).
    pub name: Option<String>,
    /// Where the new branch starts (HEAD: the default branch).
    #[arg(default_value = "HEAD")]
    pub start: String,
    /// Delete the branch instead (its moves stay in the reflog).
    #[arg(short, long, conflicts_with = "default")]
    pub delete: bool,
    /// Make this branch the default one (git's HEAD): what commands, the mount and the share
    /// use when no branch is named. It must exist.
    #[arg(long = "default", value_name = "NAME", conflicts_with_all = ["name", "delete"])]
    pub default: Option<String>,
}

/// Arguments of `tag`.
#[derive(Args, Debug)]
pub struct TagArgs {
    /// Create a tag with this name (lists tags when absent).
    pub name: Option<String>,
    /// What to tag (HEAD: the default branch).
    #[arg(default_value = "HEAD")]
    pub rev: String,
    /// Make an annotated tag with this message.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Delete the tag instead.
    #[arg(short, long)]
    pub delete: bool,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let json = cli.json;
    match cli.command {
        Command::Init { path } => {
            let path = match path {
                Some(p) => p,
                None => repo_path(&cli.repo)?,
            };
            let repo = create_repo(&path)?;
            // The node that creates the repository is its first owner (ADR 0017, 0018).
            let key = hero_sync::load_or_create_key(&path)?;
            let m = hero_sync::membership::init(
                &repo,
                &key,
                &crate::member::host_name(),
                hero_sync::audit::now_ms(),
            )
            .with_context(|| format!("starting the membership of {}", path.display()))?;
            hero_sync::audit::record(
                &repo,
                hero_sync::audit::Entry::new(
                    Some(&key.public()),
                    "membership",
                    hero_sync::audit::Decision::Accepted,
                    "genesis: this node is the first owner",
                ),
            );
            if json {
                print_json(&json!({
                    "repository": path,
                    "owner": key.public().to_string(),
                    "genesis": m.genesis().map(|g| g.to_string()),
                }))?;
            } else {
                outln!("Initialized empty hero store in {}", path.display())?;
            }
        }
        Command::Commit(a) => crate::workdir::commit(&open_repo(&cli.repo)?, a, json)?,
        Command::Update(a) => crate::workdir::update(&open_repo(&cli.repo)?, a, json)?,
        Command::Checkout(a) => cmd_checkout(&open_repo(&cli.repo)?, a, json)?,
        Command::Status(a) => return cmd_status(&open_repo(&cli.repo)?, a, json),
        Command::Log(a) => cmd_log(&open_repo(&cli.repo)?, a, json)?,
        Command::Ls(a) => cmd_ls(&open_repo(&cli.repo)?, a, json)?,
        Command::Cat(a) => {
            refuse_json(json, "cat", "it prints the file's bytes")?;
            cmd_cat(&open_repo(&cli.repo)?, a)?
        }
        Command::Diff(a) => cmd_diff(&open_repo(&cli.repo)?, a, json)?,
        Command::Branch(a) => cmd_branch(&open_repo(&cli.repo)?, a, json)?,
        Command::Tag(a) => cmd_tag(&open_repo(&cli.repo)?, a, json)?,
        Command::Verify => return cmd_verify(&open_repo(&cli.repo)?, json),
        Command::Stats => cmd_stats(&open_repo(&cli.repo)?, json)?,
        Command::Upgrade => cmd_upgrade(open_repo(&cli.repo)?, json)?,
        Command::Gc(a) => cmd_gc(open_repo(&cli.repo)?, a, json)?,
        Command::Import { what } => crate::git::import(
            open_repo_with_cache(&cli.repo, Some(IMPORT_CACHE_BYTES))?,
            what,
            json,
        )?,
        Command::Export { what } => crate::git::export(&open_repo(&cli.repo)?, what, json)?,
        Command::Mount(a) => {
            refuse_json(json, "mount", "it runs until stopped and prints a log")?;
            crate::serve::mount(&repo_path(&cli.repo)?, a)?
        }
        Command::Serve {
            what: Some(what), ..
        } => {
            refuse_json(json, "serve dav", "it runs until stopped and prints a log")?;
            crate::serve::run(&repo_path(&cli.repo)?, what)?
        }
        Command::Serve { what: None, sync } => crate::sync::serve(&cli.repo, json, sync)?,
        Command::Daemon {
            what: None,
            mut args,
        } => {
            // The machine's local file fills in what the command line leaves out.
            let local = crate::daemon::config::read_local();
            let env_repo = std::env::var_os("HERO_REPO").filter(|p| !p.is_empty());
            let repo = match (&cli.repo, env_repo, local.repo) {
                (None, None, Some(r)) => r,
                _ => repo_path(&cli.repo)?,
            };
            if args.mount.is_none() {
                args.mount = local.mount;
            }
            crate::daemon::run(&repo, json, args)?
        }
        Command::Daemon {
            what: Some(what), ..
        } => crate::daemon::command(&repo_path(&cli.repo)?, json, what)?,
        Command::Watch(a) => {
            refuse_json(json, "watch", "it runs until stopped and prints a log")?;
            crate::daemon::watch::watch_command(&repo_path(&cli.repo)?, a)?
        }
        Command::Config { what } => {
            crate::daemon::config_command(&repo_path(&cli.repo)?, json, what)?
        }
        Command::Sync(c) => crate::sync::run(&cli.repo, json, c)?,
        Command::Membership(c) => crate::member::run(&cli.repo, json, c)?,
        Command::History(c) => crate::history::run(&open_repo(&cli.repo)?, c, json)?,
        Command::Completions { shell } => {
            refuse_json(json, "completions", "it prints a shell script")?;
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut crate::Cli::command(), "heroctl", &mut buf);
            std::io::stdout().lock().write_all(&buf)?;
        }
        Command::Man => {
            refuse_json(json, "man", "it prints a manual page")?;
            let mut buf = Vec::new();
            clap_mangen::Man::new(crate::Cli::command()).render(&mut buf)?;
            std::io::stdout().lock().write_all(&buf)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn bar_callback<'a>(
    bar: &'a indicatif::ProgressBar,
    what: &'static str,
) -> impl Fn(Progress) + Sync + 'a {
    move |p: Progress| {
        if let Some(t) = p.total {
            bar.set_length(t);
        }
        bar.set_position(p.done);
        bar.set_message(format!("{what} {}", bytes(p.bytes)));
    }
}

fn cmd_checkout(repo: &Repo, a: CheckoutArgs, json: bool) -> Result<()> {
    let id = repo.resolve(&a.rev)?;
    let bar = progress_bar(json, "checkout");
    let cb = bar_callback(&bar, "checkout");
    let opts = CheckoutOptions {
        force: a.force,
        progress: Some(&cb),
    };
    let r = repo
        .checkout(&id, &a.dir, &opts)
        .with_context(|| format!("checking out {} into {}", a.rev, a.dir.display()))?;
    crate::workdir::remember_checkout(repo, &a.rev, id, &a.dir)?;
    bar.finish_and_clear();
    let skipped: Vec<String> = r.skipped_unsafe.iter().map(|p| p.to_string()).collect();
    if json {
        print_json(&json!({
            "commit": id.to_hex(),
            "files": r.files,
            "dirs": r.dirs,
            "bytes": r.bytes,
            "skipped_unsafe": skipped,
        }))?;
    } else {
        outln!(
            "checked out {} ({}) into {}: {} files, {} directories, {}",
            a.rev,
            id.short(),
            a.dir.display(),
            count(r.files),
            count(r.dirs),
            bytes(r.bytes)
        )?;
        for p in &skipped {
            outln!("not written (git would take it for its .git directory): {p}")?;
        }
    }
    Ok(())
}

fn cmd_status(repo: &Repo, a: StatusArgs, json: bool) -> Result<ExitCode> {
    // A checked-out directory compares with what it came from (the branch may have moved on:
    // others' changes are not local modifications).
    let record = match a.rev.as_str() {
        "HEAD" if a.dir.is_dir() => hero_store::CheckoutRecord::read(&a.dir)?,
        _ => None,
    };
    let resolved = match &record {
        Some(r) => Ok(r.base),
        None => repo.resolve(&a.rev),
    };
    let commit = match resolved {
        Ok(id) => Some(id),
        Err(hero_store::Error::UnknownRevision(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let st = repo.status(&a.dir, commit)?;
    if json {
        let items: Vec<_> = st
            .iter()
            .map(|s| json!({"path": s.path.to_string(), "status": format!("{:?}", s.kind).to_lowercase()}))
            .collect();
        print_json(&json!({ "clean": st.is_empty(), "changes": items }))?;
    } else {
        let mut out = std::io::stdout().lock();
        for s in &st {
            let c = match s.kind {
                StatusKind::Added => 'A',
                StatusKind::Modified => 'M',
                // Same content; mode, owner or time differ.
                StatusKind::Metadata => 'm',
                StatusKind::Deleted => 'D',
            };
            writeln!(out, "{c} {}", s.path)?;
        }
        if st.is_empty() {
            writeln!(out, "clean: {} matches {}", a.dir.display(), a.rev)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_log(repo: &Repo, a: LogArgs, json: bool) -> Result<()> {
    let view = repo.view()?;
    let start = view.resolve(&a.rev)?;
    let mut tracker = match &a.path {
        Some(p) => Some(crate::history::PathTracker::new(RepoPath::parse(
            p.trim_matches('/'),
        )?)),
        None => None,
    };
    let mut out = std::io::stdout().lock();
    let mut items = Vec::new();
    let mut shown = 0usize;
    for item in view.log(&[start], a.first_parent)? {
        let (id, c) = item?;
        let path = match &mut tracker {
            Some(t) => match t.changed_in(&view, &id, &c)? {
                Some(p) => Some(p.to_string()),
                None => continue,
            },
            None => None,
        };
        if a.limit.is_some_and(|l| shown >= l) {
            break;
        }
        shown += 1;
        if json {
            items.push(json!({
                "path": path,
                "id": id.to_hex(),
                "parents": c.parents.iter().map(|p| p.to_hex()).collect::<Vec<_>>(),
                "tree": c.tree.to_hex(),
                "author": {"name": lossy(&c.author.name), "email": lossy(&c.author.email), "time": c.author.time, "tz": c.author.tz_string()},
                "committer": {"name": lossy(&c.committer.name), "email": lossy(&c.committer.email), "time": c.committer.time, "tz": c.committer.tz_string()},
                "message": lossy(&c.message),
                "peer": c.header(hero_store::PEER_HEADER).map(lossy),
            }));
            continue;
        }
        writeln!(out, "commit {id}")?;
        if c.parents.len() > 1 {
            let ps: Vec<String> = c.parents.iter().map(|p| p.short()).collect();
            writeln!(out, "Merge: {}", ps.join(" "))?;
        }
        writeln!(
            out,
            "Author: {} <{}>",
            lossy(&c.author.name),
            lossy(&c.author.email)
        )?;
        if let Some(peer) = c.header(hero_store::PEER_HEADER) {
            writeln!(out, "Peer:   {}", lossy(peer))?;
        }
        writeln!(out, "Date:   {}", show_time(&c.author))?;
        if let Some(p) = &path {
            writeln!(out, "Path:   {p}")?;
        }
        writeln!(out)?;
        for line in lossy(&c.message).lines() {
            writeln!(out, "    {line}")?;
        }
        writeln!(out)?;
    }
    if json {
        drop(out);
        print_json(&serde_json::Value::Array(items))?;
    }
    Ok(())
}

fn cmd_ls(repo: &Repo, a: LsArgs, json: bool) -> Result<()> {
    let view = repo.view()?;
    let commit = view.resolve(&a.rev)?;
    let path = RepoPath::parse(&a.path)?;
    let mut rows = Vec::new();
    let mut stack = vec![(path.clone(), view.list_dir(&commit, &path)?)];
    while let Some((at, tree)) = stack.pop() {
        for e in tree.entries.iter().rev() {
            let p = at.join(&e.name)?;
            if a.recursive && e.kind == EntryKind::Dir {
                stack.push((p.clone(), view.tree(&e.id)?));
            }
            rows.push((p, e.clone()));
        }
    }
    if a.recursive {
        rows.sort_by(|x, y| x.0.cmp(&y.0));
    } else {
        rows.reverse();
    }
    let mut out = std::io::stdout().lock();
    if json {
        let items: Vec<_> = rows
            .iter()
            .map(|(p, e)| json!({"path": p.to_string(), "kind": e.kind.as_str(), "id": e.id.to_hex(), "size": e.size}))
            .collect();
        drop(out);
        print_json(&serde_json::Value::Array(items))?;
        return Ok(());
    }
    for (p, e) in rows {
        let shown = if a.recursive {
            p.to_string()
        } else {
            lossy(&e.name)
        };
        let suffix = if e.kind == EntryKind::Dir { "/" } else { "" };
        writeln!(
            out,
            "{:<7} {:>10} {}  {shown}{suffix}",
            e.kind.as_str(),
            e.size,
            e.id.short()
        )?;
    }
    Ok(())
}

fn cmd_cat(repo: &Repo, a: CatArgs) -> Result<()> {
    let view = repo.view()?;
    let id = match a.spec.split_once(':') {
        Some((rev, path)) => {
            let commit = view.resolve(rev)?;
            file_id(&view, &commit, path)?
        }
        None => match ObjectId::from_hex(&a.spec) {
            Some(id) => id,
            None => {
                let commit = view.resolve("HEAD")?;
                file_id(&view, &commit, &a.spec)?
            }
        },
    };
    let mut r = view.open_file(&id)?;
    let mut out = std::io::stdout().lock();
    std::io::copy(&mut r, &mut out).context("writing to stdout")?;
    Ok(())
}

fn file_id(view: &hero_store::View, commit: &ObjectId, path: &str) -> Result<ObjectId> {
    let p = RepoPath::parse(path)?;
    match view.entry_in_commit(commit, &p)? {
        Some(e) if e.kind.is_blob() => Ok(e.id),
        Some(_) => Err(tagged(Kind::NotFound, format!("{path}: is a directory"))),
        None => Err(tagged(
            Kind::NotFound,
            format!("{path}: no such file in {}", commit.short()),
        )),
    }
}

fn cmd_diff(repo: &Repo, a: DiffArgs, json: bool) -> Result<()> {
    let view = repo.view()?;
    let (old, new) = match (&a.old, &a.new) {
        (Some(o), Some(n)) => (Some(view.resolve(o)?), view.resolve(n)?),
        (Some(n), None) => {
            let new = view.resolve(n)?;
            (view.commit(&new)?.parents.first().copied(), new)
        }
        _ => {
            let new = view.resolve("HEAD")?;
            (view.commit(&new)?.parents.first().copied(), new)
        }
    };
    let changes = view.diff_commits(old, &new)?;
    if json {
        let items: Vec<_> = changes
            .iter()
            .map(|d| {
                json!({
                    "path": d.path.to_string(),
                    "change": format!("{:?}", d.kind).to_lowercase(),
                    "old": d.old.as_ref().map(|e| e.id.to_hex()),
                    "new": d.new.as_ref().map(|e| e.id.to_hex()),
                })
            })
            .collect();
        print_json(&serde_json::Value::Array(items))?;
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    for d in &changes {
        if a.name_status {
            writeln!(out, "{}\t{}", d.kind.letter(), d.path)?;
            continue;
        }
        if d.kind == DiffKind::Metadata {
            if let (Some(x), Some(y)) = (&d.old, &d.new) {
                writeln!(out, "diff a/{} b/{}", d.path, d.path)?;
                writeln!(out, "{}", meta_change(x, y))?;
            }
            continue;
        }
        let (x, y) = match (
            diff_side(&view, &d.old, &d.path)?,
            diff_side(&view, &d.new, &d.path)?,
        ) {
            (Side::Text(x), Side::Text(y)) => (x, y),
            (x, y) => {
                writeln!(out, "diff a/{} b/{}", d.path, d.path)?;
                let size = |s: &Side| match s {
                    Side::Large(n) => bytes(*n),
                    Side::Text(t) => bytes(t.len() as u64),
                };
                writeln!(out, "large file, not shown ({} -> {})", size(&x), size(&y))?;
                continue;
            }
        };
        let (an, bn) = match d.kind {
            DiffKind::Added => ("/dev/null".to_owned(), format!("b/{}", d.path)),
            DiffKind::Deleted => (format!("a/{}", d.path), "/dev/null".to_owned()),
            DiffKind::Modified | DiffKind::Metadata => {
                (format!("a/{}", d.path), format!("b/{}", d.path))
            }
        };
        writeln!(out, "diff {} {}", an, bn)?;
        match line_diff(&x, &y, &an, &bn) {
            LineDiff::Text(t) => write!(out, "{t}")?,
            LineDiff::Binary => writeln!(out, "Binary files differ")?,
        }
    }
    Ok(())
}

/// What changed in an entry's metadata, one part per clause: `mode 0644 -> 0600, owner
/// 0:0 -> 33:33, time 2026-12-01T10:00:00Z -> 2026-12-02T09:00:00Z` (a part not kept shows
/// as `-`).
fn meta_change(x: &hero_store::TreeEntry, y: &hero_store::TreeEntry) -> String {
    let mode = |e: &hero_store::TreeEntry| e.meta.mode.map_or("-".into(), |m| format!("{m:04o}"));
    let owner = |e: &hero_store::TreeEntry| {
        e.meta
            .owner
            .map_or("-".into(), |o| format!("{}:{}", o.uid, o.gid))
    };
    let time = |e: &hero_store::TreeEntry| {
        e.meta.mtime.map_or("-".into(), |t| {
            chrono::DateTime::from_timestamp(t.secs, t.nanos)
                .map_or_else(|| t.secs.to_string(), |d| d.to_rfc3339())
        })
    };
    let mut parts = Vec::new();
    for (what, f) in [
        ("mode", &mode as &dyn Fn(&hero_store::TreeEntry) -> String),
        ("owner", &owner),
        ("time", &time),
    ] {
        let (a, b) = (f(x), f(y));
        if a != b {
            parts.push(format!("{what} {a} -> {b}"));
        }
    }
    parts.join(", ")
}

/// Files larger than this are not diffed line by line.
const DIFF_LIMIT: u64 = 64 << 20;

/// One side of a file's diff: its bytes (empty when absent), or the size of a file too large.
enum Side {
    Text(Vec<u8>),
    Large(u64),
}

/// Reads one side of a diff; an unreadable file is an error, never an empty side.
fn diff_side(
    view: &hero_store::View,
    e: &Option<hero_store::TreeEntry>,
    path: &RepoPath,
) -> Result<Side> {
    match e {
        Some(e) if e.kind.is_blob() && e.size > DIFF_LIMIT => Ok(Side::Large(e.size)),
        Some(e) if e.kind.is_blob() => match view.read_file(&e.id, DIFF_LIMIT) {
            Ok(b) => Ok(Side::Text(b)),
            Err(hero_store::Error::FileTooLarge) => Ok(Side::Large(e.size)),
            Err(err) => Err(anyhow::Error::new(err)
                .context(format!("reading {path} ({}) for the diff", e.id.short()))),
        },
        _ => Ok(Side::Text(Vec::new())),
    }
}

fn cmd_branch(repo: &Repo, a: BranchArgs, json: bool) -> Result<()> {
    if let Some(name) = a.name.as_deref() {
        check_writable(name)?;
    }
    if let Some(name) = a.default {
        check_writable(&name)?;
        if repo.branch_head(&name)?.is_none() {
            return Err(tagged(Kind::NotFound, format!("no branch {name}")));
        }
        repo.set_default_branch(&name)?;
        if json {
            print_json(&json!({"default": name}))?;
        } else {
            outln!("the default branch is now {name}")?;
        }
        return Ok(());
    }
    match a.name {
        None => {
            // Hero's own branches (the membership) are not the user's: `heroctl member list`.
            let mut branches = repo.branches()?;
            branches.retain(|(n, _)| !hero_sync::membership::is_reserved(n));
            let default = repo.default_branch()?;
            if json {
                let items: Vec<_> = branches
                    .iter()
                    .map(
                        |(n, id)| json!({"name": n, "head": id.to_hex(), "default": *n == default}),
                    )
                    .collect();
                print_json(&serde_json::Value::Array(items))?;
            } else {
                for (n, id) in branches {
                    let mark = if n == default { "*" } else { " " };
                    outln!("{mark} {} {n}", id.short())?;
                }
            }
        }
        Some(name) if a.delete => {
            let head = repo
                .branch_head(&name)?
                .ok_or_else(|| tagged(Kind::NotFound, format!("no branch {name}")))?;
            repo.update_branch(&name, Some(head), None, "branch delete")?;
            if json {
                print_json(&json!({"deleted": name, "head": head.to_hex()}))?;
            } else {
                outln!("deleted branch {name} (was {})", head.short())?;
            }
        }
        Some(name) => {
            let start = repo.resolve(&a.start)?;
            if let Some(head) = repo.branch_head(&name)? {
                return Err(tagged(
                    Kind::Refused,
                    format!("branch {name} already exists (at {})", head.short()),
                ));
            }
            repo.update_branch(&name, None, Some(start), "branch create")
                .with_context(|| format!("creating branch {name}"))?;
            if json {
                print_json(&json!({"name": name, "head": start.to_hex()}))?;
            } else {
                outln!("created branch {name} at {}", start.short())?;
            }
        }
    }
    Ok(())
}

fn cmd_tag(repo: &Repo, a: TagArgs, json: bool) -> Result<()> {
    match a.name {
        None => {
            let tags = repo.tags()?;
            if json {
                let items: Vec<_> = tags
                    .iter()
                    .map(|(n, v)| json!({"name": n, "id": v.id().to_hex(), "annotated": matches!(v, RefValue::Tag(_))}))
                    .collect();
                print_json(&serde_json::Value::Array(items))?;
            } else {
                for (n, v) in tags {
                    let kind = if matches!(v, RefValue::Tag(_)) {
                        "annotated"
                    } else {
                        "lightweight"
                    };
                    outln!("{} {n} ({kind})", v.id().short())?;
                }
            }
        }
        Some(name) if a.delete => {
            repo.delete_tag(&name)?;
            if json {
                print_json(&json!({"deleted": name}))?;
            } else {
                outln!("deleted tag {name}")?;
            }
        }
        Some(name) => {
            let target = repo.resolve(&a.rev)?;
            let annotation = a.message.map(|m| Tag {
                target,
                target_kind: TargetKind::Commit,
                name: name.clone().into_bytes(),
                tagger: Some(author().signature()),
                message: m.into_bytes(),
                extra: Vec::new(),
            });
            let v = repo.create_tag(&name, target, annotation)?;
            if json {
                print_json(
                    &json!({"name": name, "id": v.id().to_hex(), "target": target.to_hex()}),
                )?;
            } else {
                outln!("tagged {} as {name}", target.short())?;
            }
        }
    }
    Ok(())
}

fn cmd_verify(repo: &Repo, json: bool) -> Result<ExitCode> {
    let bar = progress_bar(json, "verify");
    let cb = bar_callback(&bar, "verify");
    let report = repo.verify(Some(&cb))?;
    bar.finish_and_clear();
    if json {
        let corrupt: Vec<_> = report
            .corrupt
            .iter()
            .map(|c| json!({
                "id": c.id.to_hex(),
                "reason": c.reason,
                "used_by": c.used_by.iter().map(|(commit, p)| json!({"commit": commit.to_hex(), "path": p.to_string()})).collect::<Vec<_>>(),
            }))
            .collect();
        let missing: Vec<_> = report
            .missing
            .iter()
            .map(|(id, p)| json!({"id": id.to_hex(), "path": p.to_string()}))
            .collect();
        print_json(
            &json!({"ok": report.is_ok(), "objects": report.objects, "bytes": report.bytes, "corrupt": corrupt, "missing": missing}),
        )?;
    } else {
        for c in &report.corrupt {
            outln!("corrupt object {}: {}", c.id, c.reason)?;
            for (commit, p) in &c.used_by {
                outln!(
                    "    used by {} in commit {}",
                    display_path(p),
                    commit.short()
                )?;
            }
        }
        for (id, p) in &report.missing {
            outln!("missing object {id} (at {})", display_path(p))?;
        }
        if report.is_ok() {
            outln!(
                "ok: {} objects, {} verified",
                count(report.objects),
                bytes(report.bytes)
            )?;
        } else {
            outln!(
                "FAILED: {} corrupt and {} missing objects out of {}",
                count(report.corrupt.len() as u64),
                count(report.missing.len() as u64),
                count(report.objects)
            )?;
        }
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(Kind::Corrupt.exit_code())
    })
}

fn display_path(p: &RepoPath) -> String {
    if p.is_root() {
        "/".to_owned()
    } else {
        p.to_string()
    }
}

/// `heroctl gc`.
#[derive(Args, Debug)]
pub struct GcArgs {
    /// Say what would be removed; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Reflog entries younger than this keep what they reach, and an object found unreachable
    /// is removed only by a collection at least this much later: a number with s, m, h or d
    /// (`0` removes at once: only when nothing else writes to the repository).
    #[arg(long, default_value = "14d", value_parser = parse_grace)]
    grace: u64,
}

pub(crate) fn parse_grace(s: &str) -> std::result::Result<u64, String> {
    let (n, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 's'),
    };
    let n: u64 = n.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let mul = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(format!("unknown unit in {s:?} (s, m, h or d)")),
    };
    n.checked_mul(mul).ok_or_else(|| format!("too long: {s:?}"))
}

fn cmd_gc(mut repo: Repo, a: GcArgs, json: bool) -> Result<()> {
    let path = repo.path().to_path_buf();
    let r = repo
        .gc(a.grace, a.dry_run)
        .with_context(|| format!("collecting garbage in {}", path.display()))?;
    if json {
        return print_json(&json!({
            "dry_run": a.dry_run,
            "reachable": r.reachable,
            "removed": r.removed,
            "removed_bytes": r.removed_bytes,
            "listed": r.listed,
            "file_bytes_before": r.file_bytes_before,
            "file_bytes_after": r.file_bytes_after,
        }));
    }
    let verb = if a.dry_run { "would remove" } else { "removed" };
    outln!(
        "{verb} {} unreachable objects ({}); {} reachable; {} unreachable kept until their grace period ends",
        count(r.removed),
        bytes(r.removed_bytes),
        count(r.reachable),
        count(r.listed)
    )?;
    if !a.dry_run {
        outln!(
            "repository file: {} -> {}",
            bytes(r.file_bytes_before),
            bytes(r.file_bytes_after)
        )?;
    }
    Ok(())
}

fn cmd_upgrade(mut repo: Repo, json: bool) -> Result<()> {
    let path = repo.path().to_path_buf();
    let r = repo
        .upgrade()
        .with_context(|| format!("upgrading {}", path.display()))?;
    if json {
        return print_json(&json!({
            "from": r.from,
            "to": r.to,
            "records_converted": r.records_converted,
            "file_bytes_before": r.file_bytes_before,
            "file_bytes_after": r.file_bytes_after,
        }));
    }
    if r.from == r.to {
        outln!("already format {}", r.to)?;
    } else {
        outln!(
            "upgraded from format {} to {}: {} records moved",
            r.from,
            r.to,
            count(r.records_converted)
        )?;
    }
    outln!(
        "repository file: {} -> {}",
        bytes(r.file_bytes_before),
        bytes(r.file_bytes_after)
    )?;
    Ok(())
}

fn cmd_stats(repo: &Repo, json: bool) -> Result<()> {
    let s = repo.stats()?;
    let f = repo.file_usage()?;
    if json {
        let objects: serde_json::Map<String, serde_json::Value> = s
            .objects
            .iter()
            .map(|(t, n)| (t.as_str().to_owned(), json!(n)))
            .collect();
        let stored_by_type: serde_json::Map<String, serde_json::Value> = s
            .stored_by_type
            .iter()
            .map(|(t, n)| (t.as_str().to_owned(), json!(n)))
            .collect();
        print_json(&json!({
            "objects": objects,
            "stored_by_type": stored_by_type,
            "delta_objects": s.delta_objects,
            "commits": s.commits,
            "history_bytes": s.history_bytes,
            "content_bytes": s.content_bytes,
            "chunk_bytes": s.chunk_bytes,
            "logical_bytes": s.logical_bytes,
            "stored_bytes": s.stored_bytes,
            "file_bytes": s.file_bytes,
            "dedupe_ratio": s.dedupe_ratio(),
            "compression_ratio": s.compression_ratio(),
            "total_ratio": s.total_ratio(),
            "file": file_usage_json(&f),
        }))?;
        return Ok(());
    }
    let total: u64 = s.objects.iter().map(|(_, n)| n).sum();
    outln!("objects:          {}", count(total))?;
    for (t, n) in &s.objects {
        outln!("  {:<16}{}", t.as_str(), count(*n))?;
    }
    outln!("  stored as delta {}", count(s.delta_objects))?;
    outln!("commits:          {}", count(s.commits))?;
    outln!(
        "history bytes:    {} (every commit as a full copy)",
        bytes(s.history_bytes)
    )?;
    outln!(
        "content bytes:    {} (distinct files)",
        bytes(s.content_bytes)
    )?;
    outln!("chunk bytes:      {} (after dedupe)", bytes(s.chunk_bytes))?;
    outln!(
        "logical bytes:    {} (all objects, raw)",
        bytes(s.logical_bytes)
    )?;
    outln!(
        "stored bytes:     {} (all objects, compressed and delta'd)",
        bytes(s.stored_bytes)
    )?;
    outln!("repository file:  {}", bytes(s.file_bytes))?;
    outln!("dedupe ratio:     {:.2}", s.dedupe_ratio())?;
    outln!("compression+delta ratio: {:.2}", s.compression_ratio())?;
    outln!("overall ratio:    {:.2}", s.total_ratio())?;
    outln!()?;
    print_file_usage(&f)?;
    Ok(())
}

fn file_usage_json(f: &hero_store::FileUsage) -> serde_json::Value {
    json!({
        "file_bytes": f.file_bytes,
        "disk_bytes": f.disk_bytes,
        "page_size": f.page_size,
        "allocated_pages": f.allocated_pages,
        "free_bytes": f.free_bytes,
        "tables": f.tables.iter().map(|t| json!({
            "name": t.name,
            "entries": t.entries,
            "key_bytes": t.key_bytes,
            "value_bytes": t.value_bytes,
            "leaf_pages": t.leaf_pages,
            "branch_pages": t.branch_pages,
            "stored_bytes": t.stored_bytes,
            "metadata_bytes": t.metadata_bytes,
            "fragmented_bytes": t.fragmented_bytes,
        })).collect::<Vec<_>>(),
    })
}

/// Where the file's bytes go, one line per table.
fn print_file_usage(f: &hero_store::FileUsage) -> Result<()> {
    outln!(
        "{:<10} {:>9} {:>11} {:>12} {:>8} {:>8} {:>12} {:>12}",
        "table",
        "entries",
        "key bytes",
        "value bytes",
        "leaves",
        "branches",
        "meta bytes",
        "unused bytes"
    )?;
    for t in &f.tables {
        outln!(
            "{:<10} {:>9} {:>11} {:>12} {:>8} {:>8} {:>12} {:>12}",
            t.name,
            t.entries,
            t.key_bytes,
            t.value_bytes,
            t.leaf_pages,
            t.branch_pages,
            t.metadata_bytes,
            t.fragmented_bytes
        )?;
    }
    outln!(
        "file: {} bytes ({} on disk), {} pages of {} bytes in use, {} bytes free",
        f.file_bytes,
        f.disk_bytes,
        f.allocated_pages,
        f.page_size,
        f.free_bytes
    )?;
    Ok(())
}

/// Creates a new repository file at `path`, and the directories above it.
pub(crate) fn create_repo(path: &Path) -> Result<Repo> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    Repo::init(path).with_context(|| format!("creating {}", path.display()))
}
