//! The repository handle.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use redb::{ConcurrencyMode, Database, ReadOnlyTable, ReadableDatabase, ReadableTable};

use crate::db::{
    self, CHAINS, FORMAT_VERSION, KV, META, OBJECTS, OLDEST_FORMAT, REFLOG, REFS, WriteCtx, XREF,
};
use crate::error::{DbResultExt as _, Error, Result};
use crate::id::{ObjectId, hex_prefix};
use crate::object::{Commit, EntryKind, Tag, TargetKind, Tree, TreeEntry};
use crate::path::RepoPath;
use crate::record::ObjType;
use crate::refs::{BRANCH_PREFIX, RefMove, RefValue, TAG_PREFIX, branch_ref, tag_ref};

/// The setting that records the default branch.
pub const DEFAULT_BRANCH_KEY: &str = "default-branch";
/// How much memory one repository handle may keep for its caches and large writes.
///
/// A short command (an import, a clone) reads and writes much once and benefits from large
/// caches; a long-running process (the mount, the share, the daemon) shares the machine with
/// the services it serves and keeps its resident memory bounded with
/// [`MemoryBudget::RESIDENT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    /// redb's cache of file pages (reads and the dirty pages of a write transaction).
    pub page_cache: usize,
    /// Versions decoded along delta chains, kept so the next read of an older version stops
    /// early.
    pub decoded_cache: usize,
    /// Bytes of a large file's new records written per transaction while it is stored.
    pub write_batch: usize,
}

impl MemoryBudget {
    /// For commands that run, work and exit: 64 MiB of pages, 32 MiB of decoded versions,
    /// 64 MiB per large-file transaction.
    pub const DEFAULT: MemoryBudget = MemoryBudget {
        page_cache: 64 << 20,
        decoded_cache: 32 << 20,
        write_batch: 64 << 20,
    };
    /// For processes that stay (the mount, the share, the daemon): 16 MiB of pages, 8 MiB of
    /// decoded versions, 16 MiB per large-file transaction.
    pub const RESIDENT: MemoryBudget = MemoryBudget {
        page_cache: 16 << 20,
        decoded_cache: 8 << 20,
        write_batch: 16 << 20,
    };
}

impl Default for MemoryBudget {
    fn default() -> Self {
        MemoryBudget::DEFAULT
    }
}

/// An open repository: one redb file, shared safely by any number of processes.
///
/// Cheap to share between threads (`&Repo` is enough for everything).
pub struct Repo {
    /// The open database; replaced by a fresh handle after an I/O error (redb refuses every
    /// transaction of a handle that saw one).
    db: std::sync::RwLock<Database>,
    budget: MemoryBudget,
    path: PathBuf,
    pub(crate) cache: db::SharedCache,
    /// Who is told of write transactions ([`Repo::subscribe`]).
    hub: std::sync::Arc<crate::notify::Hub>,
    /// Held while a branch is merged and moved ([`Repo::merging`]).
    merging: std::sync::Mutex<()>,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo").field("path", &self.path).finish()
    }
}

fn builder(cache_bytes: usize) -> redb::Builder {
    let mut b = Database::builder();
    b.set_concurrency_mode(ConcurrencyMode::MultiWriter);
    b.set_cache_size(cache_bytes);
    b
}

/// A table of a read transaction, `None` when the repository has none (an older format).
pub(crate) fn optional_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &redb::ReadTransaction,
    def: redb::TableDefinition<K, V>,
) -> Result<Option<ReadOnlyTable<K, V>>> {
    match txn.open_table(def) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(Error::db(e)),
    }
}

/// Reads one length-prefixed part written by [`Repo::compact`]'s spill.
fn read_spilled(input: &mut impl std::io::Read, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut len = [0u8; 8];
    input.read_exact(&mut len)?;
    buf.resize(u64::from_le_bytes(len) as usize, 0);
    input.read_exact(buf)
}

/// Entries larger than this are left in place by compaction's rewrite (a large chunk fills
/// pages of its own; rewriting it would only copy it).
const REWRITE_MAX: usize = 64 << 10;

impl Repo {
    /// Creates a new repository file at `path` (its parent directory must exist).
    pub fn init(path: impl AsRef<Path>) -> Result<Repo> {
        let path = path.as_ref().to_path_buf();
        if path.exists() {
            return Err(Error::RepositoryExists(path));
        }
        // Created here, mode 0600 whatever the umask, before redb initialises it: the file
        // holds every version of every file, some of them private (ADR 0022).
        match crate::private::create_new(&path) {
            Ok(f) => drop(f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::RepositoryExists(path));
            }
            Err(e) => return Err(Error::io(&path, e)),
        }
        let budget = MemoryBudget::DEFAULT;
        let db = match builder(budget.page_cache).create(&path) {
            Ok(db) => db,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(Error::db(e));
            }
        };
        let txn = db.begin_write().db_err()?;
        {
            let mut meta = txn.open_table(META).db_err()?;
            meta.insert("format", FORMAT_VERSION.to_le_bytes().as_slice())
                .db_err()?;
            meta.insert("generation", 0u64.to_le_bytes().as_slice())
                .db_err()?;
            let id = ObjectId::of(
                format!("{}:{:?}", path.display(), std::time::SystemTime::now()).as_bytes(),
            );
            meta.insert("repo-id", id.0.as_slice()).db_err()?;
            txn.open_table(OBJECTS).db_err()?;
            txn.open_table(CHAINS).db_err()?;
            txn.open_table(REFS).db_err()?;
            txn.open_table(REFLOG).db_err()?;
            txn.open_table(KV).db_err()?;
            txn.open_table(db::PIECES).db_err()?;
            txn.open_table(db::SEGMENTS).db_err()?;
        }
        txn.commit().db_err()?;
        tracing::info!(path = %path.display(), "initialized repository");
        Ok(Repo {
            db: std::sync::RwLock::new(db),
            budget,
            path,
            cache: db::RawCache::shared(budget.decoded_cache),
            hub: Default::default(),
            merging: Default::default(),
        })
    }

    /// Opens an existing repository with the [default budget](MemoryBudget::DEFAULT).
    pub fn open(path: impl AsRef<Path>) -> Result<Repo> {
        Repo::open_with_budget(path, MemoryBudget::DEFAULT)
    }

    /// Opens an existing repository with a page cache of `cache_bytes` and otherwise the
    /// default budget. A process that mostly writes once (an import) needs little: the cache
    /// only holds pages read again.
    pub fn open_with_cache(path: impl AsRef<Path>, cache_bytes: usize) -> Result<Repo> {
        Repo::open_with_budget(
            path,
            MemoryBudget {
                page_cache: cache_bytes,
                ..MemoryBudget::DEFAULT
            },
        )
    }

    /// Opens an existing repository whose caches and large writes stay within `budget`.
    pub fn open_with_budget(path: impl AsRef<Path>, budget: MemoryBudget) -> Result<Repo> {
        let path = path.as_ref().to_path_buf();
        if !path.exists() {
            return Err(Error::NoRepository(path));
        }
        let db = builder(budget.page_cache)
            .open(&path)
            .map_err(|e| match e {
                redb::DatabaseError::Storage(redb::StorageError::Corrupted(reason)) => {
                    Error::NotARepository {
                        path: path.clone(),
                        reason,
                    }
                }
                other => Error::db(other),
            })?;
        let repo = Repo {
            db: std::sync::RwLock::new(db),
            budget,
            path,
            cache: db::RawCache::shared(budget.decoded_cache),
            hub: Default::default(),
            merging: Default::default(),
        };
        repo.check_format()?;
        // A repository made by an older version (0644): owner-only from now on (ADR 0022).
        crate::private::tighten_logged(&repo.path, "the repository file");
        Ok(repo)
    }

    /// The memory budget this handle was opened with.
    pub fn budget(&self) -> MemoryBudget {
        self.budget
    }

    /// Opens the repository, creating it first if there is none.
    pub fn open_or_init(path: impl AsRef<Path>) -> Result<Repo> {
        if path.as_ref().exists() {
            Repo::open(path)
        } else {
            Repo::init(path)
        }
    }

    fn check_format(&self) -> Result<()> {
        let txn = self.db().begin_read().db_err()?;
        let not_repo = |reason: &str| Error::NotARepository {
            path: self.path.clone(),
            reason: reason.to_owned(),
        };
        let meta = match txn.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Err(not_repo("no meta table")),
            Err(e) => return Err(Error::db(e)),
        };
        let fmt = meta
            .get("format")
            .db_err()?
            .ok_or_else(|| not_repo("no format version"))?;
        let bytes: [u8; 4] = fmt
            .value()
            .try_into()
            .map_err(|_| not_repo("bad format version"))?;
        let found = u32::from_le_bytes(bytes);
        if found > FORMAT_VERSION {
            return Err(Error::FormatTooNew {
                found,
                supported: FORMAT_VERSION,
            });
        }
        if found < OLDEST_FORMAT {
            return Err(not_repo(&format!("unknown format version {found}")));
        }
        if found < FORMAT_VERSION {
            tracing::debug!(
                path = %self.path.display(),
                found,
                "older format: read as it is; the first write records format {FORMAT_VERSION}"
            );
        }
        Ok(())
    }

    /// Gives the file's free space back to the file system: copy-on-write leaves free pages
    /// behind every transaction, and a big import leaves many. First the object and
    /// cross-reference tables are rewritten in key order (small records inserted in hash order
    /// leave B-tree leaves about half full), each in one write transaction, so other processes
    /// see the same content throughout; then redb moves the pages and truncates the file.
    ///
    /// Never makes the file larger: a table is rewritten only when the file's free space can
    /// hold its new copy (the old pages are free only once the rewrite commits). Leaves nothing
    /// behind when killed: the scratch file is unlinked as soon as it is created, and an
    /// interrupted rewrite is an uncommitted transaction, redone by the next compaction (every
    /// import and `upgrade` ends with one). Page moves need no other process to be reading;
    /// when one is, they are skipped and the next compaction does them.
    /// Costs a pass over the whole repository; returns the file's size before and after.
    pub fn compact(&mut self) -> Result<(u64, u64)> {
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let before = size(&self.path);
        // A scratch file of a build that named it, killed midway.
        let _ = std::fs::remove_file(self.path.with_extension("compact-scratch"));
        let t0 = std::time::Instant::now();
        self.pack()?;
        let packed = t0.elapsed();
        self.rewrite_in_key_order(OBJECTS)?;
        self.rewrite_in_key_order(XREF)?;
        self.rewrite_in_key_order(CHAINS)?;
        self.rewrite_in_key_order(REFS)?;
        self.rewrite_in_key_order(REFLOG)?;
        let rewritten = t0.elapsed();
        // Each pass moves what it can toward the start; stop when one gains nothing.
        for _ in 0..8 {
            match self.db_mut().compact() {
                Ok(true) => {}
                Ok(false) => break,
                Err(redb::CompactionError::TransactionInProgress) => {
                    tracing::debug!("another process is reading: pages not moved this time");
                    break;
                }
                Err(e) => return Err(Error::db(e)),
            }
        }
        tracing::debug!(
            "compacted {} from {before} to {} bytes: pack {packed:?}, key-order rewrite \
             {:?}, page moves {:?}",
            self.path.display(),
            size(&self.path),
            rewritten - packed,
            t0.elapsed() - rewritten
        );
        Ok((before, size(&self.path)))
    }

    /// Packs loose small records, and the live records of mostly dead or small segments, into
    /// compressed segments (module `segment`), in one write transaction: other processes see
    /// every record throughout, loose before and packed after. [`Repo::compact`] runs it first.
    /// The transaction needs room for the new segments and the rewritten `objects-1` pages
    /// before the old ones are freed, so the file may grow while it runs when its free space
    /// is short; the compaction that follows gives the space back.
    pub fn pack(&self) -> Result<crate::PackReport> {
        let txn = self.db().begin_write().db_err()?;
        let report = crate::segment::pack(&txn, &self.cache)?;
        if report == crate::PackReport::default() {
            txn.abort().db_err()?;
            return Ok(report);
        }
        {
            let mut meta = txn.open_table(META).db_err()?;
            if db::stored_format(&meta)? < FORMAT_VERSION {
                meta.insert("format", FORMAT_VERSION.to_le_bytes().as_slice())
                    .db_err()?;
            }
        }
        txn.commit().db_err()?;
        tracing::info!(
            records = report.records,
            segments_written = report.segments_written,
            segments_removed = report.segments_removed,
            bytes_before = report.bytes_before,
            bytes_after = report.bytes_after,
            "packed small records into segments"
        );
        self.hub.fire();
        Ok(report)
    }

    /// Bytes of the file not in use by any page: what a rewrite can take without growing it.
    fn free_bytes(&self) -> Result<u64> {
        let txn = self.db().begin_write().db_err()?;
        let st = txn.stats().db_err()?;
        txn.abort().db_err()?;
        let used = st.allocated_pages().saturating_mul(st.page_size() as u64);
        let len = std::fs::metadata(&self.path)
            .map(|m| m.len())
            .map_err(|source| Error::Io {
                path: self.path.clone(),
                source,
            })?;
        Ok(len.saturating_sub(used))
    }

    /// Rewrites a table's small entries in key order inside one write transaction, spilling
    /// them to an unlinked scratch file beside the repository so memory stays bounded. Entries
    /// of more than [`REWRITE_MAX`] bytes fill pages of their own and are left where they are,
    /// so the cost follows the small records, not the file's size. Skipped when the table's
    /// leaves are nearly full already, or when its new copy would not fit in the file's free
    /// space (the file would grow).
    fn rewrite_in_key_order<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: redb::TableDefinition<K, V>,
    ) -> Result<()>
    where
        for<'a> K::SelfType<'a>: std::borrow::Borrow<K::SelfType<'a>>,
        for<'a> V::SelfType<'a>: std::borrow::Borrow<V::SelfType<'a>>,
    {
        use redb::{ReadableTableMetadata, TableHandle};
        use std::io::{BufReader, BufWriter, Seek, Write};
        let io = |path: &Path, e: std::io::Error| Error::Io {
            path: path.to_path_buf(),
            source: e,
        };
        let (pages, unused) = {
            let txn = self.db().begin_read().db_err()?;
            match txn.open_table(def) {
                Ok(t) => {
                    let st = t.stats().db_err()?;
                    let pages = st.stored_bytes() + st.metadata_bytes() + st.fragmented_bytes();
                    (pages, st.fragmented_bytes())
                }
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
                Err(e) => return Err(Error::db(e)),
            }
        };
        if unused * 8 < pages {
            tracing::debug!(table = def.name(), "leaves nearly full: no rewrite");
            return Ok(());
        }
        let free = self.free_bytes()?;
        if free < pages + pages / 8 {
            tracing::debug!(
                table = def.name(),
                pages,
                free,
                "a rewrite would grow the file: skipped"
            );
            return Ok(());
        }
        let scratch_path = self.path.with_extension("compact-scratch");
        let mut scratch = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(crate::private::FILE_MODE)
            .open(&scratch_path)
            .map_err(|e| io(&scratch_path, e))?;
        // Unlinked at once: the kernel frees it when this process ends, however it ends.
        std::fs::remove_file(&scratch_path).map_err(|e| io(&scratch_path, e))?;
        let txn = self.db().begin_write().db_err()?;
        let mut entries = 0u64;
        {
            let mut out = BufWriter::new(&mut scratch);
            let table = txn.open_table(def).db_err()?;
            for item in table.iter().db_err()? {
                let (k, v) = item.db_err()?;
                let vv = v.value();
                let vb = V::as_bytes(&vv);
                let vb = vb.as_ref();
                if vb.len() > REWRITE_MAX {
                    continue;
                }
                let kv = k.value();
                let kb = K::as_bytes(&kv);
                let kb = kb.as_ref();
                for part in [kb, vb] {
                    out.write_all(&(part.len() as u64).to_le_bytes())
                        .and_then(|()| out.write_all(part))
                        .map_err(|e| io(&scratch_path, e))?;
                }
                entries += 1;
            }
            out.flush().map_err(|e| io(&scratch_path, e))?;
        }
        {
            let mut table = txn.open_table(def).db_err()?;
            // First take the small entries out (the scratch file holds them), then put them
            // back in key order so they fill whole leaves.
            let (mut kb, mut vb) = (Vec::new(), Vec::new());
            for pass in 0..2 {
                scratch.rewind().map_err(|e| io(&scratch_path, e))?;
                let mut input = BufReader::new(&mut scratch);
                for _ in 0..entries {
                    read_spilled(&mut input, &mut kb).map_err(|e| io(&scratch_path, e))?;
                    read_spilled(&mut input, &mut vb).map_err(|e| io(&scratch_path, e))?;
                    if pass == 0 {
                        table.remove(K::from_bytes(&kb)).db_err()?;
                    } else {
                        table
                            .insert(K::from_bytes(&kb), V::from_bytes(&vb))
                            .db_err()?;
                    }
                }
            }
        }
        txn.commit().db_err()?;
        Ok(())
    }

    /// Serialises merges into branches within this process: whoever computes a merge and then
    /// moves the branch with a compare-and-swap holds this meanwhile, so that ten sessions
    /// integrating at once (a daemon pulling from every peer) take turns instead of making
    /// merges that lose the race and are made again. Writers in other processes still race,
    /// and the compare-and-swap still decides.
    pub fn merging(&self) -> std::sync::MutexGuard<'_, ()> {
        self.merging.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The repository file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A consistent read-only view of the repository as it is now.
    pub fn view(&self) -> Result<View> {
        let txn = self.db().begin_read().db_err()?;
        let pieces = optional_table(&txn, db::PIECES)?;
        let segments = optional_table(&txn, db::SEGMENTS)?;
        Ok(View {
            objects: txn.open_table(OBJECTS).db_err()?,
            pieces,
            segments,
            refs: txn.open_table(REFS).db_err()?,
            reflog: txn.open_table(REFLOG).db_err()?,
            meta: txn.open_table(META).db_err()?,
            kv: txn.open_table(KV).db_err()?,
            cache: self.cache.clone(),
            txn,
        })
    }

    /// Runs `f` in one write transaction: all of its writes land, or none do. Bumps the
    /// generation counter that watchers poll.
    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut WriteCtx<'_>) -> Result<R>) -> Result<R> {
        let res = self.write_once(f);
        if let Err(e) = &res
            && e.is_disk_full()
        {
            self.give_back_space();
        }
        res
    }

    /// The database handle.
    pub(crate) fn db(&self) -> std::sync::RwLockReadGuard<'_, Database> {
        self.db
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn db_mut(&mut self) -> &mut Database {
        self.db
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// After a transaction failed on a full disk: redb refuses every further transaction of
    /// the handle that saw the error, and the file keeps the length the failed transaction gave
    /// it. A fresh handle replaces it; it compacts when no other transaction is open, and
    /// empty commits trim the file (redb gives back up to half of the trailing free space per
    /// commit) until it no longer shrinks, so the disk has the room back at once and this
    /// `Repo` keeps working.
    fn give_back_space(&self) {
        let len = || std::fs::metadata(&self.path).map(|m| m.len()).ok();
        let start = len();
        {
            let mut db = self
                .db
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match builder(self.budget.page_cache).open(&self.path) {
                Ok(mut fresh) => {
                    // Compaction commits with redb's most thorough trimming; it may be refused
                    // (another process is reading), and the empty commits below still trim.
                    if let Err(e) = fresh.compact() {
                        tracing::debug!(error = %e, "no compaction after a full disk");
                    }
                    *db = fresh;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not reopen the repository after a full disk");
                    return;
                }
            }
        }
        let mut last = start;
        for _ in 0..64 {
            let trimmed = self
                .db()
                .begin_write()
                .db_err()
                .and_then(|t| t.commit().db_err());
            if let Err(e) = trimmed {
                tracing::warn!(error = %e, "could not trim the file after a full disk");
                break;
            }
            let now = len();
            if now >= last {
                break;
            }
            last = now;
        }
        tracing::info!(
            path = %self.path.display(),
            before = ?start,
            after = ?last,
            "gave back the space of a transaction that failed on a full disk"
        );
    }

    fn write_once<R>(&self, f: impl FnOnce(&mut WriteCtx<'_>) -> Result<R>) -> Result<R> {
        let txn = self.db().begin_write().db_err()?;
        db::move_legacy_chains(&txn)?;
        let out = {
            let mut ctx = WriteCtx {
                objects: txn.open_table(OBJECTS).db_err()?,
                chains: txn.open_table(CHAINS).db_err()?,
                refs: txn.open_table(REFS).db_err()?,
                reflog: txn.open_table(REFLOG).db_err()?,
                kv: txn.open_table(KV).db_err()?,
                xref: txn.open_table(XREF).db_err()?,
                pieces: txn.open_table(db::PIECES).db_err()?,
                segments: txn.open_table(db::SEGMENTS).db_err()?,
                gc: txn.open_table(db::GC_CANDIDATES).db_err()?,
                gc_pending: false,
                reused: Default::default(),
            };
            ctx.gc_pending = !redb::ReadableTableMetadata::is_empty(&ctx.gc).db_err()?;
            let out = f(&mut ctx)?;
            ctx.unlist_reused()?;
            let mut meta = txn.open_table(META).db_err()?;
            let gen_now = match meta.get("generation").db_err()? {
                Some(g) => read_u64(g.value()),
                None => 0,
            };
            meta.insert("generation", (gen_now + 1).to_le_bytes().as_slice())
                .db_err()?;
            // Whatever this transaction wrote may use format-2 layouts: an older repository
            // says so from the same transaction on (an older build then refuses it clearly
            // instead of misreading it).
            if db::stored_format(&meta)? < FORMAT_VERSION {
                meta.insert("format", FORMAT_VERSION.to_le_bytes().as_slice())
                    .db_err()?;
            }
            out
        };
        txn.commit().db_err()?;
        self.hub.fire();
        Ok(out)
    }

    /// Calls `f` after write transactions of this process and of every other process using
    /// the file (watched with inotify), until the returned subscription is dropped. Calls may
    /// be spurious; `f` runs on the committing or the watching thread, so it must return
    /// quickly and must not write to the repository (module [`crate::notify`]). Where the file
    /// cannot be watched, [`Subscription::watched`](crate::Subscription::watched) is false and
    /// the caller looks for changes every [`Subscription::fallback`](crate::Subscription::fallback).
    pub fn subscribe(&self, f: impl Fn() + Send + Sync + 'static) -> crate::Subscription {
        crate::notify::subscribe(&self.hub, &self.path, f)
    }

    /// A counter bumped by every write transaction of any process: compare it to notice
    /// changes (after a call from [`Repo::subscribe`]).
    pub fn generation(&self) -> Result<u64> {
        self.view()?.generation()
    }

    /// The id that identifies this repository (made at init).
    pub fn repo_id(&self) -> Result<ObjectId> {
        let v = self.view()?;
        let g = v.meta.get("repo-id").db_err()?;
        match g {
            Some(g) if g.value().len() == 32 => {
                let mut a = [0u8; 32];
                a.copy_from_slice(g.value());
                Ok(ObjectId(a))
            }
            _ => Err(Error::NotARepository {
                path: self.path.clone(),
                reason: "no repository id".to_owned(),
            }),
        }
    }

    // ---- refs ----

    /// The commit a branch points at.
    pub fn branch_head(&self, branch: &str) -> Result<Option<ObjectId>> {
        self.view()?.branch_head(branch)
    }

    /// All branches with their heads, sorted by name.
    pub fn branches(&self) -> Result<Vec<(String, ObjectId)>> {
        self.view()?.branches()
    }

    /// All tags, sorted by name.
    pub fn tags(&self) -> Result<Vec<(String, RefValue)>> {
        self.view()?.tags()
    }

    /// The branch commands use when none is named (git's HEAD); see [`View::default_branch`].
    pub fn default_branch(&self) -> Result<String> {
        self.view()?.default_branch()
    }

    /// Records the default branch. The branch need not exist yet (a new repository's first
    /// commit creates it).
    /// Refuses hero's reserved branches ([`Error::ReservedBranch`]).
    pub fn set_default_branch(&self, branch: &str) -> Result<()> {
        crate::refs::ordinary_branch_ref(branch)?;
        self.set_setting(DEFAULT_BRANCH_KEY, Some(branch.as_bytes()))
    }

    /// Whether a default branch was recorded (by `init`, an import, a clone or the user).
    pub fn has_default_branch(&self) -> Result<bool> {
        Ok(self.setting(DEFAULT_BRANCH_KEY)?.is_some())
    }

    /// Moves (or creates, or with `new == None` deletes) a branch if it still points at
    /// `expected`. Compare-and-swap: a branch that moved meanwhile is never overwritten.
    /// Refuses hero's reserved branches ([`Error::ReservedBranch`]).
    pub fn update_branch(
        &self,
        branch: &str,
        expected: Option<ObjectId>,
        new: Option<ObjectId>,
        reason: &str,
    ) -> Result<()> {
        crate::refs::ordinary_branch_ref(branch)?;
        self.update_branch_reserved(branch, expected, new, reason)
    }

    /// [`Repo::update_branch`] that also moves hero's reserved branches (`hero/...`): only for
    /// the code that owns such a branch (hero-sync's membership, after its checks).
    pub fn update_branch_reserved(
        &self,
        branch: &str,
        expected: Option<ObjectId>,
        new: Option<ObjectId>,
        reason: &str,
    ) -> Result<()> {
        let name = branch_ref(branch)?;
        if let Some(id) = new {
            self.expect_type(&id, ObjType::Commit, "commit")?;
        }
        self.write(|w| {
            w.cas_ref(
                &name,
                expected.map(RefValue::Commit),
                new.map(RefValue::Commit),
                reason,
            )
        })
    }

    /// Moves a branch whatever it points at now (recorded in the reflog, so nothing is lost).
    /// Refuses hero's reserved branches ([`Error::ReservedBranch`]).
    pub fn force_branch(&self, branch: &str, new: Option<ObjectId>, reason: &str) -> Result<()> {
        crate::refs::ordinary_branch_ref(branch)?;
        self.force_branch_reserved(branch, new, reason)
    }

    /// [`Repo::force_branch`] that also moves hero's reserved branches (`hero/...`): only for
    /// the code that owns such a branch.
    pub fn force_branch_reserved(
        &self,
        branch: &str,
        new: Option<ObjectId>,
        reason: &str,
    ) -> Result<()> {
        let name = branch_ref(branch)?;
        if let Some(id) = new {
            self.expect_type(&id, ObjType::Commit, "commit")?;
        }
        self.write(|w| {
            let cur = w.get_ref(&name)?;
            w.set_ref(&name, cur, new.map(RefValue::Commit), reason)
        })
    }

    /// Creates a tag; fails if it exists. With `annotation`, writes an annotated tag object.
    pub fn create_tag(
        &self,
        name: &str,
        target: ObjectId,
        annotation: Option<Tag>,
    ) -> Result<RefValue> {
        let refname = tag_ref(name)?;
        let value = match annotation {
            None => {
                self.expect_type(&target, ObjType::Commit, "commit")?;
                RefValue::Commit(target)
            }
            Some(tag) => {
                let raw = tag.encode();
                let id = ObjectId::of(&raw);
                self.write(|w| w.put(ObjType::Tag, &id, &raw, None).map(|_| ()))?;
                RefValue::Tag(id)
            }
        };
        self.write(|w| {
            if w.get_ref(&refname)?.is_some() {
                return Err(Error::RefExists(refname.clone()));
            }
            w.set_ref(&refname, None, Some(value), "tag")
        })?;
        Ok(value)
    }

    /// Deletes a tag.
    pub fn delete_tag(&self, name: &str) -> Result<()> {
        let refname = tag_ref(name)?;
        self.write(|w| {
            let cur = w.get_ref(&refname)?;
            if cur.is_none() {
                return Err(Error::UnknownRevision(name.to_owned()));
            }
            w.set_ref(&refname, cur, None, "tag delete")
        })
    }

    /// Sets any ref (`refs/...`) with compare-and-swap; for importers and sync. It takes
    /// reserved branches too: the caller decides (the importer never writes them, sync only
    /// after its membership checks).
    pub fn cas_ref(
        &self,
        refname: &str,
        expected: Option<RefValue>,
        new: Option<RefValue>,
        reason: &str,
    ) -> Result<()> {
        check_full_ref(refname)?;
        self.write(|w| w.cas_ref(refname, expected, new, reason))
    }

    /// The recorded moves of a ref, oldest first.
    pub fn reflog(&self, refname: &str) -> Result<Vec<RefMove>> {
        self.view()?.reflog(refname)
    }

    fn expect_type(&self, id: &ObjectId, ty: ObjType, name: &'static str) -> Result<()> {
        let v = self.view()?;
        match db::object_type(&v.source(), id)? {
            Some(t) if t == ty => Ok(()),
            Some(_) => Err(Error::WrongType {
                id: *id,
                expected: name,
            }),
            None => Err(Error::Missing(*id)),
        }
    }

    // ---- settings ----

    /// Reads a setting kept in the repository (namespaced key, for instance `sync/remotes/x`).
    pub fn setting(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let v = self.view()?;
        Ok(v.kv.get(key).db_err()?.map(|g| g.value().to_vec()))
    }

    /// Writes (or with `None` removes) a setting.
    pub fn set_setting(&self, key: &str, value: Option<&[u8]>) -> Result<()> {
        self.write(|w| {
            match value {
                Some(v) => {
                    w.kv.insert(key, v).db_err()?;
                }
                None => {
                    w.kv.remove(key).db_err()?;
                }
            }
            Ok(())
        })
    }

    /// Reads a cross-reference (binary key; see [`crate::Batch::set_xref`]).
    pub fn xref(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.view()?.xref(key)
    }

    /// All cross-references whose key starts with `prefix`, sorted by key.
    pub fn xrefs_with_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.view()?.xrefs_with_prefix(prefix)
    }

    /// All settings whose key starts with `prefix`, sorted.
    pub fn settings_with_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let v = self.view()?;
        let mut out = Vec::new();
        for item in v.kv.range(prefix..).db_err()? {
            let (k, val) = item.db_err()?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_owned(), val.value().to_vec()));
        }
        Ok(out)
    }

    // ---- objects, shortcuts over a fresh view ----

    /// Resolves a revision to a commit id; see [`View::resolve`].
    pub fn resolve(&self, rev: &str) -> Result<ObjectId> {
        self.view()?.resolve(rev)
    }

    /// Reads a commit.
    pub fn commit(&self, id: &ObjectId) -> Result<Commit> {
        self.view()?.commit(id)
    }

    /// Reads a tree.
    pub fn tree(&self, id: &ObjectId) -> Result<Tree> {
        self.view()?.tree(id)
    }

    /// Whether an object is stored.
    pub fn has_object(&self, id: &ObjectId) -> Result<bool> {
        Ok(self.view()?.objects.get(&id.0).db_err()?.is_some())
    }
}

fn check_full_ref(refname: &str) -> Result<()> {
    let rest = refname
        .strip_prefix("refs/")
        .ok_or_else(|| Error::RefName {
            name: refname.to_owned(),
            reason: "does not start with refs/",
        })?;
    crate::refs::check_ref_name(rest)
}

pub(crate) fn read_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    let n = b.len().min(8);
    a[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(a)
}

/// A consistent read-only view (one read transaction) of the repository.
pub struct View {
    pub(crate) txn: redb::ReadTransaction,
    pub(crate) objects: ReadOnlyTable<&'static [u8; 32], &'static [u8]>,
    /// Pieces of large records (absent in a format-1 repository never written since).
    pub(crate) pieces: Option<ReadOnlyTable<u64, &'static [u8]>>,
    /// Segments of packed small records (absent before format 4).
    pub(crate) segments: Option<ReadOnlyTable<u64, &'static [u8]>>,
    pub(crate) refs: ReadOnlyTable<&'static str, &'static [u8]>,
    reflog: ReadOnlyTable<(&'static str, u64), &'static [u8]>,
    meta: ReadOnlyTable<&'static str, &'static [u8]>,
    kv: ReadOnlyTable<&'static str, &'static [u8]>,
    cache: db::SharedCache,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("View")
    }
}

impl View {
    /// Reads a cross-reference (binary key; see [`crate::Batch::set_xref`]).
    pub fn xref(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let table = match self.txn.open_table(XREF) {
            Ok(t) => t,
            // Repositories that never stored one have no table yet.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(Error::db(e)),
        };
        Ok(table.get(key).db_err()?.map(|g| g.value().to_vec()))
    }

    /// All cross-references whose key starts with `prefix`, sorted by key.
    pub fn xrefs_with_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let table = match self.txn.open_table(XREF) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(Error::db(e)),
        };
        let mut out = Vec::new();
        for item in table.range(prefix..).db_err()? {
            let (k, v) = item.db_err()?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// The generation counter as of this view.
    pub fn generation(&self) -> Result<u64> {
        Ok(self
            .meta
            .get("generation")
            .db_err()?
            .map(|g| read_u64(g.value()))
            .unwrap_or(0))
    }

    /// The tables records are read from.
    pub(crate) fn source(&self) -> db::ReadObjects<'_> {
        db::Objects {
            objects: &self.objects,
            pieces: self.pieces.as_ref(),
            segments: self.segments.as_ref(),
        }
    }

    pub(crate) fn raw(&self, id: &ObjectId) -> Result<(ObjType, Vec<u8>)> {
        db::load_raw_cached(&self.source(), id, &self.cache)
    }

    /// The type recorded for an object, if it is stored.
    pub fn object_type(&self, id: &ObjectId) -> Result<Option<ObjType>> {
        db::object_type(&self.source(), id)
    }

    /// Reads a commit.
    pub fn commit(&self, id: &ObjectId) -> Result<Commit> {
        let (ty, raw) = self.raw(id)?;
        if ty != ObjType::Commit {
            return Err(Error::WrongType {
                id: *id,
                expected: "commit",
            });
        }
        Commit::decode(&raw).map_err(|e| Error::decode(*id, e))
    }

    /// Reads a tree.
    pub fn tree(&self, id: &ObjectId) -> Result<Tree> {
        let (ty, raw) = self.raw(id)?;
        if ty != ObjType::Tree {
            return Err(Error::WrongType {
                id: *id,
                expected: "tree",
            });
        }
        Tree::decode(&raw).map_err(|e| Error::decode(*id, e))
    }

    /// Reads an annotated tag.
    pub fn tag(&self, id: &ObjectId) -> Result<Tag> {
        let (ty, raw) = self.raw(id)?;
        if ty != ObjType::Tag {
            return Err(Error::WrongType {
                id: *id,
                expected: "tag",
            });
        }
        Tag::decode(&raw).map_err(|e| Error::decode(*id, e))
    }

    /// The commit a branch points at.
    pub fn branch_head(&self, branch: &str) -> Result<Option<ObjectId>> {
        let name = branch_ref(branch)?;
        Ok(self.get_ref(&name)?.map(|v| v.id()))
    }

    /// Reads any ref.
    pub fn get_ref(&self, refname: &str) -> Result<Option<RefValue>> {
        match self.refs.get(refname).db_err()? {
            Some(g) => Ok(Some(crate::refs::decode_ref(refname, g.value())?)),
            None => Ok(None),
        }
    }

    /// All refs under a prefix, sorted by name.
    pub fn refs_with_prefix(&self, prefix: &str) -> Result<Vec<(String, RefValue)>> {
        let mut out = Vec::new();
        for item in self.refs.range(prefix..).db_err()? {
            let (k, v) = item.db_err()?;
            let name = k.value();
            if !name.starts_with(prefix) {
                break;
            }
            out.push((name.to_owned(), crate::refs::decode_ref(name, v.value())?));
        }
        Ok(out)
    }

    /// All branches with their heads.
    pub fn branches(&self) -> Result<Vec<(String, ObjectId)>> {
        Ok(self
            .refs_with_prefix(BRANCH_PREFIX)?
            .into_iter()
            .map(|(n, v)| (n[BRANCH_PREFIX.len()..].to_owned(), v.id()))
            .collect())
    }

    /// The branch commands use when none is named (git's HEAD): the one recorded, else
    /// `main` if it exists or nothing does, else `master` if it exists, else the first branch
    /// by name.
    pub fn default_branch(&self) -> Result<String> {
        if let Some(v) = self.kv.get(DEFAULT_BRANCH_KEY).db_err()?
            && let Ok(name) = std::str::from_utf8(v.value())
            && crate::refs::check_ref_name(name).is_ok()
        {
            return Ok(name.to_owned());
        }
        let branches = self.branches()?;
        for guess in ["main", "master"] {
            if branches.iter().any(|(b, _)| b == guess) {
                return Ok(guess.to_owned());
            }
        }
        // Hero's own branches (`hero/...`, the membership) are never the default.
        Ok(branches
            .into_iter()
            .map(|(b, _)| b)
            .find(|b| !crate::refs::is_reserved_branch(b))
            .unwrap_or_else(|| "main".to_owned()))
    }

    /// All tags.
    pub fn tags(&self) -> Result<Vec<(String, RefValue)>> {
        Ok(self
            .refs_with_prefix(TAG_PREFIX)?
            .into_iter()
            .map(|(n, v)| (n[TAG_PREFIX.len()..].to_owned(), v))
            .collect())
    }

    /// The recorded moves of a ref, oldest first.
    pub fn reflog(&self, refname: &str) -> Result<Vec<RefMove>> {
        let mut out = Vec::new();
        for item in self
            .reflog
            .range((refname, 0u64)..=(refname, u64::MAX))
            .db_err()?
        {
            let (_, v) = item.db_err()?;
            out.push(RefMove::decode(refname, v.value())?);
        }
        Ok(out)
    }

    /// Follows annotated tags to the commit they name.
    pub fn peel(&self, value: RefValue) -> Result<ObjectId> {
        let mut v = value;
        for _ in 0..64 {
            match v {
                RefValue::Commit(id) => return Ok(id),
                RefValue::Tag(id) => {
                    let tag = self.tag(&id)?;
                    v = match tag.target_kind {
                        TargetKind::Commit => RefValue::Commit(tag.target),
                        TargetKind::Tag => RefValue::Tag(tag.target),
                        _ => {
                            return Err(Error::WrongType {
                                id: tag.target,
                                expected: "commit",
                            });
                        }
                    };
                }
            }
        }
        Err(Error::corrupt(value.id(), "tag chain too long"))
    }

    /// Resolves a revision to a commit: a branch, a tag, a full or unique abbreviated commit
    /// id, each optionally followed by `~N` (N-th first parent) or `^` (first parent).
    pub fn resolve(&self, rev: &str) -> Result<ObjectId> {
        let (base, mut back) = split_ancestry(rev)?;
        let mut id = self.resolve_base(base, rev)?;
        while back > 0 {
            let c = self.commit(&id)?;
            id = *c
                .parents
                .first()
                .ok_or_else(|| Error::UnknownRevision(rev.to_owned()))?;
            back -= 1;
        }
        Ok(id)
    }

    fn resolve_base(&self, base: &str, rev: &str) -> Result<ObjectId> {
        if base == "HEAD" && self.get_ref(base)?.is_none() {
            let branch = self.default_branch()?;
            let name = format!("{BRANCH_PREFIX}{branch}");
            return match self.get_ref(&name)? {
                Some(v) => self.peel(v),
                None => {
                    self.check_absent(&[name])?;
                    Err(Error::UnknownRevision(rev.to_owned()))
                }
            };
        }
        if let Some(v) = self.get_ref(base)? {
            return self.peel(v);
        }
        if crate::refs::check_ref_name(base).is_ok() {
            if let Some(v) = self.get_ref(&format!("{BRANCH_PREFIX}{base}"))? {
                return self.peel(v);
            }
            if let Some(v) = self.get_ref(&format!("{TAG_PREFIX}{base}"))? {
                return self.peel(v);
            }
        }
        if base.len() >= 4 && base.len() <= 64 && base.bytes().all(|c| c.is_ascii_hexdigit()) {
            let id = self.resolve_prefix(base)?;
            return match self.object_type(&id)? {
                Some(ObjType::Commit) => Ok(id),
                Some(ObjType::Tag) => self.peel(RefValue::Tag(id)),
                _ => Err(Error::WrongType {
                    id,
                    expected: "commit",
                }),
            };
        }
        let mut names = vec![base.to_owned()];
        if crate::refs::check_ref_name(base).is_ok() {
            names.push(format!("{BRANCH_PREFIX}{base}"));
            names.push(format!("{TAG_PREFIX}{base}"));
        }
        self.check_absent(&names)?;
        Err(Error::UnknownRevision(rev.to_owned()))
    }

    /// A ref that is not in the ref table although its reflog's last move left it pointing
    /// somewhere: the table's page is damaged (a changed byte in a name moves the ref out of
    /// reach), not a name that never existed.
    fn check_absent(&self, names: &[String]) -> Result<()> {
        for name in names {
            let last = self
                .reflog
                .range((name.as_str(), 0u64)..=(name.as_str(), u64::MAX))
                .db_err()?
                .next_back();
            if let Some(item) = last {
                let (_, v) = item.db_err()?;
                if RefMove::decode(name, v.value())?.new.is_some() {
                    return Err(Error::db(redb::StorageError::Corrupted(format!(
                        "{name} is missing from the ref table, but its reflog says it exists"
                    ))));
                }
            }
        }
        Ok(())
    }

    /// Expands a hex prefix (4 to 64 digits) to the one object id it starts.
    pub fn resolve_prefix(&self, hex: &str) -> Result<ObjectId> {
        let unknown = || Error::UnknownRevision(hex.to_owned());
        let even = &hex[..hex.len() - hex.len() % 2];
        let bytes = hex_prefix(even).ok_or_else(unknown)?;
        let mut lo = [0u8; 32];
        lo[..bytes.len()].copy_from_slice(&bytes);
        let mut found = None;
        for item in self.objects.range::<&[u8; 32]>(&lo..).db_err()? {
            let (k, _) = item.db_err()?;
            let id = ObjectId(*k.value());
            if !id.to_hex().starts_with(&hex.to_ascii_lowercase()) {
                if id.0[..bytes.len()] != bytes[..] {
                    break;
                }
                continue;
            }
            if found.is_some() {
                return Err(Error::AmbiguousRevision(hex.to_owned()));
            }
            found = Some(id);
        }
        found.ok_or_else(unknown)
    }

    /// The entry at `path` in the tree `root` (`None` if there is nothing there). The root
    /// path gives a directory entry for the root tree itself.
    pub fn entry_at(&self, root: &ObjectId, path: &RepoPath) -> Result<Option<TreeEntry>> {
        let mut cur = TreeEntry {
            name: Vec::new(),
            kind: EntryKind::Dir,
            id: *root,
            size: 0,
            meta: crate::object::EntryMeta::NONE,
        };
        for name in path.names() {
            if cur.kind != EntryKind::Dir {
                return Ok(None);
            }
            let tree = self.tree(&cur.id)?;
            match tree.get(name) {
                Some(e) => cur = e.clone(),
                None => return Ok(None),
            }
        }
        Ok(Some(cur))
    }

    /// The entry at `path` in a commit's tree.
    pub fn entry_in_commit(&self, commit: &ObjectId, path: &RepoPath) -> Result<Option<TreeEntry>> {
        let c = self.commit(commit)?;
        self.entry_at(&c.tree, path)
    }

    /// Lists the directory at `path` in a commit.
    pub fn list_dir(&self, commit: &ObjectId, path: &RepoPath) -> Result<Tree> {
        match self.entry_in_commit(commit, path)? {
            Some(e) if e.kind == EntryKind::Dir => self.tree(&e.id),
            Some(_) => Err(Error::NotADirectory(path.to_string())),
            None => Err(Error::NoSuchPath(path.to_string())),
        }
    }

    /// Reads a whole file into memory; refuses files larger than `limit` bytes.
    pub fn read_file(&self, id: &ObjectId, limit: u64) -> Result<Vec<u8>> {
        let mut r = self.open_file(id)?;
        if r.len() > limit {
            return Err(Error::FileTooLarge);
        }
        let mut out = Vec::with_capacity(r.len() as usize);
        std::io::Read::read_to_end(&mut r, &mut out).map_err(Error::Input)?;
        Ok(out)
    }
}

fn split_ancestry(rev: &str) -> Result<(&str, u32)> {
    let mut base = rev;
    let mut back = 0u32;
    loop {
        if let Some(b) = base.strip_suffix('^') {
            base = b;
            back += 1;
        } else if let Some(pos) = base.rfind('~') {
            let n = &base[pos + 1..];
            let n: u32 = if n.is_empty() {
                1
            } else {
                n.parse()
                    .map_err(|_| Error::UnknownRevision(rev.to_owned()))?
            };
            back += n;
            base = &base[..pos];
        } else {
            break;
        }
    }
    Ok((base, back))
}
