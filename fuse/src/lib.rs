//! # hero-fuse
//!
//! A FUSE mount of one branch of a hero store repository (built on `fuser`).
//!
//! - Reads come straight from the store, one directory at a time, so a branch of any size
//!   mounts at once. Directories whose entries the kernel has all forgotten are unloaded
//!   again ([`MountHandle::inode_count`]), so memory follows what the kernel caches.
//! - A large file read in order is decoded ahead on worker threads, 4 MiB blocks at a time;
//!   [`MountOptions::read_ahead_kb`] also raises the kernel's read-ahead so it asks in 1 MiB
//!   requests.
//! - A file being written lives in a spill file (in [`MountOptions::spill_dir`]) until it is
//!   committed: on `fsync`, after [`MountOptions::idle_commit`] without changes (or the
//!   shorter [`MountOptions::close_commit`] once a written file is closed), at the latest
//!   [`MountOptions::max_commit_delay`] after the first uncommitted change, and on
//!   [`MountHandle::unmount`]. A journal beside the spill files lets the next mount of the
//!   repository commit what a mount that was killed had not (docs/durability.md). Every commit goes through [`hero_store::ChangeSet`] with
//!   [`hero_store::Expect::Latest`], so commits made elsewhere meanwhile are never lost.
//! - Commits made by other processes (a pull, the daemon, another mount) are heard through
//!   [`hero_store::Repo::subscribe`] and shown in the mount through kernel cache
//!   invalidation, without remounting; an idle mount's watcher sleeps. A file that is open keeps reading the version it opened.
//! - `<mount>/.snapshots/<branch|tag|commit>/...` shows any revision, read-only; it lists
//!   branches, tags and the branch's recent commits by short id, and takes
//!   `[BRANCH]@YYYY-MM-DDTHH:MM` for the branch as it was then. The root does not list
//!   `.snapshots` unless [`MountOptions::show_snapshots`] is on, so tree walkers see the
//!   branch only; it is reachable by name either way.
//! - Unmounted from outside (`umount`, `fusermount3 -u`), the mount commits what is pending
//!   at once and [`MountHandle::ended`] tells its owner, who then calls
//!   [`MountHandle::unmount`].
//! - Holes: `st_blocks` counts data only and `SEEK_DATA`/`SEEK_HOLE` are answered from a stored
//!   file's chunk list (runs of zero chunks) or from the spill file of one being written.
//! - The root's mode, owner and time (`cp -a src/. mnt/`) are kept in the commit's
//!   `hero-root-meta` header.
//! - Paths matched by a default list of editor and database scratch files and by the root
//!   `.heroignore` work in the mount but are never committed (they are gone after unmount).
//! - `.hero/` (the daemon's configuration) is changed only by the account the mount runs as
//!   (EACCES for others, whatever the modes), and by nobody while
//!   [`MountOptions::config_writable`] is off. The spill directory is owner-only (0700
//!   directories, 0600 files) whatever the umask (ADR 0022).
//!
//! ```no_run
//! use hero_fuse::{MountOptions, mount};
//! # fn main() -> Result<(), hero_fuse::MountError> {
//! let handle = mount(MountOptions::new("/data/store.hero", "/mnt/hero"))?;
//! // ... the directory is live until:
//! handle.unmount()?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod durability;
mod fs;
mod guard;
mod readahead;
mod snapshots;
mod spin;
mod state;
mod stats;
mod workers;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

pub use hero_store::Author;
use hero_store::{ObjectId, Repo};

use crate::state::{Cfg, Shared, State};

/// How to mount a repository.
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// The repository file.
    pub repo: PathBuf,
    /// The directory to mount on (must exist).
    pub mountpoint: PathBuf,
    /// The branch shown and written.
    pub branch: String,
    /// Refuse every change (EROFS).
    pub read_only: bool,
    /// Commit after this long without changes.
    pub idle_commit: Duration,
    /// Once a file written through the mount is closed (its last writer gone), commit after
    /// this long without changes instead of `idle_commit`: a file saved alone is committed
    /// (and reaches peers) at once, while a program writing many files in a row keeps changing
    /// within it and gets one commit. `None` (the default): `idle_commit` only.
    pub close_commit: Option<Duration>,
    /// Commit at the latest this long after the first uncommitted change, even while
    /// changes keep coming.
    pub max_commit_delay: Duration,
    /// How often the mount's watcher looks again while it has inodes to let go (commits,
    /// made here or by other processes, wake it at once; at rest it sleeps).
    pub poll_interval: Duration,
    /// Author and committer of the commits the mount makes (its peer, when set, is recorded
    /// in each commit's `hero-peer` header). The mount reads no environment for it.
    pub author: Author,
    /// Where files being written are kept until committed, with the journal of uncommitted
    /// changes. Default: a directory beside the repository file (`<repo>.spill/`), holding
    /// `<branch>/<pid>-<nanos>/` per mount, removed at unmount; the next mount recovers and
    /// removes the directory of a mount that was killed.
    pub spill_dir: Option<PathBuf>,
    /// Kernel read-ahead for the mount, in KiB (written to
    /// `/sys/class/bdi/<dev>/read_ahead_kb` once mounted; needs root, skipped otherwise).
    /// Larger read-ahead means fewer, larger read requests for sequential reads. `None`
    /// keeps the kernel's default (128 KiB).
    pub read_ahead_kb: Option<u32>,
    /// Let other users (services under their own accounts) use the mount. The kernel then
    /// checks every access against the stored modes and owners (`default_permissions`).
    /// A user other than root needs `user_allow_other` in `/etc/fuse.conf`.
    pub allow_other: bool,
    /// Show every entry as owned by the mounting user (the stored owners are kept, not shown):
    /// for a single-user drive whose files were committed by other accounts.
    pub single_user: bool,
    /// Inodes kept in memory before the mount asks the kernel to forget the directories used
    /// longest ago ([`DEFAULT_MAX_INODES`]): the mount's memory stays bounded whatever a walk
    /// reads. A directory in use stays loaded whole, so one larger than this goes over it.
    pub max_inodes: usize,
    /// Whether `.hero/` (the daemon's configuration) may be changed through the mount; read
    /// at every change, so the caller may switch it while mounted (a daemon that is no owner
    /// of the membership turns it off). Even when on, only the account the mount runs as may
    /// change it: other accounts get EACCES (ADR 0022). Default: on.
    pub config_writable: Arc<AtomicBool>,
    /// List `.snapshots` in the root. Off by default: tree walkers (`find`, `du`, `rsync -a`,
    /// backup tools) then see only the branch, not every version of it; `.snapshots/<rev>/`
    /// is reachable by name either way (like ZFS's `snapdir=hidden`).
    pub show_snapshots: bool,
    /// While requests come less than this apart, the request thread polls for the next one
    /// instead of sleeping (one CPU busy during a burst of requests and this long after it),
    /// which saves a wake-up per request. Zero: it always sleeps. Default: 200 µs.
    pub spin: Duration,
}

/// The default of [`MountOptions::spin`].
pub const DEFAULT_SPIN: Duration = Duration::from_micros(200);

/// The default of [`MountOptions::max_inodes`]: about 40 MiB of inodes.
pub const DEFAULT_MAX_INODES: usize = 65_536;

impl MountOptions {
    /// Options with defaults: branch `main`, read-write, 1 s idle commit, 5 s maximum commit
    /// delay, 200 ms polling.
    pub fn new(repo: impl Into<PathBuf>, mountpoint: impl Into<PathBuf>) -> Self {
        MountOptions {
            repo: repo.into(),
            mountpoint: mountpoint.into(),
            branch: "main".to_owned(),
            read_only: false,
            idle_commit: Duration::from_secs(1),
            close_commit: None,
            max_commit_delay: Duration::from_secs(5),
            poll_interval: Duration::from_millis(200),
            author: Author::new("hero", "hero@localhost"),
            spill_dir: None,
            read_ahead_kb: Some(1024),
            allow_other: false,
            single_user: false,
            max_inodes: DEFAULT_MAX_INODES,
            config_writable: Arc::new(AtomicBool::new(true)),
            show_snapshots: false,
            spin: DEFAULT_SPIN,
        }
    }
}

/// Whether this process may mount with `allow_other`: root always; others when
/// `/etc/fuse.conf` has a `user_allow_other` line (what fusermount3 checks).
fn allow_other_permitted() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    std::fs::read_to_string("/etc/fuse.conf").is_ok_and(|conf| {
        conf.lines()
            .any(|l| l.split('#').next().unwrap_or("").trim() == "user_allow_other")
    })
}

/// What can go wrong mounting or unmounting.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The repository could not be opened or read.
    #[error(transparent)]
    Store(#[from] hero_store::Error),
    /// The mount point is a dead mount left by a process that ended.
    #[error("{hint}")]
    StaleMount {
        /// The mount point.
        mountpoint: PathBuf,
        /// What to do about it.
        hint: String,
    },
    /// The mount point is missing or not a directory.
    #[error("{}: not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// `allow_other` asked by a user other than root, and `/etc/fuse.conf` does not permit it.
    #[error(
        "--allow-other needs `user_allow_other` in /etc/fuse.conf (a line of its own; only root \
         may add it) when the mount is not made by root"
    )]
    AllowOtherNotPermitted,
    /// Local file system trouble (the spill directory, the mount point).
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The kernel refused the mount.
    #[error("mounting {}: {source}", path.display())]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Unmounting failed (for instance because the mount was busy); the mount was detached
    /// lazily and goes away once no process uses it.
    #[error("unmounting {}: {source}", path.display())]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The final commit of pending writes failed; the files are kept in the spill directory.
    #[error("committing pending writes: {0}")]
    Flush(hero_store::Error),
    /// The spill directory could not be made, or a killed mount's changes not recovered.
    #[error(transparent)]
    Durability(#[from] durability::DurabilityError),
}

pub use durability::DurabilityError;
pub use stats::RequestCount;

/// Tells when a mount's session has ended: unmounted by [`MountHandle::unmount`], or from
/// outside (`umount`, `fusermount3 -u`), after which the kernel sends it nothing more.
/// Cloned from [`MountHandle::ended`]; a process serving a mount waits on it to exit (after
/// [`MountHandle::unmount`], which commits what is pending) when its mount goes away.
#[derive(Debug, Clone, Default)]
pub struct Ended(Arc<(Mutex<bool>, std::sync::Condvar)>);

impl Ended {
    fn flag(&self) -> std::sync::MutexGuard<'_, bool> {
        self.0.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the session ended and wakes the waiters.
    pub(crate) fn set(&self) {
        *self.flag() = true;
        self.0.1.notify_all();
    }

    /// Whether the session has ended.
    pub fn is_ended(&self) -> bool {
        *self.flag()
    }

    /// Waits until the session ends.
    pub fn wait(&self) {
        let mut ended = self.flag();
        while !*ended {
            ended = self.0.1.wait(ended).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Waits until the session ends or `timeout` passes; returns whether it ended.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let ended = self.flag();
        let (ended, _) = self
            .0
            .1
            .wait_timeout_while(ended, timeout, |e| !*e)
            .unwrap_or_else(|p| p.into_inner());
        *ended
    }
}

/// A live mount. Dropping it unmounts too (errors are logged); prefer [`MountHandle::unmount`].
pub struct MountHandle {
    shared: Arc<Shared>,
    session: Option<fuser::BackgroundSession>,
    worker: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    spill_owned: Option<PathBuf>,
}

impl std::fmt::Debug for MountHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MountHandle")
            .field("mountpoint", &self.shared.cfg.mountpoint)
            .finish()
    }
}

/// Says how to clear `mountpoint` if it is a stale FUSE mount (its `stat` fails with
/// ENOTCONN, which is what a mount whose process died looks like).
pub fn stale_mount_hint(mountpoint: &Path) -> Option<String> {
    match std::fs::metadata(mountpoint) {
        Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ENOTCONN as i32) => Some(format!(
            "{dir} is a stale mount left by a process that ended; clear it with: fusermount3 -u {dir}",
            dir = mountpoint.display()
        )),
        _ => None,
    }
}

/// Sets the kernel read-ahead of the mount at `dir` (an absolute path without symlinks;
/// best effort: needs root). The device number comes from `/proc/self/mountinfo`, not from a
/// `stat` of the mount, which would put the root's attributes in the kernel's cache.
fn set_read_ahead(dir: &Path, kb: u32) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(info) = std::fs::read("/proc/self/mountinfo") else {
        return;
    };
    let want = dir.as_os_str().as_bytes();
    // The newest mount on `dir` is listed last. Spaces and the like are octal-escaped.
    let dev = info
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let mut f = line.split(|&b| b == b' ');
            let dev = f.nth(2)?;
            let point = f.nth(1)?;
            (unescape_mountinfo(point) == want).then_some(dev)
        })
        .next_back();
    let Some(dev) = dev.and_then(|d| std::str::from_utf8(d).ok()) else {
        tracing::debug!(dir = %dir.display(), "mount not found in mountinfo");
        return;
    };
    let path = format!("/sys/class/bdi/{dev}/read_ahead_kb");
    match std::fs::write(&path, format!("{kb}\n")) {
        Ok(()) => tracing::debug!(path, kb, "read-ahead set"),
        Err(e) => tracing::debug!(path, error = %e, "read-ahead not set"),
    }
}

/// Undoes the `\ooo` escapes of `/proc/self/mountinfo`.
fn unescape_mountinfo(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\'
            && let Some(oct) = s.get(i + 1..i + 4)
            && let Ok(t) = std::str::from_utf8(oct)
            && let Ok(v) = u8::from_str_radix(t, 8)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// Opens the repository at [`MountOptions::repo`] with the resident memory budget
/// ([`hero_store::MemoryBudget::RESIDENT`]) and mounts its branch in the background; returns
/// once the mount is live.
pub fn mount(opts: MountOptions) -> Result<MountHandle, MountError> {
    let repo = Arc::new(Repo::open_with_budget(
        &opts.repo,
        hero_store::MemoryBudget::RESIDENT,
    )?);
    mount_repo(repo, opts)
}

/// Mounts a branch of an open repository, shared with the caller (a daemon that also syncs
/// and serves it); [`MountOptions::repo`] only names it in logs and places the spill
/// directory. Returns once the mount is live.
pub fn mount_repo(repo: Arc<Repo>, opts: MountOptions) -> Result<MountHandle, MountError> {
    // hero's own branches (the membership) are mounted read-only or not at all.
    if !opts.read_only && hero_store::is_reserved_branch(&opts.branch) {
        return Err(MountError::Store(hero_store::Error::ReservedBranch(
            opts.branch.clone(),
        )));
    }
    if let Some(hint) = stale_mount_hint(&opts.mountpoint) {
        return Err(MountError::StaleMount {
            mountpoint: opts.mountpoint.clone(),
            hint,
        });
    }
    let meta = std::fs::metadata(&opts.mountpoint).map_err(|source| MountError::Io {
        path: opts.mountpoint.clone(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(MountError::NotADirectory(opts.mountpoint.clone()));
    }
    if opts.allow_other && !allow_other_permitted() {
        return Err(MountError::AllowOtherNotPermitted);
    }
    // Resolved before mounting (resolving it afterwards would go through the mount).
    let real_mountpoint = std::fs::canonicalize(&opts.mountpoint).ok();
    hero_store::branch_ref(&opts.branch)?;
    if !opts.read_only && !repo.has_object(&state::empty_file_id())? {
        // New files start as the empty content, referenced by id until written to.
        repo.write_file(&[][..], None)?;
    }
    let spill_root = match &opts.spill_dir {
        Some(d) => d.clone(),
        None => {
            let root = durability::default_root(&opts.repo);
            // Owner-only (ADR 0022); one left wider by an older version is tightened. A
            // directory the caller named is theirs to set.
            hero_store::private::tighten_logged(&root, "the spill directory");
            root
        }
    };
    if !opts.read_only {
        // What mounts that were killed had not committed, before this one reads its branch.
        let sig = opts.author.signature();
        // A failure keeps the dead mount's directory for the next mount to try again; this
        // one still mounts (its own pending data lives in a directory of its own).
        match durability::recover_all(&repo, &spill_root, &sig) {
            Ok(done) => {
                for (branch, head) in &done.commits {
                    tracing::warn!(%branch, head = %head.short(), "committed the changes of a mount that was killed");
                }
            }
            Err(e) => tracing::error!(error = %e, "recovering a killed mount's changes failed"),
        }
    }
    let head = repo.branch_head(&opts.branch)?;
    let generation = repo.generation()?;
    let (head_time, root_meta) = match head {
        Some(h) => {
            let c = repo.commit(&h)?;
            let time = u64::try_from(c.committer.time)
                .ok()
                .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s));
            (time, c.root_meta())
        }
        None => (None, hero_store::EntryMeta::NONE),
    };

    let (spill_dir, spill_owned, journal) = if opts.read_only {
        (PathBuf::new(), None, None)
    } else {
        let area = durability::create_area(&spill_root, &opts.branch)?;
        (area.dir.clone(), Some(area.dir), Some(area.journal))
    };

    use std::os::unix::fs::MetadataExt;
    let cfg = Cfg {
        mountpoint: opts.mountpoint.clone(),
        branch: opts.branch.clone(),
        read_only: opts.read_only,
        idle_commit: opts.idle_commit,
        close_commit: opts.close_commit,
        max_commit_delay: opts.max_commit_delay,
        author: opts.author.clone(),
        spill_dir,
        uid: meta.uid(),
        gid: meta.gid(),
        single_user: opts.single_user,
        kernel_checks: opts.allow_other,
        max_inodes: opts.max_inodes.max(1),
        process_uid: nix::unistd::geteuid().as_raw(),
        config_writable: opts.config_writable.clone(),
    };
    let mut state = State::new(head, generation, head_time.unwrap_or_else(SystemTime::now));
    state.set_root_meta(root_meta);
    if let Some(j) = journal {
        state.pending.set_journal(j);
    }
    state.branch = opts.branch.clone();
    state.show_snapshots = opts.show_snapshots;
    state.max_inodes = opts.max_inodes.max(1);
    state.close_commit = opts.close_commit.is_some();
    let bell = state.bell.clone();
    let shared = Arc::new(Shared {
        state: Mutex::new(state),
        repo,
        cfg,
        keep_spill: Arc::new(AtomicBool::new(false)),
        spill_pool: Arc::new(durability::SpillPool::default()),
        group: durability::GroupCommit::default(),
        stats: stats::RequestStats::default(),
        pool: readahead::Pool::new(),
        commit_lock: Mutex::new(()),
        ended: Ended::default(),
        bell,
    });

    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::FSName(format!("hero:{}", opts.repo.display())),
        fuser::MountOption::Subtype("hero".to_owned()),
        // No `DefaultPermissions`: permissions are checked by the file system (see
        // `HeroFs::access`), which saves a GETATTR of the directory per created file.
        fuser::MountOption::NoAtime,
        if opts.read_only {
            fuser::MountOption::RO
        } else {
            fuser::MountOption::RW
        },
    ];
    if opts.allow_other {
        // Other users reach the mount, so the kernel checks their permissions on the stored
        // modes and owners (ADR 0016); without other users the file system answers `access`
        // itself, one GETATTR fewer per created file (ADR 0008).
        config.acl = fuser::SessionACL::All;
        config
            .mount_options
            .push(fuser::MountOption::DefaultPermissions);
    }
    // One thread reads the kernel's requests and answers those that do not wait; reads and
    // what waits on commits go to the workers (see `workers`).
    config.n_threads = Some(1);
    let spin = Arc::new(std::sync::OnceLock::new());
    let fs = fs::HeroFs {
        shared: shared.clone(),
        spin: spin.clone(),
        reads: workers::Workers::new("hero-fuse-read", workers::WORKERS),
        waits: workers::Workers::new("hero-fuse-wait", workers::WORKERS),
    };
    let cleanup_spill = |e| {
        if let Some(d) = &spill_owned {
            durability::remove_area(d);
        }
        e
    };
    let session = fuser::Session::new(fs, &opts.mountpoint, &config)
        .map_err(|source| MountError::Mount {
            path: opts.mountpoint.clone(),
            source,
        })
        .map_err(cleanup_spill)?;
    let notifier = session.notifier();
    if !opts.spin.is_zero() {
        use std::os::fd::AsFd;
        match session.as_fd().try_clone_to_owned() {
            Ok(fd) => {
                if let Some(s) = spin::Spin::start(fd, opts.spin) {
                    let _ = spin.set(s);
                }
            }
            Err(e) => tracing::warn!(error = %e, "duplicating the FUSE device; no polling"),
        }
    }
    let session = session
        .spawn()
        .map_err(|source| MountError::Mount {
            path: opts.mountpoint.clone(),
            source,
        })
        .map_err(cleanup_spill)?;

    if let Some(kb) = opts.read_ahead_kb
        && let Some(dir) = &real_mountpoint
    {
        set_read_ahead(dir, kb);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let shared = shared.clone();
        let stop = stop.clone();
        let busy = opts.poll_interval.max(Duration::from_millis(10));
        // Commits of this process and of others ring the bell; so do the file system's
        // changes and the end of the session. Between rings the watcher sleeps until its
        // next deadline.
        let changes = {
            let bell = shared.bell.clone();
            shared.repo.subscribe(move || bell.ring())
        };
        std::thread::Builder::new()
            .name("hero-fuse-watch".to_owned())
            .spawn(move || {
                let mut seen = shared.bell.count();
                while !stop.load(Ordering::Relaxed) {
                    let wait = shared.next_wait(busy, changes.fallback());
                    seen = shared.bell.wait(seen, wait);
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if shared.ended.is_ended() {
                        // Unmounted from outside: commit what is pending now, whether or not
                        // the owner of the handle notices.
                        if let Err(e) = shared.flush() {
                            tracing::error!(error = %e, "committing after the mount went away");
                        }
                        break;
                    }
                    let invals = shared.tick();
                    fs::send_invalidations(&notifier, invals);
                }
            })
            .map_err(|source| MountError::Io {
                path: opts.mountpoint.clone(),
                source,
            })?
    };
    tracing::info!(
        mountpoint = %opts.mountpoint.display(),
        repo = %opts.repo.display(),
        branch = %opts.branch,
        "mounted"
    );
    Ok(MountHandle {
        shared,
        session: Some(session),
        worker: Some(worker),
        stop,
        spill_owned,
    })
}

impl MountHandle {
    /// The mount point.
    pub fn mountpoint(&self) -> &Path {
        &self.shared.cfg.mountpoint
    }

    /// How many inodes the mount holds in memory (inodes the kernel forgot are dropped on
    /// the next poll, so this follows what the kernel caches rather than the branch size).
    pub fn inode_count(&self) -> usize {
        self.shared.lock().inode_count()
    }

    /// The kernel's requests so far, by kind, with the time the thread reading them spent
    /// on each kind (the kinds received at least once).
    pub fn request_stats(&self) -> Vec<RequestCount> {
        self.shared.stats.snapshot()
    }

    /// Tells when the session ends, in particular when the mount is unmounted from outside
    /// (`umount`, `fusermount3 -u`); the caller then calls [`MountHandle::unmount`], which
    /// commits what is pending and releases the spill directory.
    pub fn ended(&self) -> Ended {
        self.shared.ended.clone()
    }

    /// Commits pending writes now; returns the new branch head if a commit was made.
    pub fn flush(&self) -> Result<Option<ObjectId>, MountError> {
        self.shared.flush().map_err(MountError::Flush)
    }

    /// Commits pending writes, then unmounts.
    pub fn unmount(mut self) -> Result<(), MountError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), MountError> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.worker.take() {
            self.shared.bell.ring();
            let _ = w.join();
        }
        let first = self.shared.flush();
        let path = self.shared.cfg.mountpoint.clone();
        let unmounted = if self.shared.ended.is_ended() {
            // Unmounted from outside: the session's threads have ended (`destroy` runs last).
            // fuser would unmount the mount point again when the session is dropped (its
            // check for a live mount answers yes after a disconnect), and by then another
            // mount may sit there: the session is forgotten instead, which keeps one closed
            // connection's descriptor.
            std::mem::forget(session);
            Ok(())
        } else {
            session.umount_and_join()
        };
        self.shared.pool.close();
        if let Err(source) = unmounted {
            tracing::warn!(mountpoint = %path.display(), error = %source, "unmount failed; detaching lazily");
            let _ = std::process::Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(&path)
                .status();
            return Err(MountError::Unmount { path, source });
        }
        // Anything written between the first flush and the unmount.
        let last = self.shared.flush();
        if let Some(e) = first.err().or(last.err()) {
            // Leave the written files where they are rather than lose them.
            self.shared.keep_spill.store(true, Ordering::Relaxed);
            if let Some(d) = self.spill_owned.take() {
                tracing::error!(spill = %d.display(), "pending writes kept in the spill directory");
            }
            return Err(MountError::Flush(e));
        }
        if let Some(d) = self.spill_owned.take() {
            // Also its branch directory and the root when empty (other mounts of the same
            // repository may use them).
            durability::remove_area(&d);
        }
        tracing::info!(mountpoint = %path.display(), "unmounted");
        Ok(())
    }
}

impl Drop for MountHandle {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "unmount on drop failed");
        }
    }
}
