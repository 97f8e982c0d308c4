//! Walking history.

use std::collections::{BinaryHeap, HashSet};

use crate::error::Result;
use crate::id::ObjectId;
use crate::object::Commit;
use crate::path::RepoPath;
use crate::repo::View;

/// Commits reachable from a start, newest committer time first (like `git log`).
pub struct LogIter<'v> {
    view: &'v View,
    heap: BinaryHeap<(i64, ObjectId)>,
    seen: HashSet<ObjectId>,
    first_parent: bool,
}

impl std::fmt::Debug for LogIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogIter")
            .field("queued", &self.heap.len())
            .finish()
    }
}

impl View {
    /// History from `starts`, newest first. With `first_parent`, follows only first parents.
    pub fn log(&self, starts: &[ObjectId], first_parent: bool) -> Result<LogIter<'_>> {
        let mut it = LogIter {
            view: self,
            heap: BinaryHeap::new(),
            seen: HashSet::new(),
            first_parent,
        };
        for s in starts {
            it.push(*s)?;
        }
        Ok(it)
    }

    /// Whether `ancestor` is reachable from `descendant` (or equal to it).
    pub fn is_ancestor(&self, ancestor: &ObjectId, descendant: &ObjectId) -> Result<bool> {
        for item in self.log(&[*descendant], false)? {
            let (id, _) = item?;
            if id == *ancestor {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl LogIter<'_> {
    fn push(&mut self, id: ObjectId) -> Result<()> {
        if self.seen.insert(id) {
            let c = self.view.commit(&id)?;
            self.heap.push((c.committer.time, id));
        }
        Ok(())
    }
}

impl Iterator for LogIter<'_> {
    type Item = Result<(ObjectId, Commit)>;

    fn next(&mut self) -> Option<Self::Item> {
        let (_, id) = self.heap.pop()?;
        let commit = match self.view.commit(&id) {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let parents: Vec<ObjectId> = if self.first_parent {
            commit.parents.iter().take(1).copied().collect()
        } else {
            commit.parents.clone()
        };
        for p in parents {
            if let Err(e) = self.push(p) {
                return Some(Err(e));
            }
        }
        Some(Ok((id, commit)))
    }
}

/// Follows one path back through first-parent history (`heroctl log -- PATH`, a file's
/// history page), across renames.
#[derive(Debug)]
pub struct PathTracker {
    path: RepoPath,
}

impl PathTracker {
    /// Tracks `path` (as named in the newest commit walked).
    pub fn new(path: RepoPath) -> PathTracker {
        PathTracker { path }
    }

    /// The path as named in the commit walked last's first parent.
    pub fn path(&self) -> &RepoPath {
        &self.path
    }

    /// Whether commit `id` changed the tracked path against its first parent; if so, the path
    /// as named in `id`. When the path appears in `id` with content that left another path in
    /// the same commit (a rename), older commits are followed under the old name.
    pub fn changed_in(
        &mut self,
        view: &View,
        id: &ObjectId,
        commit: &Commit,
    ) -> Result<Option<RepoPath>> {
        let now = view.entry_in_commit(id, &self.path)?;
        let parent = commit.parents.first().copied();
        let before = match parent {
            Some(p) => view.entry_in_commit(&p, &self.path)?,
            None => None,
        };
        let same = match (&now, &before) {
            (Some(a), Some(b)) => a.id == b.id && a.kind == b.kind,
            (None, None) => true,
            _ => false,
        };
        if same {
            return Ok(None);
        }
        let here = self.path.clone();
        if let (Some(e), None, Some(p)) = (&now, &before, parent) {
            for d in view.diff_commits(Some(p), id)? {
                if d.new.is_none() && d.old.as_ref().is_some_and(|o| o.id == e.id) {
                    self.path = d.path;
                    break;
                }
            }
        }
        Ok(Some(here))
    }
}
