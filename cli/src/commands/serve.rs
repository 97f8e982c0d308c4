//! `heroctl mount` and `heroctl serve dav`.

use crate::context::{share_auth, shutdown_signal};
use crate::output::outln;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `serve` serves.
#[derive(Subcommand, Debug)]
pub enum ServeKind {
    /// A WebDAV share of a branch: writes become commits.
    Dav(DavArgs),
}

/// Arguments of `serve dav`.
#[derive(Args, Debug)]
pub struct DavArgs {
    /// Address to listen on. Anything but loopback needs --trusted-network.
    #[arg(long, default_value = "127.0.0.1:4918")]
    pub addr: SocketAddr,
    /// The branch to share (default: the repository's default branch).
    #[arg(long)]
    pub branch: Option<String>,
    /// Writes arriving within this many milliseconds land as one commit.
    #[arg(long, default_value_t = 200)]
    pub commit_window_ms: u64,
    /// The file holding the token clients must present (as the password of Basic
    /// authentication with any user name, or as a bearer token); created on first use, mode
    /// 0600 [default: REPO.dav-token]. HERO_DAV_TOKEN, when set, is the token instead
    /// (HERO_DAV_BASIC=USER:PASSWORD: Basic credentials instead).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Say that the network is trusted (no TLS) when binding beyond loopback.
    #[arg(long)]
    pub trusted_network: bool,
}

/// The branch named, or the default branch of the repository at `repo`. A mount or share that
/// writes (`writes`) refuses hero's reserved branches; a read-only mount may show them.
fn default_branch(repo: &Path, branch: Option<String>, writes: bool) -> Result<String> {
    match branch {
        Some(b) => {
            if writes {
                crate::context::check_writable(&b)?;
            }
            Ok(b)
        }
        None => {
            let r = crate::context::with_open_context(hero_store::Repo::open(repo), repo)?;
            Ok(r.default_branch()?)
        }
    }
}

/// How often a mount or share run on its own reads this node's role again (whether it may
/// change `.hero/`).
const CONFIG_SWITCH_EVERY: Duration = Duration::from_secs(2);

/// Runs a server until Ctrl-C or SIGTERM.
pub fn run(repo: &Path, what: ServeKind) -> Result<()> {
    match what {
        ServeKind::Dav(a) => serve_dav(repo, a),
    }
}

fn serve_dav(repo: &Path, a: DavArgs) -> Result<()> {
    let (auth, from) = share_auth(repo, a.token_file.as_deref())?;
    let mut cfg = hero_dav::DavConfig::new(repo, auth);
    cfg.addr = a.addr;
    cfg.branch = default_branch(repo, a.branch, true)?;
    cfg.commit_window = Duration::from_millis(a.commit_window_ms);
    cfg.trusted_network = a.trusted_network;
    cfg.author = crate::context::author_for(repo)?;
    cfg.config_writable = crate::authority::config_switch(repo, CONFIG_SWITCH_EVERY)?;
    crate::commands::check::watch_branch(repo, cfg.branch.clone(), CONFIG_SWITCH_EVERY)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let server = hero_dav::bind(cfg)
            .await
            .with_context(|| format!("starting the WebDAV share of {}", repo.display()))?;
        outln!(
            "serving WebDAV at http://{}/ (Ctrl-C to stop); {from}",
            server.local_addr()
        )?;
        server
            .run(shutdown_signal())
            .await
            .context("serving WebDAV")
    })
}

/// Arguments of `mount`.
#[derive(Args, Debug)]
pub struct MountArgs {
    /// Where to mount (created if missing).
    pub dir: PathBuf,
    /// The branch to mount (default: the repository's default branch).
    #[arg(long)]
    pub branch: Option<String>,
    /// Refuse writes.
    #[arg(long)]
    pub read_only: bool,
    /// Commit after this many milliseconds without writes.
    #[arg(long, default_value_t = 1000)]
    pub idle_ms: u64,
    /// Let other users use the drive (services under their own accounts); the kernel checks
    /// their access against the stored modes and owners. A user other than root needs a
    /// `user_allow_other` line in /etc/fuse.conf.
    #[arg(long)]
    pub allow_other: bool,
    /// Show every file as owned by the mounting user (stored owners are kept, not shown).
    #[arg(long)]
    pub single_user: bool,
    /// Commit at the latest this many milliseconds after the first uncommitted change, even
    /// while writes continue.
    #[arg(long, default_value_t = 5000)]
    pub max_delay_ms: u64,
    /// List `.snapshots` in the drive's root (it is reachable by name either way; hidden, it
    /// keeps `find`, `du`, `rsync -a` and backup tools from walking every version).
    #[arg(long)]
    pub show_snapshots: bool,
}

/// Mounts until Ctrl-C or SIGTERM, then commits what is pending and unmounts.
pub fn mount(repo: &Path, a: MountArgs) -> Result<()> {
    if let Some(hint) = hero_fuse::stale_mount_hint(&a.dir) {
        anyhow::bail!("{hint}");
    }
    if !repo.exists() {
        crate::context::create_repo(repo)?;
        outln!("created the store {}", repo.display())?;
    }
    std::fs::create_dir_all(&a.dir).with_context(|| format!("creating {}", a.dir.display()))?;
    let branch = default_branch(repo, a.branch, !a.read_only)?;
    let mut opts = hero_fuse::MountOptions::new(repo, &a.dir);
    opts.branch = branch.clone();
    opts.read_only = a.read_only;
    opts.idle_commit = Duration::from_millis(a.idle_ms);
    opts.allow_other = a.allow_other;
    opts.single_user = a.single_user;
    opts.max_commit_delay = Duration::from_millis(a.max_delay_ms);
    opts.show_snapshots = a.show_snapshots;
    opts.author = crate::context::author_for(repo)?;
    opts.config_writable = crate::authority::config_switch(repo, CONFIG_SWITCH_EVERY)?;
    crate::commands::check::watch_branch(repo, branch.clone(), CONFIG_SWITCH_EVERY)?;
    let handle = hero_fuse::mount(opts)
        .with_context(|| format!("mounting {} at {}", repo.display(), a.dir.display()))?;
    outln!(
        "mounted branch {} of {} at {} (Ctrl-C or `kill {}` to unmount)",
        branch,
        repo.display(),
        a.dir.display(),
        std::process::id()
    )?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal handler")?;
    // Until a signal, or until the mount is unmounted from outside (`umount`,
    // `fusermount3 -u`): either way pending writes are committed before exiting.
    let ended = handle.ended();
    let (gone_tx, gone_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("mount-ended".to_owned())
        .spawn(move || {
            ended.wait();
            let _ = gone_tx.send(());
        })
        .context("starting the unmount watcher")?;
    let from_outside = rt.block_on(async {
        tokio::select! {
            () = shutdown_signal() => false,
            _ = gone_rx => true,
        }
    });
    if from_outside {
        outln!(
            "{} was unmounted from outside (committing pending writes)",
            a.dir.display()
        )?;
    } else {
        outln!("unmounting {} (committing pending writes)", a.dir.display())?;
    }
    handle.unmount().context("unmounting")?;
    Ok(())
}
