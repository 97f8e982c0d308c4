//! Rebuilding a repository from a damaged file.
//!
//! [`repair`] never writes the damaged file: it copies it, lets redb check and repair the copy
//! (every page checksum verified, the secondary commit slot taken when the primary does not
//! verify, the allocator state rebuilt), and when even that copy does not open, opens a fresh
//! copy as it is. It then reads the copy table by table: a table that fails part way is read
//! again from its other end, so one damaged page loses the entries on that page and no more; a
//! table that does not open at all is skipped. What it read goes into a new repository file,
//! where every object is decoded and checked against its BLAKE3 id (a delta through its
//! chain) and dropped when it does not verify; refs whose target did not survive are dropped
//! too. The report says what was lost: objects (by id where the key was readable, by count
//! where the page was not), the commits the surviving refs, reflog and parents name that are
//! gone, the refs and reflog entries. [`repair_in_place`] puts the new file in place of the
//! old one with one rename, once it is complete, and keeps the damaged file beside it.
//!
//! redb may panic on a damaged page where it should return an error; every read of the
//! damaged copy runs under [`std::panic::catch_unwind`] and a panic counts as a damaged page.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::db::{CHAINS, GC_CANDIDATES, KV, META, OBJECTS, PIECES, REFLOG, REFS, SEGMENTS, XREF};
use crate::error::{DbResultExt as _, Error, Result};
use crate::id::{IdSet, ObjectId};
use crate::record::ObjType;
use crate::refs::RefMove;
use crate::repo::Repo;

/// How the damaged file was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// redb's check verified every page checksum of the copy, or repaired it from the
    /// secondary commit slot: what was read is what was last committed intact.
    Checked,
    /// The latest commit slot did not verify: the copy was opened at the commit before it,
    /// checked and repaired by redb. What the database's last transaction wrote is lost
    /// (objects, refs and reflog entries it added are not in the report's counts).
    PreviousCommit,
    /// The check failed; the copy was opened as it is and read as far as its pages allow.
    Unchecked,
    /// The copy did not open at all: nothing could be read.
    Unopenable,
}

/// What was read of one table of the damaged file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRead {
    /// The table's name in the file.
    pub name: &'static str,
    /// Entries the table says it holds, when its header was readable.
    pub expected: Option<u64>,
    /// Entries read.
    pub read: u64,
    /// Why reading stopped short, if it did.
    pub error: Option<String>,
}

/// What [`repair`] kept and what was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// How the damaged file was opened.
    pub opened: Opened,
    /// Each table of the damaged file, as far as it was read.
    pub tables: Vec<TableRead>,
    /// Objects kept: each verified against its id.
    pub objects_kept: u64,
    /// Objects whose key was readable but whose content does not verify: dropped.
    pub objects_dropped: Vec<ObjectId>,
    /// Objects on pages that could not be read at all (their ids unknown): the object table's
    /// count minus the entries read.
    pub objects_unreadable: u64,
    /// Commits named by a kept ref, a reflog entry or a kept commit's parents that are gone.
    pub commits_lost: Vec<ObjectId>,
    /// Objects a kept commit's trees name that are gone (what `verify` reports missing).
    pub objects_missing: Vec<ObjectId>,
    /// Refs kept.
    pub refs_kept: u64,
    /// Refs dropped because their target did not survive: name and target.
    pub refs_lost: Vec<(String, ObjectId)>,
    /// Refs on unreadable pages or with undecodable values (their names unknown or kept in
    /// `refs_lost` when the value was readable).
    pub refs_unreadable: u64,
    /// Refs the ref table lacked and the reflog's last move restored.
    pub refs_restored: Vec<String>,
    /// Pairs of a ref (kept) that no reflog entry names and a reflog name the ref table lacks,
    /// with the same target: one of the two names has a damaged byte.
    pub refs_ambiguous: Vec<(String, String)>,
    /// Reflog entries kept.
    pub reflog_kept: u64,
    /// Reflog entries lost (unreadable or undecodable).
    pub reflog_lost: u64,
    /// Whether the repository's id survived (peers recognise the repository by it).
    pub repo_id_kept: bool,
}

impl RepairReport {
    /// Whether nothing at all was lost.
    pub fn nothing_lost(&self) -> bool {
        self.opened == Opened::Checked
            && self.objects_dropped.is_empty()
            && self.objects_unreadable == 0
            && self.commits_lost.is_empty()
            && self.objects_missing.is_empty()
            && self.refs_lost.is_empty()
            && self.refs_unreadable == 0
            && self.refs_restored.is_empty()
            && self.refs_ambiguous.is_empty()
            && self.reflog_lost == 0
            && self.repo_id_kept
    }
}

/// Raw entries read from one table.
type Entries<K> = Vec<(K, Vec<u8>)>;

/// Runs `f`, turning a panic inside redb into a "damaged page" error message.
fn guarded<T>(
    f: impl FnOnce() -> std::result::Result<T, String>,
) -> std::result::Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a damaged page".to_owned());
            Err(format!(
                "the database engine failed on a damaged page: {what}"
            ))
        }
    }
}

/// Reads every entry of a table it can: forward until an entry fails, then backward from the
/// end until one fails (so one damaged page costs only its own entries), skipping the table if
/// it does not open.
fn read_table<K, V, T>(
    db: &Database,
    name: &'static str,
    def: TableDefinition<'static, K, V>,
    key: impl Fn(K::SelfType<'_>) -> T,
    value: impl Fn(V::SelfType<'_>) -> Vec<u8>,
) -> (TableRead, Entries<T>)
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
    T: Ord + Clone,
{
    let mut out: BTreeMap<T, Vec<u8>> = BTreeMap::new();
    let mut expected = None;
    let mut error = None;
    let res = guarded(|| {
        let txn = db.begin_read().map_err(|e| e.to_string())?;
        let table = match txn.open_table(def) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        };
        expected = table.len().ok();
        let mut stopped = None;
        match table.iter() {
            Ok(iter) => {
                for item in iter {
                    match item {
                        Ok((k, v)) => {
                            out.insert(key(k.value()), value(v.value()));
                        }
                        Err(e) => {
                            stopped = Some(e.to_string());
                            break;
                        }
                    }
                }
            }
            Err(e) => stopped = Some(e.to_string()),
        }
        if let Some(why) = stopped {
            error = Some(why);
            let back = guarded(|| {
                let iter = table.iter().map_err(|e| e.to_string())?;
                for item in iter.rev() {
                    let (k, v) = item.map_err(|e| e.to_string())?;
                    let k = key(k.value());
                    if out.contains_key(&k) {
                        break;
                    }
                    out.insert(k, value(v.value()));
                }
                Ok(())
            });
            if let Err(e) = back {
                tracing::debug!(table = name, error = %e, "reading backward stopped too");
            }
        }
        Ok(())
    });
    if let Err(e) = res {
        error.get_or_insert(e);
    }
    let read = out.len() as u64;
    if expected.is_some_and(|n| n != read) && error.is_none() {
        error = Some("fewer entries than the table's count".to_owned());
    }
    (
        TableRead {
            name,
            expected,
            read,
            error,
        },
        out.into_iter().collect(),
    )
}

/// The first bytes of every redb file (redb's documented file format).
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// Where the two commit slots start (128 bytes each).
const COMMIT_SLOTS: [u64; 2] = [64, 192];

/// Restores redb's magic number when a byte of it is damaged (it is the same in every file),
/// and a damaged byte of a commit slot, found as the one change that makes the slot's
/// checksum verify again (redb's documented file format).
fn restore_magic(scratch: &Path) -> std::io::Result<()> {
    use std::io::{Read, Seek, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(scratch)?;
    let mut head = [0u8; 9];
    if f.read_exact(&mut head).is_err() {
        return Ok(());
    }
    if head != REDB_MAGIC {
        f.seek(std::io::SeekFrom::Start(0))?;
        f.write_all(&REDB_MAGIC)?;
    }
    for at in COMMIT_SLOTS {
        let mut slot = [0u8; SLOT_LEN];
        f.seek(std::io::SeekFrom::Start(at))?;
        if f.read_exact(&mut slot).is_err() || slot_verifies(&slot) {
            continue;
        }
        if let Some(fixed) = fix_slot(&slot) {
            tracing::info!(
                slot = at,
                "a damaged byte in a commit slot found by its checksum"
            );
            f.seek(std::io::SeekFrom::Start(at))?;
            f.write_all(&fixed)?;
        }
    }
    Ok(())
}

/// A commit slot's length; its last 16 bytes are the XXH3-128 (seed 0) of the bytes before.
const SLOT_LEN: usize = 128;
const SLOT_SUM: usize = SLOT_LEN - 16;

fn slot_verifies(slot: &[u8; SLOT_LEN]) -> bool {
    let mut sum = [0u8; 16];
    sum.copy_from_slice(&slot[SLOT_SUM..]);
    xxhash_rust::xxh3::xxh3_128(&slot[..SLOT_SUM]) == u128::from_le_bytes(sum)
}

/// The slot with one byte changed so that it verifies, if exactly one such change exists
/// (one damaged byte, in the content or in the checksum).
fn fix_slot(slot: &[u8; SLOT_LEN]) -> Option<[u8; SLOT_LEN]> {
    let mut found = None;
    for i in 0..SLOT_LEN {
        for b in 0..=255u8 {
            if b == slot[i] {
                continue;
            }
            let mut c = *slot;
            c[i] = b;
            if slot_verifies(&c) {
                if found.is_some() {
                    return None;
                }
                found = Some(c);
            }
        }
    }
    found
}

/// Offset of redb's "god byte", after the magic number: which commit slot is primary, and
/// whether the file needs recovery or was written with two-phase commits.
const GOD_BYTE: u64 = 9;
/// Its bits (redb's documented file format).
const RECOVERY_REQUIRED: u8 = 2;
const TWO_PHASE_COMMIT: u8 = 4;

/// Marks the copy as needing recovery and not two-phase committed, so redb picks whichever
/// commit slot verifies.
fn god_byte_for_recovery(scratch: &Path) -> std::io::Result<()> {
    use std::io::{Read, Seek, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(scratch)?;
    let mut b = [0u8; 1];
    f.seek(std::io::SeekFrom::Start(GOD_BYTE))?;
    f.read_exact(&mut b)?;
    b[0] = (b[0] | RECOVERY_REQUIRED) & !TWO_PHASE_COMMIT;
    f.seek(std::io::SeekFrom::Start(GOD_BYTE))?;
    f.write_all(&b)
}

/// Opens a copy of `damaged` at `scratch`: checked and repaired by redb if it can, else as it
/// is.
fn open_copy(damaged: &Path, scratch: &Path) -> Result<(Opened, Option<Database>)> {
    let copy = || -> Result<()> {
        std::fs::copy(damaged, scratch).map_err(|e| Error::io(scratch, e))?;
        restore_magic(scratch).map_err(|e| Error::io(scratch, e))
    };
    copy()?;
    let checked = guarded(|| {
        let mut b = Database::builder();
        b.set_check_integrity_on_open(true);
        b.open(scratch).map_err(|e| e.to_string())
    });
    match checked {
        Ok(db) => return Ok((Opened::Checked, Some(db))),
        Err(e) => tracing::info!(error = %e, "the checked open failed"),
    }
    // A damaged commit slot: redb trusts the primary slot of a two-phase commit and refuses the
    // file when it does not verify. Without the two-phase flag, and asked to recover, it takes
    // the secondary slot (the commit before) and checks every page from there.
    copy()?;
    god_byte_for_recovery(scratch).map_err(|e| Error::io(scratch, e))?;
    let previous = guarded(|| {
        let mut b = Database::builder();
        b.set_check_integrity_on_open(true);
        b.open(scratch).map_err(|e| e.to_string())
    });
    match previous {
        Ok(db) => return Ok((Opened::PreviousCommit, Some(db))),
        Err(e) => tracing::info!(error = %e, "the secondary commit slot does not open either"),
    }
    copy()?;
    let plain = guarded(|| Database::builder().open(scratch).map_err(|e| e.to_string()));
    match plain {
        Ok(db) => Ok((Opened::Unchecked, Some(db))),
        Err(e) => {
            tracing::warn!(error = %e, "the damaged file does not open at all");
            Ok((Opened::Unopenable, None))
        }
    }
}

/// Reads what can be read of the damaged file `damaged` and writes it, verified, into a new
/// repository at `into` (which must not exist). `damaged` is only read; a scratch copy is made
/// beside `into` and removed afterwards.
pub fn repair(damaged: &Path, into: &Path) -> Result<RepairReport> {
    if !damaged.exists() {
        return Err(Error::NoRepository(damaged.to_path_buf()));
    }
    let scratch = sibling(into, "scratch");
    let _ = std::fs::remove_file(&scratch);
    let result = repair_via(damaged, &scratch, into);
    let _ = std::fs::remove_file(&scratch);
    result
}

fn repair_via(damaged: &Path, scratch: &Path, into: &Path) -> Result<RepairReport> {
    let (opened, db) = open_copy(damaged, scratch)?;
    let mut tables = Vec::new();
    let id32 = |k: &[u8; 32]| *k;
    let bytes = |v: &[u8]| v.to_vec();
    let (mut objects, mut pieces, mut refs, mut reflog, mut meta, mut kv, mut xref) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let (mut chains, mut gc, mut segments) = (Vec::new(), Vec::new(), Vec::new());
    if let Some(db) = &db {
        let (t, e) = read_table(db, "objects-1", OBJECTS, id32, bytes);
        tables.push(t);
        objects = e;
        let (t, e) = read_table(db, "pieces-2", PIECES, |k: u64| k, bytes);
        tables.push(t);
        pieces = e;
        let (t, e) = read_table(db, "segments-4", SEGMENTS, |k: u64| k, bytes);
        tables.push(t);
        segments = e;
        let (t, e) = read_table(db, "refs-1", REFS, |k: &str| k.to_owned(), bytes);
        tables.push(t);
        refs = e;
        let (t, e) = read_table(
            db,
            "reflog-1",
            REFLOG,
            |(n, s): (&str, u64)| (n.to_owned(), s),
            bytes,
        );
        tables.push(t);
        reflog = e;
        let (t, e) = read_table(db, "meta-1", META, |k: &str| k.to_owned(), bytes);
        tables.push(t);
        meta = e;
        let (t, e) = read_table(db, "kv-1", KV, |k: &str| k.to_owned(), bytes);
        tables.push(t);
        kv = e;
        let (t, e) = read_table(db, "xref-1", XREF, |k: &[u8]| k.to_vec(), bytes);
        tables.push(t);
        xref = e;
        let (t, e) = read_table(
            db,
            "chains-4",
            CHAINS,
            |k: u64| k,
            |v: u32| v.to_le_bytes().to_vec(),
        );
        tables.push(t);
        chains = e;
        // A repository last written by an older format keeps them under whole ids.
        let (t, e) = read_table(
            db,
            "chains-1",
            crate::db::LEGACY_CHAINS,
            |k: &[u8; 32]| crate::db::chain_key(&ObjectId(*k)),
            |v: u32| v.to_le_bytes().to_vec(),
        );
        if t.read > 0 || t.error.is_some() {
            tables.push(t);
        }
        chains.extend(e);
        let (t, e) = read_table(db, "gc-2", GC_CANDIDATES, id32, |v: u64| {
            v.to_le_bytes().to_vec()
        });
        tables.push(t);
        gc = e;
    }
    drop(db);
    let expected = |name: &str| {
        tables
            .iter()
            .find(|t| t.name == name)
            .and_then(|t| t.expected)
    };
    let objects_unreadable = expected("objects-1")
        .unwrap_or(0)
        .saturating_sub(objects.len() as u64);
    let refs_expected = expected("refs-1").unwrap_or(0);
    let reflog_expected = expected("reflog-1").unwrap_or(0);

    let repo = Repo::init(into)?;
    let repo_id = meta
        .iter()
        .find(|(k, v)| k == "repo-id" && v.len() == 32)
        .map(|(_, v)| v.clone());
    let repo_id_kept = repo_id.is_some();
    // Everything read, as it was; what does not verify is taken out below.
    repo.write(|w| {
        for (k, v) in &pieces {
            w.pieces.insert(*k, v.as_slice()).db_err()?;
        }
        for (k, v) in &segments {
            w.segments.insert(*k, v.as_slice()).db_err()?;
        }
        for (k, v) in &objects {
            w.objects.insert(k, v.as_slice()).db_err()?;
        }
        for (k, v) in &kv {
            w.kv.insert(k.as_str(), v.as_slice()).db_err()?;
        }
        for (k, v) in &xref {
            w.xref.insert(k.as_slice(), v.as_slice()).db_err()?;
        }
        Ok(())
    })?;
    if let Some(id) = &repo_id {
        let txn = repo.db().begin_write().db_err()?;
        {
            let mut m = txn.open_table(META).db_err()?;
            m.insert("repo-id", id.as_slice()).db_err()?;
        }
        txn.commit().db_err()?;
    }
    // Every object must decode and hash to its id (a delta through its whole chain).
    let mut dropped = Vec::new();
    {
        let view = repo.view()?;
        for id in crate::db::storage_order(&view.objects)? {
            let ok = match view.raw(&id) {
                Ok((ObjType::Manifest, _)) => view
                    .open_file(&id)
                    .and_then(|mut r| r.content_id())
                    .is_ok_and(|got| got == id),
                Ok(_) => true,
                Err(_) => false,
            };
            if !ok {
                dropped.push(id);
            }
        }
    }
    let dropped_set: IdSet = dropped.iter().copied().collect();
    let kept = |id: &ObjectId| {
        objects.binary_search_by(|(k, _)| k.cmp(&id.0)).is_ok() && !dropped_set.contains(id)
    };
    // The reflog records every move of every ref: where its last move leaves a ref that the
    // ref table lacks, the table's page was damaged (a page that did not read), and the ref
    // comes back from the reflog. When a ref of the table that the reflog never named holds the
    // same target, one of the two names carries a damaged byte and nothing tells which: the
    // table's stays, and both are reported.
    let mut last_moves: BTreeMap<&str, RefMove> = BTreeMap::new();
    for ((name, _), v) in &reflog {
        if let Ok(m) = RefMove::decode(name, v) {
            last_moves.insert(name.as_str(), m);
        }
    }
    let in_table: std::collections::BTreeSet<&str> = refs.iter().map(|(n, _)| n.as_str()).collect();
    let mut from_reflog: Vec<(String, Vec<u8>)> = Vec::new();
    let mut misnamed: Vec<(String, String)> = Vec::new();
    for (name, m) in &last_moves {
        let Some(target) = m.new else { continue };
        if in_table.contains(name) {
            continue;
        }
        let value = crate::refs::encode_ref(&target);
        if let Some((other, _)) = refs
            .iter()
            .find(|(n, v)| *v == value && !last_moves.contains_key(n.as_str()))
        {
            misnamed.push((other.clone(), (*name).to_owned()));
            continue;
        }
        from_reflog.push(((*name).to_owned(), value));
    }
    let refs_restored: Vec<String> = from_reflog.iter().map(|(n, _)| n.clone()).collect();
    let refs_read_count = refs.len() as u64;
    let refs: Vec<(String, Vec<u8>)> = refs.into_iter().chain(from_reflog).collect();
    let mut refs_lost = Vec::new();
    let mut refs_kept = Vec::new();
    let mut refs_undecodable = 0u64;
    for (name, v) in &refs {
        match crate::refs::decode_ref(name, v) {
            Ok(r) if kept(&r.id()) => refs_kept.push((name.clone(), v.clone(), r.id())),
            Ok(r) => refs_lost.push((name.clone(), r.id())),
            Err(_) => refs_undecodable += 1,
        }
    }
    let mut reflog_kept = Vec::new();
    let mut named: Vec<ObjectId> = Vec::new();
    for ((name, seq), v) in &reflog {
        if let Ok(m) = RefMove::decode(name, v) {
            named.extend(m.new.iter().chain(m.old.iter()).map(|r| r.id()));
            reflog_kept.push(((name.clone(), *seq), v.clone()));
        }
    }
    repo.write(|w| {
        for id in &dropped {
            w.objects.remove(&id.0).db_err()?;
        }
        for (name, v, _) in &refs_kept {
            w.refs.insert(name.as_str(), v.as_slice()).db_err()?;
        }
        for ((name, seq), v) in &reflog_kept {
            w.reflog
                .insert((name.as_str(), *seq), v.as_slice())
                .db_err()?;
        }
        // Depths are kept under id prefixes: all of them stay (a depth of a lost base only
        // bounds chains that no longer grow).
        for (k, v) in &chains {
            if let Ok(b) = <[u8; 4]>::try_from(v.as_slice()) {
                w.chains.insert(*k, u32::from_le_bytes(b)).db_err()?;
            }
        }
        for (k, v) in &gc {
            if kept(&ObjectId(*k))
                && let Ok(b) = <[u8; 8]>::try_from(v.as_slice())
            {
                w.gc.insert(k, u64::from_le_bytes(b)).db_err()?;
            }
        }
        Ok(())
    })?;
    // Commits named by what survived and gone: walk from the refs, the reflog and parents.
    let view = repo.view()?;
    let mut commits_lost = Vec::new();
    let mut seen = IdSet::default();
    let mut stack: Vec<ObjectId> = refs_kept.iter().map(|(_, _, id)| *id).collect();
    stack.extend(named);
    stack.extend(refs_lost.iter().map(|(_, id)| *id));
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        match view.object_type(&id)? {
            None => commits_lost.push(id),
            Some(ObjType::Commit) => {
                if let Ok(c) = view.commit(&id) {
                    stack.extend(c.parents.iter().copied());
                }
            }
            Some(ObjType::Tag) => {
                if let Ok(t) = view.tag(&id) {
                    stack.push(t.target);
                }
            }
            Some(_) => {}
        }
    }
    drop(view);
    commits_lost.sort();
    let verified = repo.verify(None)?;
    let mut objects_missing: Vec<ObjectId> = verified.missing.iter().map(|(id, _)| *id).collect();
    objects_missing.sort();
    dropped.sort();
    let refs_read = refs_read_count;
    Ok(RepairReport {
        opened,
        tables,
        objects_kept: objects.len() as u64 - dropped.len() as u64,
        objects_dropped: dropped,
        objects_unreadable,
        commits_lost,
        objects_missing,
        refs_kept: refs_kept.len() as u64,
        refs_lost,
        refs_unreadable: refs_expected.saturating_sub(refs_read) + refs_undecodable,
        refs_restored,
        refs_ambiguous: misnamed,
        reflog_kept: reflog_kept.len() as u64,
        reflog_lost: reflog_expected.saturating_sub(reflog_kept.len() as u64),
        repo_id_kept,
    })
}

/// `path` with `.what` appended to its file name.
fn sibling(path: &Path, what: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(what);
    path.with_file_name(name)
}

/// Removes the files `<path>.repairing-<pid>` (and their `.scratch` copies) that repairs of
/// `path` which are no longer running (killed, or the machine stopped) left beside it; a
/// repair still running keeps its files.
fn remove_abandoned_builds(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut prefix = name.to_os_string();
    prefix.push(".repairing-");
    let prefix = prefix.as_encoded_bytes();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(pid) = file.as_encoded_bytes().strip_prefix(prefix) else {
            continue;
        };
        // Only names a repair makes: a process id after the prefix, and its scratch copy.
        let Some(pid) = std::str::from_utf8(pid)
            .ok()
            .map(|p| p.strip_suffix(".scratch").unwrap_or(p))
            .and_then(|p| p.parse::<i32>().ok())
            .and_then(rustix::process::Pid::from_raw)
        else {
            continue;
        };
        // ESRCH: no such process; EPERM means one runs under another user.
        if rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH) {
            match std::fs::remove_file(e.path()) {
                Ok(()) => {
                    tracing::info!(file = %e.path().display(), "removed what an interrupted repair left")
                }
                Err(err) => {
                    tracing::warn!(file = %e.path().display(), "could not remove what an interrupted repair left: {err}")
                }
            }
        }
    }
}

/// Repairs the repository at `path` ([`repair`]) and puts the result in its place: the new
/// file is built beside it and renamed over it only once complete; the damaged file is kept
/// as `<path>.damaged-<unix time>` (a hard link made before the rename, so there is no moment
/// without a repository at `path`). Returns the report and where the damaged file is kept.
pub fn repair_in_place(path: &Path) -> Result<(RepairReport, PathBuf)> {
    if !path.exists() {
        return Err(Error::NoRepository(path.to_path_buf()));
    }
    remove_abandoned_builds(path);
    let building = sibling(path, &format!("repairing-{}", std::process::id()));
    let _ = std::fs::remove_file(&building);
    let report = match repair(path, &building) {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&building);
            return Err(e);
        }
    };
    let mut kept = sibling(path, &format!("damaged-{}", crate::refs::now()));
    let mut n = 0;
    while kept.exists() {
        n += 1;
        kept = sibling(path, &format!("damaged-{}-{n}", crate::refs::now()));
    }
    let finish = || -> std::io::Result<()> {
        std::fs::File::open(&building)?.sync_all()?;
        std::fs::hard_link(path, &kept)?;
        std::fs::rename(&building, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    if let Err(e) = finish() {
        let _ = std::fs::remove_file(&building);
        return Err(Error::io(path, e));
    }
    tracing::info!(path = %path.display(), kept = %kept.display(), "repaired the repository");
    Ok((report, kept))
}

/// Refs and commit records taken out of a repaired repository so that a pull fetches again
/// what their history lacks ([`set_aside_incomplete`]), to be put back where the pull brought
/// nothing ([`put_back`]).
#[derive(Debug, Default)]
pub struct SetAside {
    /// Refs whose history is incomplete: name and stored value.
    pub refs: Vec<(String, Vec<u8>)>,
    /// Records of the commits and trees whose history is incomplete: id and stored record.
    commits: Vec<(ObjectId, Vec<u8>)>,
}

impl SetAside {
    /// Whether nothing was set aside.
    pub fn is_empty(&self) -> bool {
        self.refs.is_empty() && self.commits.is_empty()
    }
}

/// Whether everything `tree` reaches is stored; every tree walked is recorded in `memo` as
/// complete or not.
fn tree_complete(
    view: &crate::View,
    tree: ObjectId,
    memo: &mut crate::IdMap<bool>,
) -> Result<bool> {
    let mut stack = vec![(tree, false)];
    while let Some((t, expanded)) = stack.pop() {
        if memo.contains_key(&t) {
            continue;
        }
        let Ok(tr) = view.tree(&t) else {
            memo.insert(t, false);
            continue;
        };
        let dirs = tr
            .entries
            .iter()
            .filter(|e| e.kind == crate::EntryKind::Dir)
            .map(|e| e.id);
        if !expanded {
            stack.push((t, true));
            stack.extend(dirs.filter(|d| !memo.contains_key(d)).map(|d| (d, false)));
            continue;
        }
        let mut ok = true;
        for e in &tr.entries {
            ok &= match e.kind {
                crate::EntryKind::Dir => memo.get(&e.id) == Some(&true),
                k if k == crate::EntryKind::Gitlink || k.is_special() => true,
                _ => view.object_type(&e.id)?.is_some(),
            };
        }
        memo.insert(t, ok);
    }
    Ok(memo.get(&tree) == Some(&true))
}

/// Takes out of `repo` every ref whose history is incomplete (a commit, tree or file it reaches
/// is missing) and every stored commit of such a history: a peer then sends those commits and
/// what their trees reach again, since the sync protocol takes a stored commit to mean its
/// whole history is stored.
pub fn set_aside_incomplete(repo: &Repo) -> Result<SetAside> {
    let view = repo.view()?;
    let mut trees: crate::IdMap<bool> = Default::default();
    // Commit id to completeness, computed parents first.
    let mut complete: crate::IdMap<bool> = Default::default();
    let mut refs = Vec::new();
    for (name, value) in view.refs_with_prefix("refs/")? {
        let Ok(start) = view.peel(value) else {
            refs.push(name);
            continue;
        };
        let mut stack = vec![(start, false)];
        while let Some((id, expanded)) = stack.pop() {
            if complete.contains_key(&id) {
                continue;
            }
            let Ok(c) = view.commit(&id) else {
                complete.insert(id, false);
                continue;
            };
            if !expanded {
                stack.push((id, true));
                stack.extend(
                    c.parents
                        .iter()
                        .filter(|p| !complete.contains_key(*p))
                        .map(|p| (*p, false)),
                );
                continue;
            }
            let ok = c.parents.iter().all(|p| complete.get(p) == Some(&true))
                && tree_complete(&view, c.tree, &mut trees)?;
            complete.insert(id, ok);
        }
        if complete.get(&start) != Some(&true) {
            refs.push(name);
        }
    }
    let mut out = SetAside::default();
    for name in refs {
        if let Some(g) = view.refs.get(name.as_str()).db_err()? {
            out.refs.push((name.clone(), g.value().to_vec()));
        }
    }
    // The trees too: the receiver of a pull expands the links of the objects it stores, not of
    // those it had.
    for (id, ok) in complete.iter().chain(trees.iter()) {
        if !ok && let Some(g) = view.objects.get(&id.0).db_err()? {
            out.commits.push((*id, g.value().to_vec()));
        }
    }
    drop(view);
    let txn = repo.db().begin_write().db_err()?;
    {
        let mut objects = txn.open_table(OBJECTS).db_err()?;
        for (id, _) in &out.commits {
            objects.remove(&id.0).db_err()?;
        }
        let mut r = txn.open_table(REFS).db_err()?;
        for (name, _) in &out.refs {
            r.remove(name.as_str()).db_err()?;
        }
    }
    txn.commit().db_err()?;
    Ok(out)
}

/// Puts back what [`set_aside_incomplete`] took out and the repository has not got again: the
/// commits not stored and the refs that do not exist. Returns the refs put back.
pub fn put_back(repo: &Repo, aside: SetAside) -> Result<Vec<String>> {
    let txn = repo.db().begin_write().db_err()?;
    let mut restored = Vec::new();
    {
        let mut objects = txn.open_table(OBJECTS).db_err()?;
        for (id, rec) in &aside.commits {
            if objects.get(&id.0).db_err()?.is_none() {
                objects.insert(&id.0, rec.as_slice()).db_err()?;
            }
        }
        let mut r = txn.open_table(REFS).db_err()?;
        for (name, v) in &aside.refs {
            if r.get(name.as_str()).db_err()?.is_none() {
                r.insert(name.as_str(), v.as_slice()).db_err()?;
                restored.push(name.clone());
            }
        }
    }
    txn.commit().db_err()?;
    Ok(restored)
}
