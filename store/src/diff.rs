//! Differences between two revisions: changed paths, and line diffs of text files.

use crate::error::Result;
use crate::id::ObjectId;
use crate::object::{EntryKind, Tree, TreeEntry};
use crate::path::RepoPath;
use crate::repo::View;

/// How a path changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DiffKind {
    /// Only in the new revision.
    Added,
    /// Only in the old revision.
    Deleted,
    /// Different content or kind.
    Modified,
    /// The same content and kind; different mode, owner or modification time.
    Metadata,
}

impl DiffKind {
    /// One letter, as `git diff --name-status` prints it.
    pub fn letter(self) -> char {
        match self {
            DiffKind::Added => 'A',
            DiffKind::Deleted => 'D',
            DiffKind::Modified => 'M',
            DiffKind::Metadata => 'm',
        }
    }
}

/// One changed path (directories are descended into; an added or deleted directory is listed
/// with every file in it, and an empty one as itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffEntry {
    /// The path.
    pub path: RepoPath,
    /// How it changed.
    pub kind: DiffKind,
    /// The old entry.
    pub old: Option<TreeEntry>,
    /// The new entry.
    pub new: Option<TreeEntry>,
}

impl View {
    /// The changed paths between two trees (either may be absent: the empty tree).
    pub fn diff_trees(
        &self,
        old: Option<ObjectId>,
        new: Option<ObjectId>,
    ) -> Result<Vec<DiffEntry>> {
        let mut out = Vec::new();
        self.diff_rec(&RepoPath::root(), old, new, &mut out)?;
        Ok(out)
    }

    /// The changed paths between two commits.
    pub fn diff_commits(&self, old: Option<ObjectId>, new: &ObjectId) -> Result<Vec<DiffEntry>> {
        let old_tree = match old {
            Some(c) => Some(self.commit(&c)?.tree),
            None => None,
        };
        let new_tree = self.commit(new)?.tree;
        self.diff_trees(old_tree, Some(new_tree))
    }

    fn diff_rec(
        &self,
        at: &RepoPath,
        old: Option<ObjectId>,
        new: Option<ObjectId>,
        out: &mut Vec<DiffEntry>,
    ) -> Result<()> {
        if old == new {
            return Ok(());
        }
        let load = |id: Option<ObjectId>| -> Result<Tree> {
            match id {
                Some(id) => self.tree(&id),
                None => Ok(Tree::default()),
            }
        };
        let a = load(old)?;
        let b = load(new)?;
        let (mut i, mut j) = (0, 0);
        while i < a.entries.len() || j < b.entries.len() {
            let ea = a.entries.get(i);
            let eb = b.entries.get(j);
            let ord = match (ea, eb) {
                (Some(x), Some(y)) => x.name.cmp(&y.name),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match ord {
                std::cmp::Ordering::Less => {
                    if let Some(x) = ea {
                        self.one_side(at, x, true, out)?;
                    }
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    if let Some(y) = eb {
                        self.one_side(at, y, false, out)?;
                    }
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    if let (Some(x), Some(y)) = (ea, eb) {
                        self.both(at, x, y, out)?;
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
        Ok(())
    }

    fn one_side(
        &self,
        at: &RepoPath,
        e: &TreeEntry,
        deleted: bool,
        out: &mut Vec<DiffEntry>,
    ) -> Result<()> {
        let path = at.join(&e.name)?;
        if e.kind == EntryKind::Dir && e.size > 0 {
            let (o, n) = if deleted {
                (Some(e.id), None)
            } else {
                (None, Some(e.id))
            };
            return self.diff_rec(&path, o, n, out);
        }
        out.push(DiffEntry {
            path,
            kind: if deleted {
                DiffKind::Deleted
            } else {
                DiffKind::Added
            },
            old: deleted.then(|| e.clone()),
            new: (!deleted).then(|| e.clone()),
        });
        Ok(())
    }

    fn both(
        &self,
        at: &RepoPath,
        x: &TreeEntry,
        y: &TreeEntry,
        out: &mut Vec<DiffEntry>,
    ) -> Result<()> {
        let path = at.join(&x.name)?;
        // Metadata alone: a file whose content did not change, or a directory whose mode or
        // owner did (a directory's time moves with every change inside it; a file whose
        // content changed is `Modified`, whatever else changed with it).
        let same_content = x.kind == y.kind && x.id == y.id;
        let dirs = x.kind == EntryKind::Dir && y.kind == EntryKind::Dir;
        let mode_owner = (x.meta.mode, x.meta.owner) != (y.meta.mode, y.meta.owner);
        if (dirs && mode_owner) || (!dirs && same_content && x.meta != y.meta) {
            out.push(DiffEntry {
                path: path.clone(),
                kind: DiffKind::Metadata,
                old: Some(x.clone()),
                new: Some(y.clone()),
            });
        }
        if same_content {
            return Ok(());
        }
        match (x.kind == EntryKind::Dir, y.kind == EntryKind::Dir) {
            (true, true) => self.diff_rec(&path, Some(x.id), Some(y.id), out),
            (false, false) => {
                out.push(DiffEntry {
                    path,
                    kind: DiffKind::Modified,
                    old: Some(x.clone()),
                    new: Some(y.clone()),
                });
                Ok(())
            }
            (true, false) => {
                self.one_side(at, x, true, out)?;
                self.one_side(at, y, false, out)
            }
            (false, true) => {
                self.one_side(at, x, true, out)?;
                self.one_side(at, y, false, out)
            }
        }
    }
}

/// A line diff of two files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineDiff {
    /// Unified diff text.
    Text(String),
    /// One side is not text (or too large to diff).
    Binary,
}

/// Largest file a line diff is computed for.
const LINE_DIFF_MAX: usize = 8 << 20;

fn is_text(b: &[u8]) -> bool {
    b.len() <= LINE_DIFF_MAX && !b.contains(&0) && std::str::from_utf8(b).is_ok()
}

/// A unified line diff (3 lines of context) between two byte strings.
pub fn line_diff(old: &[u8], new: &[u8], old_name: &str, new_name: &str) -> LineDiff {
    if !is_text(old) || !is_text(new) {
        return LineDiff::Binary;
    }
    let (Ok(a), Ok(b)) = (std::str::from_utf8(old), std::str::from_utf8(new)) else {
        return LineDiff::Binary;
    };
    let diff = similar::TextDiff::from_lines(a, b);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string();
    LineDiff::Text(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_diff_shows_changed_line() {
        let d = line_diff(b"a\nb\nc\n", b"a\nB\nc\n", "a/x", "b/x");
        let LineDiff::Text(t) = d else {
            panic!("expected text")
        };
        assert!(t.contains("-b\n+B\n"), "{t}");
        assert_eq!(line_diff(b"\0", b"x", "a", "b"), LineDiff::Binary);
    }
}
