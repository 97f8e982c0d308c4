//! Repository statistics.

use std::collections::{HashMap, HashSet};

use redb::{ReadableDatabase, ReadableTable, TableHandle};

use crate::error::{DbResultExt as _, Error, Result};
use crate::id::ObjectId;
use crate::object::EntryKind;
use crate::record::{Encoding, ObjType, Record};
use crate::repo::{Repo, View};

/// Sizes and ratios of a repository.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Stored objects by type.
    pub objects: Vec<(ObjType, u64)>,
    /// Bytes the records of each type take.
    pub stored_by_type: Vec<(ObjType, u64)>,
    /// Objects stored as deltas.
    pub delta_objects: u64,
    /// Commits reachable from any ref.
    pub commits: u64,
    /// Bytes of every file of every reachable commit, as if each commit were a full copy.
    pub history_bytes: u64,
    /// Bytes of distinct file contents.
    pub content_bytes: u64,
    /// Bytes of distinct chunks (file content after deduplication).
    pub chunk_bytes: u64,
    /// Raw bytes of all objects (content, trees, commits, manifests).
    pub logical_bytes: u64,
    /// Bytes the object records take in the database.
    pub stored_bytes: u64,
    /// Size of the repository file.
    pub file_bytes: u64,
}

impl Stats {
    /// History bytes per distinct chunk byte.
    pub fn dedupe_ratio(&self) -> f64 {
        ratio(self.history_bytes, self.chunk_bytes)
    }
    /// Raw object bytes per stored byte (compression and deltas).
    pub fn compression_ratio(&self) -> f64 {
        ratio(self.logical_bytes, self.stored_bytes)
    }
    /// History bytes per stored byte, all savings together.
    pub fn total_ratio(&self) -> f64 {
        ratio(self.history_bytes, self.stored_bytes)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

impl Repo {
    /// Counts objects and bytes. Reads every object header and every reachable tree.
    pub fn stats(&self) -> Result<Stats> {
        let view = self.view()?;
        let mut s = Stats::default();
        let mut by_type: HashMap<ObjType, u64> = HashMap::new();
        let mut bytes_by_type: HashMap<ObjType, u64> = HashMap::new();
        let src = view.source();
        let sizes = match (&view.segments, &view.pieces) {
            (Some(segments), pieces) => crate::segment::sizes(segments, pieces.as_ref())?,
            (None, _) => HashMap::new(),
        };
        for id in crate::db::storage_order(&view.objects)? {
            let Some(v) = view.objects.get(&id.0).db_err()? else {
                continue;
            };
            let value = v.value();
            // A large record is in pieces: its length is in the pointer, its header in the
            // first piece. A packed one counts for its share of its segment's compressed bytes.
            let len = match crate::segment::Packed::parse(value) {
                Some(Ok(p)) => match sizes.get(&p.segment) {
                    Some(&(stored, raw)) if raw > 0 => {
                        (u128::from(p.len) * u128::from(stored) / u128::from(raw)) as u64
                    }
                    _ => p.len,
                },
                _ => crate::db::stored_len(value),
            };
            let head =
                crate::db::RecordSource::record_head(&src, &id)?.ok_or(Error::Missing(id))?;
            let rec = Record::parse(&head).map_err(|e| Error::corrupt(id, e))?;
            *by_type.entry(rec.ty).or_default() += 1;
            *bytes_by_type.entry(rec.ty).or_default() += len;
            if matches!(rec.enc, Encoding::Delta(_) | Encoding::DeltaShort(_)) {
                s.delta_objects += 1;
            }
            s.logical_bytes += rec.raw_len;
            s.stored_bytes += len;
            if rec.ty == ObjType::Blob {
                s.chunk_bytes += rec.raw_len;
            }
        }
        let mut types: Vec<_> = by_type.into_iter().collect();
        types.sort();
        s.objects = types;
        let mut stored: Vec<_> = bytes_by_type.into_iter().collect();
        stored.sort();
        s.stored_by_type = stored;
        let mut tree_totals: HashMap<ObjectId, u64> = HashMap::new();
        let mut contents: HashSet<ObjectId> = HashSet::new();
        for item in reachable_commits(&view)? {
            let c = view.commit(&item)?;
            s.commits += 1;
            s.history_bytes += tree_total(
                &view,
                c.tree,
                &mut tree_totals,
                &mut contents,
                &mut s.content_bytes,
            )?;
        }
        s.file_bytes = std::fs::metadata(self.path()).map(|m| m.len()).unwrap_or(0);
        Ok(s)
    }
}

/// Every commit reachable from any ref.
pub(crate) fn reachable_commits(view: &View) -> Result<Vec<ObjectId>> {
    let mut starts = Vec::new();
    for (_, v) in view.refs_with_prefix("refs/")? {
        if let Ok(c) = view.peel(v) {
            starts.push(c);
        }
    }
    let mut out = Vec::new();
    for item in view.log(&starts, false)? {
        out.push(item?.0);
    }
    Ok(out)
}

fn tree_total(
    view: &View,
    id: ObjectId,
    memo: &mut HashMap<ObjectId, u64>,
    contents: &mut HashSet<ObjectId>,
    content_bytes: &mut u64,
) -> Result<u64> {
    if let Some(t) = memo.get(&id) {
        return Ok(*t);
    }
    let tree = view.tree(&id)?;
    let mut total = 0;
    for e in &tree.entries {
        match e.kind {
            EntryKind::Dir => total += tree_total(view, e.id, memo, contents, content_bytes)?,
            EntryKind::Gitlink
            | EntryKind::Fifo
            | EntryKind::Socket
            | EntryKind::CharDevice
            | EntryKind::BlockDevice => {}
            _ => {
                total += e.size;
                if contents.insert(e.id) {
                    *content_bytes += e.size;
                }
            }
        }
    }
    memo.insert(id, total);
    Ok(total)
}

/// Where the bytes of one table go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableUsage {
    /// The table's name in the file (versioned, as `objects-1`).
    pub name: String,
    /// Entries.
    pub entries: u64,
    /// Bytes of all keys.
    pub key_bytes: u64,
    /// Bytes of all values.
    pub value_bytes: u64,
    /// Leaf pages of its B-tree.
    pub leaf_pages: u64,
    /// Branch pages of its B-tree.
    pub branch_pages: u64,
    /// Bytes of keys and values as stored in the pages.
    pub stored_bytes: u64,
    /// Bytes of page headers and other bookkeeping.
    pub metadata_bytes: u64,
    /// Bytes of its pages that hold nothing (partly filled pages, power-of-two rounding of
    /// large values).
    pub fragmented_bytes: u64,
}

/// Where the bytes of the repository file go: per table, then the file as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileUsage {
    /// Every table.
    pub tables: Vec<TableUsage>,
    /// The database's page size.
    pub page_size: u64,
    /// Pages in use (tables, the table of tables, allocator state).
    pub allocated_pages: u64,
    /// Length of the file.
    pub file_bytes: u64,
    /// Bytes of the file on disk (blocks allocated; less than the length where it is sparse).
    pub disk_bytes: u64,
    /// Bytes of the file not in any allocated page: free pages redb will reuse, or return
    /// on compaction.
    pub free_bytes: u64,
}

fn usage<K, V>(
    name: &str,
    table: &impl ReadableTable<K, V>,
    key_len: impl Fn(&K::SelfType<'_>) -> usize,
    value_len: impl Fn(&V::SelfType<'_>) -> usize,
) -> Result<TableUsage>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
{
    let st = table.stats().db_err()?;
    let mut u = TableUsage {
        name: name.to_owned(),
        leaf_pages: st.leaf_pages(),
        branch_pages: st.branch_pages(),
        stored_bytes: st.stored_bytes(),
        metadata_bytes: st.metadata_bytes(),
        fragmented_bytes: st.fragmented_bytes(),
        ..TableUsage::default()
    };
    for item in table.iter().db_err()? {
        let (k, v) = item.db_err()?;
        u.entries += 1;
        u.key_bytes += key_len(&k.value()) as u64;
        u.value_bytes += value_len(&v.value()) as u64;
    }
    Ok(u)
}

impl Repo {
    /// Where the bytes of the repository file go (reads every key and value once; takes the
    /// write lock for a moment to read the allocator's state).
    pub fn file_usage(&self) -> Result<FileUsage> {
        use crate::db::{CHAINS, KV, LEGACY_CHAINS, META, OBJECTS, REFLOG, REFS, XREF};
        let mut out = FileUsage::default();
        {
            let txn = self.db().begin_read().db_err()?;
            out.tables.push(usage(
                OBJECTS.name(),
                &txn.open_table(OBJECTS).db_err()?,
                |k| k.len(),
                |v| v.len(),
            )?);
            match txn.open_table(CHAINS) {
                Ok(t) => out.tables.push(usage(CHAINS.name(), &t, |_| 8, |_| 4)?),
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(Error::db(e)),
            }
            match txn.open_table(LEGACY_CHAINS) {
                Ok(t) => out
                    .tables
                    .push(usage(LEGACY_CHAINS.name(), &t, |k| k.len(), |_| 4)?),
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(Error::db(e)),
            }
            out.tables.push(usage(
                REFS.name(),
                &txn.open_table(REFS).db_err()?,
                |k| k.len(),
                |v| v.len(),
            )?);
            out.tables.push(usage(
                REFLOG.name(),
                &txn.open_table(REFLOG).db_err()?,
                |k| k.0.len() + 8,
                |v| v.len(),
            )?);
            out.tables.push(usage(
                META.name(),
                &txn.open_table(META).db_err()?,
                |k| k.len(),
                |v| v.len(),
            )?);
            out.tables.push(usage(
                KV.name(),
                &txn.open_table(KV).db_err()?,
                |k| k.len(),
                |v| v.len(),
            )?);
            match txn.open_table(XREF) {
                Ok(t) => out
                    .tables
                    .push(usage(XREF.name(), &t, |k| k.len(), |v| v.len())?),
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(Error::db(e)),
            }
            for def in [crate::db::PIECES, crate::db::SEGMENTS] {
                match txn.open_table(def) {
                    Ok(t) => out.tables.push(usage(def.name(), &t, |_| 8, |v| v.len())?),
                    Err(redb::TableError::TableDoesNotExist(_)) => {}
                    Err(e) => return Err(Error::db(e)),
                }
            }
        }
        let txn = self.db().begin_write().db_err()?;
        let st = txn.stats().db_err()?;
        txn.abort().db_err()?;
        out.page_size = st.page_size() as u64;
        out.allocated_pages = st.allocated_pages();
        let meta = std::fs::metadata(self.path()).map_err(|source| Error::Io {
            path: self.path().to_path_buf(),
            source,
        })?;
        out.file_bytes = meta.len();
        out.disk_bytes = {
            use std::os::unix::fs::MetadataExt;
            meta.blocks().saturating_mul(512)
        };
        out.free_bytes = out
            .file_bytes
            .saturating_sub(out.allocated_pages.saturating_mul(out.page_size));
        Ok(out)
    }
}
