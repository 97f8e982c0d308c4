//! What keeps written files safe until they are committed (docs/durability.md, ADR 0014).
//!
//! Each writable mount has a spill directory `<spill root>/<branch key>/<pid>-<nanos>/`
//! holding the files being written (`0`, `1`, ...) and a `journal`: an append-only list of
//! the changes not yet committed (which path was put from which spill file or stored object,
//! deletes, renames, mkdirs). The mount holds an exclusive `flock` on the journal while it
//! lives; the kernel drops it when the process dies, however it dies. A mount that starts
//! looks at every spill directory of the repository, and one whose journal it can lock
//! belongs to a mount that is gone: its changes are replayed onto their branch as a recovery
//! commit and the directory is removed.
//!
//! The journal also records each changed entry's mode, owner and time (with its put, and on
//! every `chmod`, `chown` and `utimes`); a written file's time is its spill file's.
//!
//! The journal is written with one `write(2)` per request (the records a request makes under
//! the state lock, written when it releases the lock, before the kernel is answered) and
//! never `fsync`ed: the page cache survives the death of the process, which is the failure
//! this covers. After each commit
//! the journal is emptied, or, when changes were journaled while the commit was under way,
//! gets a marker: the records before the offset it names are committed.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::state::{Content, Kind, Shared, State};
use hero_store::{
    CommitMeta, EntryKind, EntryMeta, Expect, LinkGroup, ObjectId, Owner, Repo, RepoPath,
    Signature, Timestamp,
};

/// The journal's file name inside a spill directory.
pub(crate) const JOURNAL: &str = "journal";
/// First bytes of a journal (format version 1).
const MAGIC: &[u8; 8] = b"herojnl1";

/// Errors of the spill directory and of recovery.
#[derive(Debug, thiserror::Error)]
pub enum DurabilityError {
    /// Local file system trouble in the spill area.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The recovery commit failed; the spill directory is kept for the next attempt.
    #[error("recovering {}: {source}", dir.display())]
    Recover {
        /// The spill directory of the mount that died.
        dir: PathBuf,
        /// The error.
        source: hero_store::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> DurabilityError + '_ {
    move |source| DurabilityError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a changed inode's content is, as far as recovery needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Binding {
    /// The spill file with this number, executable or not.
    Spill(u64, bool),
    /// A stored file.
    Stored(ObjectId, u64, bool),
    /// A symlink with this target.
    Target(Vec<u8>),
    /// A stored symlink.
    Symlink(ObjectId, u64),
    /// A gitlink.
    Gitlink(ObjectId, u64),
    /// A FIFO, socket or device node.
    Special(EntryKind),
}

/// A special file's kind in the journal.
fn special_code(kind: EntryKind) -> u8 {
    match kind {
        EntryKind::Socket => b'o',
        EntryKind::CharDevice => b'c',
        EntryKind::BlockDevice => b'k',
        _ => b'p',
    }
}

fn special_of(code: u8) -> Option<EntryKind> {
    Some(match code {
        b'p' => EntryKind::Fifo,
        b'o' => EntryKind::Socket,
        b'c' => EntryKind::CharDevice,
        b'k' => EntryKind::BlockDevice,
        _ => return None,
    })
}

/// One journal record.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rec {
    Branch(String),
    Put(u64, Vec<u8>, Binding),
    Bind(u64, Binding),
    Delete(Vec<u8>),
    Rename(Vec<u8>, Vec<u8>),
    Mkdir(Vec<u8>),
    /// The records before this offset of the journal are committed (a commit during which
    /// more changes were journaled).
    Done(u64),
    /// The mode, owner and time of an inode (at the path given, when first journaled); the
    /// last one of an inode is what recovery records.
    Meta(u64, Vec<u8>, EntryMeta),
}

fn put_meta(out: &mut Vec<u8>, m: &EntryMeta) {
    let flags = u8::from(m.mode.is_some())
        | u8::from(m.owner.is_some()) << 1
        | u8::from(m.mtime.is_some()) << 2
        | u8::from(m.atime.is_some()) << 3
        | u8::from(m.link.is_some()) << 4
        | u8::from(m.rdev.is_some()) << 5;
    out.push(flags);
    if let Some(mode) = m.mode {
        out.extend_from_slice(&mode.to_le_bytes());
    }
    if let Some(o) = m.owner {
        out.extend_from_slice(&o.uid.to_le_bytes());
        out.extend_from_slice(&o.gid.to_le_bytes());
    }
    if let Some(t) = m.mtime {
        out.extend_from_slice(&t.secs.to_le_bytes());
        out.extend_from_slice(&t.nanos.to_le_bytes());
    }
    if let Some(t) = m.atime {
        out.extend_from_slice(&t.secs.to_le_bytes());
        out.extend_from_slice(&t.nanos.to_le_bytes());
    }
    if let Some(l) = m.link {
        out.extend_from_slice(&l.0.to_le_bytes());
    }
    if let Some(d) = m.rdev {
        out.extend_from_slice(&d.to_le_bytes());
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn put_binding(out: &mut Vec<u8>, b: &Binding) {
    match b {
        Binding::Spill(n, x) => {
            out.push(b's');
            out.extend_from_slice(&n.to_le_bytes());
            out.push(u8::from(*x));
        }
        Binding::Stored(id, size, x) => {
            out.push(b'f');
            out.extend_from_slice(&id.0);
            out.extend_from_slice(&size.to_le_bytes());
            out.push(u8::from(*x));
        }
        Binding::Target(t) => {
            out.push(b't');
            put_bytes(out, t);
        }
        Binding::Symlink(id, size) => {
            out.push(b'l');
            out.extend_from_slice(&id.0);
            out.extend_from_slice(&size.to_le_bytes());
        }
        Binding::Gitlink(id, size) => {
            out.push(b'g');
            out.extend_from_slice(&id.0);
            out.extend_from_slice(&size.to_le_bytes());
        }
        Binding::Special(kind) => {
            out.push(b'x');
            out.push(special_code(*kind));
        }
    }
}

impl Rec {
    /// Length-prefixed encoding (u32 little-endian length, then tag and fields).
    fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        match self {
            Rec::Branch(b) => {
                body.push(b'B');
                put_bytes(&mut body, b.as_bytes());
            }
            Rec::Put(ino, path, b) => {
                body.push(b'P');
                body.extend_from_slice(&ino.to_le_bytes());
                put_bytes(&mut body, path);
                put_binding(&mut body, b);
            }
            Rec::Bind(ino, b) => {
                body.push(b'b');
                body.extend_from_slice(&ino.to_le_bytes());
                put_binding(&mut body, b);
            }
            Rec::Delete(p) => {
                body.push(b'D');
                put_bytes(&mut body, p);
            }
            Rec::Rename(a, b) => {
                body.push(b'R');
                put_bytes(&mut body, a);
                put_bytes(&mut body, b);
            }
            Rec::Mkdir(p) => {
                body.push(b'M');
                put_bytes(&mut body, p);
            }
            Rec::Done(offset) => {
                body.push(b'C');
                body.extend_from_slice(&offset.to_le_bytes());
            }
            Rec::Meta(ino, path, m) => {
                body.push(b'm');
                body.extend_from_slice(&ino.to_le_bytes());
                put_bytes(&mut body, path);
                put_meta(&mut body, m);
            }
        }
        let mut out = Vec::with_capacity(body.len() + 4);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }
}

/// Reads fields of one record; `None` on anything malformed.
/// The store's bounded reader, with `None` for a record cut short (a torn journal tail).
struct Cursor<'a>(hero_store::codec::ByteReader<'a>);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        self.0.take(n).ok()
    }
    fn u8(&mut self) -> Option<u8> {
        self.0.u8().ok()
    }
    fn u64(&mut self) -> Option<u64> {
        self.0.u64_le().ok()
    }
    fn u32(&mut self) -> Option<u32> {
        self.0.u32_le().ok()
    }
    fn meta(&mut self) -> Option<EntryMeta> {
        let flags = self.u8()?;
        if flags & !63 != 0 {
            return None;
        }
        let mode = if flags & 1 != 0 {
            Some(self.u32()?)
        } else {
            None
        };
        let owner = if flags & 2 != 0 {
            Some(Owner {
                uid: self.u32()?,
                gid: self.u32()?,
            })
        } else {
            None
        };
        let mut time = |flag: u8| -> Option<Option<Timestamp>> {
            if flags & flag == 0 {
                return Some(None);
            }
            let secs = i64::from_le_bytes(self.take(8)?.try_into().ok()?);
            let nanos = self.u32()?;
            Some((nanos < 1_000_000_000).then_some(Timestamp { secs, nanos }))
        };
        let mtime = time(4)?;
        let atime = time(8)?;
        let link = if flags & 16 != 0 {
            Some(LinkGroup(self.u64()?))
        } else {
            None
        };
        let rdev = if flags & 32 != 0 {
            Some(self.u64()?)
        } else {
            None
        };
        Some(EntryMeta {
            mode,
            owner,
            mtime,
            atime,
            link,
            rdev,
        })
    }
    fn id(&mut self) -> Option<ObjectId> {
        self.take(32)?.try_into().ok().map(ObjectId)
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = u32::from_le_bytes(self.take(4)?.try_into().ok()?);
        self.take(usize::try_from(n).ok()?).map(<[u8]>::to_vec)
    }
    fn binding(&mut self) -> Option<Binding> {
        Some(match self.u8()? {
            b's' => Binding::Spill(self.u64()?, self.u8()? != 0),
            b'f' => Binding::Stored(self.id()?, self.u64()?, self.u8()? != 0),
            b't' => Binding::Target(self.bytes()?),
            b'l' => Binding::Symlink(self.id()?, self.u64()?),
            b'g' => Binding::Gitlink(self.id()?, self.u64()?),
            b'x' => Binding::Special(special_of(self.u8()?)?),
            _ => return None,
        })
    }
}

fn decode_rec(body: &[u8]) -> Option<Rec> {
    let mut c = Cursor(hero_store::codec::ByteReader::new(body));
    let rec = match c.u8()? {
        b'B' => Rec::Branch(String::from_utf8(c.bytes()?).ok()?),
        b'P' => Rec::Put(c.u64()?, c.bytes()?, c.binding()?),
        b'b' => Rec::Bind(c.u64()?, c.binding()?),
        b'D' => Rec::Delete(c.bytes()?),
        b'R' => Rec::Rename(c.bytes()?, c.bytes()?),
        b'M' => Rec::Mkdir(c.bytes()?),
        b'C' => Rec::Done(c.u64()?),
        b'm' => Rec::Meta(c.u64()?, c.bytes()?, c.meta()?),
        _ => return None,
    };
    c.0.is_empty().then_some(rec)
}

/// Decodes a journal; a torn last record (the process died while writing it) is dropped, and
/// so are the records a [`Rec::Done`] marker says were committed (the branch record stays).
fn decode_journal(data: &[u8]) -> Vec<Rec> {
    let mut out: Vec<(usize, Rec)> = Vec::new();
    let Some(mut rest) = data.strip_prefix(MAGIC.as_slice()) else {
        return Vec::new();
    };
    let mut done_before = 0usize;
    while rest.len() >= 4 {
        let offset = data.len() - rest.len();
        let Ok(len) = <[u8; 4]>::try_from(&rest[..4]) else {
            break;
        };
        let Ok(len) = usize::try_from(u32::from_le_bytes(len)) else {
            break;
        };
        let Some(body) = rest.get(4..4 + len) else {
            break;
        };
        match decode_rec(body) {
            Some(Rec::Done(upto)) => {
                done_before = done_before.max(usize::try_from(upto).unwrap_or(usize::MAX));
            }
            Some(r) => out.push((offset, r)),
            None => {
                tracing::warn!("journal record not understood; the rest is ignored");
                break;
            }
        }
        rest = &rest[4 + len..];
    }
    let mut first = true;
    out.into_iter()
        .filter(|(offset, _)| std::mem::take(&mut first) || *offset >= done_before)
        .map(|(_, r)| r)
        .collect()
}

/// The journal of a live mount: written on every change that is not yet committed.
#[derive(Debug)]
pub(crate) struct Journal {
    file: File,
    path: PathBuf,
    branch: String,
    /// Set after a failed write (logged once); recovery then may miss changes.
    failed: bool,
    /// Records not written yet: those made under one hold of the state lock go out in one
    /// `write(2)` when the lock is released ([`crate::state::StateGuard`]), before the
    /// kernel is answered.
    buf: Vec<u8>,
}

impl Journal {
    /// Creates the journal in `dir` and locks it for the life of the mount.
    fn create(dir: &Path, branch: &str) -> Result<Journal, DurabilityError> {
        let path = dir.join(JOURNAL);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .mode(hero_store::private::FILE_MODE)
            .open(&path)
            .map_err(io_err(&path))?;
        file.set_permissions(std::fs::Permissions::from_mode(
            hero_store::private::FILE_MODE,
        ))
        .map_err(io_err(&path))?;
        file.try_lock().map_err(|e| DurabilityError::Io {
            path: path.clone(),
            source: io::Error::other(e.to_string()),
        })?;
        let mut j = Journal {
            file,
            path,
            branch: branch.to_owned(),
            failed: false,
            buf: Vec::new(),
        };
        j.start()?;
        Ok(j)
    }

    fn start(&mut self) -> Result<(), DurabilityError> {
        let mut head = MAGIC.to_vec();
        head.extend_from_slice(&Rec::Branch(self.branch.clone()).encode());
        self.file.write_all(&head).map_err(io_err(&self.path))
    }

    fn append(&mut self, rec: Rec) {
        self.append_raw(&rec.encode());
    }

    fn append_raw(&mut self, encoded: &[u8]) {
        self.buf.extend_from_slice(encoded);
    }

    /// Writes the records made since the last flush.
    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        if let Err(e) = self.file.write_all(&self.buf) {
            if !self.failed {
                tracing::error!(path = %self.path.display(), error = %e,
                    "writing the journal failed: changes not yet committed would not survive a crash");
            }
            self.failed = true;
        }
        self.buf.clear();
        if self.buf.capacity() > 1 << 16 {
            self.buf.shrink_to(1 << 12);
        }
    }

    /// A put and the inode's metadata.
    pub fn put(&mut self, ino: u64, path: &RepoPath, b: Binding, meta: EntryMeta) {
        let path = path.to_bytes();
        let mut both = Rec::Put(ino, path.clone(), b).encode();
        both.extend_from_slice(&Rec::Meta(ino, path, meta).encode());
        self.append_raw(&both);
    }

    pub fn meta(&mut self, ino: u64, path: &RepoPath, meta: EntryMeta) {
        self.append(Rec::Meta(ino, path.to_bytes(), meta));
    }

    pub fn bind(&mut self, ino: u64, b: Binding) {
        self.append(Rec::Bind(ino, b));
    }

    pub fn delete(&mut self, path: &RepoPath) {
        self.append(Rec::Delete(path.to_bytes()));
    }

    pub fn rename(&mut self, from: &RepoPath, to: &RepoPath) {
        self.append(Rec::Rename(from.to_bytes(), to.to_bytes()));
    }

    pub fn mkdir(&mut self, path: &RepoPath) {
        self.append(Rec::Mkdir(path.to_bytes()));
    }

    /// The journal's length: where the next record goes.
    fn len(&mut self) -> u64 {
        self.flush();
        self.file.metadata().map(|m| m.len()).unwrap_or(0)
    }

    /// The records before `offset` are committed; those after are not.
    fn done(&mut self, offset: u64) {
        self.append(Rec::Done(offset));
    }

    /// Everything journaled is committed: start over.
    pub fn reset(&mut self) {
        self.flush();
        let res = self.file.set_len(0).map_err(io_err(&self.path));
        if let Err(e) = res.and_then(|()| self.start()) {
            tracing::error!(error = %e, "resetting the journal");
            self.failed = true;
        } else {
            self.failed = false;
        }
    }
}

/// The uncommitted changes' journal and age, kept in the mount's state.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    journal: Option<Journal>,
    /// When the oldest uncommitted change was made.
    first: Option<Instant>,
    /// Inodes with a journaled put since the last commit.
    puts: HashSet<u64>,
    /// Inodes renamed since the last commit.
    renamed: HashSet<u64>,
    /// Inodes with a put in the commit under way.
    committing_puts: HashSet<u64>,
    /// Inodes renamed in the commit under way.
    committing_renamed: HashSet<u64>,
    /// How long the last commit made by the mount itself took.
    last_took: Duration,
}

/// What a commit under way took from [`Pending`].
#[derive(Debug)]
pub(crate) struct InFlight {
    first: Option<Instant>,
    /// The journal's length when the commit took its changes: the records before it are
    /// what the commit holds.
    journal_len: u64,
}

/// A commit forced by the maximum delay waits at least this many times as long as the last
/// commit took: a file written for minutes is committed as it grows, and each commit reads
/// it whole, so this keeps commits (which hold the mount's lock) under a fifth of the time.
const COMMIT_SPACING: u32 = 4;

impl Pending {
    pub fn set_journal(&mut self, j: Journal) {
        self.journal = Some(j);
    }

    /// A change was made.
    pub fn touch(&mut self) {
        self.first.get_or_insert_with(Instant::now);
    }

    /// Whether the oldest uncommitted change is older than `max` (or, after a long commit,
    /// than [`COMMIT_SPACING`] times its duration).
    pub fn overdue(&self, max: Duration) -> bool {
        let wait = max.max(self.last_took.saturating_mul(COMMIT_SPACING));
        self.first.is_some_and(|t| t.elapsed() >= wait)
    }

    /// When [`Pending::overdue`] turns true (`None`: nothing pending).
    pub fn due_at(&self, max: Duration) -> Option<Instant> {
        let wait = max.max(self.last_took.saturating_mul(COMMIT_SPACING));
        self.first.map(|t| t + wait)
    }

    /// A periodic commit took `d`.
    pub fn took(&mut self, d: Duration) {
        self.last_took = d;
    }

    /// A commit takes everything pending: changes from now on are the next commit's.
    pub fn begin_commit(&mut self) -> InFlight {
        self.committing_puts = std::mem::take(&mut self.puts);
        self.committing_renamed = std::mem::take(&mut self.renamed);
        InFlight {
            first: self.first.take(),
            journal_len: self.journal.as_mut().map_or(0, Journal::len),
        }
    }

    /// The commit under way failed: what it took is pending again.
    pub fn commit_failed(&mut self, taken: InFlight) {
        self.puts.extend(self.committing_puts.drain());
        self.renamed.extend(self.committing_renamed.drain());
        if let Some(t) = taken.first {
            self.first = Some(self.first.map_or(t, |f| f.min(t)));
        }
    }

    /// The commit under way succeeded. With no change journaled meanwhile the journal starts
    /// over; otherwise a marker says which of its records are committed.
    pub fn committed(&mut self, taken: InFlight, changed_meanwhile: bool) {
        self.committing_puts.clear();
        self.committing_renamed.clear();
        if let Some(j) = &mut self.journal {
            if changed_meanwhile {
                j.done(taken.journal_len);
            } else {
                j.reset();
            }
        }
    }

    /// Writes the journal records made since the last call (see [`Journal::flush`]).
    pub fn flush_journal(&mut self) {
        if let Some(j) = &mut self.journal {
            j.flush();
        }
    }

    pub fn journal_put(&mut self, ino: u64, path: &RepoPath, b: Binding, meta: EntryMeta) {
        self.puts.insert(ino);
        if let Some(j) = &mut self.journal {
            j.put(ino, path, b, meta);
        }
    }

    pub fn journal_meta(&mut self, ino: u64, path: &RepoPath, meta: EntryMeta) {
        if let Some(j) = &mut self.journal {
            j.meta(ino, path, meta);
        }
    }

    /// `ino` was renamed (or moved in or out of the branch).
    pub fn note_rename(&mut self, ino: u64) {
        self.renamed.insert(ino);
    }

    pub fn journal_mkdir(&mut self, path: &RepoPath) {
        if let Some(j) = &mut self.journal {
            j.mkdir(path);
        }
    }

    pub fn journal_delete(&mut self, path: &RepoPath) {
        if let Some(j) = &mut self.journal {
            j.delete(path);
        }
    }

    pub fn journal_rename(&mut self, from: &RepoPath, to: &RepoPath) {
        if let Some(j) = &mut self.journal {
            j.rename(from, to);
        }
    }
}

impl State {
    /// What recovery needs to know of an inode's content.
    pub(crate) fn binding(&self, ino: u64) -> Option<Binding> {
        Some(match &self.node(ino).ok()?.kind {
            Kind::File { content, exec } => match content {
                Content::Spill { spill, .. } => Binding::Spill(spill.number()?, *exec),
                Content::Stored { id, size } => Binding::Stored(*id, *size, *exec),
            },
            Kind::Symlink {
                target: Some(t), ..
            } => Binding::Target(t.clone()),
            Kind::Symlink { id, size, .. } => Binding::Symlink(*id, *size),
            Kind::Gitlink { id, size } => Binding::Gitlink(*id, *size),
            Kind::Special { kind } => Binding::Special(*kind),
            Kind::Dir { .. } | Kind::SnapRoot => return None,
        })
    }

    /// Periodic upkeep: changes that made no operation (scratch files only) do not age the
    /// next commit; the link-count cache stays bounded.
    pub(crate) fn pending_tick(&mut self) {
        if self.ops_empty() {
            self.pending.first = None;
        }
        if self.links.len() > LINKS_MAX {
            self.links.clear();
        }
    }

    /// Whether `ino` changed since the last commit made (content, creation, mode, rename):
    /// also while the commit holding that change is under way.
    pub(crate) fn changed_since_commit(&self, ino: u64) -> bool {
        let p = &self.pending;
        p.puts.contains(&ino)
            || p.renamed.contains(&ino)
            || p.committing_puts.contains(&ino)
            || p.committing_renamed.contains(&ino)
    }

    /// Journals a new content binding of an inode whose put is already journaled (in this
    /// commit's records or in those of the commit under way).
    pub(crate) fn journal_bind(&mut self, ino: u64) {
        if (self.pending.puts.contains(&ino) || self.pending.committing_puts.contains(&ino))
            && let Some(b) = self.binding(ino)
            && let Some(j) = &mut self.pending.journal
        {
            j.bind(ino, b);
        }
    }
}

/// Spill files no longer used, kept open and empty for the next file written: creating and
/// deleting one file per written file cost more than the write (the file system's inode
/// allocation). Safe for recovery: a spill file is let go only when its inode's content was
/// committed, or when its path was deleted or replaced by a change journaled after its put,
/// so a journal never needs the old content of a reused number.
#[derive(Debug, Default)]
pub(crate) struct SpillPool {
    free: Mutex<Vec<(File, PathBuf)>>,
}

/// Subdirectory counts of trees cached at most (then forgotten and counted again).
const LINKS_MAX: usize = 100_000;

/// Spill files kept for reuse at most.
const POOL_MAX: usize = 256;

impl SpillPool {
    /// Takes a free spill file (empty).
    pub fn take(&self) -> Option<(File, PathBuf)> {
        self.free.lock().ok()?.pop()
    }

    /// Keeps `file` for reuse after emptying it; false when it should be removed instead.
    pub fn put(&self, file: &File, path: &Path) -> bool {
        let Ok(mut free) = self.free.lock() else {
            return false;
        };
        // Empty, and its offset back at 0 (copies into a spill file use the offset).
        if free.len() >= POOL_MAX
            || file.set_len(0).is_err()
            || (&*file).seek(io::SeekFrom::Start(0)).is_err()
        {
            return false;
        }
        match file.try_clone() {
            Ok(f) => {
                free.push((f, path.to_path_buf()));
                true
            }
            Err(_) => false,
        }
    }
}

/// `fsync` of a file: commits everything pending if that file changed since the last
/// commit; returns at once if it did not (its last change is already committed).
///
/// Group commit: each commit waits for the repository's `fdatasync` while holding the mount's
/// lock, so processes that write and `fsync` files at the same time would queue one commit
/// each. The processes that asked for an `fsync` within [`GROUP_RECENT`] are remembered; when
/// others than the caller are among them, the first caller (the leader) waits until they have
/// asked too, or [`GROUP_WINDOW`] at most, then makes one commit for all. The others wait for
/// it and return, or commit themselves if their change came later or the commit failed. A
/// lone `fsync` never waits.
pub(crate) fn commit_for_fsync(shared: &Shared, ino: u64, pid: u32) -> Result<(), fuser::Errno> {
    if !shared.lock().changed_since_commit(ino) {
        return Ok(());
    }
    let group = &shared.group;
    let mut g = group.lock();
    let now = Instant::now();
    g.recent
        .retain(|(p, t)| *p != pid && now.duration_since(*t) < GROUP_RECENT);
    // Followers wait on the request workers: no more can arrive than there are workers left.
    let others = g.recent.len().min(GROUP_MAX_FOLLOWERS);
    g.recent.push((pid, now));
    if others == 0 {
        drop(g);
        return commit_if_changed(shared, ino);
    }
    if g.leader {
        // A follower: say so, and wait for the leader's commit.
        g.arrived += 1;
        group.cv.notify_all();
        let seen = g.done;
        let deadline = Instant::now() + GROUP_WINDOW * 4;
        while g.done == seen && Instant::now() < deadline {
            g = group.wait(g, deadline);
        }
        drop(g);
        return commit_if_changed(shared, ino);
    }
    // The leader: wait for the others that fsync'd lately, for a moment at most.
    g.leader = true;
    g.arrived = 0;
    let deadline = Instant::now() + GROUP_WINDOW;
    while g.arrived < others && Instant::now() < deadline {
        g = group.wait(g, deadline);
    }
    g.leader = false;
    drop(g);
    let res = commit_if_changed(shared, ino);
    let mut g = group.lock();
    g.done = g.done.wrapping_add(1);
    group.cv.notify_all();
    drop(g);
    res
}

fn commit_if_changed(shared: &Shared, ino: u64) -> Result<(), fuser::Errno> {
    // After a commit under way (it may hold the change); then commits if still needed.
    let commit = shared.commit_guard();
    let res = shared.commit_with(&commit, |st| st.changed_since_commit(ino));
    res.map(|_| ()).map_err(|e| {
        tracing::error!(error = %e, "commit on fsync failed");
        crate::state::store_errno(&e)
    })
}

/// How long a group commit's leader waits for the others at most.
const GROUP_WINDOW: Duration = Duration::from_millis(4);
/// Followers a leader waits for at most: the workers that answer `fsync` (`HeroFs::waits`)
/// but the leader's own.
const GROUP_MAX_FOLLOWERS: usize = crate::workers::WORKERS - 1;
/// Processes that asked for an `fsync` this recently are waited for.
const GROUP_RECENT: Duration = Duration::from_millis(20);

/// The state of group commits (see [`commit_for_fsync`]).
#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    state: Mutex<GroupState>,
    cv: std::sync::Condvar,
}

#[derive(Debug, Default)]
struct GroupState {
    /// A leader is waiting for others.
    leader: bool,
    /// Followers that arrived while the current leader waits.
    arrived: usize,
    /// Commits made by leaders so far.
    done: u64,
    /// Processes that asked for an `fsync` needing a commit lately, and when.
    recent: Vec<(u32, Instant)>,
}

impl GroupCommit {
    fn lock(&self) -> std::sync::MutexGuard<'_, GroupState> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Waits for a notification, until `deadline` at most.
    fn wait<'a>(
        &self,
        g: std::sync::MutexGuard<'a, GroupState>,
        deadline: Instant,
    ) -> std::sync::MutexGuard<'a, GroupState> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.cv.wait_timeout(g, left) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        }
    }
}

/// Escapes a branch name into one directory name (`/` and `%` as `%2F`, `%25`).
fn branch_key(branch: &str) -> String {
    let mut s = String::with_capacity(branch.len());
    for c in branch.chars() {
        match c {
            '/' => s.push_str("%2F"),
            '%' => s.push_str("%25"),
            c => s.push(c),
        }
    }
    s
}

/// The default spill root of a repository: `<repo>.spill/` beside it.
pub(crate) fn default_root(repo: &Path) -> PathBuf {
    let mut name = repo
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".spill");
    repo.with_file_name(name)
}

/// A mount's own spill directory and journal.
pub(crate) struct SpillArea {
    pub dir: PathBuf,
    pub journal: Journal,
}

/// Makes the spill directory of a new mount of `branch` under `root`, journal locked.
pub(crate) fn create_area(root: &Path, branch: &str) -> Result<SpillArea, DurabilityError> {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = root
        .join(branch_key(branch))
        .join(format!("{}-{nanos}", std::process::id()));
    // Owner-only, whatever the umask: the spill files hold what is written through the mount,
    // private files included (ADR 0022).
    hero_store::private::create_dir_all(&dir).map_err(io_err(&dir))?;
    let journal = Journal::create(&dir, branch)?;
    Ok(SpillArea { dir, journal })
}

/// Removes a clean mount's spill directory, then its branch directory and the root when
/// they are empty (other mounts may be using them).
pub(crate) fn remove_area(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "removing the spill directory");
    }
    let mut cur = dir.parent();
    for _ in 0..2 {
        let Some(d) = cur else { break };
        if std::fs::remove_dir(d).is_err() {
            break;
        }
        cur = d.parent();
    }
}

/// What the recovery at mount time did.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    /// Spill directories of dead mounts that were recovered and removed.
    pub dirs: usize,
    /// Recovery commits made (branch, new head).
    pub commits: Vec<(String, ObjectId)>,
}

/// Recovers every spill directory under `root` whose mount is gone: replays its journal onto
/// its branch as one commit, then removes it. Directories of live mounts (journal locked) are
/// left alone. A directory whose recovery commit fails is kept (and reported).
pub(crate) fn recover_all(
    repo: &Repo,
    root: &Path,
    sig: &Signature,
) -> Result<Recovered, DurabilityError> {
    let mut out = Recovered::default();
    let branches = match std::fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(root)(e)),
    };
    let mut first_err = None;
    for b in branches {
        let b = b.map_err(io_err(root))?;
        let bdir = b.path();
        if !b.file_type().map_err(io_err(&bdir))?.is_dir() {
            continue;
        }
        if is_old_layout(&bdir) {
            // `mount-<pid>-<nanos>/` of versions before the journal: nothing says what its
            // files were; removed once its process is gone.
            if !process_alive(&bdir) {
                tracing::warn!(dir = %bdir.display(), "spill directory of an older version removed");
                std::fs::remove_dir_all(&bdir).map_err(io_err(&bdir))?;
                out.dirs += 1;
            }
            continue;
        }
        let mounts = std::fs::read_dir(&bdir).map_err(io_err(&bdir))?;
        for m in mounts {
            let m = m.map_err(io_err(&bdir))?;
            let dir = m.path();
            if !m.file_type().map_err(io_err(&dir))?.is_dir() {
                continue;
            }
            match recover_one(repo, &dir, sig) {
                Ok(Some(head)) => {
                    out.dirs += 1;
                    if let Some(h) = head {
                        out.commits.push(h);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "recovery failed; kept for the next mount");
                    first_err.get_or_insert(e);
                }
            }
        }
        // Gone when it was the last one.
        let _ = std::fs::remove_dir(&bdir);
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Recovers one spill directory; `Ok(None)` when its mount is alive.
fn recover_one(
    repo: &Repo,
    dir: &Path,
    sig: &Signature,
) -> Result<Option<Option<(String, ObjectId)>>, DurabilityError> {
    let jpath = dir.join(JOURNAL);
    let mut file = match OpenOptions::new().read(true).write(true).open(&jpath) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // A mount that died before writing its journal, or one of an older version: no
            // record of what its files were. Leave it if its process still runs.
            if process_alive(dir) {
                return Ok(None);
            }
            tracing::warn!(dir = %dir.display(), "spill directory without a journal removed");
            std::fs::remove_dir_all(dir).map_err(io_err(dir))?;
            return Ok(Some(None));
        }
        Err(e) => return Err(io_err(&jpath)(e)),
    };
    if file.try_lock().is_err() {
        return Ok(None); // a live mount
    }
    let mut data = Vec::new();
    file.read_to_end(&mut data).map_err(io_err(&jpath))?;
    let recs = decode_journal(&data);
    let head = replay(repo, dir, &recs, sig).map_err(|source| DurabilityError::Recover {
        dir: dir.to_path_buf(),
        source,
    })?;
    std::fs::remove_dir_all(dir).map_err(io_err(dir))?;
    tracing::info!(dir = %dir.display(), ?head, "recovered the changes of a mount that died");
    Ok(Some(head))
}

/// A spill directory of the layout before the journal: `mount-<pid>-<nanos>` holding only
/// files (a branch directory of that name would hold directories).
fn is_old_layout(dir: &Path) -> bool {
    let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let Some(rest) = name.strip_prefix("mount-") else {
        return false;
    };
    let mut parts = rest.split('-');
    let digits =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !(digits(parts.next()) && digits(parts.next()) && parts.next().is_none()) {
        return false;
    }
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.flatten()
            .all(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
    })
}

/// Whether the process named by a spill directory `<pid>-<nanos>` (or an older
/// `mount-<pid>-<nanos>`) still runs.
fn process_alive(dir: &Path) -> bool {
    let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let name = name.strip_prefix("mount-").unwrap_or(name);
    let Some(pid) = name.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Replays journal records onto their branch in one commit; returns the branch and new head
/// when a commit was made.
fn replay(
    repo: &Repo,
    dir: &Path,
    recs: &[Rec],
    sig: &Signature,
) -> Result<Option<(String, ObjectId)>, hero_store::Error> {
    let Some(Rec::Branch(branch)) = recs.first() else {
        return Ok(None);
    };
    // The last binding of each inode is its content at the time of the crash, its last
    // metadata record its mode, owner and time.
    let mut bind: HashMap<u64, Binding> = HashMap::new();
    let mut metas: HashMap<u64, EntryMeta> = HashMap::new();
    for r in recs {
        match r {
            Rec::Put(ino, _, b) | Rec::Bind(ino, b) => {
                bind.insert(*ino, b.clone());
            }
            Rec::Meta(ino, _, m) => {
                metas.insert(*ino, *m);
            }
            _ => {}
        }
    }
    // Inodes whose metadata is recorded already (after their put or first metadata record).
    let mut met: HashSet<u64> = HashSet::new();
    let mut cs = repo.change_set(branch)?;
    let mut count = 0usize;
    let parse = |p: &[u8]| RepoPath::parse(p).map_err(hero_store::Error::Name);
    for r in &recs[1..] {
        let res = match r {
            Rec::Branch(_) | Rec::Bind(..) | Rec::Done(_) => continue,
            Rec::Meta(ino, path, _) => {
                // A directory's (files have theirs recorded with their put).
                match metas.get(ino) {
                    Some(m) if met.insert(*ino) => {
                        let path = parse(path)?;
                        if path.is_root() {
                            // The root is no tree's entry: its metadata goes in the commit.
                            cs.set_root_meta(*m);
                            Ok(())
                        } else {
                            cs.set_meta(&path, *m)
                        }
                    }
                    _ => continue,
                }
            }
            Rec::Put(ino, path, _) => {
                let path = parse(path)?;
                met.insert(*ino);
                let meta = metas.get(ino).copied();
                // Mode and owner as last recorded; the time too, except that a file being
                // written has its spill file's: the time of its last write (a time set with
                // `utimes` was set on the spill file as well).
                let with_meta = |cs: &mut hero_store::ChangeSet<'_>,
                                 kind: EntryKind,
                                 spill: Option<&File>|
                 -> Result<(), hero_store::Error> {
                    let Some(mut m) = meta else {
                        return Ok(());
                    };
                    if let Some(t) = spill.and_then(|f| f.metadata().ok()?.modified().ok()) {
                        m.mtime = Some(Timestamp::from_system_time(t));
                    }
                    cs.set_meta(&path, m.fitted_to(kind))
                };
                match bind.get(ino) {
                    Some(Binding::Spill(n, x)) => {
                        let p = dir.join(n.to_string());
                        match File::open(&p) {
                            Ok(f) => cs
                                .put_reader(&path, file_kind(*x), &f)
                                .map(|_| ())
                                .and_then(|()| with_meta(&mut cs, file_kind(*x), Some(&f))),
                            // Its file was dropped (unlinked and closed): a later record
                            // deletes the path.
                            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                            Err(source) => Err(hero_store::Error::Io { path: p, source }),
                        }
                    }
                    Some(Binding::Stored(id, size, x)) => cs
                        .put_entry(&path, file_kind(*x), *id, *size)
                        .and_then(|()| with_meta(&mut cs, file_kind(*x), None)),
                    Some(Binding::Target(t)) => cs
                        .put_bytes(&path, EntryKind::Symlink, t)
                        .map(|_| ())
                        .and_then(|()| with_meta(&mut cs, EntryKind::Symlink, None)),
                    Some(Binding::Symlink(id, size)) => cs
                        .put_entry(&path, EntryKind::Symlink, *id, *size)
                        .and_then(|()| with_meta(&mut cs, EntryKind::Symlink, None)),
                    Some(Binding::Gitlink(id, size)) => cs
                        .put_entry(&path, EntryKind::Gitlink, *id, *size)
                        .and_then(|()| with_meta(&mut cs, EntryKind::Gitlink, None)),
                    Some(Binding::Special(kind)) => cs
                        .put_special(&path, *kind)
                        .and_then(|()| with_meta(&mut cs, *kind, None)),
                    None => continue,
                }
            }
            Rec::Delete(p) => cs.delete(&parse(p)?),
            Rec::Rename(a, b) => cs.rename(&parse(a)?, &parse(b)?),
            Rec::Mkdir(p) => cs.mkdir(&parse(p)?),
        };
        match res {
            Ok(()) => count += 1,
            Err(e) if e.is_disk_full() => return Err(e),
            Err(e) => tracing::warn!(error = %e, "a recovered change no longer applies; skipped"),
        }
    }
    if cs.is_empty() {
        return Ok(None);
    }
    let msg = format!("mount: recovery of {count} changes not committed before the mount ended\n");
    let done = cs.commit(CommitMeta::new(sig.clone(), msg), Expect::Latest)?;
    Ok(done.created.then(|| (branch.clone(), done.id)))
}

fn file_kind(exec: bool) -> EntryKind {
    if exec {
        EntryKind::Executable
    } else {
        EntryKind::File
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_a_torn_tail_is_dropped() {
        let recs = vec![
            Rec::Branch("team/main".into()),
            Rec::Put(7, b"a/b".to_vec(), Binding::Spill(3, true)),
            Rec::Bind(7, Binding::Stored(ObjectId::of(b"x"), 1, false)),
            Rec::Put(8, b"l".to_vec(), Binding::Target(b"../t".to_vec())),
            Rec::Put(9, b"s".to_vec(), Binding::Symlink(ObjectId::of(b"t"), 1)),
            Rec::Put(10, b"g".to_vec(), Binding::Gitlink(ObjectId::of(b"g"), 0)),
            Rec::Put(11, b"p".to_vec(), Binding::Special(EntryKind::Fifo)),
            Rec::Put(12, b"n".to_vec(), Binding::Special(EntryKind::CharDevice)),
            Rec::Delete(b"a/b".to_vec()),
            Rec::Rename(b"c".to_vec(), b"d/e".to_vec()),
            Rec::Mkdir(b"d".to_vec()),
            Rec::Meta(
                7,
                b"a/b".to_vec(),
                EntryMeta {
                    mode: Some(0o2750),
                    owner: Some(Owner { uid: 1, gid: 2 }),
                    mtime: Some(Timestamp {
                        secs: -5,
                        nanos: 999_999_999,
                    }),
                    atime: Some(Timestamp { secs: 9, nanos: 1 }),
                    link: Some(LinkGroup(77)),
                    rdev: None,
                },
            ),
            Rec::Meta(
                12,
                b"n".to_vec(),
                EntryMeta {
                    rdev: Some(259),
                    ..EntryMeta::NONE
                },
            ),
            Rec::Meta(8, b"l".to_vec(), EntryMeta::NONE),
        ];
        let mut data = MAGIC.to_vec();
        for r in &recs {
            data.extend_from_slice(&r.encode());
        }
        assert_eq!(decode_journal(&data), recs);
        let torn = &data[..data.len() - 3];
        assert_eq!(decode_journal(torn), recs[..recs.len() - 1]);
        assert!(decode_journal(b"garbage").is_empty());
    }

    #[test]
    fn records_before_a_done_marker_are_dropped() {
        let mut data = MAGIC.to_vec();
        data.extend_from_slice(&Rec::Branch("main".into()).encode());
        data.extend_from_slice(&Rec::Mkdir(b"old".to_vec()).encode());
        let mark = data.len() as u64;
        data.extend_from_slice(&Rec::Mkdir(b"new".to_vec()).encode());
        data.extend_from_slice(&Rec::Done(mark).encode());
        data.extend_from_slice(&Rec::Delete(b"later".to_vec()).encode());
        assert_eq!(
            decode_journal(&data),
            vec![
                Rec::Branch("main".into()),
                Rec::Mkdir(b"new".to_vec()),
                Rec::Delete(b"later".to_vec()),
            ]
        );
    }

    #[test]
    fn branch_keys_are_one_name() {
        assert_eq!(branch_key("team/a%b"), "team%2Fa%25b");
    }
}
