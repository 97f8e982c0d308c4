//! Writing commits without a working directory: a [`ChangeSet`] of puts, deletes, renames and
//! new directories, applied to a branch in one transaction. This is what the mount, the WebDAV
//! share and sync use.
//!
//! Only the directories on the changed paths are read and rewritten, so a commit costs work in
//! proportion to the depth of its paths (times the width of those directories), not to the size
//! of the tree.

use redb::ReadableTable as _;
use std::collections::BTreeMap;
use std::io::Read;

use crate::db::WriteCtx;
use crate::error::{DbResultExt as _, Error, Result};
use crate::file::{Pending, SMALL_FILE_MAX, StoredFile, read_head};
use crate::id::ObjectId;
use crate::object::{Commit, EntryKind, EntryMeta, Signature, Tag, Tree, TreeEntry};
use crate::path::RepoPath;
use crate::record::ObjType;
use crate::refs::RefValue;
use crate::refs::branch_ref;
use crate::repo::{Repo, View};

/// Who, when and why, for a new commit.
#[derive(Debug, Clone)]
pub struct CommitMeta {
    /// The author.
    pub author: Signature,
    /// The committer.
    pub committer: Signature,
    /// The message.
    pub message: Vec<u8>,
    /// Extra headers, verbatim (for instance [`crate::PEER_HEADER`]).
    pub extra: Vec<(Vec<u8>, Vec<u8>)>,
}

impl CommitMeta {
    /// Stores the commit of `tree` with `parents` and this metadata in `w`; its id.
    pub(crate) fn put_commit(
        self,
        w: &mut WriteCtx<'_>,
        tree: ObjectId,
        parents: Vec<ObjectId>,
    ) -> Result<ObjectId> {
        let commit = Commit {
            tree,
            parents,
            author: self.author,
            committer: self.committer,
            message: self.message,
            extra: self.extra,
        };
        let raw = commit.encode();
        let id = ObjectId::of(&raw);
        w.put(ObjType::Commit, &id, &raw, None)?;
        Ok(id)
    }

    /// Author and committer are the same signature.
    pub fn new(sig: Signature, message: impl Into<Vec<u8>>) -> Self {
        CommitMeta {
            author: sig.clone(),
            committer: sig,
            message: message.into(),
            extra: Vec::new(),
        }
    }
}

/// What the branch must hold when the change set is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Whatever it holds then: if it moved since the change set began, the changes are
    /// replayed onto the new head (puts overwrite, deletes and renames apply to what is there),
    /// so concurrent writers to different paths never lose each other's commits.
    Latest,
    /// Exactly the commit the change set started from; otherwise the commit is refused with
    /// [`Error::RefMoved`].
    Base,
}

/// The result of committing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The branch head afterwards.
    pub id: ObjectId,
    /// Whether a new commit was made (false when the tree did not change).
    pub created: bool,
}

/// Reads trees for lazy loading.
pub(crate) trait TreeSource {
    fn load_tree(&self, id: &ObjectId) -> Result<Tree>;
}

impl TreeSource for View {
    fn load_tree(&self, id: &ObjectId) -> Result<Tree> {
        self.tree(id)
    }
}

impl TreeSource for WriteCtx<'_> {
    fn load_tree(&self, id: &ObjectId) -> Result<Tree> {
        let (ty, raw) = self.get_raw(id)?;
        if ty != ObjType::Tree {
            return Err(Error::WrongType {
                id: *id,
                expected: "tree",
            });
        }
        Tree::decode(&raw).map_err(|e| Error::decode(*id, e))
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put(RepoPath, EntryKind, ObjectId, u64),
    SetMeta(RepoPath, EntryMeta),
    Delete(RepoPath),
    Rename(RepoPath, RepoPath),
    Mkdir(RepoPath),
}

#[derive(Debug, Clone)]
enum Node {
    /// An entry as it is in a stored tree (a directory not loaded, or any non-directory).
    Entry(EntryKind, ObjectId, u64, EntryMeta),
    /// A directory loaded into memory.
    Dir(DirNode),
}

#[derive(Debug, Clone, Default)]
struct DirNode {
    /// The tree this directory had when loaded.
    orig: Option<ObjectId>,
    entries: BTreeMap<Vec<u8>, Node>,
    dirty: bool,
    /// The directory's own metadata (kept in its parent's entry).
    meta: EntryMeta,
}

impl DirNode {
    fn new_empty() -> DirNode {
        DirNode {
            orig: None,
            entries: BTreeMap::new(),
            dirty: true,
            meta: EntryMeta::NONE,
        }
    }

    fn load(src: &dyn TreeSource, id: ObjectId, meta: EntryMeta) -> Result<DirNode> {
        let tree = src.load_tree(&id)?;
        let entries = tree
            .entries
            .into_iter()
            .map(|e| (e.name, Node::Entry(e.kind, e.id, e.size, e.meta)))
            .collect();
        Ok(DirNode {
            orig: Some(id),
            entries,
            dirty: false,
            meta,
        })
    }

    /// The directory at `names`, loaded and marked dirty along the way. With `create`, missing
    /// directories are made.
    fn dir_mut(
        &mut self,
        src: &dyn TreeSource,
        names: &[Vec<u8>],
        create: bool,
        full: &RepoPath,
    ) -> Result<&mut DirNode> {
        self.dirty = true;
        let Some((first, rest)) = names.split_first() else {
            return Ok(self);
        };
        if !self.entries.contains_key(first) {
            if !create {
                return Err(Error::NoSuchPath(full.to_string()));
            }
            self.entries
                .insert(first.clone(), Node::Dir(DirNode::new_empty()));
        }
        let node = self
            .entries
            .get_mut(first)
            .ok_or_else(|| Error::NoSuchPath(full.to_string()))?;
        if let Node::Entry(kind, id, _, meta) = node {
            if *kind != EntryKind::Dir {
                return Err(Error::NotADirectory(full.to_string()));
            }
            *node = Node::Dir(DirNode::load(src, *id, *meta)?);
        }
        match node {
            Node::Dir(d) => d.dir_mut(src, rest, create, full),
            Node::Entry(..) => Err(Error::NotADirectory(full.to_string())),
        }
    }

    fn lookup(
        &self,
        src: &dyn TreeSource,
        names: &[Vec<u8>],
    ) -> Result<Option<(EntryKind, Option<ObjectId>)>> {
        let Some((first, rest)) = names.split_first() else {
            return Ok(Some((EntryKind::Dir, self.orig)));
        };
        match self.entries.get(first) {
            None => Ok(None),
            Some(Node::Dir(d)) => d.lookup(src, rest),
            Some(Node::Entry(kind, id, _, _)) => {
                if rest.is_empty() {
                    return Ok(Some((*kind, Some(*id))));
                }
                if *kind != EntryKind::Dir {
                    return Ok(None);
                }
                DirNode::load(src, *id, EntryMeta::NONE)?.lookup(src, rest)
            }
        }
    }

    fn apply(&mut self, src: &dyn TreeSource, op: &Op) -> Result<()> {
        match op {
            Op::Put(path, kind, id, size) => {
                let (parent, name) = split(path)?;
                let dir = self.dir_mut(src, parent, true, path)?;
                let meta = match dir.entries.get(name) {
                    Some(Node::Dir(_)) | Some(Node::Entry(EntryKind::Dir, ..)) => {
                        return Err(Error::IsADirectory(path.to_string()));
                    }
                    Some(Node::Entry(_, _, _, meta)) => meta.for_new_content(*kind),
                    None => EntryMeta::NONE,
                };
                dir.entries
                    .insert(name.to_vec(), Node::Entry(*kind, *id, *size, meta));
            }
            Op::SetMeta(path, meta) => {
                let bad = || Error::InvalidOperation(path.to_string(), "metadata does not fit");
                match split(path) {
                    // The root has no entry to keep metadata in.
                    Err(_) => return Err(bad()),
                    Ok((parent, name)) => {
                        let dir = self.dir_mut(src, parent, false, path)?;
                        match dir.entries.get_mut(name) {
                            None => return Err(Error::NoSuchPath(path.to_string())),
                            Some(Node::Dir(d)) => d.meta = *meta,
                            Some(Node::Entry(kind, _, _, m)) => {
                                if !meta.fits(*kind) {
                                    return Err(bad());
                                }
                                *m = *meta;
                            }
                        }
                    }
                }
            }
            Op::Delete(path) => {
                let (parent, name) = split(path)?;
                let dir = self.dir_mut(src, parent, false, path)?;
                if dir.entries.remove(name).is_none() {
                    return Err(Error::NoSuchPath(path.to_string()));
                }
            }
            Op::Mkdir(path) => {
                let (parent, name) = split(path)?;
                let dir = self.dir_mut(src, parent, false, path)?;
                if dir.entries.contains_key(name) {
                    return Err(Error::PathExists(path.to_string()));
                }
                dir.entries
                    .insert(name.to_vec(), Node::Dir(DirNode::new_empty()));
            }
            Op::Rename(from, to) => {
                if from == to {
                    return match self.lookup(src, from.names())? {
                        Some(_) => Ok(()),
                        None => Err(Error::NoSuchPath(from.to_string())),
                    };
                }
                if to.starts_with(from) {
                    return Err(Error::InvalidOperation(
                        to.to_string(),
                        "cannot move a directory inside itself",
                    ));
                }
                let from_kind = self
                    .lookup(src, from.names())?
                    .ok_or_else(|| Error::NoSuchPath(from.to_string()))?
                    .0;
                if let Some((to_kind, to_id)) = self.lookup(src, to.names())? {
                    match (from_kind == EntryKind::Dir, to_kind == EntryKind::Dir) {
                        (true, false) => return Err(Error::NotADirectory(to.to_string())),
                        (false, true) => return Err(Error::IsADirectory(to.to_string())),
                        (true, true) => {
                            let empty = match to_id {
                                Some(id) => src.load_tree(&id)?.entries.is_empty(),
                                None => self.dir_is_empty(src, to.names())?,
                            };
                            if !empty {
                                return Err(Error::NotEmpty(to.to_string()));
                            }
                        }
                        (false, false) => {}
                    }
                }
                // The destination's parent must exist before anything moves.
                let (to_parent, to_name) = split(to)?;
                self.dir_mut(src, to_parent, false, to)?;
                let (from_parent, from_name) = split(from)?;
                let node = self
                    .dir_mut(src, from_parent, false, from)?
                    .entries
                    .remove(from_name)
                    .ok_or_else(|| Error::NoSuchPath(from.to_string()))?;
                self.dir_mut(src, to_parent, false, to)?
                    .entries
                    .insert(to_name.to_vec(), node);
            }
        }
        Ok(())
    }

    fn dir_is_empty(&self, src: &dyn TreeSource, names: &[Vec<u8>]) -> Result<bool> {
        let Some((first, rest)) = names.split_first() else {
            return Ok(self.entries.is_empty());
        };
        match self.entries.get(first) {
            Some(Node::Dir(d)) => d.dir_is_empty(src, rest),
            Some(Node::Entry(EntryKind::Dir, id, _, _)) => {
                DirNode::load(src, *id, EntryMeta::NONE)?.dir_is_empty(src, rest)
            }
            _ => Ok(false),
        }
    }

    /// Writes this directory (and every dirty one below) and returns its tree id and size.
    fn write(&self, w: &mut WriteCtx<'_>) -> Result<(ObjectId, u64)> {
        if !self.dirty
            && let Some(id) = self.orig
        {
            return Ok((id, self.entries.len() as u64));
        }
        let mut entries = Vec::with_capacity(self.entries.len());
        for (name, node) in &self.entries {
            let (kind, id, size, meta) = match node {
                Node::Entry(k, id, s, m) => (*k, *id, *s, *m),
                Node::Dir(d) => {
                    let (id, size) = d.write(w)?;
                    (EntryKind::Dir, id, size, d.meta)
                }
            };
            entries.push(TreeEntry {
                name: name.clone(),
                kind,
                id,
                size,
                meta,
            });
        }
        let tree = Tree { entries };
        let raw = tree.encode();
        let id = ObjectId::of(&raw);
        w.put(ObjType::Tree, &id, &raw, None)?;
        if let Some(orig) = self.orig
            && orig != id
        {
            w.deltify(&orig, &id)?;
        }
        Ok((id, tree.entries.len() as u64))
    }
}

fn split(path: &RepoPath) -> Result<(&[Vec<u8>], &[u8])> {
    match path.names().split_last() {
        Some((last, parent)) => Ok((parent, last.as_slice())),
        None => Err(Error::InvalidOperation(
            "/".to_owned(),
            "the root cannot be replaced, removed or moved",
        )),
    }
}

/// A set of changes to one branch, committed atomically.
pub struct ChangeSet<'r> {
    repo: &'r Repo,
    view: View,
    refname: String,
    base: Option<ObjectId>,
    root: DirNode,
    ops: Vec<Op>,
    pending: Pending,
    extra_parents: Vec<ObjectId>,
    /// The root directory's metadata to record, when it changes.
    root_meta: Option<EntryMeta>,
}

impl std::fmt::Debug for ChangeSet<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeSet")
            .field("branch", &self.refname)
            .field("base", &self.base)
            .field("ops", &self.ops.len())
            .finish()
    }
}

/// Pending small objects above this size are written before the commit.
const PENDING_FLUSH: usize = 32 << 20;

impl Repo {
    /// Starts a change set on `branch` (which need not exist yet). Refuses hero's reserved
    /// branches ([`Error::ReservedBranch`]).
    pub fn change_set(&self, branch: &str) -> Result<ChangeSet<'_>> {
        crate::refs::ordinary_branch_ref(branch)?;
        self.change_set_reserved(branch)
    }

    /// [`Repo::change_set`] that also writes hero's reserved branches (`hero/...`): only for
    /// the code that owns such a branch (hero-sync's membership).
    pub fn change_set_reserved(&self, branch: &str) -> Result<ChangeSet<'_>> {
        let refname = branch_ref(branch)?;
        let view = self.view()?;
        let base = match view.get_ref(&refname)? {
            Some(v) => Some(view.peel(v)?),
            None => None,
        };
        let root = match base {
            Some(c) => DirNode::load(&view, view.commit(&c)?.tree, EntryMeta::NONE)?,
            None => DirNode::new_empty(),
        };
        Ok(ChangeSet {
            repo: self,
            view,
            refname,
            base,
            root,
            ops: Vec::new(),
            pending: Pending::default(),
            extra_parents: Vec::new(),
            root_meta: None,
        })
    }

    /// Writes objects and refs directly, in one transaction (for importers and sync).
    pub fn batch<R>(&self, f: impl FnOnce(&mut Batch<'_, '_>) -> Result<R>) -> Result<R> {
        self.write(|w| {
            let mut b = Batch { w };
            f(&mut b)
        })
    }
}

impl ChangeSet<'_> {
    /// The commit the change set started from.
    pub fn base(&self) -> Option<ObjectId> {
        self.base
    }

    /// Whether no change was recorded.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Every path a recorded change names (both sides of a rename), in the order recorded.
    pub fn touched_paths(&self) -> Vec<&RepoPath> {
        let mut out = Vec::with_capacity(self.ops.len());
        for op in &self.ops {
            match op {
                Op::Put(p, ..) | Op::SetMeta(p, _) | Op::Delete(p) | Op::Mkdir(p) => out.push(p),
                Op::Rename(a, b) => {
                    out.push(a);
                    out.push(b);
                }
            }
        }
        out
    }

    /// Adds a parent (for merges) after the branch head.
    pub fn add_parent(&mut self, parent: ObjectId) {
        self.extra_parents.push(parent);
    }

    fn previous_blob(&self, path: &RepoPath) -> Result<Option<ObjectId>> {
        Ok(match self.root.lookup(&self.view, path.names())? {
            Some((kind, id)) if kind.is_blob() => id,
            _ => None,
        })
    }

    fn record(&mut self, op: Op) -> Result<()> {
        self.root.apply(&self.view, &op)?;
        self.ops.push(op);
        Ok(())
    }

    /// Puts a file (or symlink, whose content is its target) from bytes.
    pub fn put_bytes(
        &mut self,
        path: &RepoPath,
        kind: EntryKind,
        content: &[u8],
    ) -> Result<StoredFile> {
        if !kind.is_blob() {
            return Err(Error::InvalidOperation(path.to_string(), "not a file kind"));
        }
        if content.len() > SMALL_FILE_MAX {
            return self.put_reader(path, kind, content);
        }
        let id = ObjectId::of(content);
        let prev = self.previous_blob(path)?;
        self.record(Op::Put(path.clone(), kind, id, content.len() as u64))?;
        self.pending.add(ObjType::Blob, id, content, None);
        if let Some(prev) = prev {
            self.pending.delta(prev, id);
        }
        self.maybe_flush()?;
        Ok(StoredFile {
            id,
            size: content.len() as u64,
        })
    }

    /// Puts a file from a stream of any size (bounded memory).
    pub fn put_reader(
        &mut self,
        path: &RepoPath,
        kind: EntryKind,
        mut content: impl Read,
    ) -> Result<StoredFile> {
        let head = read_head(&mut content)?;
        if head.len() <= SMALL_FILE_MAX {
            return self.put_bytes(path, kind, &head);
        }
        if !kind.is_blob() {
            return Err(Error::InvalidOperation(path.to_string(), "not a file kind"));
        }
        // Check the path before storing a large file for it.
        if let Some((EntryKind::Dir, _)) = self.root.lookup(&self.view, path.names())? {
            return Err(Error::IsADirectory(path.to_string()));
        }
        let prev = self.previous_blob(path)?;
        let stored = self.repo.write_large(head, &mut content, prev)?;
        self.record(Op::Put(path.clone(), kind, stored.id, stored.size))?;
        Ok(stored)
    }

    /// Puts a file from the first `len` bytes of a file on disk; its holes are not read
    /// (see [`Repo::write_file_from`]).
    pub fn put_file(
        &mut self,
        path: &RepoPath,
        kind: EntryKind,
        file: &std::fs::File,
        len: u64,
    ) -> Result<StoredFile> {
        if len <= SMALL_FILE_MAX as u64 {
            let mut head = Vec::new();
            crate::file::read_file_head(file, len, &mut head)?;
            return self.put_bytes(path, kind, &head);
        }
        if !kind.is_blob() {
            return Err(Error::InvalidOperation(path.to_string(), "not a file kind"));
        }
        if let Some((EntryKind::Dir, _)) = self.root.lookup(&self.view, path.names())? {
            return Err(Error::IsADirectory(path.to_string()));
        }
        let prev = self.previous_blob(path)?;
        let stored = self.repo.write_file_from(file, len, prev)?;
        self.record(Op::Put(path.clone(), kind, stored.id, stored.size))?;
        Ok(stored)
    }

    /// Puts an entry whose content is already stored (for instance by [`Repo::write_file`]).
    pub fn put_entry(
        &mut self,
        path: &RepoPath,
        kind: EntryKind,
        id: ObjectId,
        size: u64,
    ) -> Result<()> {
        if kind == EntryKind::Dir {
            return Err(Error::InvalidOperation(
                path.to_string(),
                "use mkdir for directories",
            ));
        }
        if kind.is_special() && (id != ObjectId::ZERO || size != 0) {
            return Err(Error::InvalidOperation(
                path.to_string(),
                "a special file has no content",
            ));
        }
        self.record(Op::Put(path.clone(), kind, id, size))
    }

    /// Puts a special file (FIFO, socket, device node; a device's number goes in its
    /// metadata, [`EntryMeta::rdev`], through [`ChangeSet::set_meta`]).
    pub fn put_special(&mut self, path: &RepoPath, kind: EntryKind) -> Result<()> {
        if !kind.is_special() {
            return Err(Error::InvalidOperation(
                path.to_string(),
                "not a special file kind",
            ));
        }
        self.put_entry(path, kind, ObjectId::ZERO, 0)
    }

    /// Puts a stored entry exactly as it is in another tree: kind, content and metadata (a
    /// restore, a revert). Not for directories.
    pub fn put_tree_entry(&mut self, path: &RepoPath, e: &TreeEntry) -> Result<()> {
        self.put_entry(path, e.kind, e.id, e.size)?;
        self.set_meta(path, e.meta)
    }

    /// Removes a file or a whole directory.
    pub fn delete(&mut self, path: &RepoPath) -> Result<()> {
        self.record(Op::Delete(path.clone()))
    }

    /// Moves a file or directory. Replaces a file, or an empty directory, at `to`.
    pub fn rename(&mut self, from: &RepoPath, to: &RepoPath) -> Result<()> {
        self.record(Op::Rename(from.clone(), to.clone()))
    }

    /// Makes an empty directory (its parent must exist).
    pub fn mkdir(&mut self, path: &RepoPath) -> Result<()> {
        self.record(Op::Mkdir(path.clone()))
    }

    /// Sets the metadata of the file, symlink or directory at `path` (replacing what it had;
    /// [`EntryMeta::NONE`] clears it). Metadata that does not fit the entry's kind is
    /// refused with [`Error::InvalidOperation`]; a put's content change keeps the entry's
    /// mode and owner but not its time (see [`EntryMeta::for_new_content`]).
    pub fn set_meta(&mut self, path: &RepoPath, meta: EntryMeta) -> Result<()> {
        self.record(Op::SetMeta(path.clone(), meta))
    }

    /// Sets the root directory's metadata ([`crate::ROOT_META_HEADER`]); without this the
    /// commit keeps its parent's.
    pub fn set_root_meta(&mut self, meta: EntryMeta) {
        self.root_meta = Some(meta);
    }

    fn maybe_flush(&mut self) -> Result<()> {
        if self.pending.bytes >= PENDING_FLUSH {
            let pending = &mut self.pending;
            self.repo.write(|w| pending.apply(w))?;
        }
        Ok(())
    }

    /// Commits the changes in one transaction and moves the branch. With [`Expect::Latest`],
    /// a branch that moved meanwhile gets the changes replayed onto its new head.
    pub fn commit(self, meta: CommitMeta, expect: Expect) -> Result<Committed> {
        self.write_commit(meta, expect, true)
    }

    /// Writes the commit the changes make on the branch's head, as [`ChangeSet::commit`]
    /// with [`Expect::Base`] would, without moving the branch: the caller checks the commit
    /// and moves the branch itself ([`Repo::update_branch`] from [`ChangeSet::base`]).
    /// `created` is false when the changes change nothing (the id is then the head's).
    pub fn commit_unattached(self, meta: CommitMeta) -> Result<Committed> {
        self.write_commit(meta, Expect::Base, false)
    }

    fn write_commit(
        mut self,
        meta: CommitMeta,
        expect: Expect,
        move_ref: bool,
    ) -> Result<Committed> {
        let refname = self.refname.clone();
        let base = self.base;
        let ops = std::mem::take(&mut self.ops);
        let extra_parents = std::mem::take(&mut self.extra_parents);
        let root = &mut self.root;
        let pending = &mut self.pending;
        let root_meta = self.root_meta.take();
        self.repo.write(move |w| {
            let head = match w.get_ref(&refname)? {
                Some(RefValue::Commit(id)) => Some(id),
                Some(RefValue::Tag(id)) => {
                    return Err(Error::WrongType {
                        id,
                        expected: "branch",
                    });
                }
                None => None,
            };
            pending.apply(w)?;
            let (tree_id, head_tree) = if head == base {
                let head_tree = match head {
                    Some(h) => Some(commit_tree(w, &h)?),
                    None => None,
                };
                (root.write(w)?.0, head_tree)
            } else {
                if expect == Expect::Base {
                    return Err(Error::RefMoved {
                        name: refname.clone(),
                        expected: base,
                        found: head,
                    });
                }
                let head_tree = match head {
                    Some(h) => Some(commit_tree(w, &h)?),
                    None => None,
                };
                let mut fresh = match head_tree {
                    Some(t) => DirNode::load(w, t, EntryMeta::NONE)?,
                    None => DirNode::new_empty(),
                };
                for op in &ops {
                    fresh.apply(w, op)?;
                }
                (fresh.write(w)?.0, head_tree)
            };
            // The root's metadata: the one set here, else the head's.
            let head_root_meta = match head {
                Some(h) => commit_object(w, &h)?.root_meta(),
                None => EntryMeta::NONE,
            };
            let new_root_meta = root_meta.unwrap_or(head_root_meta);
            if head_tree == Some(tree_id)
                && extra_parents.is_empty()
                && new_root_meta == head_root_meta
                && let Some(h) = head
            {
                return Ok(Committed {
                    id: h,
                    created: false,
                });
            }
            let mut meta = meta;
            meta.extra.retain(|(k, _)| k != crate::ROOT_META_HEADER);
            if let Some(v) = new_root_meta.to_header() {
                meta.extra.push((crate::ROOT_META_HEADER.to_vec(), v));
            }
            let parents = head.into_iter().chain(extra_parents).collect();
            let id = meta.put_commit(w, tree_id, parents)?;
            if move_ref {
                w.set_ref(
                    &refname,
                    head.map(RefValue::Commit),
                    Some(RefValue::Commit(id)),
                    "commit",
                )?;
            }
            Ok(Committed { id, created: true })
        })
    }
}

fn commit_tree(w: &WriteCtx<'_>, id: &ObjectId) -> Result<ObjectId> {
    Ok(commit_object(w, id)?.tree)
}

fn commit_object(w: &WriteCtx<'_>, id: &ObjectId) -> Result<Commit> {
    let (ty, raw) = w.get_raw(id)?;
    if ty != ObjType::Commit {
        return Err(Error::WrongType {
            id: *id,
            expected: "commit",
        });
    }
    Commit::decode(&raw).map_err(|e| Error::decode(*id, e))
}

/// Direct object and ref writes inside one transaction.
pub struct Batch<'a, 't> {
    pub(crate) w: &'a mut WriteCtx<'t>,
}

impl std::fmt::Debug for Batch<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Batch")
    }
}

impl Batch<'_, '_> {
    /// Whether an object is stored.
    pub fn has(&self, id: &ObjectId) -> Result<bool> {
        self.w.has(id)
    }
    /// Stores small file content (at most [`SMALL_FILE_MAX`] bytes) and returns its id.
    pub fn put_blob(&mut self, content: &[u8], previous: Option<ObjectId>) -> Result<ObjectId> {
        if content.len() > SMALL_FILE_MAX {
            return Err(Error::FileTooLarge);
        }
        let id = ObjectId::of(content);
        self.w.put(ObjType::Blob, &id, content, None)?;
        if let Some(p) = previous {
            self.w.deltify(&p, &id)?;
        }
        Ok(id)
    }
    /// Stores a tree (checked) and returns its id; `previous` is a delta base hint.
    pub fn put_tree(&mut self, tree: &Tree, previous: Option<ObjectId>) -> Result<ObjectId> {
        tree.check()?;
        let raw = tree.encode();
        let id = ObjectId::of(&raw);
        self.w.put(ObjType::Tree, &id, &raw, None)?;
        if let Some(p) = previous {
            self.w.deltify(&p, &id)?;
        }
        Ok(id)
    }
    /// Stores a commit and returns its id.
    pub fn put_commit(&mut self, commit: &Commit) -> Result<ObjectId> {
        let raw = commit.encode();
        let id = ObjectId::of(&raw);
        self.w.put(ObjType::Commit, &id, &raw, None)?;
        Ok(id)
    }
    /// Stores an annotated tag object and returns its id.
    pub fn put_tag(&mut self, tag: &Tag) -> Result<ObjectId> {
        let raw = tag.encode();
        let id = ObjectId::of(&raw);
        self.w.put(ObjType::Tag, &id, &raw, None)?;
        Ok(id)
    }
    /// Reads a ref.
    pub fn get_ref(&self, refname: &str) -> Result<Option<RefValue>> {
        self.w.get_ref(refname)
    }
    /// Compare-and-swap on any ref; the move is logged.
    pub fn cas_ref(
        &mut self,
        refname: &str,
        expected: Option<RefValue>,
        new: Option<RefValue>,
        reason: &str,
    ) -> Result<()> {
        self.w.cas_ref(refname, expected, new, reason)
    }
    /// Writes (or with `None` removes) a cross-reference: a binary key and value kept in the
    /// repository for the importers and sync (namespace keys with a leading tag byte string).
    pub fn set_xref(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        match value {
            Some(v) => {
                self.w.xref.insert(key, v).db_err()?;
            }
            None => {
                self.w.xref.remove(key).db_err()?;
            }
        }
        Ok(())
    }
    /// Reads a cross-reference inside this transaction.
    pub fn xref(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.w.xref.get(key).db_err()?.map(|g| g.value().to_vec()))
    }
    /// Sets a setting.
    pub fn set_setting(&mut self, key: &str, value: Option<&[u8]>) -> Result<()> {
        match value {
            Some(v) => {
                self.w.kv.insert(key, v).db_err()?;
            }
            None => {
                self.w.kv.remove(key).db_err()?;
            }
        }
        Ok(())
    }
}
