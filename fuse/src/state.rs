//! The mounted tree: inodes over the branch head, local changes, commits and refreshes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use fuser::{Errno, FileAttr, FileType, INodeNo};

use crate::readahead::{Pool, StoredSource};

mod commit;
mod lifetime;
mod links;

use commit::write_items;
#[path = "scratch.rs"]
mod scratch;
use hero_store::{
    Author, EntryKind, EntryMeta, Expect, MODE_BITS, ObjectId, Owner, Repo, RepoPath, Timestamp,
    TreeEntry,
};

/// The root directory.
pub(crate) const ROOT: u64 = 1;
/// The `.snapshots` directory.
pub(crate) const SNAP: u64 = 2;
/// Its name in the root.
pub(crate) const SNAP_NAME: &[u8] = b".snapshots";
/// Longest name, like most Linux file systems.
pub(crate) const MAX_NAME: usize = 255;
/// Largest file the mount accepts (256 TiB; the spill directory's file system may allow less,
/// ext4 stops just short of 16 TiB, tmpfs and XFS go further).
pub(crate) const MAX_FILE_SIZE: u64 = 1 << 48;

/// Settings fixed at mount time.
#[derive(Debug)]
pub(crate) struct Cfg {
    pub mountpoint: PathBuf,
    pub branch: String,
    pub read_only: bool,
    pub idle_commit: Duration,
    /// After a file written through the mount is closed, commit after this long without
    /// changes instead of `idle_commit` ([`crate::MountOptions::close_commit`]).
    pub close_commit: Option<Duration>,
    /// Commit pending changes at the latest this long after the first of them.
    pub max_commit_delay: Duration,
    pub author: Author,
    pub spill_dir: PathBuf,
    /// The mounting user: owner of entries that record none (and of all, with `single_user`).
    pub uid: u32,
    pub gid: u32,
    /// Show every entry as owned by the mounting user (stored owners are kept, not shown).
    pub single_user: bool,
    /// The kernel checks permissions (`default_permissions`, with `allow_other`): the file
    /// system then leaves them to it.
    pub kernel_checks: bool,
    /// Inodes the mount keeps before it asks the kernel to forget directories (see
    /// [`State::trim`]).
    pub max_inodes: usize,
    /// The account the mount runs as: the only one that may change `.hero/` ([`crate::guard`]).
    pub process_uid: u32,
    /// Whether `.hero/` may be changed at all ([`crate::MountOptions::config_writable`]).
    pub config_writable: Arc<AtomicBool>,
}

/// Everything the file system and the watcher share.
pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub repo: Arc<Repo>,
    pub cfg: Cfg,
    /// Keep spill files (the final commit failed).
    pub keep_spill: Arc<AtomicBool>,
    /// Spill files free for reuse (see `durability::SpillPool`).
    pub spill_pool: Arc<crate::durability::SpillPool>,
    /// Group commits of concurrent `fsync`s.
    pub group: crate::durability::GroupCommit,
    /// Read-ahead workers.
    pub pool: Pool,
    /// Held for a whole commit (and a refresh from the branch): one commit at a time, while
    /// the state lock is taken only to snapshot what to commit and to apply the result.
    /// Taken before the state lock, never while holding it.
    pub commit_lock: Mutex<()>,
    /// Set when the kernel session ends (see [`crate::Ended`]).
    pub ended: crate::Ended,
    /// Wakes the watcher thread.
    pub bell: Arc<Bell>,
    /// The requests answered, by kind (see `stats`).
    pub stats: crate::stats::RequestStats,
}

/// Wakes the mount's watcher: a first change to commit, a file written and closed, the
/// repository changed, inodes to let go, the session ended, unmounting. The watcher otherwise
/// sleeps until its next deadline (a commit due) or a long fallback, so an idle mount costs no
/// CPU.
#[derive(Debug, Default)]
pub(crate) struct Bell {
    rung: Mutex<u64>,
    cv: Condvar,
}

impl Bell {
    fn count_guard(&self) -> MutexGuard<'_, u64> {
        self.rung.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the watcher (also when it is not waiting yet: its next wait returns at once).
    pub fn ring(&self) {
        let mut n = self.count_guard();
        *n = n.wrapping_add(1);
        self.cv.notify_all();
    }

    /// How often it was rung.
    pub fn count(&self) -> u64 {
        *self.count_guard()
    }

    /// Waits until it is rung after `seen` was read, or `timeout` passes; returns the count.
    pub fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        let n = self.count_guard();
        let (n, _) = self
            .cv
            .wait_timeout_while(n, timeout, |n| *n == seen)
            .unwrap_or_else(|p| p.into_inner());
        *n
    }
}

/// A cache invalidation to send to the kernel (outside the state lock).
#[derive(Debug)]
pub(crate) enum Inval {
    Entry(u64, Vec<u8>),
    Inode(u64),
}

/// A file being written: a temporary file, removed when the last user lets go.
#[derive(Debug)]
pub(crate) struct Spill {
    pub file: File,
    path: PathBuf,
    /// Set when the final commit failed: the file is then left for the user.
    keep: Arc<AtomicBool>,
    /// Where the file goes when no longer used.
    pool: Arc<crate::durability::SpillPool>,
    /// Commits reading the file (a failed commit's puts come back, so one commit may take a
    /// file twice): writes to it wait (see [`Shared::lock_writable`]).
    busy: Mutex<u32>,
    idle: Condvar,
}

impl Spill {
    fn new(file: File, path: PathBuf, shared: &Shared) -> Spill {
        Spill {
            file,
            path,
            keep: shared.keep_spill.clone(),
            pool: shared.spill_pool.clone(),
            busy: Mutex::new(0),
            idle: Condvar::new(),
        }
    }

    fn busy_flag(&self) -> MutexGuard<'_, u32> {
        match self.busy.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn is_busy(&self) -> bool {
        *self.busy_flag() != 0
    }

    /// Waits until no commit reads the file.
    fn wait_idle(&self) {
        let mut busy = self.busy_flag();
        while *busy != 0 {
            busy = match self.idle.wait(busy) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
        }
    }

    /// Its number in the spill directory (the file name).
    pub(crate) fn number(&self) -> Option<u64> {
        self.path.file_name()?.to_str()?.parse().ok()
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        if !self.keep.load(Ordering::Relaxed) && !self.pool.put(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Copies stored content into an empty spill file: its data runs only, its holes left holes
/// (a file with a hole of terabytes costs what its data costs). Returns the size.
fn copy_data(repo: &Repo, id: &ObjectId, spill: &Spill) -> R<u64> {
    repo.view()
        .and_then(|v| v.write_sparse(id, &spill.file, &spill.path))
        .map_err(|e| store_errno(&e))
}

/// The time of a spill file's last change (what recovery records for it), else now.
fn spill_time(spill: &Spill) -> SystemTime {
    spill
        .file
        .metadata()
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| SystemTime::now())
}

/// The id of empty file content.
pub(crate) fn empty_file_id() -> ObjectId {
    ObjectId::of(b"")
}

#[derive(Debug)]
pub(crate) enum Content {
    Stored {
        id: ObjectId,
        size: u64,
    },
    Spill {
        spill: Arc<Spill>,
        size: u64,
        /// The stored content this spill equals, when it does (after a commit or a copy).
        committed: Option<ObjectId>,
    },
}

#[derive(Debug)]
pub(crate) enum Kind {
    Dir {
        /// The tree the children were (or will be) loaded from; `None` once changed locally.
        tree: Option<ObjectId>,
        children: Option<BTreeMap<Vec<u8>, u64>>,
    },
    File {
        content: Content,
        exec: bool,
    },
    Symlink {
        id: ObjectId,
        size: u64,
        target: Option<Vec<u8>>,
    },
    Gitlink {
        id: ObjectId,
        size: u64,
    },
    /// A FIFO, socket or device node (its device number is in the node's metadata). The
    /// kernel opens these itself; the mount only keeps the name, kind and metadata.
    Special {
        kind: EntryKind,
    },
    SnapRoot,
}

#[derive(Debug)]
pub(crate) struct Node {
    /// 0 once unlinked.
    pub parent: u64,
    pub name: Vec<u8>,
    /// Its other names (directory, name) when it is hard-linked (see `links`).
    pub names: Vec<(u64, Vec<u8>)>,
    pub kind: Kind,
    /// Mode and owner as stored or set here (the time is `mtime`); recorded with the entry
    /// when it is next committed.
    pub meta: EntryMeta,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
    pub lookups: u64,
    pub open: u32,
    /// Handles open for writing (a subset of `open`).
    pub writers: u32,
    /// Part of a snapshot: never written.
    pub ro: bool,
    /// Changed by another process while open: new opens must drop the page cache.
    pub stale_cache: bool,
    /// For a directory: when its children were last looked up or listed ([`State::trim`]
    /// asks the kernel to forget the directories used longest ago).
    pub used: u64,
    /// For a directory: the kernel was told that a name is not in it (a negative entry,
    /// cached like the others); see [`State::negative_entry`].
    pub negatives: bool,
}

impl Node {
    fn from_entry(parent: u64, e: TreeEntry, ro: bool, time: SystemTime) -> Node {
        let kind = match e.kind {
            EntryKind::File | EntryKind::Executable => Kind::File {
                content: Content::Stored {
                    id: e.id,
                    size: e.size,
                },
                exec: e.kind == EntryKind::Executable,
            },
            EntryKind::Symlink => Kind::Symlink {
                id: e.id,
                size: e.size,
                target: None,
            },
            EntryKind::Dir => Kind::Dir {
                tree: Some(e.id),
                children: None,
            },
            EntryKind::Gitlink => Kind::Gitlink {
                id: e.id,
                size: e.size,
            },
            EntryKind::Fifo
            | EntryKind::Socket
            | EntryKind::CharDevice
            | EntryKind::BlockDevice => Kind::Special { kind: e.kind },
        };
        let mut n = Node::new(parent, e.name, kind, ro, time);
        n.meta = e.meta;
        if let Some(t) = e.meta.mtime {
            n.mtime = t.to_system_time();
        }
        n
    }

    fn new(parent: u64, name: Vec<u8>, kind: Kind, ro: bool, time: SystemTime) -> Node {
        Node {
            parent,
            name,
            names: Vec::new(),
            kind,
            meta: EntryMeta::NONE,
            mtime: time,
            ctime: time,
            lookups: 0,
            open: 0,
            writers: 0,
            ro,
            stale_cache: false,
            used: 0,
            negatives: false,
        }
    }

    fn size(&self) -> u64 {
        match &self.kind {
            Kind::File { content, .. } => match content {
                Content::Stored { size, .. } | Content::Spill { size, .. } => *size,
            },
            Kind::Symlink { size, .. } => *size,
            Kind::Special { .. } => 0,
            Kind::Dir { .. } | Kind::Gitlink { .. } | Kind::SnapRoot => 4096,
        }
    }

    pub fn file_type(&self) -> FileType {
        match self.kind {
            Kind::File { .. } => FileType::RegularFile,
            Kind::Symlink { .. } => FileType::Symlink,
            Kind::Special { kind } => match kind {
                EntryKind::Socket => FileType::Socket,
                EntryKind::CharDevice => FileType::CharDevice,
                EntryKind::BlockDevice => FileType::BlockDevice,
                _ => FileType::NamedPipe,
            },
            Kind::Dir { .. } | Kind::Gitlink { .. } | Kind::SnapRoot => FileType::Directory,
        }
    }

    pub(crate) fn is_dir(&self) -> bool {
        self.file_type() == FileType::Directory
    }

    /// The entry kind this node is stored as.
    fn entry_kind(&self) -> EntryKind {
        match self.kind {
            Kind::File { exec: true, .. } => EntryKind::Executable,
            Kind::File { .. } => EntryKind::File,
            Kind::Symlink { .. } => EntryKind::Symlink,
            Kind::Gitlink { .. } => EntryKind::Gitlink,
            Kind::Special { kind } => kind,
            Kind::Dir { .. } | Kind::SnapRoot => EntryKind::Dir,
        }
    }

    /// The metadata committed for this node: its mode and owner, and its time.
    pub fn stored_meta(&self) -> EntryMeta {
        EntryMeta {
            mtime: Some(Timestamp::from_system_time(self.mtime)),
            ..self.meta
        }
        .fitted_to(self.entry_kind())
    }

    /// The owner shown: the stored one, else the mounting user's.
    pub fn owner(&self, cfg: &Cfg) -> Owner {
        match self.meta.owner {
            Some(o) if !cfg.single_user => o,
            _ => Owner {
                uid: cfg.uid,
                gid: cfg.gid,
            },
        }
    }
}

/// One local change, replayed into a change set at commit time.
#[derive(Debug, Clone)]
enum Op {
    /// The current content of an inode, at the path it had when first changed.
    Put {
        path: RepoPath,
        ino: u64,
    },
    Delete(RepoPath),
    Rename(RepoPath, RepoPath),
    Mkdir(RepoPath),
}

/// Where an open file reads from.
pub(crate) enum Source {
    Reader(Box<StoredSource>),
    Spill(Arc<Spill>),
    /// Empty content with no scratch file yet (a new or truncated file not written to).
    Empty,
}

/// An open file.
pub(crate) struct Handle {
    pub ino: u64,
    pub append: bool,
    /// Opened for writing.
    pub write: bool,
    pub source: Mutex<Source>,
}

/// An entry of a directory listing taken at opendir.
#[derive(Debug, Clone)]
pub(crate) struct DirItem {
    pub name: Vec<u8>,
    pub ino: u64,
    pub kind: FileType,
}

pub(crate) type R<T> = Result<T, Errno>;

/// The mutable state, behind one lock.
pub(crate) struct State {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    pub handles: HashMap<u64, Arc<Handle>>,
    /// Open directories: handle -> (inode, listing taken at opendir).
    dir_handles: HashMap<u64, (u64, Arc<Vec<DirItem>>)>,
    /// Directories whose children may all be unused now (see [`State::sweep`]).
    sweep_dirs: HashSet<u64>,
    next_fh: u64,
    ops: Vec<Op>,
    put_pending: HashSet<u64>,
    /// Inodes whose put the commit under way is writing (their put was taken from
    /// `put_pending`).
    committing: HashSet<u64>,
    last_change: Option<Instant>,
    /// A file written through the mount was closed since the last commit: the commit is due
    /// [`Cfg::close_commit`] after the last change.
    closed_written: bool,
    /// [`Cfg::close_commit`] is set.
    pub(crate) close_commit: bool,
    /// Rung on a first change to commit and when there are inodes to let go.
    pub(crate) bell: Arc<Bell>,
    /// [`Cfg::max_inodes`]: more inodes than this wake the watcher to trim.
    pub(crate) max_inodes: usize,
    base: Option<ObjectId>,
    seen_gen: u64,
    snap_cache: HashMap<Vec<u8>, u64>,
    inval: Vec<Inval>,
    next_spill: u64,
    default_time: SystemTime,
    /// The journal of uncommitted changes and the age of the oldest (see `durability`).
    pub(crate) pending: crate::durability::Pending,
    /// Subdirectory counts of stored trees, for link counts (see `snapshots`).
    pub(crate) links: HashMap<ObjectId, u32>,
    /// Bytes of data (holes left out) of stored chunked files, for `st_blocks`.
    pub(crate) data_len: HashMap<ObjectId, u64>,
    /// The mounted branch (for `.snapshots/@DATE` and the recent commits listed there).
    pub(crate) branch: String,
    /// Whether the root lists `.snapshots` ([`crate::MountOptions::show_snapshots`]); it is
    /// reachable by name either way.
    pub(crate) show_snapshots: bool,
    /// Ignored paths kept local (see `scratch`).
    scratch: scratch::Scratch,
    /// Counts directory uses (lookups and listings in it), for [`Node::used`].
    clock: u64,
    /// The node of each hard-link group the mount has made one for.
    groups: HashMap<hero_store::LinkGroup, u64>,
    /// The link groups of the base commit's tree, by base commit (see `links`).
    link_index: Option<(ObjectId, links::LinkIndex)>,
}

/// Maps a store error to an errno (and logs the unexpected ones).
pub(crate) fn store_errno(e: &hero_store::Error) -> Errno {
    use hero_store::Error as E;
    match e {
        E::NoSuchPath(_) | E::UnknownRevision(_) | E::AmbiguousRevision(_) => Errno::ENOENT,
        E::NotADirectory(_) => Errno::ENOTDIR,
        E::IsADirectory(_) => Errno::EISDIR,
        E::PathExists(_) => Errno::EEXIST,
        E::NotEmpty(_) => Errno::ENOTEMPTY,
        E::InvalidOperation(..) | E::Name(_) | E::RefName { .. } => Errno::EINVAL,
        E::FileTooLarge => Errno::EFBIG,
        E::Io { source, .. } | E::Input(source) => io_errno(source),
        other if other.is_disk_full() => Errno::ENOSPC,
        other => {
            tracing::error!(error = %other, "store error");
            Errno::EIO
        }
    }
}

pub(crate) fn io_errno(e: &io::Error) -> Errno {
    match e.raw_os_error() {
        Some(n) => Errno::from_i32(n),
        None => Errno::EIO,
    }
}

/// Checks a name given by the kernel for a new entry: EINVAL for a name the store cannot hold
/// and for `.git` and its aliases ([`hero_store::is_git_unsafe`]), which no tree the mount
/// writes may hold (a checkout elsewhere would make it a git repository's own directory).
pub(crate) fn check_name(name: &[u8]) -> R<()> {
    if name.len() > MAX_NAME {
        return Err(Errno::ENAMETOOLONG);
    }
    hero_store::check_git_safe(name).map_err(|_| Errno::EINVAL)
}

/// Reads a spill file from the start, up to `len` bytes.
struct SpillReader<'a> {
    file: &'a File,
    pos: u64,
    len: u64,
}

impl Read for SpillReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        if left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// The state, locked. The journal records made under the lock are written when it is
/// released, in one `write(2)` (a create journals the file and its directory's new time):
/// handlers release the lock before they answer the kernel, so what the kernel is told is
/// done is journaled.
pub(crate) struct StateGuard<'a>(MutexGuard<'a, State>);

impl std::ops::Deref for StateGuard<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.0
    }
}

impl std::ops::DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.0
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        self.0.pending.flush_journal();
    }
}

impl Shared {
    pub fn lock(&self) -> StateGuard<'_> {
        StateGuard(match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        })
    }

    /// Locks the state once no commit is reading `ino`'s spill file: a change to the file's
    /// content waits (without the lock) until the commit has read it.
    pub fn lock_writable(&self, ino: u64) -> StateGuard<'_> {
        loop {
            let st = self.lock();
            let busy = match st.nodes.get(&ino).map(|n| &n.kind) {
                Some(Kind::File {
                    content: Content::Spill { spill, .. },
                    ..
                }) if spill.is_busy() => spill.clone(),
                _ => return st,
            };
            drop(st);
            busy.wait_idle();
        }
    }

    /// The state, locked, unless a commit is reading `ino`'s spill file (then a change to its
    /// content would wait: see [`Shared::lock_writable`]).
    pub fn try_lock_writable(&self, ino: u64) -> Option<StateGuard<'_>> {
        let st = self.lock();
        match st.nodes.get(&ino).map(|n| &n.kind) {
            Some(Kind::File {
                content: Content::Spill { spill, .. },
                ..
            }) if spill.is_busy() => None,
            _ => Some(st),
        }
    }

    /// Takes the commit lock (one commit or refresh at a time).
    pub fn commit_guard(&self) -> MutexGuard<'_, ()> {
        match self.commit_lock.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Commits the pending changes when `wanted` says so (asked under the state lock); the
    /// caller holds the commit lock. The state lock is held to take the changes and to apply
    /// the result, not while file contents are written into the store. Returns the new head
    /// when a commit was made.
    pub fn commit_with(
        &self,
        _commit: &MutexGuard<'_, ()>,
        wanted: impl FnOnce(&State) -> bool,
    ) -> Result<Option<ObjectId>, hero_store::Error> {
        let (items, snap) = {
            let mut st = self.lock();
            if !wanted(&st) {
                return Ok(None);
            }
            match st.take_commit() {
                Some(taken) => taken,
                None => return Ok(None),
            }
        };
        let res = write_items(self, items, snap.base);
        let mut st = self.lock();
        match res {
            Ok(mut done) => {
                let id = done.id;
                st.apply_commit(self, snap, &mut done)?;
                Ok(Some(id))
            }
            Err(e) => {
                st.restore_commit(snap);
                Err(e)
            }
        }
    }

    /// Periodic work: the idle commit and noticing commits made elsewhere.
    pub fn tick(&self) -> Vec<Inval> {
        let commit = match self.commit_lock.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                // A commit is under way (an fsync's): no commit and no refresh now.
                let mut st = self.lock();
                st.trim(self.cfg.max_inodes);
                st.sweep();
                return std::mem::take(&mut st.inval);
            }
        };
        let due = {
            let st = self.lock();
            let idle = st
                .last_change
                .is_some_and(|t| t.elapsed() >= st.quiet_time(&self.cfg));
            (idle || st.pending.overdue(self.cfg.max_commit_delay)) && !st.ops.is_empty()
        };
        if due {
            let started = Instant::now();
            let res = self.commit_with(&commit, |_| true);
            let mut st = self.lock();
            st.pending.took(started.elapsed());
            if let Ok(Some(head)) = &res {
                tracing::debug!(head = %head.short(), took = ?started.elapsed(), "committed");
            }
            if let Err(e) = res {
                tracing::error!(error = %e, "commit failed; will retry");
                st.last_change = Some(Instant::now());
            }
        }
        let mut st = self.lock();
        st.pending_tick();
        match self.repo.generation() {
            Ok(generation) if generation != st.seen_gen && st.ops.is_empty() => {
                match self.repo.branch_head(&self.cfg.branch) {
                    Ok(head) => {
                        if head != st.base {
                            tracing::debug!(?head, "branch moved elsewhere; refreshing");
                            if let Err(e) = st.reconcile(self, head) {
                                tracing::error!(error = %e, "refreshing the mount failed");
                            }
                        }
                        st.seen_gen = generation;
                    }
                    Err(e) => tracing::error!(error = %e, "reading the branch head"),
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "reading the repository generation"),
        }
        st.trim(self.cfg.max_inodes);
        st.sweep();
        std::mem::take(&mut st.inval)
    }

    /// How long the watcher may sleep: until the pending commit is due; a short `busy` while
    /// inodes wait to be let go; else `fallback` (the repository's changes and the first
    /// change to commit ring the bell).
    pub fn next_wait(&self, busy: Duration, fallback: Duration) -> Duration {
        let st = self.lock();
        if !st.ops.is_empty() {
            let now = Instant::now();
            let idle_at = st.last_change.map_or(now, |t| t + st.quiet_time(&self.cfg));
            let due = match st.pending.due_at(self.cfg.max_commit_delay) {
                Some(t) => idle_at.min(t),
                None => idle_at,
            };
            // A commit that failed is retried after the idle time, never in a loop.
            return due
                .saturating_duration_since(now)
                .max(Duration::from_millis(1));
        }
        if st.has_inodes_to_let_go() {
            return busy;
        }
        fallback
    }

    /// Commits pending changes now (after a commit under way).
    pub fn flush(&self) -> Result<Option<ObjectId>, hero_store::Error> {
        let commit = self.commit_guard();
        self.commit_with(&commit, |_| true)
    }
}

impl State {
    /// How long without changes before the pending ones are committed.
    fn quiet_time(&self, cfg: &Cfg) -> Duration {
        match cfg.close_commit {
            Some(quiet) if self.closed_written => quiet.min(cfg.idle_commit),
            _ => cfg.idle_commit,
        }
    }

    pub fn new(base: Option<ObjectId>, generation: u64, time: SystemTime) -> State {
        let mut nodes = HashMap::new();
        let root_tree = None;
        nodes.insert(
            ROOT,
            Node::new(
                ROOT,
                Vec::new(),
                Kind::Dir {
                    tree: root_tree,
                    children: None,
                },
                false,
                time,
            ),
        );
        nodes.insert(
            SNAP,
            Node::new(ROOT, SNAP_NAME.to_vec(), Kind::SnapRoot, true, time),
        );
        State {
            nodes,
            next_ino: 3,
            handles: HashMap::new(),
            dir_handles: HashMap::new(),
            sweep_dirs: HashSet::new(),
            next_fh: 1,
            ops: Vec::new(),
            put_pending: HashSet::new(),
            committing: HashSet::new(),
            last_change: None,
            closed_written: false,
            close_commit: false,
            bell: Arc::new(Bell::default()),
            max_inodes: usize::MAX,
            base,
            seen_gen: generation,
            snap_cache: HashMap::new(),
            inval: Vec::new(),
            next_spill: 0,
            default_time: time,
            pending: crate::durability::Pending::default(),
            links: HashMap::new(),
            data_len: HashMap::new(),
            branch: String::new(),
            show_snapshots: false,
            scratch: scratch::Scratch::default(),
            clock: 0,
            groups: HashMap::new(),
            link_index: None,
        }
    }

    /// Sets the root's tree from the base commit (done lazily, on first use).
    fn root_tree(&mut self, repo: &Repo) -> R<()> {
        let Some(base) = self.base else {
            return Ok(());
        };
        if let Some(Node {
            kind:
                Kind::Dir {
                    tree: tree @ None,
                    children: None,
                },
            ..
        }) = self.nodes.get_mut(&ROOT)
        {
            *tree = Some(repo.commit(&base).map_err(|e| store_errno(&e))?.tree);
        }
        Ok(())
    }

    pub fn node(&self, ino: u64) -> R<&Node> {
        self.nodes.get(&ino).ok_or(Errno::ENOENT)
    }

    fn node_mut(&mut self, ino: u64) -> R<&mut Node> {
        self.nodes.get_mut(&ino).ok_or(Errno::ENOENT)
    }

    fn alloc(&mut self) -> u64 {
        let i = self.next_ino;
        self.next_ino += 1;
        i
    }

    pub fn alloc_fh(&mut self) -> u64 {
        let i = self.next_fh;
        self.next_fh += 1;
        i
    }

    /// Whether no change waits for a commit.
    pub(crate) fn ops_empty(&self) -> bool {
        self.ops.is_empty()
    }

    fn touch(&mut self) {
        let first = self.last_change.is_none();
        self.last_change = Some(Instant::now());
        self.pending.touch();
        if first {
            // The watcher sleeps until told there is something to commit.
            self.bell.ring();
        }
    }

    pub fn attr(&self, ino: u64, cfg: &Cfg) -> R<FileAttr> {
        let n = self.node(ino)?;
        let size = n.size();
        let writable = !(n.ro || cfg.read_only);
        let perm = match &n.kind {
            Kind::File { .. } | Kind::Dir { .. } | Kind::Special { .. } => {
                let p = n.meta.mode_or_default(n.entry_kind());
                if writable { p } else { p & !0o222 }
            }
            Kind::Symlink { .. } => 0o777,
            Kind::Gitlink { .. } | Kind::SnapRoot => 0o555,
        };
        let owner = n.owner(cfg);
        // Blocks hold data only: holes (runs of zeros) cost nothing, as on a local disk.
        let data = match &n.kind {
            Kind::File {
                content: Content::Stored { id, .. },
                ..
            } => self.data_len.get(id).copied().unwrap_or(size),
            Kind::File {
                content: Content::Spill { spill, .. },
                ..
            } => {
                use std::os::unix::fs::MetadataExt;
                spill
                    .file
                    .metadata()
                    .map_or(size, |m| m.blocks().saturating_mul(512).min(size))
            }
            _ => size,
        };
        Ok(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: data.div_ceil(512),
            // Reads do not move it (the mount is noatime): the time set explicitly, else the
            // modification time.
            atime: n.meta.atime.map_or(n.mtime, Timestamp::to_system_time),
            mtime: n.mtime,
            ctime: n.ctime,
            crtime: n.ctime,
            kind: n.file_type(),
            perm: perm as u16,
            nlink: if n.is_dir() {
                self.dir_nlink(ino)
            } else if n.parent == 0 {
                0
            } else {
                u32::try_from(n.names.len() + 1).unwrap_or(u32::MAX)
            },
            uid: owner.uid,
            gid: owner.gid,
            // `st_rdev` as the kernel packs it for FUSE (32 bits: the old encoding of major and
            // minor, which holds the devices that matter here).
            rdev: n.meta.rdev.map_or(0, |d| u32::try_from(d).unwrap_or(0)),
            blksize: 1 << 17,
            flags: 0,
        })
    }

    /// Learns how many bytes of a stored chunked file are data (its holes left out), once per
    /// content, for its `st_blocks`.
    pub(crate) fn fill_data_len(&mut self, repo: &Repo, ino: u64) {
        let Ok(Node {
            kind:
                Kind::File {
                    content: Content::Stored { id, size },
                    ..
                },
            ..
        }) = self.node(ino)
        else {
            return;
        };
        let (id, size) = (*id, *size);
        if size <= hero_store::SMALL_FILE_MAX as u64 || self.data_len.contains_key(&id) {
            return;
        }
        match repo.view().and_then(|v| v.file_extents(&id)) {
            Ok(ext) => {
                let data = ext.iter().filter(|e| e.data).map(|e| e.len).sum();
                self.data_len.insert(id, data);
            }
            Err(e) => tracing::warn!(error = %e, "reading a file's extents"),
        }
    }

    /// Where the next data (`hole` false) or hole (`hole` true) at or after `offset` starts
    /// in a file: `SEEK_DATA` and `SEEK_HOLE`. ENXIO past the end, or when no data follows.
    pub(crate) fn seek_data(&self, repo: &Repo, ino: u64, offset: u64, hole: bool) -> R<u64> {
        let n = self.node(ino)?;
        let Kind::File { content, .. } = &n.kind else {
            return Err(Errno::EINVAL);
        };
        let size = n.size();
        if offset >= size {
            return Err(Errno::ENXIO);
        }
        match content {
            Content::Spill { spill, .. } => {
                use std::os::fd::AsFd;
                let whence = if hole {
                    nix::unistd::Whence::SeekHole
                } else {
                    nix::unistd::Whence::SeekData
                };
                let off = i64::try_from(offset).map_err(|_| Errno::EINVAL)?;
                match nix::unistd::lseek(spill.file.as_fd(), off, whence) {
                    Ok(p) => Ok(u64::try_from(p).unwrap_or(size).min(size)),
                    Err(e) => Err(Errno::from_i32(e as i32)),
                }
            }
            Content::Stored { id, .. } => {
                let ext = if size <= hero_store::SMALL_FILE_MAX as u64 {
                    vec![hero_store::Extent {
                        start: 0,
                        len: size,
                        data: true,
                    }]
                } else {
                    repo.view()
                        .and_then(|v| v.file_extents(id))
                        .map_err(|e| store_errno(&e))?
                };
                let found = ext
                    .iter()
                    .find(|e| e.data != hole && e.start + e.len > offset)
                    .map(|e| e.start.max(offset));
                match (found, hole) {
                    (Some(p), _) => Ok(p),
                    // The end of the file counts as a hole.
                    (None, true) => Ok(size),
                    (None, false) => Err(Errno::ENXIO),
                }
            }
        }
    }

    /// Sets the root directory's metadata from a commit ([`hero_store::ROOT_META_HEADER`]);
    /// returns whether it changed what the root shows. Its time is kept when none is stored.
    pub(crate) fn set_root_meta(&mut self, meta: EntryMeta) -> bool {
        let Some(root) = self.nodes.get_mut(&ROOT) else {
            return false;
        };
        let stored = root.stored_meta();
        let meta = meta.fitted_to(EntryKind::Dir);
        if meta.mode.is_none() && meta.owner.is_none() && meta.mtime.is_none() {
            let changed = !root.meta.is_empty();
            root.meta = EntryMeta::NONE;
            return changed;
        }
        if stored == meta {
            return false;
        }
        root.meta = meta;
        if let Some(t) = meta.mtime {
            root.mtime = t.to_system_time();
        }
        true
    }

    /// Loads a directory's children from its tree if not done yet.
    fn ensure_loaded(&mut self, repo: &Repo, ino: u64) -> R<()> {
        if ino == ROOT {
            self.root_tree(repo)?;
        }
        let node = self.node(ino)?;
        let (tree, ro) = match &node.kind {
            Kind::Dir {
                children: Some(_), ..
            }
            | Kind::Gitlink { .. }
            | Kind::SnapRoot => return Ok(()),
            Kind::Dir {
                tree,
                children: None,
            } => (*tree, node.ro),
            _ => return Err(Errno::ENOTDIR),
        };
        let entries = match tree {
            Some(t) => repo.tree(&t).map_err(|e| store_errno(&e))?.entries,
            None => Vec::new(),
        };
        let mut map = BTreeMap::new();
        let time = self.default_time;
        let mut new_groups = Vec::new();
        // A `.git` (or an alias of it) a tree holds (from a peer, or written before the store
        // refused them) is not shown: a git run in the mount would take it for its own.
        for e in entries
            .into_iter()
            .filter(|e| !hero_store::is_git_unsafe(&e.name))
        {
            let name = e.name.clone();
            let (child, group) = self.node_for_entry(ino, e, ro, time);
            if let Some(g) = group {
                new_groups.push((g, name.clone()));
            }
            map.insert(name, child);
        }
        if self.nodes.len() > self.max_inodes {
            // Over the bound: the watcher trims (it may be sleeping long).
            self.bell.ring();
        }
        if let Some(Node {
            kind: Kind::Dir { children, .. },
            ..
        }) = self.nodes.get_mut(&ino)
        {
            *children = Some(map);
        }
        for (g, name) in new_groups {
            if let Ok(path) = self.name_path(ino, &name) {
                self.gather_names(repo, g, &path);
            }
        }
        Ok(())
    }

    fn children(&self, ino: u64) -> Option<&BTreeMap<Vec<u8>, u64>> {
        match &self.nodes.get(&ino)?.kind {
            Kind::Dir { children, .. } => children.as_ref(),
            _ => None,
        }
    }

    fn children_mut(&mut self, ino: u64) -> R<&mut BTreeMap<Vec<u8>, u64>> {
        match &mut self.node_mut(ino)?.kind {
            Kind::Dir {
                children: Some(c), ..
            } => Ok(c),
            Kind::Dir { .. } => Err(Errno::EIO),
            _ => Err(Errno::ENOTDIR),
        }
    }

    /// The child `name` of directory `parent`, if any.
    pub fn child(&mut self, repo: &Repo, parent: u64, name: &[u8]) -> R<Option<u64>> {
        self.ensure_loaded(repo, parent)?;
        self.used(parent);
        Ok(self.children(parent).and_then(|c| c.get(name).copied()))
    }

    /// Looks a name up for the kernel (counts the lookup).
    pub fn lookup(&mut self, repo: &Repo, parent: u64, name: &[u8]) -> R<u64> {
        if name.len() > MAX_NAME {
            return Err(Errno::ENAMETOOLONG);
        }
        let ino = if parent == ROOT && name == SNAP_NAME {
            SNAP
        } else if parent == SNAP {
            self.snapshot(repo, name)?
        } else {
            self.child(repo, parent, name)?.ok_or(Errno::ENOENT)?
        };
        self.fill_links(repo, ino);
        self.node_mut(ino)?.lookups += 1;
        Ok(ino)
    }

    /// Whether the kernel may cache that a name looked up in `dir` is not there (a negative
    /// entry): in a loaded directory of the branch, whose names added by a commit made
    /// elsewhere are invalidated (see `reconcile_dir`). Marks the directory: unloading its
    /// children (`sweep`) then invalidates its own entry, which takes the negative entries
    /// with it, and the root keeps its children loaded. Not in `.snapshots`, whose
    /// entries live a second.
    pub fn negative_entry(&mut self, dir: u64) -> bool {
        match self.nodes.get_mut(&dir) {
            Some(n)
                if !n.ro
                    && n.parent != 0
                    && matches!(
                        n.kind,
                        Kind::Dir {
                            children: Some(_),
                            ..
                        }
                    ) =>
            {
                n.negatives = true;
                true
            }
            _ => false,
        }
    }

    fn snapshot(&mut self, repo: &Repo, name: &[u8]) -> R<u64> {
        let rev = std::str::from_utf8(name).map_err(|_| Errno::ENOENT)?;
        let view = repo.view().map_err(|e| store_errno(&e))?;
        let commit =
            crate::snapshots::resolve(&view, &self.branch, rev).map_err(|e| store_errno(&e))?;
        let c = view.commit(&commit).map_err(|e| store_errno(&e))?;
        if let Some(&ino) = self.snap_cache.get(name)
            && let Some(Node {
                kind: Kind::Dir { tree, .. },
                ..
            }) = self.nodes.get(&ino)
            && *tree == Some(c.tree)
        {
            return Ok(ino);
        }
        let time = u64::try_from(c.committer.time)
            .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
            .unwrap_or(self.default_time);
        let ino = self.alloc();
        self.nodes.insert(
            ino,
            Node::new(
                SNAP,
                name.to_vec(),
                Kind::Dir {
                    tree: Some(c.tree),
                    children: None,
                },
                true,
                time,
            ),
        );
        self.snap_cache.insert(name.to_vec(), ino);
        Ok(ino)
    }

    /// A directory listing, with `.` and `..`.
    pub fn list(&mut self, repo: &Repo, ino: u64) -> R<Vec<DirItem>> {
        self.ensure_loaded(repo, ino)?;
        self.used(ino);
        let node = self.node(ino)?;
        let parent = if node.parent == 0 { ino } else { node.parent };
        let mut out = vec![
            DirItem {
                name: b".".to_vec(),
                ino,
                kind: FileType::Directory,
            },
            DirItem {
                name: b"..".to_vec(),
                ino: parent,
                kind: FileType::Directory,
            },
        ];
        if ino == SNAP {
            let view = repo.view().map_err(|e| store_errno(&e))?;
            let names =
                crate::snapshots::names(&view, &self.branch).map_err(|e| store_errno(&e))?;
            for n in names {
                if n.contains('/') || n.len() > MAX_NAME {
                    continue;
                }
                if let Ok(child) = self.snapshot(repo, n.as_bytes()) {
                    out.push(DirItem {
                        name: n.into_bytes(),
                        ino: child,
                        kind: FileType::Directory,
                    });
                }
            }
            return Ok(out);
        }
        if ino == ROOT && self.show_snapshots {
            out.push(DirItem {
                name: SNAP_NAME.to_vec(),
                ino: SNAP,
                kind: FileType::Directory,
            });
        }
        if let Some(children) = self.children(ino) {
            for (name, &child) in children {
                if let Some(n) = self.nodes.get(&child) {
                    out.push(DirItem {
                        name: name.clone(),
                        ino: child,
                        kind: n.file_type(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// The path of an inode in the branch (not for snapshots or unlinked inodes).
    pub fn path_of(&self, ino: u64) -> R<RepoPath> {
        let mut names = Vec::new();
        let mut cur = ino;
        while cur != ROOT {
            let n = self.node(cur)?;
            if n.parent == 0 || n.ro || names.len() > 4096 {
                return Err(Errno::ENOENT);
            }
            names.push(n.name.clone());
            cur = n.parent;
        }
        names.reverse();
        RepoPath::from_names(names).map_err(|_| Errno::EINVAL)
    }

    /// Refuses changes on a read-only mount or inside `.snapshots`.
    pub fn check_writable(&self, cfg: &Cfg, ino: u64) -> R<()> {
        if cfg.read_only || ino == SNAP || self.node(ino)?.ro {
            return Err(Errno::EROFS);
        }
        Ok(())
    }

    /// Marks the directory and its ancestors as changed (their stored trees no longer match).
    fn dirty_dir(&mut self, ino: u64) {
        self.dirty_dirs_from(ino);
        // A directory that keeps its metadata keeps its new time too (the root's goes in the
        // commit).
        if self.nodes.get(&ino).is_some_and(|n| !n.meta.is_empty()) {
            self.mark_put(ino);
        }
    }

    fn dirty_dirs_from(&mut self, mut ino: u64) {
        let now = SystemTime::now();
        let mut first = true;
        for _ in 0..4096 {
            let Some(n) = self.nodes.get_mut(&ino) else {
                return;
            };
            if first {
                n.mtime = now;
                n.ctime = now;
                first = false;
            }
            if let Kind::Dir { tree, .. } = &mut n.kind {
                *tree = None;
            }
            if ino == ROOT || n.parent == 0 {
                return;
            }
            ino = n.parent;
        }
    }

    /// Records that an inode's content or mode changed.
    fn mark_put(&mut self, ino: u64) {
        if self.is_local(ino) {
            return;
        }
        if self
            .nodes
            .get(&ino)
            .is_some_and(|n| scratch::is_ignore_file(n.parent, &n.name))
        {
            self.ignore_rules_stale();
        }
        if let Ok(path) = self.path_of(ino) {
            let first = self.put_pending.insert(ino);
            let dir = self.nodes.get(&ino).is_some_and(Node::is_dir);
            if first || dir {
                let meta = self.nodes.get(&ino).map(Node::stored_meta);
                match (self.binding(ino), meta) {
                    (Some(b), Some(m)) => {
                        // A hard-linked file's other names: recovery puts the content at
                        // each of them too.
                        for other in self.all_paths(ino).into_iter().skip(1) {
                            self.pending.journal_put(ino, &other, b.clone(), m);
                        }
                        self.pending.journal_put(ino, &path, b, m);
                    }
                    // A directory: its metadata, every time (its time changes with every
                    // entry made or removed in it).
                    (None, Some(m)) => self.pending.journal_meta(ino, &path, m),
                    _ => {}
                }
            }
            if first {
                self.ops.push(Op::Put { path, ino });
            }
        }
        if let Some(p) = self.nodes.get(&ino).map(|n| n.parent)
            && p != 0
        {
            self.dirty_dir_tree_only(p);
        }
        self.touch();
    }

    /// Journals the mode, owner and time of an inode whose put is journaled already.
    fn journal_meta(&mut self, ino: u64) {
        if self.binding(ino).is_none() || self.is_local(ino) {
            return; // a directory: `mark_put` journaled it
        }
        if let (Ok(path), Some(m)) = (
            self.path_of(ino),
            self.nodes.get(&ino).map(Node::stored_meta),
        ) {
            self.pending.journal_meta(ino, &path, m);
        }
    }

    /// Like `dirty_dir` without touching the directory's times.
    fn dirty_dir_tree_only(&mut self, mut ino: u64) {
        for _ in 0..4096 {
            let Some(n) = self.nodes.get_mut(&ino) else {
                return;
            };
            if let Kind::Dir { tree, .. } = &mut n.kind {
                if tree.is_none() && ino != ROOT {
                    // Ancestors were cleared by whoever cleared this one.
                    return;
                }
                *tree = None;
            }
            if ino == ROOT || n.parent == 0 {
                return;
            }
            ino = n.parent;
        }
    }

    fn new_spill(&mut self, shared: &Shared) -> R<Arc<Spill>> {
        if let Some((file, path)) = shared.spill_pool.take() {
            return Ok(Arc::new(Spill::new(file, path, shared)));
        }
        let cfg = &shared.cfg;
        let n = self.next_spill;
        self.next_spill += 1;
        let path = cfg.spill_dir.join(format!("{n}"));
        let file = hero_store::private::create_new(&path).map_err(|e| {
            tracing::error!(path = %path.display(), error = %e, "creating spill file");
            io_errno(&e)
        })?;
        Ok(Arc::new(Spill::new(file, path, shared)))
    }

    /// Makes a file's content a writable spill (copying the stored content unless `empty`).
    fn ensure_spill(&mut self, shared: &Shared, ino: u64, empty: bool) -> R<Arc<Spill>> {
        let (id, size) = match &self.node(ino)?.kind {
            Kind::File {
                content: Content::Spill { spill, .. },
                ..
            } => {
                let spill = spill.clone();
                if empty {
                    spill.file.set_len(0).map_err(|e| io_errno(&e))?;
                    if let Kind::File {
                        content:
                            Content::Spill {
                                size, committed, ..
                            },
                        ..
                    } = &mut self.node_mut(ino)?.kind
                    {
                        *size = 0;
                        *committed = None;
                    }
                }
                return Ok(spill);
            }
            Kind::File {
                content: Content::Stored { id, size },
                ..
            } => (*id, *size),
            Kind::Dir { .. } | Kind::Gitlink { .. } | Kind::SnapRoot => {
                return Err(Errno::EISDIR);
            }
            Kind::Symlink { .. } | Kind::Special { .. } => return Err(Errno::EINVAL),
        };
        let spill = self.new_spill(shared)?;
        let (size, committed) = if empty || size == 0 {
            (0, None)
        } else {
            (copy_data(&shared.repo, &id, &spill)?, Some(id))
        };
        // Not written yet: the file keeps its time (recovery reads it from the spill file).
        if let Err(e) = spill.file.set_modified(self.node(ino)?.mtime) {
            tracing::warn!(error = %e, "setting the time of a spill file");
        }
        if let Kind::File { content, .. } = &mut self.node_mut(ino)?.kind {
            *content = Content::Spill {
                spill: spill.clone(),
                size,
                committed,
            };
        }
        // Readers of this inode now see local writes.
        for h in self.handles.values() {
            if h.ino == ino
                && let Ok(mut src) = h.source.lock()
            {
                *src = Source::Spill(spill.clone());
            }
        }
        self.journal_bind(ino);
        Ok(spill)
    }

    /// Makes a file with stored content empty without a scratch file; its open handles read
    /// the empty content from now on (as they would read a truncated scratch file).
    fn make_empty_stored(&mut self, ino: u64) -> R<()> {
        match &mut self.node_mut(ino)?.kind {
            Kind::File { content, .. } => {
                *content = Content::Stored {
                    id: empty_file_id(),
                    size: 0,
                };
            }
            Kind::Dir { .. } | Kind::Gitlink { .. } | Kind::SnapRoot => {
                return Err(Errno::EISDIR);
            }
            Kind::Symlink { .. } | Kind::Special { .. } => return Err(Errno::EINVAL),
        }
        for h in self.handles.values() {
            if h.ino == ino
                && let Ok(mut src) = h.source.lock()
            {
                *src = Source::Empty;
            }
        }
        self.journal_bind(ino);
        Ok(())
    }

    /// Opens a file; returns the handle number and whether the page cache may be kept.
    pub fn open(
        &mut self,
        shared: &Shared,
        ino: u64,
        write: bool,
        trunc: bool,
        append: bool,
    ) -> R<(u64, bool)> {
        let node = self.node(ino)?;
        if node.is_dir() {
            return Err(Errno::EISDIR);
        }
        let write = write || trunc;
        let source = if write {
            self.check_writable(&shared.cfg, ino)?;
            // Stored content that ends up empty needs no scratch file until written to
            // (creating one per new file made creating many files slow).
            let lazy = matches!(
                &node.kind,
                Kind::File {
                    content: Content::Stored { size, .. },
                    ..
                } if trunc || *size == 0
            );
            let source = if lazy {
                if trunc {
                    self.make_empty_stored(ino)?;
                }
                Source::Empty
            } else {
                Source::Spill(self.ensure_spill(shared, ino, trunc)?)
            };
            if trunc {
                let now = match &source {
                    Source::Spill(s) => spill_time(s),
                    _ => SystemTime::now(),
                };
                let n = self.node_mut(ino)?;
                n.mtime = now;
                n.ctime = now;
                self.mark_put(ino);
            }
            source
        } else {
            match &node.kind {
                Kind::File {
                    content: Content::Spill { spill, .. },
                    ..
                } => Source::Spill(spill.clone()),
                Kind::File {
                    content: Content::Stored { id, .. },
                    ..
                } => Source::Reader(Box::new(StoredSource::new(
                    *id,
                    shared.repo.open_file(id).map_err(|e| store_errno(&e))?,
                ))),
                _ => return Err(Errno::EINVAL),
            }
        };
        let n = self.node_mut(ino)?;
        n.open += 1;
        if write {
            n.writers += 1;
        }
        let keep = !n.stale_cache && !trunc;
        if n.open == 1 {
            n.stale_cache = false;
        }
        let fh = self.alloc_fh();
        self.handles.insert(
            fh,
            Arc::new(Handle {
                ino,
                append,
                write,
                source: Mutex::new(source),
            }),
        );
        Ok((fh, keep))
    }

    pub fn release(&mut self, fh: u64) {
        let Some(h) = self.handles.remove(&fh) else {
            return;
        };
        let ino = h.ino;
        let write = h.write;
        drop(h);
        let pending = self.put_queued(ino);
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.open = n.open.saturating_sub(1);
            if write {
                n.writers = n.writers.saturating_sub(1);
                if n.writers == 0 && pending && !self.closed_written && self.close_commit {
                    // Written and closed: committed after a short quiet time, not the idle one.
                    self.closed_written = true;
                    self.bell.ring();
                }
            }
            if n.open == 0
                && !pending
                && let Kind::File { content, .. } = &mut n.kind
                && let Content::Spill {
                    size,
                    committed: Some(id),
                    ..
                } = content
            {
                *content = Content::Stored {
                    id: *id,
                    size: *size,
                };
            }
        }
        self.maybe_gc(ino);
    }

    /// Writes at `offset` (or at the end for an append handle); returns bytes written.
    pub fn write(&mut self, shared: &Shared, fh: u64, offset: u64, data: &[u8]) -> R<u32> {
        let h = self.handles.get(&fh).ok_or(Errno::EBADF)?.clone();
        let ino = h.ino;
        let spill = match &*h.source.lock().map_err(|_| Errno::EIO)? {
            Source::Spill(s) => Some(s.clone()),
            Source::Empty if h.write => None,
            Source::Empty | Source::Reader(_) => return Err(Errno::EBADF),
        };
        // The first write to an empty file makes its scratch file (for every handle).
        let spill = match spill {
            Some(s) => s,
            None => self.ensure_spill(shared, ino, false)?,
        };
        let cur = self.node(ino)?.size();
        let offset = if h.append { cur } else { offset };
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&e| e <= MAX_FILE_SIZE)
            .ok_or(Errno::EFBIG)?;
        spill
            .file
            .write_all_at(data, offset)
            .map_err(|e| io_errno(&e))?;
        let now = spill_time(&spill);
        let n = self.node_mut(ino)?;
        n.mtime = now;
        n.ctime = now;
        if let Kind::File {
            content: Content::Spill {
                size, committed, ..
            },
            ..
        } = &mut n.kind
        {
            *size = (*size).max(end);
            *committed = None;
        }
        self.mark_put(ino);
        u32::try_from(data.len()).map_err(|_| Errno::EINVAL)
    }

    /// `fallocate(2)` on a handle open for writing: mode 0 reserves the range in the spill file
    /// (the size grows to cover it), `FALLOC_FL_KEEP_SIZE` reserves it without growing,
    /// `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE` makes the range (inside the file) a hole
    /// and `FALLOC_FL_ZERO_RANGE` makes it zeros (growing the file unless with
    /// `FALLOC_FL_KEEP_SIZE`). Other modes answer EOPNOTSUPP. A reservation lasts while the
    /// file is being written: the store keeps zeros as holes once committed.
    pub fn fallocate(
        &mut self,
        shared: &Shared,
        fh: u64,
        offset: u64,
        len: u64,
        mode: i32,
    ) -> R<()> {
        use nix::fcntl::FallocateFlags as F;
        let h = self.handles.get(&fh).ok_or(Errno::EBADF)?.clone();
        if !h.write {
            return Err(Errno::EBADF);
        }
        let ino = h.ino;
        let flags = F::from_bits(mode).ok_or(Errno::EOPNOTSUPP)?;
        let known = F::FALLOC_FL_KEEP_SIZE | F::FALLOC_FL_PUNCH_HOLE | F::FALLOC_FL_ZERO_RANGE;
        if !known.contains(flags) {
            return Err(Errno::EOPNOTSUPP);
        }
        let keep = flags.contains(F::FALLOC_FL_KEEP_SIZE);
        let punch = flags.contains(F::FALLOC_FL_PUNCH_HOLE);
        let zero = flags.contains(F::FALLOC_FL_ZERO_RANGE);
        if punch && zero {
            return Err(Errno::EINVAL);
        }
        if punch && !keep {
            return Err(Errno::EOPNOTSUPP);
        }
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= MAX_FILE_SIZE)
            .ok_or(Errno::EFBIG)?;
        let spill = match &*h.source.lock().map_err(|_| Errno::EIO)? {
            Source::Spill(s) => Some(s.clone()),
            Source::Empty => None,
            Source::Reader(_) => return Err(Errno::EBADF),
        };
        let spill = match spill {
            Some(s) => s,
            None => self.ensure_spill(shared, ino, false)?,
        };
        let size = self.node(ino)?.size();
        use std::os::fd::AsFd;
        let off = |v: u64| i64::try_from(v).map_err(|_| Errno::EFBIG);
        let errno = |e: nix::errno::Errno| Errno::from_i32(e as i32);
        if punch || zero {
            // Inside the file the range becomes a hole (zeros, no blocks).
            let upto = end.min(size);
            if upto > offset {
                nix::fcntl::fallocate(
                    spill.file.as_fd(),
                    F::FALLOC_FL_PUNCH_HOLE | F::FALLOC_FL_KEEP_SIZE,
                    off(offset)?,
                    off(upto - offset)?,
                )
                .map_err(errno)?;
            }
        }
        if !punch {
            let m = if keep {
                F::FALLOC_FL_KEEP_SIZE
            } else {
                F::empty()
            };
            match nix::fcntl::fallocate(spill.file.as_fd(), m, off(offset)?, off(len)?) {
                Ok(()) => {}
                // A spill file system that cannot reserve: the size still follows.
                Err(nix::errno::Errno::EOPNOTSUPP) if !keep && end > size => {
                    spill.file.set_len(end).map_err(|e| io_errno(&e))?;
                }
                Err(nix::errno::Errno::EOPNOTSUPP) => {}
                Err(e) => return Err(errno(e)),
            }
        }
        let new_size = if keep { size } else { size.max(end) };
        let now = spill_time(&spill);
        let n = self.node_mut(ino)?;
        n.mtime = now;
        n.ctime = now;
        if let Kind::File {
            content: Content::Spill {
                size, committed, ..
            },
            ..
        } = &mut n.kind
        {
            *size = new_size;
            *committed = None;
        }
        self.mark_put(ino);
        Ok(())
    }

    /// Changes size, mode or times.
    #[allow(clippy::too_many_arguments)]
    pub fn setattr(
        &mut self,
        shared: &Shared,
        ino: u64,
        mode: Option<u32>,
        size: Option<u64>,
        mtime: Option<SystemTime>,
        owner: Option<Owner>,
        atime: Option<SystemTime>,
    ) -> R<()> {
        if mode.is_some() || size.is_some() || mtime.is_some() || owner.is_some() || atime.is_some()
        {
            self.check_writable(&shared.cfg, ino)?;
        }
        if let Some(size) = size {
            if size > MAX_FILE_SIZE {
                return Err(Errno::EFBIG);
            }
            let stored = matches!(
                self.node(ino)?.kind,
                Kind::File {
                    content: Content::Stored { .. },
                    ..
                }
            );
            if size == 0 && stored {
                self.make_empty_stored(ino)?;
            } else {
                let spill = self.ensure_spill(shared, ino, size == 0)?;
                spill.file.set_len(size).map_err(|e| io_errno(&e))?;
            }
            let now = match &self.node(ino)?.kind {
                Kind::File {
                    content: Content::Spill { spill, .. },
                    ..
                } => spill_time(spill),
                _ => SystemTime::now(),
            };
            let n = self.node_mut(ino)?;
            n.mtime = now;
            n.ctime = now;
            if let Kind::File {
                content:
                    Content::Spill {
                        size: s, committed, ..
                    },
                ..
            } = &mut n.kind
            {
                if *s != size {
                    *committed = None;
                }
                *s = size;
            }
            self.mark_put(ino);
        }
        let mut meta_changed = false;
        if let Some(mode) = mode {
            let n = self.node_mut(ino)?;
            match &mut n.kind {
                Kind::File { exec, .. } => {
                    *exec = mode & 0o100 != 0;
                    n.meta.mode = Some(mode & MODE_BITS);
                }
                Kind::Dir { .. } | Kind::Special { .. } => n.meta.mode = Some(mode & MODE_BITS),
                // A symlink's mode means nothing; a gitlink has none to keep.
                Kind::Symlink { .. } => {}
                Kind::Gitlink { .. } | Kind::SnapRoot => return Err(Errno::EPERM),
            }
            meta_changed = true;
        }
        if let Some(o) = owner {
            let n = self.node_mut(ino)?;
            if matches!(n.kind, Kind::Gitlink { .. } | Kind::SnapRoot) {
                return Err(Errno::EPERM);
            }
            n.meta.owner = Some(o);
            meta_changed = true;
        }
        if let Some(t) = mtime {
            let n = self.node_mut(ino)?;
            n.mtime = t;
            // Recovery takes a written file's time from its spill file.
            if let Kind::File {
                content: Content::Spill { spill, .. },
                ..
            } = &n.kind
                && let Err(e) = spill.file.set_modified(t)
            {
                tracing::warn!(error = %e, "setting the time of a spill file");
            }
            meta_changed = true;
        }
        if let Some(t) = atime {
            let n = self.node_mut(ino)?;
            if matches!(n.kind, Kind::Gitlink { .. } | Kind::SnapRoot) {
                return Err(Errno::EPERM);
            }
            n.meta.atime = Some(Timestamp::from_system_time(t));
            meta_changed = true;
        }
        if meta_changed {
            self.node_mut(ino)?.ctime = SystemTime::now();
            let first = !self.put_pending.contains(&ino);
            self.mark_put(ino);
            self.journal_bind(ino);
            if !first {
                self.journal_meta(ino);
            }
        }
        Ok(())
    }

    /// The metadata a new entry gets: the mode asked for (the kernel applied the umask), the
    /// caller as owner, and, in a setgid directory, that directory's group (and, for a
    /// directory, its setgid bit), as local file systems do.
    fn new_meta(&self, parent: u64, mode: Option<u32>, owner: Owner, dir: bool) -> R<EntryMeta> {
        let p = self.node(parent)?;
        let mut owner = owner;
        let mut mode = mode.map(|m| m & MODE_BITS);
        if p.meta.mode.is_some_and(|m| m & 0o2000 != 0) {
            owner.gid = p.meta.owner.map_or(owner.gid, |o| o.gid);
            if dir {
                mode = mode.map(|m| m | 0o2000);
            }
        }
        Ok(EntryMeta {
            mode,
            owner: Some(owner),
            ..EntryMeta::NONE
        })
    }

    /// Checks that `name` may be created in `parent` and returns the new path.
    fn prepare_new(&mut self, shared: &Shared, parent: u64, name: &[u8]) -> R<RepoPath> {
        self.check_writable(&shared.cfg, parent)?;
        check_name(name)?;
        if parent == ROOT && name == SNAP_NAME {
            return Err(Errno::EEXIST);
        }
        if self.child(&shared.repo, parent, name)?.is_some() {
            return Err(Errno::EEXIST);
        }
        if matches!(self.node(parent)?.kind, Kind::Gitlink { .. }) {
            return Err(Errno::EPERM);
        }
        let path = self.path_of(parent)?;
        path.join(name).map_err(|_| Errno::EINVAL)
    }

    fn link_new(&mut self, parent: u64, name: &[u8], kind: Kind, meta: EntryMeta) -> R<u64> {
        let ino = self.alloc();
        let mut node = Node::new(parent, name.to_vec(), kind, false, SystemTime::now());
        node.meta = meta;
        node.lookups = 1;
        self.nodes.insert(ino, node);
        self.children_mut(parent)?.insert(name.to_vec(), ino);
        self.dirty_dir(parent);
        Ok(ino)
    }

    pub fn mkdir(
        &mut self,
        shared: &Shared,
        parent: u64,
        name: &[u8],
        mode: u32,
        owner: Owner,
    ) -> R<u64> {
        let path = self.prepare_new(shared, parent, name)?;
        let meta = self.new_meta(parent, Some(mode), owner, true)?;
        let ino = self.link_new(
            parent,
            name,
            Kind::Dir {
                tree: None,
                children: Some(BTreeMap::new()),
            },
            meta,
        )?;
        if self.scratch_new(&shared.repo, &path, ino) {
            return Ok(ino);
        }
        self.pending.journal_mkdir(&path);
        self.ops.push(Op::Mkdir(path));
        // Its mode, owner and time go with the next commit.
        self.mark_put(ino);
        Ok(ino)
    }

    /// Creates an empty file (not opened).
    pub fn mknod(
        &mut self,
        shared: &Shared,
        parent: u64,
        name: &[u8],
        mode: u32,
        owner: Owner,
    ) -> R<u64> {
        let path = self.prepare_new(shared, parent, name)?;
        let meta = self.new_meta(parent, Some(mode), owner, false)?;
        let exec = mode & 0o100 != 0;
        // The empty content is stored at mount time; a scratch file is made only once the
        // file is written to (creating one per new file made `touch` of many files slow).
        let ino = self.link_new(
            parent,
            name,
            Kind::File {
                content: Content::Stored {
                    id: empty_file_id(),
                    size: 0,
                },
                exec,
            },
            meta,
        )?;
        if self.scratch_new(&shared.repo, &path, ino) {
            return Ok(ino);
        }
        self.mark_put(ino);
        Ok(ino)
    }

    /// Makes a FIFO, socket or device node (`rdev`: a device's number).
    #[allow(clippy::too_many_arguments)]
    pub fn mknod_special(
        &mut self,
        shared: &Shared,
        parent: u64,
        name: &[u8],
        kind: EntryKind,
        rdev: Option<u64>,
        mode: u32,
        owner: Owner,
    ) -> R<u64> {
        let path = self.prepare_new(shared, parent, name)?;
        let mut meta = self.new_meta(parent, Some(mode), owner, false)?;
        meta.rdev = rdev;
        let ino = self.link_new(parent, name, Kind::Special { kind }, meta)?;
        if self.scratch_new(&shared.repo, &path, ino) {
            return Ok(ino);
        }
        self.mark_put(ino);
        Ok(ino)
    }

    pub fn symlink(
        &mut self,
        shared: &Shared,
        parent: u64,
        name: &[u8],
        target: &[u8],
        owner: Owner,
    ) -> R<u64> {
        let path = self.prepare_new(shared, parent, name)?;
        let meta = self.new_meta(parent, None, owner, false)?;
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        let ino = self.link_new(
            parent,
            name,
            Kind::Symlink {
                id: ObjectId::of(target),
                size: target.len() as u64,
                target: Some(target.to_vec()),
            },
            meta,
        )?;
        if self.scratch_new(&shared.repo, &path, ino) {
            return Ok(ino);
        }
        self.mark_put(ino);
        Ok(ino)
    }

    pub fn readlink(&self, repo: &Repo, ino: u64) -> R<Vec<u8>> {
        match &self.node(ino)?.kind {
            Kind::Symlink {
                target: Some(t), ..
            } => Ok(t.clone()),
            Kind::Symlink { id, .. } => repo
                .view()
                .and_then(|v| v.read_file(id, 1 << 20))
                .map_err(|e| store_errno(&e)),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Unlinks `name` (a file, or with `dir` an empty directory).
    pub fn remove(&mut self, shared: &Shared, parent: u64, name: &[u8], dir: bool) -> R<()> {
        self.check_writable(&shared.cfg, parent)?;
        if parent == ROOT && name == SNAP_NAME {
            return Err(Errno::EPERM);
        }
        let ino = self
            .child(&shared.repo, parent, name)?
            .ok_or(Errno::ENOENT)?;
        let is_dir = self.node(ino)?.is_dir();
        if dir && !is_dir {
            return Err(Errno::ENOTDIR);
        }
        if !dir && is_dir {
            return Err(Errno::EISDIR);
        }
        if dir && matches!(self.node(ino)?.kind, Kind::Dir { .. }) {
            self.ensure_loaded(&shared.repo, ino)?;
            if self.children(ino).is_some_and(|c| !c.is_empty()) {
                return Err(Errno::ENOTEMPTY);
            }
        }
        let path = self.name_path(parent, name)?;
        let local = self.is_local(ino);
        self.children_mut(parent)?.remove(name);
        self.drop_name(ino, parent, name);
        self.dirty_dir(parent);
        self.note_ignore_file(parent, name);
        self.scratch_remove(ino, path, local);
        self.touch();
        self.maybe_gc(ino);
        Ok(())
    }

    pub fn rename(
        &mut self,
        shared: &Shared,
        parent: u64,
        name: &[u8],
        newparent: u64,
        newname: &[u8],
        noreplace: bool,
    ) -> R<()> {
        self.check_writable(&shared.cfg, parent)?;
        self.check_writable(&shared.cfg, newparent)?;
        check_name(newname)?;
        if (parent == ROOT && name == SNAP_NAME) || (newparent == ROOT && newname == SNAP_NAME) {
            return Err(Errno::EPERM);
        }
        let src = self
            .child(&shared.repo, parent, name)?
            .ok_or(Errno::ENOENT)?;
        let dst = self.child(&shared.repo, newparent, newname)?;
        if dst == Some(src) {
            return Ok(());
        }
        let src_dir = self.node(src)?.is_dir();
        if let Some(d) = dst {
            if noreplace {
                return Err(Errno::EEXIST);
            }
            let dst_dir = self.node(d)?.is_dir();
            match (src_dir, dst_dir) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) => {
                    if matches!(self.node(d)?.kind, Kind::Dir { .. }) {
                        self.ensure_loaded(&shared.repo, d)?;
                    }
                    if self.children(d).is_some_and(|c| !c.is_empty()) {
                        return Err(Errno::ENOTEMPTY);
                    }
                }
                (false, false) => {}
            }
        }
        // A directory cannot move inside itself.
        let mut cur = newparent;
        for _ in 0..4096 {
            if cur == src {
                return Err(Errno::EINVAL);
            }
            if cur == ROOT {
                break;
            }
            cur = self.node(cur)?.parent;
            if cur == 0 {
                return Err(Errno::ENOENT);
            }
        }
        let from = self.name_path(parent, name)?;
        let to = self
            .path_of(newparent)?
            .join(newname)
            .map_err(|_| Errno::EINVAL)?;
        let was_local = self.is_local(src);
        let replaced_local = dst.is_some_and(|d| self.is_local(d));
        if let Some(d) = dst {
            self.children_mut(newparent)?.remove(newname);
            self.drop_name(d, newparent, newname);
        }
        self.children_mut(parent)?.remove(name);
        self.children_mut(newparent)?.insert(newname.to_vec(), src);
        self.move_name(src, parent, name, newparent, newname);
        self.dirty_dir(parent);
        self.dirty_dir(newparent);
        self.note_ignore_file(parent, name);
        self.note_ignore_file(newparent, newname);
        self.scratch_rename(&shared.repo, src, from, to, was_local, dst, replaced_local);
        self.pending.note_rename(src);
        self.touch();
        if let Some(d) = dst {
            self.maybe_gc(d);
        }
        Ok(())
    }

    /// Swaps two entries (`RENAME_EXCHANGE`): both must exist, of any kinds, and neither may
    /// be a directory holding the other. Done as three renames through a name of its own in
    /// `parent`, recorded like any rename, so a commit and a recovery replay them in order.
    pub fn exchange(
        &mut self,
        shared: &Shared,
        parent: u64,
        name: &[u8],
        newparent: u64,
        newname: &[u8],
    ) -> R<()> {
        self.check_writable(&shared.cfg, parent)?;
        self.check_writable(&shared.cfg, newparent)?;
        if (parent == ROOT && name == SNAP_NAME) || (newparent == ROOT && newname == SNAP_NAME) {
            return Err(Errno::EPERM);
        }
        let a = self
            .child(&shared.repo, parent, name)?
            .ok_or(Errno::ENOENT)?;
        let b = self
            .child(&shared.repo, newparent, newname)?
            .ok_or(Errno::ENOENT)?;
        if a == b {
            return Ok(());
        }
        // Neither may end up inside itself.
        for (dir, inner) in [(a, newparent), (b, parent)] {
            let mut cur = inner;
            for _ in 0..4096 {
                if cur == dir {
                    return Err(Errno::EINVAL);
                }
                if cur == ROOT || cur == 0 {
                    break;
                }
                cur = self.node(cur)?.parent;
            }
        }
        let mut tmp = format!(".hero-exchange-{a}").into_bytes();
        while self.child(&shared.repo, parent, &tmp)?.is_some() {
            tmp.push(b'~');
            if tmp.len() > MAX_NAME {
                return Err(Errno::EEXIST);
            }
        }
        self.rename(shared, parent, name, parent, &tmp, true)?;
        if let Err(e) = self.rename(shared, newparent, newname, parent, name, true) {
            // Put the first one back: nothing changed.
            if let Err(back) = self.rename(shared, parent, &tmp, parent, name, true) {
                tracing::error!(error = ?back, "undoing half of an exchange");
            }
            return Err(e);
        }
        self.rename(shared, parent, &tmp, newparent, newname, true)
    }
}
