//! `Repo::gc`: removes the objects nothing reaches any more and gives their space back.
//!
//! Roots are every ref and every reflog entry younger than the grace period. An object found
//! unreachable is first listed (`gc-2`, with the time it was found); a later collection removes
//! it only if it is still unreachable and was listed at least the grace period ago. A writer
//! that reuses a listed object takes it off the list in its own transaction, and objects
//! written after a listing are not on it, so an object a concurrent writer is about to
//! reference (chunks written before their commit, records received before the ref moves) is
//! never removed; the collection itself is one write transaction, so no commit lands halfway
//! through it (ADR 0013).

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use crate::db::{self, CHAINS, GC_CANDIDATES, OBJECTS, PIECES, REFLOG, REFS, RecordSource};
use crate::error::{DbResultExt as _, Error, Result};
use crate::id::{IdSet, ObjectId};
use crate::record::{Encoding, ObjType, Record};
use crate::repo::Repo;

/// Prefix of the git importer's git → store cross-references.
const GIT_TO_STORE: &[u8] = b"git/g";

/// What a collection found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Objects reachable from the roots (their delta bases included).
    pub reachable: u64,
    /// Unreachable objects removed (or, for a dry run, that would be).
    pub removed: u64,
    /// Stored bytes of the removed objects.
    pub removed_bytes: u64,
    /// Unreachable objects kept for now: found unreachable less than the grace period ago.
    pub listed: u64,
    /// The file's length before and after (after compaction; equal for a dry run).
    pub file_bytes_before: u64,
    /// See `file_bytes_before`.
    pub file_bytes_after: u64,
}

impl Repo {
    /// Collects garbage: see the module documentation. `grace` in seconds; with `dry_run`,
    /// reports what would be removed and changes nothing. Ends with [`Repo::compact`].
    pub fn gc(&mut self, grace: u64, dry_run: bool) -> Result<GcReport> {
        let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut report = GcReport {
            file_bytes_before: size(self.path()),
            ..GcReport::default()
        };
        let now = u64::try_from(crate::refs::now()).unwrap_or(0);
        let cutoff = now.saturating_sub(grace);
        let txn = self.db().begin_write().db_err()?;
        db::move_legacy_chains(&txn)?;
        {
            let mut objects = txn.open_table(OBJECTS).db_err()?;
            let mut pieces = txn.open_table(PIECES).db_err()?;
            let segments = txn.open_table(db::SEGMENTS).db_err()?;
            let mut chains = txn.open_table(CHAINS).db_err()?;
            let mut listed = txn.open_table(GC_CANDIDATES).db_err()?;
            let refs = txn.open_table(REFS).db_err()?;
            let reflog = txn.open_table(REFLOG).db_err()?;

            let mut roots = Vec::new();
            for item in refs.iter().db_err()? {
                let (k, v) = item.db_err()?;
                roots.push(crate::refs::decode_ref(k.value(), v.value())?.id());
            }
            for item in reflog.iter().db_err()? {
                let (k, v) = item.db_err()?;
                let mv = crate::refs::RefMove::decode(k.value().0, v.value())?;
                if u64::try_from(mv.time).unwrap_or(0) > cutoff {
                    roots.extend(mv.old.iter().chain(mv.new.iter()).map(|r| r.id()));
                }
            }
            // The git mapping (importers/src/mapping.rs: `git/g` + git id → kind byte, store
            // id, size) is kept whole: what it names stays, so a later import or export never
            // finds a mapped object missing.
            match txn.open_table(db::XREF) {
                Ok(xref) => {
                    for item in xref.range::<&[u8]>(GIT_TO_STORE..).db_err()? {
                        let (k, v) = item.db_err()?;
                        if !k.value().starts_with(GIT_TO_STORE) {
                            break;
                        }
                        if let Some(id) = v.value().get(1..33) {
                            let mut a = [0u8; 32];
                            a.copy_from_slice(id);
                            roots.push(ObjectId(a));
                        }
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(Error::db(e)),
            }
            let reachable = {
                let src = db::Objects {
                    objects: &objects,
                    pieces: Some(&pieces),
                    segments: Some(&segments),
                };
                mark(&src, roots, &self.cache)?
            };
            report.reachable = reachable.len() as u64;

            let mut remove = Vec::new();
            let mut list = Vec::new();
            for item in objects.iter().db_err()? {
                let (k, v) = item.db_err()?;
                let id = ObjectId(*k.value());
                if reachable.contains(&id) {
                    continue;
                }
                let bytes = db::stored_len(v.value());
                match listed.get(&id.0).db_err()?.map(|g| g.value()) {
                    Some(t) if t <= cutoff => remove.push((id, bytes)),
                    Some(_) => report.listed += 1,
                    None if grace == 0 => remove.push((id, bytes)),
                    None => list.push(id),
                }
            }
            report.listed += list.len() as u64;
            report.removed = remove.len() as u64;
            report.removed_bytes = remove.iter().map(|(_, b)| b).sum();
            if !dry_run {
                // Listed objects that are reachable again leave the list.
                let mut back = Vec::new();
                for item in listed.iter().db_err()? {
                    let (k, _) = item.db_err()?;
                    let id = ObjectId(*k.value());
                    if reachable.contains(&id) {
                        back.push(id);
                    }
                }
                for id in back {
                    listed.remove(&id.0).db_err()?;
                }
                for id in list {
                    listed.insert(&id.0, now).db_err()?;
                }
                for (id, _) in &remove {
                    if let Some(old) = objects.remove(&id.0).db_err()? {
                        let old = old.value().to_vec();
                        db::remove_pieces(&mut pieces, id, &old)?;
                    }
                    chains.remove(db::chain_key(id)).db_err()?;
                    listed.remove(&id.0).db_err()?;
                }
            }
            tracing::info!(
                reachable = report.reachable,
                removed = report.removed,
                removed_bytes = report.removed_bytes,
                listed = report.listed,
                dry_run,
                "garbage collection"
            );
        }
        if dry_run {
            txn.abort().db_err()?;
            report.file_bytes_after = report.file_bytes_before;
            return Ok(report);
        }
        txn.commit().db_err()?;
        let (_, after) = self.compact()?;
        report.file_bytes_after = after;
        Ok(report)
    }
}

/// Every object the roots reach, with the delta bases their records need. A base is kept
/// but what it links to is not followed for its sake: an old version stored as a delta
/// against a newer, unreachable one keeps that version's record, not its tree.
fn mark(src: &impl RecordSource, roots: Vec<ObjectId>, cache: &db::SharedCache) -> Result<IdSet> {
    let mut linked = IdSet::default();
    let mut bases = IdSet::default();
    let mut stack: Vec<(ObjectId, bool)> = roots.into_iter().map(|id| (id, true)).collect();
    while let Some((id, follow)) = stack.pop() {
        let first = if follow {
            linked.insert(id)
        } else {
            !linked.contains(&id) && bases.insert(id)
        };
        if !first {
            continue;
        }
        let Some(head) = src.record_head(&id)? else {
            // Missing objects are `verify`'s business; nothing to keep.
            continue;
        };
        let rec = Record::parse(&head).map_err(|e| crate::Error::corrupt(id, e))?;
        match rec.enc {
            Encoding::Delta(base) => stack.push((base, false)),
            Encoding::DeltaShort(prefix) => {
                stack.extend(src.prefixed(&prefix, &id)?.into_iter().map(|b| (b, false)))
            }
            Encoding::Plain | Encoding::Zstd => {}
        }
        let ty = rec.ty;
        drop(head);
        if !follow || ty == ObjType::Blob {
            continue;
        }
        // Old trees are deltas against newer ones: the cache keeps the versions decoded on
        // the way, so walking history does not decode each chain from its start again.
        let (ty, raw) = db::load_raw_cached(src, &id, cache)?;
        for (_, child) in crate::transfer::object_links(ty, &raw)? {
            if !linked.contains(&child) {
                stack.push((child, true));
            }
        }
    }
    linked.extend(bases);
    Ok(linked)
}

/// Objects listed by the collector, for `stats` and tests.
impl Repo {
    /// How many objects a collection found unreachable and keeps until their grace period ends.
    pub fn gc_listed(&self) -> Result<u64> {
        let txn = self.db().begin_read().db_err()?;
        match txn.open_table(GC_CANDIDATES) {
            Ok(t) => Ok(t.len().db_err()?),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(Error::db(e)),
        }
    }
}
