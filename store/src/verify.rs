//! Recomputing every hash.

use std::collections::{HashMap, HashSet};

use redb::ReadableTableMetadata;

use crate::error::{DbResultExt as _, Error, Result};
use crate::id::{IdSet, ObjectId};
use crate::object::{Commit, EntryKind, ManifestNode, Tree};
use crate::path::RepoPath;
use crate::record::ObjType;
use crate::repo::{Repo, View};
use crate::snapshot::Progress;

/// One corrupt object and where it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptObject {
    /// The object.
    pub id: ObjectId,
    /// What is wrong.
    pub reason: String,
    /// `(commit, path)` pairs whose content depends on it (first few hundred).
    pub used_by: Vec<(ObjectId, RepoPath)>,
}

/// The outcome of [`Repo::verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Objects checked.
    pub objects: u64,
    /// Content bytes checked.
    pub bytes: u64,
    /// What is corrupt.
    pub corrupt: Vec<CorruptObject>,
    /// Objects referenced by a reachable commit or tree but missing.
    pub missing: Vec<(ObjectId, RepoPath)>,
}

impl VerifyReport {
    /// Whether everything checked out.
    pub fn is_ok(&self) -> bool {
        self.corrupt.is_empty() && self.missing.is_empty()
    }
}

const USED_BY_MAX: usize = 256;

impl Repo {
    /// Decodes every object and recomputes its hash (for large files, the hash of the whole
    /// content); then names the commits and paths that use each corrupt object, and every
    /// referenced object that is missing.
    pub fn verify(&self, progress: Option<&dyn Fn(Progress)>) -> Result<VerifyReport> {
        let view = self.view()?;
        let total = view.objects.len().db_err()?;
        let mut report = VerifyReport::default();
        let mut bad: HashMap<ObjectId, String> = HashMap::new();
        let mut manifests: Vec<ObjectId> = Vec::new();
        let mut done = 0u64;
        let order = crate::db::storage_order(&view.objects)?;
        let stored: IdSet = order.iter().copied().collect();
        // Whether a commit or tree names an object that is not stored. Only then, or when
        // something is corrupt, is history walked below (to name paths): a walk of every
        // commit's trees reads trees in history order, not storage order, and would decode
        // each tree segment again for every commit that changes its directories.
        let mut dangling = false;
        // In the order records are stored: each segment is decoded once.
        for id in order {
            match view.raw(&id) {
                Ok((ty, raw)) => {
                    report.bytes += raw.len() as u64;
                    match ty {
                        ObjType::Manifest => manifests.push(id),
                        ObjType::Tree if !dangling => {
                            dangling = names_unstored(&raw, &stored);
                        }
                        ObjType::Commit if !dangling => {
                            dangling =
                                Commit::decode(&raw).is_ok_and(|c| !stored.contains(&c.tree));
                        }
                        _ => {}
                    }
                }
                Err(Error::Corrupt { id: cid, reason }) => {
                    bad.insert(cid, reason.clone());
                    if cid != id {
                        bad.entry(id)
                            .or_insert_with(|| format!("delta base {} is corrupt", cid.short()));
                    }
                }
                Err(Error::Missing(m)) => {
                    bad.insert(id, format!("missing {}", m.short()));
                }
                Err(e) => return Err(e),
            }
            report.objects += 1;
            done += 1;
            if let Some(p) = progress
                && (done.is_multiple_of(1024) || done == total)
            {
                p(Progress {
                    done,
                    total: Some(total),
                    bytes: report.bytes,
                });
            }
        }
        // Large files: the whole content must hash to the id.
        for id in manifests {
            if bad.contains_key(&id) {
                continue;
            }
            if let Some(reason) = check_large_file(&view, &id, &bad)? {
                bad.insert(id, reason);
            }
        }
        if bad.is_empty() && !dangling {
            return Ok(report);
        }
        // Where the bad objects are used, and what is missing.
        let mut used: HashMap<ObjectId, Vec<(ObjectId, RepoPath)>> = HashMap::new();
        let mut seen_trees: HashSet<ObjectId> = HashSet::new();
        let mut missing_seen: HashSet<ObjectId> = HashSet::new();
        for commit in crate::stats::reachable_commits(&view).unwrap_or_default() {
            let tree = match view.commit(&commit) {
                Ok(c) => c.tree,
                Err(_) => continue,
            };
            let mut stack = vec![(RepoPath::root(), tree)];
            while let Some((at, tid)) = stack.pop() {
                if bad.contains_key(&tid) {
                    used.entry(tid).or_default().push((commit, at.clone()));
                }
                if !seen_trees.insert(tid) && !bad.contains_key(&tid) {
                    // Already walked this tree for an earlier commit; corrupt objects inside
                    // it are already named with that commit.
                    continue;
                }
                let t = match view.tree(&tid) {
                    Ok(t) => t,
                    Err(Error::Missing(m)) => {
                        if missing_seen.insert(m) {
                            report.missing.push((m, at));
                        }
                        continue;
                    }
                    Err(_) => continue,
                };
                for e in t.entries {
                    let p = at.join(&e.name)?;
                    match e.kind {
                        EntryKind::Dir => stack.push((p, e.id)),
                        EntryKind::Gitlink
                        | EntryKind::Fifo
                        | EntryKind::Socket
                        | EntryKind::CharDevice
                        | EntryKind::BlockDevice => {}
                        _ => {
                            if bad.contains_key(&e.id) {
                                let v = used.entry(e.id).or_default();
                                if v.len() < USED_BY_MAX {
                                    v.push((commit, p));
                                }
                            } else if view.object_type(&e.id)?.is_none()
                                && missing_seen.insert(e.id)
                            {
                                report.missing.push((e.id, p));
                            }
                        }
                    }
                }
            }
        }
        let mut corrupt: Vec<CorruptObject> = bad
            .into_iter()
            .map(|(id, reason)| CorruptObject {
                id,
                reason,
                used_by: used.remove(&id).unwrap_or_default(),
            })
            .collect();
        corrupt.sort_by_key(|c| c.id);
        report.corrupt = corrupt;
        Ok(report)
    }
}

/// Whether a tree names a directory or file that is not stored (a tree that does not decode
/// is reported by its own record's check).
fn names_unstored(raw: &[u8], stored: &IdSet) -> bool {
    let Ok(entries) = Tree::entries_without_names(raw) else {
        return false;
    };
    entries.iter().any(|(kind, id, _)| {
        let content = match kind {
            EntryKind::Dir => true,
            EntryKind::Gitlink
            | EntryKind::Fifo
            | EntryKind::Socket
            | EntryKind::CharDevice
            | EntryKind::BlockDevice => false,
            _ => true,
        };
        content && !stored.contains(id)
    })
}

/// Streams a large file and compares its hash; notes chunks already known bad.
fn check_large_file(
    view: &View,
    id: &ObjectId,
    bad: &HashMap<ObjectId, String>,
) -> Result<Option<String>> {
    // A file whose chunk or node is corrupt is itself unreadable.
    let (_, raw) = view.raw(id)?;
    let root = ManifestNode::decode(&raw).map_err(|e| Error::decode(*id, e))?;
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        for (cid, _) in node.stored_children() {
            if let Some(r) = bad.get(&cid) {
                return Ok(Some(format!("chunk {} is corrupt: {r}", cid.short())));
            }
            if node.level > 0
                && let Ok((_, raw)) = view.raw(&cid)
                && let Ok(n) = ManifestNode::decode(&raw)
            {
                stack.push(n);
            }
        }
    }
    let mut reader = match view.open_file(id) {
        Ok(r) => r,
        Err(e) => return Ok(Some(e.to_string())),
    };
    match reader.content_id() {
        Ok(got) if got == *id => {}
        Ok(_) => return Ok(Some("file content does not match its id".to_owned())),
        Err(e) => return Ok(Some(e.to_string())),
    }
    Ok(None)
}
