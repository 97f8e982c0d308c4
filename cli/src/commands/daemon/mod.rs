//! `heroctl daemon`: one process that keeps a repository mounted, shared over WebDAV and in
//! sync with its peers, configured by `.hero/daemon.toml` in the repository itself
//! (docs/daemon.md, ADR 0015).
//!
//! One `Repo` handle is shared by the sync server, the per-peer sync workers, the mount and the
//! share. The main loop sleeps until something happens: the repository's subscription
//! ([`hero_store::Repo::subscribe`]) wakes it after a write transaction of any process, and it
//! compares the generation counter. A branch head that moved (a save through the mount, a CLI
//! commit, a pull) is announced at once (a burst at most once per [`BATCH_WINDOW`]) and wakes
//! every peer worker; a new version of the configuration file is validated and applied.

mod asked;
pub mod config;
mod ctx;
mod gc;
mod peers;
mod status;
pub mod watch;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use hero_store::{EntryKind, Expect, ObjectId, Repo, RepoPath};
use hero_sync::{EndpointId, SecretKey, Ticket};
use serde_json::json;
use tokio::sync::watch as signal;

use crate::error::{Kind, tagged, tagged_hint};
use crate::output::{outln, print_json};
use config::{Config, ConfigError, NodeNames};
use ctx::{Ctx, Status, unix_now};
use gc::gc_loop;
use peers::{Ask, Worker, futures_join, note_known, peers_of, reconcile_workers};
use status::{print_status, status_json, watch_statuses};

/// Announcements are at most this frequent: the first move is announced at once, the moves
/// that follow within the window together at its end (a burst becomes one sync).
const BATCH_WINDOW: Duration = Duration::from_millis(30);

/// How long the mount waits for more changes after a written file is closed before it
/// commits ([`hero_fuse::MountOptions::close_commit`]).
const CLOSE_COMMIT: Duration = Duration::from_millis(10);

/// The longest readiness waits for the first catch-up with unreachable peers.
const FIRST_ROUND_MAX: Duration = Duration::from_secs(5);

/// Arguments of `daemon`.
#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// Mount the drive here (else the configuration's `mount.path`, else no mount).
    #[arg(long)]
    pub mount: Option<PathBuf>,
    /// Write the commented default configuration into the repository and exit.
    #[arg(long)]
    pub init_config: bool,
    /// The sync endpoint's UDP address (wins over `listen` of the local file and of the
    /// configuration; default port 4919).
    #[arg(long, value_name = "IP:PORT")]
    pub listen: Option<SocketAddr>,
    /// Networking.
    #[command(flatten)]
    pub net: crate::context::NetArgs,
}

/// `daemon` subcommands.
#[derive(Subcommand, Debug)]
pub enum DaemonCommand {
    /// Ask the running daemon how it is: peers, config, mount, share.
    Status,
    /// Make the running daemon re-read its configuration (as SIGHUP does).
    Reload,
}

/// `config` subcommands.
#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate a daemon configuration file (default: `.hero/daemon.toml` on the default
    /// branch), as the daemon would.
    Check {
        /// The file.
        file: Option<PathBuf>,
    },
}

/// Runs `heroctl daemon status|reload`.
pub fn command(repo: &Path, json: bool, cmd: DaemonCommand) -> Result<()> {
    match cmd {
        DaemonCommand::Status => {
            let v = crate::control::ask(repo, "status")?;
            if json {
                print_json(&v)?;
            } else {
                print_status(&v)?;
            }
        }
        DaemonCommand::Reload => {
            let v = crate::control::ask(repo, "reload")?;
            if json {
                print_json(&v)?;
            } else {
                outln!("configuration re-read")?;
            }
        }
    }
    Ok(())
}

/// Runs `heroctl config check [FILE]`.
pub fn config_command(repo_path: &Path, json: bool, cmd: ConfigCommand) -> Result<()> {
    let ConfigCommand::Check { file } = cmd;
    let id = hero_sync::endpoint_id(repo_path)
        .map(|i| i.to_string())
        .unwrap_or_default();
    let names = NodeNames::here(id);
    let (name, bytes) = match &file {
        Some(f) => (
            f.display().to_string(),
            std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
        ),
        None => {
            let repo = crate::context::with_open_context(Repo::open(repo_path), repo_path)?;
            let branch = repo.default_branch()?;
            match config::read_from_repo(&repo, &branch)? {
                Some((_, b)) => (format!("{branch}:{}", config::CONFIG_PATH), b),
                None => {
                    return Err(tagged_hint(
                        Kind::NotFound,
                        format!("no {} on branch {branch}", config::CONFIG_PATH),
                        "`heroctl daemon --init-config` writes the default",
                    ));
                }
            }
        }
    };
    match config::parse_bytes(&bytes, &name, &names) {
        Ok(c) => {
            if json {
                print_json(&json!({ "file": name, "valid": true, "peers": c.peers.len() }))?;
            } else {
                outln!("{name}: valid")?;
            }
            Ok(())
        }
        Err(e) => Err(tagged(Kind::Usage, e.to_string())),
    }
}

/// A running share or web face.
struct Share {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// `heroctl daemon`: runs until SIGTERM or Ctrl-C.
pub fn run(repo_path: &Path, json: bool, a: DaemonArgs) -> Result<()> {
    if json {
        return Err(tagged(
            Kind::Usage,
            "daemon does not take --json: it runs until stopped and prints a log \
             (`heroctl daemon status --json` reports)",
        ));
    }
    if !repo_path.exists() {
        crate::context::create_repo(repo_path)?;
        outln!("created the store {}", repo_path.display())?;
    }
    let repo = Arc::new(crate::context::with_open_context(
        Repo::open_with_budget(repo_path, hero_store::MemoryBudget::RESIDENT),
        repo_path,
    )?);
    if a.init_config {
        return init_config(&repo, repo_path);
    }
    let key = hero_sync::load_or_create_key(repo_path)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(daemon(repo, repo_path.to_path_buf(), key, a))
}

fn init_config(repo: &Repo, path: &Path) -> Result<()> {
    let branch = repo.default_branch()?;
    if config::read_from_repo(repo, &branch)?.is_some() {
        return Err(tagged_hint(
            Kind::Refused,
            format!("{branch}:{} exists already", config::CONFIG_PATH),
            "edit it through the mount, or `heroctl cat` it, change it and commit",
        ));
    }
    let mut cs = repo.change_set(&branch)?;
    cs.put_bytes(
        &RepoPath::parse(config::CONFIG_PATH)?,
        EntryKind::File,
        config::DEFAULT_TEXT.as_bytes(),
    )?;
    let meta = crate::context::author_for(path)?.commit_meta("daemon: default configuration\n");
    let done = cs.commit(meta, Expect::Latest)?;
    outln!(
        "wrote {branch}:{} ({})",
        config::CONFIG_PATH,
        done.id.short()
    )?;
    Ok(())
}

/// The configuration on the branch: the blob id, and the parsed file or why it was refused.
type Loaded = Option<(ObjectId, std::result::Result<Config, ConfigError>)>;

/// The configuration file on `branch`, parsed — and refused unless an owner wrote it
/// ([`hero_sync::authority`]): a refusal is reported like an invalid file and audited.
fn load_config(repo: &Repo, branch: &str, names: &NodeNames, me: &EndpointId) -> Result<Loaded> {
    let file = format!("{branch}:{}", config::CONFIG_PATH);
    let Some((id, bytes)) = config::read_from_repo(repo, branch)? else {
        return Ok(None);
    };
    if let Some(head) = repo.branch_head(branch)? {
        let path = RepoPath::parse(config::CONFIG_PATH)?;
        if let hero_sync::authority::Authority::Refused { commit, by, rule } =
            hero_sync::authority::of_path(repo, &head, &path, me)?
        {
            let message = format!(
                "not obeyed: written by commit {}{}: {rule}",
                commit.short(),
                by.as_deref()
                    .map(|b| format!(" of {b}"))
                    .unwrap_or_default()
            );
            let mut entry = hero_sync::audit::Entry::new(
                None,
                "config",
                hero_sync::audit::Decision::Refused,
                message.clone(),
            )
            .rule(rule);
            entry.commit = Some(commit.to_hex());
            entry.path = Some(config::CONFIG_PATH.to_owned());
            entry.peer = by;
            hero_sync::audit::record(repo, entry);
            return Ok(Some((
                id,
                Err(ConfigError {
                    file,
                    line: None,
                    column: None,
                    message,
                }),
            )));
        }
    }
    Ok(Some((id, config::parse_bytes(&bytes, &file, names))))
}

async fn daemon(repo: Arc<Repo>, path: PathBuf, key: SecretKey, a: DaemonArgs) -> Result<()> {
    let me = key.public();
    let names = NodeNames::here(me.to_string());
    let branch = repo.default_branch()?;
    let control = crate::control::bind(&crate::control::socket_path(&path)).await?;
    let mut status = Status::default();

    // The configuration in force at start: the file, else the defaults.
    let mut cfg = Config::default();
    let mut cfg_blob: Option<ObjectId> = None;
    status.config.source = "default".into();
    if let Some((id, parsed)) = load_config(&repo, &branch, &names, &me)? {
        cfg_blob = Some(id);
        match parsed {
            Ok(c) => {
                cfg = c;
                status.config.revision = Some(id.to_hex());
                status.config.source = "repository".into();
                status.config.applied = 1;
            }
            Err(e) => {
                tracing::error!("{e}; running on the default configuration");
                status.config.error = Some(e);
            }
        }
    }

    // The sync endpoint, on its fixed port unless configured.
    let mut net = a.net.config(None);
    // Offline, waiting for a relay would only delay the start: peers are found by id.
    net.no_relay_wait = true;
    if net.mode == hero_sync::NetMode::Internet {
        tracing::info!(
            "relays and address lookup on; starting without waiting for them (their failures \
             are not logged below error level; RUST_LOG=iroh=warn shows them)"
        );
    }
    // The command line, then the machine's local file, then the replicated configuration.
    let machine_listen = a.listen.or(config::read_local().listen);
    let bind = machine_listen.or(cfg.listen).unwrap_or_else(|| {
        let ip = match net.mode {
            hero_sync::NetMode::Local => IpAddr::V4(Ipv4Addr::LOCALHOST),
            hero_sync::NetMode::Internet => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        SocketAddr::new(ip, config::DEFAULT_PORT)
    });
    net.bind = Some(bind);
    let listen_in_force = cfg.listen;
    net.no_lan_discovery = !cfg.lan_discovery;
    let lan_discovery_in_force = cfg.lan_discovery;
    let (server, gossip) = match hero_sync::serve_announced(repo.clone(), key.clone(), &net).await {
        Ok(s) => s,
        Err(e) => {
            let how = "choose another with `heroctl daemon --listen IP:PORT`, `listen = \
                       \"IP:PORT\"` in this machine's local file (~/.config/hero/daemon.toml), \
                       or `listen` under this node's [node.ID] of .hero/daemon.toml";
            return Err(match crate::netcheck::taken(bind, how) {
                Some(taken) => taken,
                None => {
                    anyhow::Error::new(e).context(format!("starting the sync endpoint on {bind}"))
                }
            });
        }
    };
    let ticket = server.ticket().to_string();
    let ctx = Arc::new(Ctx {
        repo: repo.clone(),
        path: path.clone(),
        pool: hero_sync::Pool::new(server.endpoint()),
        me,
        branch,
        status: Mutex::new(status),
        catch_up: Mutex::new(cfg.catch_up),
        config_writable: Arc::new(std::sync::atomic::AtomicBool::new(
            crate::authority::may_write_config_as(&repo, &me)?,
        )),
        watch: Mutex::new(cfg.watch.clone()),
        hook_env: Mutex::new(watch::HookEnv {
            cwd: None,
            repo: path.clone(),
            mount: None,
            policy: config::read_local().hooks.policy(),
        }),
        gc: signal::channel(cfg.gc).0,
        known: Mutex::new(HashMap::new()),
    });
    ctx.status().watches = watch_statuses(&cfg.watch);

    // Announcements: one gossip topic per repository.
    let tickets: Vec<Ticket> = peers_of(&ctx, &cfg).into_iter().map(|p| p.ticket).collect();
    let repo_id = hero_sync::access::sync_repo_id(&repo)?;
    let (announcer, incoming) =
        hero_sync::gossip::start(&server, &gossip, key.clone(), &repo_id, &tickets)
            .await
            .context("joining the announcement topic")?;
    let announcer = Arc::new(announcer);
    let mut incoming = incoming.only_members(repo.clone());
    let mut gossip_open = true;

    // The mount.
    let mount_dir = a.mount.clone().or_else(|| cfg.mount.path.clone());
    let mount_in_force = cfg.mount.clone();
    let mut mount = None;
    if cfg.mount.enabled
        && let Some(dir) = mount_dir
    {
        let h = start_mount(&ctx, &dir, &cfg)?;
        ctx.status().mount = Some(dir.display().to_string());
        ctx.hook_env.lock().unwrap_or_else(|p| p.into_inner()).mount = Some(dir.clone());
        outln!("mounted branch {} at {}", ctx.branch, dir.display())?;
        mount = Some(h);
    }

    // The share.
    let mut share = None;
    if cfg.dav.enabled {
        share = start_share(&ctx, cfg.dav.addr).await;
    }

    // The web face.
    let mut ui = None;
    if cfg.ui.enabled {
        ui = start_ui(&ctx, cfg.ui.addr).await;
    }

    // Scheduled garbage collection, one collection at a time.
    let collector = tokio::spawn(gc_loop(ctx.clone(), ctx.gc.subscribe()));

    // Watch hooks run one change at a time, in order, off the main loop.
    let (hooks_tx, hooks_rx) = tokio::sync::mpsc::unbounded_channel();
    let hooks = tokio::spawn(hook_runner(ctx.clone(), hooks_rx));
    let mut watch_head = repo.branch_head(&ctx.branch).ok().flatten();

    // The default branch's files checked against their schemas, one change at a time, off the
    // main loop: what the mount, the share and peers bring in is logged and listed in status.
    let (validate_tx, validate_rx) = std::sync::mpsc::channel();
    spawn_validator(ctx.clone(), validate_rx)?;
    if let Some(h) = watch_head {
        let _ = validate_tx.send((None, h));
    }

    // Peer workers; readiness once each has tried once (or FIRST_ROUND_MAX passed).
    let (changed_tx, changed_rx) = signal::channel(0u64);
    let mut workers: HashMap<EndpointId, Worker> = HashMap::new();
    let firsts = reconcile_workers(&ctx, &cfg, &mut workers, &changed_rx, &announcer);
    let _ = tokio::time::timeout(FIRST_ROUND_MAX, futures_join(firsts)).await;

    outln!("daemon for {} ready", path.display())?;
    outln!("ticket: {ticket}")?;
    crate::control::sd_notify("READY=1");
    tracing::info!("ready");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing the SIGHUP handler")?;
    let mut last_gen = repo.generation().unwrap_or(0);
    let mut last_heads = repo.branches().unwrap_or_default();
    // Branch heads moved since the last announcement, and when the next may go out.
    let mut moved: BTreeMap<String, ObjectId> = BTreeMap::new();
    let mut announced_at: Option<Instant> = None;
    let mut announce_at: Option<Instant> = None;
    let mut bumps = 0u64;
    // Woken by write transactions of this process and of others (no polling at rest).
    let (store_tx, mut store_changed) = signal::channel(0u64);
    let changes = repo.subscribe(move || store_tx.send_modify(|n| *n = n.wrapping_add(1)));
    // Told when the mount's session ends (unmounted from outside).
    let (gone_tx, mut mount_gone) = signal::channel(false);
    if let Some(h) = &mount {
        let ended = h.ended();
        std::thread::Builder::new()
            .name("mount-ended".into())
            .spawn(move || {
                ended.wait();
                let _ = gone_tx.send(true);
            })
            .context("starting the mount's watch thread")?;
    }
    let mut reread = false;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: re-reading the configuration");
                reread = true;
            }
            c = control.accept() => {
                if let Ok((mut stream, _)) = c {
                    let req = crate::control::read_request(&mut stream).await;
                    match req.as_deref() {
                        Some("reload") => {
                            reread = true;
                            crate::control::answer(stream, &json!({ "reload": true })).await;
                        }
                        Some("status") => {
                            let ctx = ctx.clone();
                            let ticket = ticket.clone();
                            tokio::spawn(async move {
                                let v = tokio::task::spawn_blocking(move || status_json(&ctx, &ticket))
                                    .await
                                    .unwrap_or_else(|e| json!({ "error": e.to_string() }));
                                crate::control::answer(stream, &v).await;
                            });
                        }
                        Some(r) if r.starts_with("script ") => {
                            // In a heroctl process of its own: the same checks and commands as
                            // `heroctl script -`, and a repository opened as any command opens it.
                            let request = r.to_owned();
                            let path = ctx.path.clone();
                            tokio::spawn(async move {
                                let v = tokio::task::spawn_blocking(move || {
                                    crate::commands::script::run_for_daemon(&path, &request)
                                })
                                .await
                                .unwrap_or_else(|e| json!({ "error": e.to_string() }));
                                crate::control::answer(stream, &v).await;
                            });
                        }
                        Some(r) if asked::parse(r).is_some() => {
                            // A `heroctl pull`/`push` of this machine: on the pooled
                            // connection, off the main loop.
                            let ctx = ctx.clone();
                            let parsed = asked::parse(r);
                            tokio::spawn(async move {
                                let v = match parsed {
                                    Some(Ok(a)) => asked::run(&ctx, a).await,
                                    Some(Err(why)) => asked::refused(&why),
                                    None => json!({ "error": "unknown request" }),
                                };
                                crate::control::answer(stream, &v).await;
                            });
                        }
                        _ => crate::control::answer(stream, &json!({ "error": "unknown request" })).await,
                    }
                }
            }
            a = incoming.next(), if gossip_open => match a {
                Some(hero_sync::gossip::Heard::PeerUp(peer)) => {
                    if let Some(w) = workers.get(&peer) {
                        let _ = w.asks.send(Ask::CatchUp);
                    }
                }
                Some(hero_sync::gossip::Heard::Announced(a)) if a.from != ctx.me => {
                    // A hint only: pull from the announcer the branches whose announced heads
                    // this store lacks (the pull verifies everything).
                    note_known(&ctx, &a.from, &a.heads);
                    let lacking: Vec<(String, ObjectId)> = a
                        .heads
                        .iter()
                        .filter(|(_, h)| !repo.has_object(h).unwrap_or(false))
                        .cloned()
                        .collect();
                    if !lacking.is_empty() {
                        tracing::debug!(
                            "announcement from {}: new heads of {}",
                            a.from.fmt_short(),
                            lacking.iter().map(|(b, _)| b.as_str()).collect::<Vec<_>>().join(", ")
                        );
                        match workers.get(&a.from) {
                            Some(w) => {
                                let _ = w.asks.send(Ask::Pull(lacking));
                            }
                            None => workers.values().for_each(|w| {
                                let _ = w.asks.send(Ask::Pull(lacking.clone()));
                            }),
                        }
                    }
                }
                Some(_) => {}
                None => {
                    tracing::warn!("the announcement topic closed; catch-up syncs only");
                    gossip_open = false;
                }
            },
            r = store_changed.changed() => {
                if r.is_err() {
                    tracing::warn!("the repository's change notification ended");
                }
            }
            _ = mount_gone.changed(), if mount.is_some() && !*mount_gone.borrow() => {}
            _ = sleep_until_some(announce_at) => {}
            // A safety net: inotify unavailable, an event lost.
            _ = tokio::time::sleep(changes.fallback()) => {}
        }
        // Unmounted from outside (`umount`, `fusermount3 -u`): the mount committed what was
        // pending; release it and go on syncing without it.
        if mount.as_ref().is_some_and(|h| h.ended().is_ended())
            && let Some(h) = mount.take()
        {
            tracing::warn!("the drive was unmounted from outside; syncing goes on without it");
            ctx.status().mount = None;
            match tokio::task::spawn_blocking(move || h.unmount()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!("releasing the mount: {e}"),
                Err(e) => tracing::error!("releasing the mount: {e}"),
            }
        }
        let generation = repo.generation().unwrap_or(last_gen);
        if generation != last_gen || reread {
            last_gen = generation;
            // Branch heads first: peers hear of a move before the rest is looked at.
            match repo.branches() {
                Ok(heads) if heads != last_heads => {
                    for (b, h) in &heads {
                        if !last_heads.contains(&(b.clone(), *h)) {
                            moved.insert(b.clone(), *h);
                        }
                    }
                    last_heads = heads;
                    let next = announced_at.map_or_else(Instant::now, |t| t + BATCH_WINDOW);
                    announce_at.get_or_insert(next);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("reading branch heads: {e}"),
            }
            if announce_at.is_some_and(|t| t <= Instant::now()) {
                announce_at = None;
                announced_at = Some(Instant::now());
                announce(&announcer, &changed_tx, &mut bumps, &mut moved);
            }
            // The membership may have changed this node's role.
            match crate::authority::may_write_config_as(&repo, &ctx.me) {
                Ok(v) => ctx
                    .config_writable
                    .store(v, std::sync::atomic::Ordering::Relaxed),
                Err(e) => tracing::warn!("reading this node's role: {e:#}"),
            }

            if let Ok(Some(h)) = repo.branch_head(&ctx.branch)
                && Some(h) != watch_head
            {
                let _ = hooks_tx.send((watch_head, h));
                let _ = validate_tx.send((watch_head, h));
                watch_head = Some(h);
            }
            // A new version of the configuration file, or a re-read asked for.
            let current = config::read_from_repo(&repo, &ctx.branch)
                .map(|o| o.map(|(id, _)| id))
                .unwrap_or(cfg_blob);
            if current != cfg_blob || reread {
                cfg_blob = current;
                match load_config(&repo, &ctx.branch, &names, &ctx.me) {
                    Ok(Some((id, Ok(new)))) => {
                        let restart: Vec<String> = {
                            let mut v = Vec::new();
                            if new.listen != listen_in_force {
                                v.push("listen".to_owned());
                            }
                            if new.lan_discovery != lan_discovery_in_force {
                                v.push("lan_discovery".to_owned());
                            }
                            if new.mount != mount_in_force {
                                v.push("mount".to_owned());
                            }
                            v
                        };
                        if new.dav != cfg.dav {
                            if let Some(s) = share.take() {
                                stop_share(s).await;
                            }
                            ctx.status().share = None;
                            if new.dav.enabled {
                                share = start_share(&ctx, new.dav.addr).await;
                            }
                        }
                        if new.ui != cfg.ui {
                            if let Some(s) = ui.take() {
                                stop_share(s).await;
                            }
                            ctx.status().ui = None;
                            if new.ui.enabled {
                                ui = start_ui(&ctx, new.ui.addr).await;
                            }
                        }
                        *ctx.catch_up.lock().unwrap_or_else(|p| p.into_inner()) = new.catch_up;
                        if new.watch != cfg.watch {
                            *ctx.watch.lock().unwrap_or_else(|p| p.into_inner()) =
                                new.watch.clone();
                            ctx.status().watches = watch_statuses(&new.watch);
                        }
                        if new.gc != cfg.gc {
                            ctx.gc.send_replace(new.gc);
                        }
                        cfg = new;
                        let mut st = ctx.status();
                        st.config.revision = Some(id.to_hex());
                        st.config.source = "repository".into();
                        st.config.error = None;
                        st.config.restart_needed = restart;
                        st.config.applied += 1;
                        tracing::info!("configuration {} applied", id.short());
                    }
                    Ok(Some((_, Err(e)))) => {
                        tracing::error!("{e}; keeping the configuration in force");
                        ctx.status().config.error = Some(e);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!("reading the configuration: {e:#}"),
                }
            }
            reread = false;
            // Saved remotes count as peers: they may have changed too.
            reconcile_workers(&ctx, &cfg, &mut workers, &changed_rx, &announcer);
        }
        if announce_at.is_some_and(|t| t <= Instant::now()) {
            announce_at = None;
            announced_at = Some(Instant::now());
            announce(&announcer, &changed_tx, &mut bumps, &mut moved);
        }
    }

    // SIGTERM: commit pending and unmount, stop the share, close connections.
    tracing::info!("stopping");
    drop(control);
    let _ = std::fs::remove_file(crate::control::socket_path(&path));
    // No more pulls and merges: under load they kept the mount's last commit waiting.
    for (_, w) in workers.drain() {
        w.task.abort();
    }
    let mut failed = None;
    if let Some(h) = mount.take() {
        outln!("unmounting (committing pending writes)")?;
        // Commit first: a mount still in use (a file open) is detached lazily, and what was
        // written until now is in the store either way.
        let done = tokio::task::spawn_blocking(move || {
            let flushed = h.flush();
            (flushed, h.unmount())
        })
        .await;
        match done {
            Ok((Ok(_), Ok(()))) => {}
            Ok((Ok(_), Err(e @ hero_fuse::MountError::Unmount { .. }))) => {
                tracing::warn!("{e}");
            }
            Ok((Err(e), _)) | Ok((Ok(_), Err(e))) => {
                failed = Some(anyhow::Error::new(e).context("committing pending writes"))
            }
            Err(e) => failed = Some(anyhow::anyhow!("unmounting: {e}")),
        }
    }
    if let Some(s) = share.take() {
        stop_share(s).await;
    }
    if let Some(s) = ui.take() {
        stop_share(s).await;
    }
    drop(hooks_tx);
    let _ = hooks.await;
    // A collection under way is one write transaction: stopping the task leaves it to finish
    // or roll back on its blocking thread, and the file is whole either way.
    collector.abort();
    ctx.pool.close().await;
    server.shutdown().await;
    outln!("stopped")?;
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Tells peers of the branch heads that moved (the announcement) and wakes the peer workers
/// (a push to a peer that does not pull).
fn announce(
    announcer: &Arc<hero_sync::gossip::Announcer>,
    changed: &signal::Sender<u64>,
    bumps: &mut u64,
    moved: &mut BTreeMap<String, ObjectId>,
) {
    *bumps += 1;
    let _ = changed.send(*bumps);
    let heads: Vec<(String, ObjectId)> = std::mem::take(moved).into_iter().collect();
    tracing::debug!(branches = heads.len(), "announcing");
    let an = announcer.clone();
    tokio::spawn(async move { an.announce(heads).await });
}

/// Completes at `at`, never when `None`.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// Runs the hooks matching each change of the branch head, one change after the other.
async fn hook_runner(
    ctx: Arc<Ctx>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<(Option<ObjectId>, ObjectId)>,
) {
    while let Some((old, new)) = rx.recv().await {
        let ctx = ctx.clone();
        let done = tokio::task::spawn_blocking(move || {
            let specs = ctx.watch.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if specs.is_empty() {
                return;
            }
            let paths = match watch::changed_paths(&ctx.repo, old, &new) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!("watch: comparing {} with its parent: {e}", new.short());
                    return;
                }
            };
            let mut env = ctx
                .hook_env
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            for (i, spec, matched) in watch::matching(&specs, &paths) {
                let dir = match watch::materialize(
                    &ctx.repo,
                    &new,
                    &matched,
                    env.policy.account.as_ref(),
                ) {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::error!("watch {}: writing the changed files: {e}", spec.glob);
                        continue;
                    }
                };
                env.cwd = Some(dir.clone());
                let mut st = ctx.status().watches.get(i).cloned().unwrap_or_default();
                watch::fire(spec, &matched, &env, &mut st, unix_now());
                let _ = std::fs::remove_dir_all(&dir);
                if let Some(slot) = ctx.status().watches.get_mut(i) {
                    *slot = st;
                }
            }
        })
        .await;
        if let Err(e) = done {
            tracing::error!("watch: a hook task failed: {e}");
        }
    }
}

fn start_mount(ctx: &Ctx, dir: &Path, cfg: &Config) -> Result<hero_fuse::MountHandle> {
    if let Some(hint) = hero_fuse::stale_mount_hint(dir) {
        anyhow::bail!("{hint}");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut opts = hero_fuse::MountOptions::new(&ctx.path, dir);
    opts.config_writable = ctx.config_writable.clone();
    opts.branch = ctx.branch.clone();
    opts.read_only = cfg.mount.read_only;
    opts.show_snapshots = cfg.mount.show_snapshots;
    opts.idle_commit = Duration::from_millis(cfg.mount.idle_commit_ms);
    // A file saved alone goes to the peers when it is closed, not an idle time later.
    opts.close_commit = Some(CLOSE_COMMIT);
    opts.poll_interval = Duration::from_millis(50);
    opts.author = crate::context::author().with_peer(ctx.me.to_string());
    hero_fuse::mount_repo(ctx.repo.clone(), opts)
        .with_context(|| format!("mounting {} at {}", ctx.path.display(), dir.display()))
}

/// Starts the share; a failure (the address taken) is reported in the status, not fatal.
async fn start_share(ctx: &Ctx, addr: SocketAddr) -> Option<Share> {
    let (auth, from) = match crate::context::share_auth(&ctx.path, None) {
        Ok(x) => x,
        Err(e) => {
            tracing::error!("WebDAV share on {addr}: {e:#}");
            let mut st = ctx.status();
            st.share = None;
            st.share_error = Some(format!("{addr}: {e:#}"));
            return None;
        }
    };
    let mut dc = hero_dav::DavConfig::new(&ctx.path, auth);
    dc.config_writable = ctx.config_writable.clone();
    dc.addr = addr;
    dc.branch = ctx.branch.clone();
    dc.author = crate::context::author().with_peer(ctx.me.to_string());
    match hero_dav::bind_repo(ctx.repo.clone(), dc).await {
        Ok(server) => {
            let addr = server.local_addr();
            let (stop, task) = serve_until_stopped("WebDAV share", |stopped| server.run(stopped));
            let _ = outln!("serving WebDAV at http://{addr}/; {from}");
            let mut st = ctx.status();
            st.share = Some(format!("http://{addr}/"));
            st.share_error = None;
            Some(Share { addr, stop, task })
        }
        Err(e) => {
            tracing::error!("WebDAV share on {addr}: {e}");
            let mut st = ctx.status();
            st.share = None;
            st.share_error = Some(format!("{addr}: {e}"));
            None
        }
    }
}

/// Stops the share or the web face.
/// Runs a server in a task until the sender it returns is used (or dropped); a failure is
/// logged as `what`'s.
fn serve_until_stopped<F, E>(
    what: &'static str,
    serve: impl FnOnce(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> F,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
)
where
    F: std::future::Future<Output = std::result::Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = serve(Box::pin(async move {
        let _ = stopped.await;
    }));
    let task = tokio::spawn(async move {
        if let Err(e) = run.await {
            tracing::error!("{what}: {e}");
        }
    });
    (stop, task)
}

async fn stop_share(s: Share) {
    let _ = s.stop.send(());
    let _ = s.task.await;
    tracing::info!("server on {} stopped", s.addr);
}

/// Starts the web face over the daemon's repository handle; a failure (the address taken)
/// is reported in the status, not fatal.
async fn start_ui(ctx: &Arc<Ctx>, addr: SocketAddr) -> Option<Share> {
    let report = |e: String| {
        tracing::error!("web face on {addr}: {e}");
        let mut st = ctx.status();
        st.ui = None;
        st.ui_error = Some(format!("{addr}: {e}"));
        None
    };
    let (token, from) = match crate::context::ui_auth(&ctx.path, None) {
        Ok(x) => x,
        Err(e) => return report(format!("{e:#}")),
    };
    let mut wc = hero_web::WebConfig::new(hero_web::Auth::Token(token));
    wc.addr = addr;
    let known = Arc::downgrade(ctx);
    wc.peers = Some(Arc::new(move || {
        let Some(ctx) = known.upgrade() else {
            return Vec::new();
        };
        let heads: HashMap<String, ObjectId> = ctx
            .known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|(peer, heads)| Some((peer.to_string(), *heads.get(&ctx.branch)?)))
            .collect();
        let st = ctx.status();
        st.peers
            .values()
            .map(|p| hero_web::PeerView {
                id: p.id.clone(),
                source: p.source.clone(),
                connected: p.connected,
                last_sync: p.last_sync,
                syncs: p.syncs,
                last_error: p.last_error.clone(),
                known_head: heads.get(&p.id).map(ObjectId::to_hex),
            })
            .collect()
    }));
    match hero_web::bind_repo(ctx.repo.clone(), wc).await {
        Ok(server) => {
            let addr = server.local_addr();
            let (stop, task) = serve_until_stopped("web face", |stopped| server.run(stopped));
            let _ = outln!("serving the web face at http://{addr}/; sign in with {from}");
            let mut st = ctx.status();
            st.ui = Some(format!("http://{addr}/"));
            st.ui_error = None;
            Some(Share { addr, stop, task })
        }
        Err(e) => report(e.to_string()),
    }
}

/// Starts the thread that keeps `status.invalid`: for each move of the default branch
/// (`None` first: the whole tree), the files that changed are checked again and what breaks a
/// rule or does not parse is logged. Ends when the sender is dropped.
fn spawn_validator(
    ctx: Arc<Ctx>,
    moves: std::sync::mpsc::Receiver<(Option<hero_store::ObjectId>, hero_store::ObjectId)>,
) -> Result<()> {
    std::thread::Builder::new()
        .name("validate".into())
        .spawn(move || {
            let mut known = Vec::new();
            for (old, new) in moves {
                match crate::commands::check::refresh(&ctx.repo, old, &new, &mut known) {
                    Ok(fresh) => {
                        for f in &fresh {
                            tracing::warn!("{} at {}: {f}", ctx.branch, new.short());
                        }
                        ctx.status().invalid = known.clone();
                    }
                    Err(e) => tracing::warn!("checking {} against its schemas: {e:#}", new.short()),
                }
            }
        })
        .context("starting the validation thread")?;
    Ok(())
}
