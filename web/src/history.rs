//! The history of one file and of one key of a structured file, walked along first parents
//! and across renames ([`hero_store::PathTracker`]). `heroctl log --key` and the web face's
//! key history page both use [`key_history`].

use std::collections::HashMap;

use hero_formats::{Format, Value};
use hero_store::{Commit, ObjectId, PathTracker, RepoPath, TreeEntry, View};

/// The largest file parsed for its keys (the same bound as `heroctl get`).
pub const MAX_STRUCTURED_BYTES: u64 = 64 << 20;

/// One commit that changed a file.
#[derive(Debug, Clone)]
pub struct FileChange {
    /// The commit.
    pub id: ObjectId,
    /// The commit itself.
    pub commit: Commit,
    /// The path as named in that commit.
    pub path: RepoPath,
    /// The file's entry in the commit (`None`: deleted there).
    pub new: Option<TreeEntry>,
    /// The file's entry in the first parent, under its name there (`None`: added).
    pub old: Option<TreeEntry>,
    /// The name in the first parent, when the commit renamed it.
    pub old_path: RepoPath,
}

/// The commits of `start`'s first-parent history that changed `path`, newest first, at
/// most `limit` after skipping `skip`.
pub fn file_history(
    view: &View,
    start: &ObjectId,
    path: &RepoPath,
    skip: usize,
    limit: usize,
) -> hero_store::Result<Vec<FileChange>> {
    let mut tracker = PathTracker::new(path.clone());
    let mut out = Vec::new();
    let mut seen = 0usize;
    for item in view.log(&[*start], true)? {
        let (id, commit) = item?;
        let Some(here) = tracker.changed_in(view, &id, &commit)? else {
            continue;
        };
        seen += 1;
        if seen <= skip {
            continue;
        }
        let new = view.entry_in_commit(&id, &here)?;
        let old = match commit.parents.first() {
            Some(p) => view.entry_in_commit(p, tracker.path())?,
            None => None,
        };
        out.push(FileChange {
            id,
            commit,
            path: here,
            new,
            old,
            old_path: tracker.path().clone(),
        });
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// One commit where a key's value changed.
#[derive(Debug, Clone)]
pub struct KeyChange {
    /// The commit.
    pub id: ObjectId,
    /// The commit itself.
    pub commit: Commit,
    /// The file's path in that commit.
    pub path: RepoPath,
    /// The value before (`None`: no file, no parse, or no such key).
    pub old: Option<Value>,
    /// The value after.
    pub new: Option<Value>,
}

/// The commits of `start`'s first-parent history where the value of `key` (the key syntax of
/// `get`) in the file `path` changed, newest first, at most `limit`.
pub fn key_history(
    view: &View,
    start: &ObjectId,
    path: &RepoPath,
    key: &str,
    limit: Option<usize>,
) -> hero_store::Result<Vec<KeyChange>> {
    let mut tracker = PathTracker::new(path.clone());
    let mut cache = HashMap::new();
    let mut out = Vec::new();
    for item in view.log(&[*start], true)? {
        let (id, commit) = item?;
        let Some(here) = tracker.changed_in(view, &id, &commit)? else {
            continue;
        };
        // The tracker now names the file as the first parent has it (a rename followed).
        let new_entry = view.entry_in_commit(&id, &here)?;
        let old_entry = match commit.parents.first() {
            Some(p) => view.entry_in_commit(p, tracker.path())?,
            None => None,
        };
        let new = value_of(view, &mut cache, new_entry.as_ref(), &here, key)?;
        let old = value_of(view, &mut cache, old_entry.as_ref(), tracker.path(), key)?;
        if old == new {
            continue;
        }
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        out.push(KeyChange {
            id,
            commit,
            path: here,
            old,
            new,
        });
    }
    Ok(out)
}

/// The value of `key` in the file `entry` at `path`, parsed once per blob (`cache`): `None`
/// when the file is absent, does not parse, or has no such key.
fn value_of(
    view: &View,
    cache: &mut HashMap<ObjectId, Option<Value>>,
    entry: Option<&TreeEntry>,
    path: &RepoPath,
    key: &str,
) -> hero_store::Result<Option<Value>> {
    let Some(e) = entry.filter(|e| e.kind.is_blob()) else {
        return Ok(None);
    };
    if let Some(v) = cache.get(&e.id) {
        return Ok(v.clone());
    }
    let shown = path.to_string();
    let bytes = view.read_file(&e.id, MAX_STRUCTURED_BYTES)?;
    let v = Format::detect(&shown, &bytes)
        .and_then(|f| hero_formats::parse(f, &bytes).ok())
        .and_then(|doc| doc.find(key).ok().flatten().cloned());
    cache.insert(e.id, v.clone());
    Ok(v)
}
