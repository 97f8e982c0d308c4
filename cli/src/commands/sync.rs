//! `heroctl id | serve | clone | pull | push | sync | remote | allow | conflicts`: replication
//! between peers over iroh.

use crate::context::{NetArgs, repo_path};
use crate::error::{Kind, tagged, tagged_hint};
use crate::output::{bytes, count, outln, print_json, progress_bar};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use hero_store::Repo;
use hero_sync::{Access, NetMode, SyncReport, Ticket};
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The replication commands.
#[derive(Subcommand, Debug)]
pub enum SyncCommand {
    /// Print this repository's node id (what an owner adds with `heroctl member add`).
    Id,
    /// Copy a repository from a peer: init, `remote add origin`, pull.
    Clone(CloneArgs),
    /// Fetch every branch of a peer; merge where both sides moved.
    Pull(PullArgs),
    /// Send branches to a peer (it fast-forwards or merges).
    Push(PushArgs),
    /// Pull, then push: both ways, all branches.
    Sync(PullArgs),
    /// Saved peers.
    Remote(RemoteArgs),
    /// Aliases of `member`: `allow add ID [--read-only]`, `allow remove ID`, `allow list`.
    Allow(AllowArgs),
    /// List the conflicts recorded by merges whose copies are still there.
    Conflicts(ConflictsArgs),
}

/// Arguments of `serve` without a subcommand: the sync server.
#[derive(Args, Debug, Clone)]
pub struct SyncServeArgs {
    /// Address to listen on (default: any port; 127.0.0.1 with --net local).
    #[arg(long)]
    pub bind: Option<SocketAddr>,
    /// Networking.
    #[command(flatten)]
    pub net: NetArgs,
}

/// Arguments of `clone`.
#[derive(Args, Debug)]
pub struct CloneArgs {
    /// The peer's ticket (what its `heroctl serve` printed).
    pub ticket: String,
    /// The repository file to create (default: -R, $HERO_REPO, else the default store).
    pub path: Option<PathBuf>,
    /// Networking.
    #[command(flatten)]
    pub net: NetArgs,
}

/// Arguments of `pull` and `sync`.
#[derive(Args, Debug)]
pub struct PullArgs {
    /// A saved remote or a ticket.
    #[arg(default_value = "origin")]
    pub remote: String,
    /// Open a connection of this process even when a daemon runs for this repository (by
    /// default the daemon runs the session on the connection it keeps open to the peer).
    #[arg(long)]
    pub direct: bool,
    /// Networking.
    #[command(flatten)]
    pub net: NetArgs,
}

/// Arguments of `push`.
#[derive(Args, Debug)]
pub struct PushArgs {
    /// A saved remote or a ticket.
    #[arg(default_value = "origin")]
    pub remote: String,
    /// The branch (default: all).
    pub branch: Option<String>,
    /// Open a connection of this process even when a daemon runs for this repository (by
    /// default the daemon runs the session on the connection it keeps open to the peer).
    #[arg(long)]
    pub direct: bool,
    /// Networking.
    #[command(flatten)]
    pub net: NetArgs,
}

/// Arguments of `remote`.
#[derive(Args, Debug)]
pub struct RemoteArgs {
    /// What to do.
    #[command(subcommand)]
    pub what: RemoteCommand,
}

/// `remote` subcommands.
#[derive(Subcommand, Debug)]
pub enum RemoteCommand {
    /// Save a peer under a name.
    Add {
        /// The name.
        name: String,
        /// Its ticket.
        ticket: String,
    },
    /// Forget a peer.
    Remove {
        /// The name.
        name: String,
    },
    /// List saved peers.
    List,
}

/// Arguments of `allow`.
#[derive(Args, Debug)]
pub struct AllowArgs {
    /// What to do.
    #[command(subcommand)]
    pub what: AllowCommand,
}

/// `allow` subcommands.
#[derive(Subcommand, Debug)]
pub enum AllowCommand {
    /// Let a peer connect.
    Add {
        /// Its endpoint id (`heroctl id` on that peer).
        id: String,
        /// Pull only.
        #[arg(long)]
        read_only: bool,
    },
    /// Stop letting a peer connect.
    Remove {
        /// Its endpoint id.
        id: String,
    },
    /// List allowed peers.
    List,
}

/// Arguments of `conflicts`.
#[derive(Args, Debug)]
pub struct ConflictsArgs {
    /// The branch (default: the repository's default branch).
    pub branch: Option<String>,
}

fn open(path: &Path) -> Result<Repo> {
    crate::context::with_open_context(Repo::open(path), path)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Runs a replication command.
pub fn run(cli_repo: &Option<PathBuf>, json: bool, cmd: SyncCommand) -> Result<()> {
    let path = repo_path(cli_repo)?;
    match cmd {
        SyncCommand::Id => {
            let id = hero_sync::endpoint_id(&path)?;
            if json {
                print_json(&json!({ "id": id.to_string() }))?;
            } else {
                outln!("{id}")?;
            }
        }
        SyncCommand::Clone(a) => clone(&path, a, json)?,
        SyncCommand::Pull(a) => {
            let repo = open(&path)?;
            let ticket = hero_sync::access::resolve_remote(&repo, &a.remote)?;
            let r = match through_daemon(&path, &format!("pull {ticket}"), a.direct)? {
                Some(v) => v,
                None => report_json(&pull(&repo, &path, &ticket, &a.net, json)?),
            };
            report("pull", &r, json)?;
        }
        SyncCommand::Push(a) => {
            let repo = open(&path)?;
            let ticket = hero_sync::access::resolve_remote(&repo, &a.remote)?;
            let request = match &a.branch {
                Some(b) => format!("push {ticket} {b}"),
                None => format!("push {ticket}"),
            };
            let r = match through_daemon(&path, &request, a.direct)? {
                Some(v) => v,
                None => {
                    let only = a.branch.map(|b| vec![b]);
                    report_json(&push(&repo, &path, &ticket, only.as_deref(), &a.net, json)?)
                }
            };
            report("push", &r, json)?;
        }
        SyncCommand::Sync(a) => {
            let repo = open(&path)?;
            let ticket = hero_sync::access::resolve_remote(&repo, &a.remote)?;
            let pulled = match through_daemon(&path, &format!("pull {ticket}"), a.direct)? {
                Some(v) => v,
                None => report_json(&pull(&repo, &path, &ticket, &a.net, json)?),
            };
            let pushed = match through_daemon(&path, &format!("push {ticket}"), a.direct)? {
                Some(v) => v,
                None => report_json(&push(&repo, &path, &ticket, None, &a.net, json)?),
            };
            if json {
                print_json(&json!({ "pull": pulled, "push": pushed }))?;
            } else {
                report("pull", &pulled, false)?;
                report("push", &pushed, false)?;
            }
        }
        SyncCommand::Remote(a) => remote(&open(&path)?, a.what, json)?,
        SyncCommand::Allow(a) => allow(&open(&path)?, &path, a.what, json)?,
        SyncCommand::Conflicts(a) => {
            let repo = open(&path)?;
            let branch = crate::context::or_default_branch(&repo, a.branch)?;
            let list = hero_store::merge::open_conflicts(&repo, &branch)
                .with_context(|| format!("listing the conflicts of {branch}"))?;
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|c| {
                        json!({
                            "path": c.path.to_string(),
                            "conflict_path": c.conflict_path.to_string(),
                            "kept_from": c.kept_from.to_hex(),
                            "moved_aside_from": c.moved_aside_from.to_hex(),
                            "peer": c.peer,
                            "recorded_in": c.recorded_in.to_hex(),
                        })
                    })
                    .collect();
                print_json(&serde_json::Value::Array(v))?;
            } else if list.is_empty() {
                outln!("no open conflicts on {branch}")?;
            } else {
                for c in &list {
                    outln!(
                        "{}  (the other version is {}, from peer {})",
                        c.path,
                        c.conflict_path,
                        c.peer
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// `heroctl serve` without a subcommand: answers the repository's members.
pub fn serve(cli_repo: &Option<PathBuf>, json: bool, a: SyncServeArgs) -> Result<()> {
    let path = repo_path(cli_repo)?;
    let repo = Arc::new(open(&path)?);
    let key = hero_sync::load_or_create_key(&path)?;
    let mut cfg = a.net.config(a.bind);
    // Start at once, online or not: the ticket names the direct addresses, and peers that know
    // the id find the relay through the address lookup once the endpoint reached one. Waiting
    // for a relay took 10 s without internet.
    cfg.no_relay_wait = true;
    if cfg.mode == NetMode::Internet {
        tracing::info!(
            "relays and address lookup on; starting without waiting for them (their failures \
             are not logged below error level; RUST_LOG=iroh=warn shows them)"
        );
    }
    runtime()?.block_on(async move {
        let server = match hero_sync::serve(repo.clone(), key, &cfg).await {
            Ok(s) => s,
            Err(e) => {
                let how = "choose another with `heroctl serve --bind IP:PORT`";
                return Err(
                    match cfg.bind.and_then(|b| crate::netcheck::taken(b, how)) {
                        Some(taken) => taken,
                        None => anyhow::Error::new(e).context("starting the sync server"),
                    },
                );
            }
        };
        // Dial the saved remotes once, so a server restarted elsewhere (another port, another
        // address) is known there again: they learn where it is from the connection.
        // In the background: an unreachable remote does not delay the ticket.
        let pool = Arc::new(hero_sync::Pool::new(server.endpoint()));
        for (name, t) in hero_sync::access::remotes(&repo).unwrap_or_default() {
            let Ok(ticket) = t.parse::<Ticket>() else {
                continue;
            };
            let pool = pool.clone();
            tokio::spawn(async move {
                match pool.connect(&ticket).await {
                    Ok(()) => tracing::debug!("remote {name}: connected"),
                    Err(e) => tracing::debug!("remote {name}: {e}"),
                }
            });
        }
        let ticket = server.ticket().to_string();
        if json {
            print_json(&json!({ "ticket": ticket, "id": server.ticket().id().to_string() }))?;
        } else {
            outln!("serving {} to its members", path.display())?;
            outln!("ticket: {ticket}")?;
        }
        {
            use std::io::Write;
            std::io::stdout().flush()?;
        }
        crate::context::shutdown_signal().await;
        pool.close().await;
        server.shutdown().await;
        Ok(())
    })
}

fn clone(cli_path: &Path, a: CloneArgs, json: bool) -> Result<()> {
    let path = a.path.clone().unwrap_or_else(|| cli_path.to_path_buf());
    let ticket: Ticket = a.ticket.parse()?;
    let mut repo = if path.exists() {
        let repo = open(&path)?;
        // An interrupted or refused clone is resumed; anything else is refused.
        let origin = hero_sync::access::remotes(&repo)?
            .into_iter()
            .find(|(n, _)| n == "origin")
            .and_then(|(_, t)| t.parse::<Ticket>().ok());
        let resumable = match &origin {
            Some(t) => t.id() == ticket.id(),
            None => repo
                .branches()?
                .iter()
                .all(|(n, _)| hero_sync::membership::is_reserved(n)),
        };
        if !resumable {
            return Err(tagged_hint(
                Kind::Refused,
                format!(
                    "{} already exists and is not a clone of {}",
                    path.display(),
                    ticket.id()
                ),
                "clone into another path",
            ));
        }
        repo
    } else {
        crate::context::create_repo(&path)?
    };
    hero_sync::access::add_remote(&repo, "origin", &ticket)?;
    hero_sync::access::allow(&repo, &ticket.id(), Access::ReadWrite)?;
    // An empty repository (`heroctl init` then `clone`) gives up its own lone membership for
    // its source's: a clone belongs to the repository it copies.
    if hero_sync::access::remotes(&repo)?.len() == 1
        && repo
            .branches()?
            .iter()
            .all(|(n, _)| hero_sync::membership::is_reserved(n))
        && repo.branch_head(hero_sync::membership::BRANCH)?.is_some()
    {
        let (m, _) = hero_sync::membership::load(&repo)?;
        if m.accepted_changes().len() <= 1 {
            repo.force_branch_reserved(
                hero_sync::membership::BRANCH,
                None,
                "clone: the source's membership replaces this repository's own",
            )?;
            repo.set_setting(hero_sync::membership::GENESIS_KEY, None)?;
        }
    }
    let r = pull(&repo, &path, &ticket, &a.net, json).with_context(|| {
        format!(
            "cloning into {} (the repository is kept: run the same command again to resume)",
            path.display()
        )
    })?;
    // What arrived is stored loose: pack it into segments and give back the free pages, as an
    // import does, so a clone's file is about its source's size (a source ends each import and
    // collection compacted, and so packed).
    if r.transfer.objects > 0 {
        let t0 = std::time::Instant::now();
        if let Err(e) = repo.compact() {
            tracing::warn!("could not compact {} after the clone: {e}", path.display());
        }
        tracing::debug!("compacted after the clone in {:?}", t0.elapsed());
    }
    if json {
        let mut v = report_json(&r);
        v["repository"] = json!(path);
        print_json(&v)?;
    } else {
        outln!(
            "cloned {} into {}: {} objects, {} commits, {} branches ({})",
            ticket.id().fmt_short(),
            path.display(),
            count(r.transfer.objects),
            count(r.transfer.commits),
            count(r.branches.len() as u64),
            bytes(r.bytes_in)
        )?;
    }
    Ok(())
}

fn progress_fn(bar: &indicatif::ProgressBar, what: &'static str) -> hero_sync::ProgressFn {
    let bar = bar.clone();
    // Without a total yet (a large transfer's sender still listing), a count; then a bar.
    let counting = std::sync::atomic::AtomicBool::new(false);
    Arc::new(move |p: &hero_sync::Progress| {
        use std::sync::atomic::Ordering;
        if p.objects_total > 0 {
            if counting.swap(false, Ordering::Relaxed) {
                bar.set_style(crate::output::bar_style());
            }
            bar.set_length(p.objects_total);
        } else if p.objects > 0 && !counting.swap(true, Ordering::Relaxed) {
            bar.set_style(crate::output::count_style());
        }
        bar.set_position(p.objects);
        bar.set_message(format!("{what} {}", bytes(p.bytes)));
    })
}

pub(crate) fn pull(
    repo: &Repo,
    path: &Path,
    ticket: &Ticket,
    net: &NetArgs,
    json: bool,
) -> Result<SyncReport> {
    let key = hero_sync::load_or_create_key(path)?;
    let bar = progress_bar(json, "pull");
    let progress = progress_fn(&bar, "pull");
    let cfg = net.config(None);
    let r = runtime()?.block_on(hero_sync::pull(repo, key, &cfg, ticket, Some(progress)));
    bar.finish_and_clear();
    let r = r?;
    follow(repo, ticket, &r.reached_at, json);
    Ok(r)
}

/// Brings the saved remotes of a peer that was found somewhere else up to date, and says so.
fn follow(repo: &Repo, ticket: &Ticket, now: &[std::net::SocketAddr], json: bool) {
    match hero_sync::access::follow_remotes(repo, &ticket.id(), now) {
        Ok(names) if !json => {
            for name in names {
                eprintln!("remote {name}: the peer is now at {}", addr_list(now));
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("saving where {} is now: {e}", ticket.id().fmt_short()),
    }
}

/// Addresses as `a, b`.
pub(crate) fn addr_list(addrs: &[std::net::SocketAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn push(
    repo: &Repo,
    path: &Path,
    ticket: &Ticket,
    branches: Option<&[String]>,
    net: &NetArgs,
    json: bool,
) -> Result<SyncReport> {
    let key = hero_sync::load_or_create_key(path)?;
    let bar = progress_bar(json, "push");
    let progress = progress_fn(&bar, "push");
    let cfg = net.config(None);
    let r = runtime()?.block_on(hero_sync::push(
        repo,
        key,
        &cfg,
        ticket,
        branches,
        Some(progress),
    ));
    bar.finish_and_clear();
    let r = r?;
    follow(repo, ticket, &r.reached_at, json);
    Ok(r)
}

/// How long a command waits for the session it asked a daemon to run (the daemon's session
/// has timeouts of its own: a frame within 120 s, a dial within 20 s).
const DAEMON_SESSION_WAIT: std::time::Duration = std::time::Duration::from_secs(3600);

/// Runs a session (`pull TICKET`, `push TICKET [BRANCH]`) through the daemon of this
/// repository, on the connection it keeps open to the peer, and returns its report; `None`
/// when no daemon runs here (or one too old to run sessions), or `direct` was asked for: the
/// command then opens a connection of its own.
fn through_daemon(path: &Path, request: &str, direct: bool) -> Result<Option<serde_json::Value>> {
    if direct {
        return Ok(None);
    }
    let Some(answer) = crate::control::try_ask(path, request, DAEMON_SESSION_WAIT)? else {
        return Ok(None);
    };
    if let Some(mut report) = answer.get("report").cloned() {
        report["via"] = json!("daemon");
        return Ok(Some(report));
    }
    match answer.get("error") {
        Some(serde_json::Value::Object(e)) => {
            let kind = e
                .get("kind")
                .and_then(|k| k.as_str())
                .and_then(Kind::from_name)
                .unwrap_or(Kind::Internal);
            let message = e
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or("the daemon's session failed")
                .to_owned();
            Err(match e.get("hint").and_then(|h| h.as_str()) {
                Some(hint) => tagged_hint(kind, message, hint),
                None => tagged(kind, message),
            })
        }
        _ => {
            tracing::debug!(
                "the daemon runs no sessions for the command line ({answer}); connecting"
            );
            Ok(None)
        }
    }
}

/// A session's report as `--json` prints it (and as a daemon answers for a session it ran).
pub(crate) fn report_json(r: &SyncReport) -> serde_json::Value {
    let mut v = json!({
        "objects": r.transfer.objects,
        "candidates": r.transfer.candidates,
        "commits": r.transfer.commits,
        "deltas": r.transfer.deltas,
        "object_bytes": r.transfer.object_bytes,
        "bytes_in": r.bytes_in,
        "bytes_out": r.bytes_out,
        "round_trips": r.round_trips,
        "branches_updated": r.updated(),
        "tags_created": r.tags_created,
        "tags_differing": r.tags_differing,
        "branches_failed": r.branches_failed.iter().map(|(b, e)| json!({
            "branch": b,
            "error": with_causes(e.as_ref()),
            "kind": crate::error::classify_dyn(e.as_ref()).0.as_str(),
        })).collect::<Vec<_>>(),
        "branches": r.branches.iter().map(|b| json!({
            "branch": b.branch,
            "old": b.old.map(|o| o.to_hex()),
            "new": b.new.to_hex(),
            "how": b.how.as_str(),
            "conflicts": b.conflicts,
        })).collect::<Vec<_>>(),
    });
    if let Some(c) = &r.connection {
        v["connection"] = json!({
            "reused": c.reused,
            "dials": c.dials,
            "datagrams_sent": c.datagrams_sent,
            "udp_bytes_sent": c.udp_bytes_sent,
            "datagrams_received": c.datagrams_received,
            "udp_bytes_received": c.udp_bytes_received,
        });
    }
    v
}

/// Prints a session's report (what [`report_json`] made of it, here or in a daemon).
fn report(what: &str, r: &serde_json::Value, json: bool) -> Result<()> {
    if json {
        print_json(r)?;
        return failed_branches(r, true);
    }
    let n = |k: &str| r[k].as_u64().unwrap_or(0);
    outln!(
        "{what}: {} objects, {} commits, {} received, {} sent",
        count(n("objects")),
        count(n("commits")),
        bytes(n("bytes_in")),
        bytes(n("bytes_out"))
    )?;
    if n("tags_created") > 0 {
        outln!("  {} tag(s) created", n("tags_created"))?;
    }
    for t in r["tags_differing"].as_array().into_iter().flatten() {
        outln!(
            "  tag {} differs between the peers; left as it was",
            t.as_str().unwrap_or_default()
        )?;
    }
    for b in r["branches"].as_array().into_iter().flatten() {
        let how = b["how"].as_str().unwrap_or_default();
        if how == hero_sync::UpdateKind::UpToDate.as_str() {
            continue;
        }
        let branch = b["branch"].as_str().unwrap_or_default();
        let conflicts = b["conflicts"].as_u64().unwrap_or(0);
        let conflicts = if conflicts > 0 {
            format!(
                " with {conflicts} conflict(s): both versions kept, see `heroctl conflicts {branch}`"
            )
        } else {
            String::new()
        };
        let new = b["new"]
            .as_str()
            .and_then(hero_store::ObjectId::from_hex)
            .map(|id| id.short())
            .unwrap_or_default();
        outln!("  {how} {branch} -> {new}{conflicts}")?;
    }
    failed_branches(r, false)
}

/// An error and its causes on one line, each cause once.
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    crate::error::messages_of(e).join(": ")
}

/// Fails when some branch could not be updated (after the report said which and why).
/// With `--json` the report on stdout says which and why already.
fn failed_branches(r: &serde_json::Value, json: bool) -> Result<()> {
    let failed = r["branches_failed"].as_array().cloned().unwrap_or_default();
    if !json {
        for f in &failed {
            eprintln!(
                "  branch {} not updated: {}",
                f["branch"].as_str().unwrap_or_default(),
                f["error"].as_str().unwrap_or_default()
            );
        }
    }
    match failed.first() {
        None => Ok(()),
        Some(first) => {
            let kind = first["kind"]
                .as_str()
                .and_then(Kind::from_name)
                .unwrap_or(Kind::Internal);
            Err(tagged(
                kind,
                format!(
                    "{} branch(es) could not be updated; the others were",
                    failed.len()
                ),
            ))
        }
    }
}

fn remote(repo: &Repo, what: RemoteCommand, json: bool) -> Result<()> {
    match what {
        RemoteCommand::Add { name, ticket } => {
            let t: Ticket = ticket.parse()?;
            hero_sync::access::add_remote(repo, &name, &t)?;
            if json {
                print_json(&json!({ "name": name, "ticket": t.to_string() }))?;
            } else {
                outln!("remote {name} -> {}", t.id())?;
            }
        }
        RemoteCommand::Remove { name } => {
            if !hero_sync::access::remove_remote(repo, &name)? {
                return Err(tagged(Kind::NotFound, format!("no remote named {name:?}")));
            }
            if json {
                print_json(&json!({ "removed": name }))?;
            } else {
                outln!("removed remote {name}")?;
            }
        }
        RemoteCommand::List => {
            let list = hero_sync::access::remotes(repo)?;
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|(n, t)| json!({ "name": n, "ticket": t }))
                    .collect();
                print_json(&serde_json::Value::Array(v))?;
            } else {
                for (n, t) in list {
                    outln!("{n}\t{t}")?;
                }
            }
        }
    }
    Ok(())
}

/// `allow` is kept as an alias of `member`: `allow add ID` adds a writer (`--read-only`: a
/// reader) or changes a member's role to that; `allow remove` and `allow list` are `member
/// remove` and `member list`.
fn allow(repo: &Repo, path: &Path, what: AllowCommand, json: bool) -> Result<()> {
    use crate::commands::member::{MemberCommand, RoleArg};
    let cmd = match what {
        AllowCommand::Add { id, read_only } => {
            let role = if read_only {
                RoleArg::Reader
            } else {
                RoleArg::Writer
            };
            let target = hero_sync::parse_endpoint_id(&id)?;
            let (_, m) = crate::commands::member::load(repo, path)?;
            if m.role_of(&target).is_some() {
                MemberCommand::Role {
                    id,
                    role,
                    scopes: Vec::new(),
                }
            } else {
                MemberCommand::Add {
                    id,
                    role,
                    scopes: Vec::new(),
                    name: String::new(),
                }
            }
        }
        AllowCommand::Remove { id } => MemberCommand::Remove { id },
        AllowCommand::List => MemberCommand::List,
    };
    crate::commands::member::member(repo, path, cmd, json)
}
