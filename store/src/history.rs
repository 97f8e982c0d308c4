//! Walking history.

use std::collections::{BinaryHeap, HashSet};

use crate::error::Result;
use crate::id::ObjectId;
use crate::object::Commit;
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
