//! Repository statistics.

use std::collections::{HashMap, HashSet};

use redb::ReadableTable;

use crate::error::{Error, Result};
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
        for item in view.objects.iter()? {
            let (k, v) = item?;
            let id = ObjectId(*k.value());
            let bytes = v.value();
            let rec = Record::parse(bytes).map_err(|e| Error::corrupt(id, e))?;
            *by_type.entry(rec.ty).or_default() += 1;
            *bytes_by_type.entry(rec.ty).or_default() += bytes.len() as u64;
            if matches!(rec.enc, Encoding::Delta(_) | Encoding::DeltaShort(_)) {
                s.delta_objects += 1;
            }
            s.logical_bytes += rec.raw_len;
            s.stored_bytes += bytes.len() as u64;
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
            EntryKind::Gitlink => {}
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
