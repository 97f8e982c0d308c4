//! The mount's commits (what pending changes become, written outside the state lock) and
//! refreshes from commits made elsewhere ([`State::reconcile`]).

use super::*;

impl State {
    /// Takes what the next commit holds, under the state lock: the pending changes, each
    /// put resolved to the content it has now. Spill files in it are marked busy (writes to
    /// them wait until the commit has read them). `None` when nothing is pending.
    pub(super) fn take_commit(&mut self) -> Option<(Vec<Item>, CommitSnap)> {
        if self.ops.is_empty() {
            return None;
        }
        let ops = std::mem::take(&mut self.ops);
        let mut items = Vec::with_capacity(ops.len());
        let mut linked = Vec::new();
        for op in &ops {
            items.push(match op {
                Op::Mkdir(p) => Item::Mkdir(p.clone()),
                Op::Delete(p) => Item::Delete(p.clone()),
                Op::Rename(a, b) => Item::Rename(a.clone(), b.clone()),
                Op::Put { path, ino } => {
                    let node = self.nodes.get(ino);
                    let what = match node.map(|n| &n.kind) {
                        Some(Kind::File { content, exec }) => {
                            let kind = if *exec {
                                EntryKind::Executable
                            } else {
                                EntryKind::File
                            };
                            match content {
                                Content::Stored { id, size } => Put::Entry(kind, *id, *size),
                                Content::Spill { spill, size, .. } => Put::Spill {
                                    kind,
                                    size: *size,
                                    busy: Busy::new(spill.clone()),
                                },
                            }
                        }
                        Some(Kind::Symlink {
                            target: Some(t), ..
                        }) => Put::Symlink(t.clone()),
                        Some(Kind::Symlink { id, size, .. }) => {
                            Put::Entry(EntryKind::Symlink, *id, *size)
                        }
                        Some(Kind::Gitlink { id, size }) => {
                            Put::Entry(EntryKind::Gitlink, *id, *size)
                        }
                        Some(Kind::Special { kind }) => Put::Entry(*kind, ObjectId::ZERO, 0),
                        _ => Put::Nothing,
                    };
                    if node.is_some_and(|n| n.meta.link.is_some() || !n.names.is_empty()) {
                        linked.push(*ino);
                    }
                    Item::Put {
                        path: path.clone(),
                        ino: *ino,
                        what,
                        meta: node.map(Node::stored_meta),
                    }
                }
            });
        }
        // A hard-linked inode's every name, as it is now, after all the moves above: each
        // gets the same content and metadata (the first put above stores the content; the
        // others find it stored).
        for ino in linked {
            let Some(Item::Put { what, meta, .. }) = items
                .iter()
                .find(|i| matches!(i, Item::Put { ino: i, .. } if *i == ino))
            else {
                continue;
            };
            let (what, meta) = (what.again(), *meta);
            for path in self.all_paths(ino) {
                items.push(Item::Put {
                    path,
                    ino,
                    what: what.again(),
                    meta,
                });
            }
        }
        let queued: HashSet<u64> = std::mem::take(&mut self.put_pending);
        self.committing.extend(queued.iter().copied());
        // A failed commit is retried after the idle time, not the short one after a close.
        self.closed_written = false;
        let snap = CommitSnap {
            ops,
            base: self.base,
            last_change: self.last_change.take(),
            pending: self.pending.begin_commit(),
        };
        Some((items, snap))
    }

    /// A commit failed: its changes are pending again, before those made meanwhile.
    pub(super) fn restore_commit(&mut self, snap: CommitSnap) {
        let mut ops = snap.ops;
        ops.append(&mut self.ops);
        self.ops = ops;
        let queued: Vec<u64> = self.committing.drain().collect();
        self.put_pending.extend(queued);
        self.pending.commit_failed(snap.pending);
        if self.last_change.is_none() {
            self.last_change = snap.last_change;
        }
    }

    /// A commit succeeded: what was written is marked committed unless it changed meanwhile,
    /// and the tree follows the new head (once nothing is pending).
    pub(super) fn apply_commit(
        &mut self,
        shared: &Shared,
        snap: CommitSnap,
        done: &mut Written,
    ) -> Result<(), hero_store::Error> {
        let changed_meanwhile = !self.ops.is_empty();
        self.pending.committed(snap.pending, changed_meanwhile);
        let queued: Vec<u64> = self.committing.drain().collect();
        for (ino, spill, id) in std::mem::take(&mut done.stored) {
            if self.put_pending.contains(&ino) {
                continue; // written to again since: committed again next time
            }
            if let Some(n) = self.nodes.get_mut(&ino)
                && let Kind::File { content, .. } = &mut n.kind
                && let Content::Spill {
                    spill: now,
                    size,
                    committed,
                } = content
                && Arc::ptr_eq(now, &spill)
                && *size == done.sizes.get(&ino).copied().unwrap_or(u64::MAX)
            {
                *committed = Some(id);
                if n.open == 0 {
                    *content = Content::Stored { id, size: *size };
                }
            }
        }
        for ino in queued {
            self.maybe_gc(ino);
        }
        if done.moved || done.skipped {
            tracing::debug!(
                moved = done.moved,
                skipped = done.skipped,
                "branch differs from the local tree; refreshing"
            );
        }
        if changed_meanwhile {
            // The refresh waits for the commit of those changes (it would undo them now).
            self.base = Some(done.id);
            return Ok(());
        }
        // Also when nothing moved: the changed directories get their stored tree ids back,
        // which makes their inodes evictable again (see `sweep`).
        self.reconcile(shared, Some(done.id))
    }

    /// Makes the tree match `head` (no local changes may be pending), queueing the kernel
    /// cache invalidations needed.
    pub fn reconcile(
        &mut self,
        shared: &Shared,
        head: Option<ObjectId>,
    ) -> Result<(), hero_store::Error> {
        let (tree, root_meta) = match head {
            Some(c) => {
                let c = shared.repo.commit(&c)?;
                (Some(c.tree), c.root_meta())
            }
            None => (None, EntryMeta::NONE),
        };
        if self.set_root_meta(root_meta) {
            self.inval.push(Inval::Inode(ROOT));
        }
        self.base = head;
        self.ignore_rules_stale();
        self.reconcile_dir(shared, ROOT, tree)
    }

    pub(super) fn reconcile_dir(
        &mut self,
        shared: &Shared,
        ino: u64,
        new_tree: Option<ObjectId>,
    ) -> Result<(), hero_store::Error> {
        let Some(node) = self.nodes.get_mut(&ino) else {
            return Ok(());
        };
        let Kind::Dir { tree, children } = &mut node.kind else {
            return Ok(());
        };
        if children.is_none() {
            *tree = new_tree;
            return Ok(());
        }
        if tree.is_some() && *tree == new_tree {
            return Ok(());
        }
        let old = children.take().unwrap_or_default();
        *tree = new_tree;
        let mut entries = match new_tree {
            Some(t) => shared.repo.tree(&t)?.entries,
            None => Vec::new(),
        };
        // Not shown, as when the directory is first loaded.
        entries.retain(|e| !hero_store::is_git_unsafe(&e.name));
        let mut new_children = BTreeMap::new();
        let mut subdirs = Vec::new();
        let time = SystemTime::now();
        let mut seen: HashSet<&[u8]> = HashSet::new();
        for e in &entries {
            seen.insert(&e.name);
        }
        // Local (ignored) entries stay, and hide a same-named entry of the branch.
        let locals: Vec<(Vec<u8>, u64)> = old
            .iter()
            .filter(|(_, c)| self.is_local(**c))
            .map(|(n, c)| (n.clone(), *c))
            .collect();
        for (name, child) in &old {
            if !seen.contains(name.as_slice()) && !self.is_local(*child) {
                self.orphan_name(*child, ino, name);
                self.inval.push(Inval::Entry(ino, name.clone()));
            }
        }
        for (name, child) in locals {
            new_children.insert(name, child);
        }
        for e in entries {
            if new_children.contains_key(&e.name) {
                continue;
            }
            let existing = old.get(&e.name).copied();
            let kept = match existing {
                Some(child) => self.update_child(child, &e),
                None => false,
            };
            let name = e.name.clone();
            if kept {
                if let Some(child) = existing {
                    if e.kind == EntryKind::Dir {
                        subdirs.push((child, e.id));
                    }
                    new_children.insert(name, child);
                }
                continue;
            }
            if let Some(child) = existing {
                self.orphan_name(child, ino, &name);
            }
            self.inval.push(Inval::Entry(ino, name.clone()));
            let (child, _) = self.node_for_entry(ino, e, false, time);
            new_children.insert(name, child);
        }
        if let Some(Node {
            kind: Kind::Dir { children, .. },
            ..
        }) = self.nodes.get_mut(&ino)
        {
            *children = Some(new_children);
        }
        for (child, id) in subdirs {
            self.reconcile_dir(shared, child, Some(id))?;
        }
        Ok(())
    }

    /// A name of `ino` is gone from `dir` (its other names, if any, keep it).
    pub(super) fn orphan_name(&mut self, ino: u64, dir: u64, name: &[u8]) {
        self.drop_name(ino, dir, name);
        self.maybe_gc(ino);
    }

    /// Brings an existing inode up to a tree entry of a compatible kind; false when the kinds
    /// differ (the inode is then replaced).
    pub(super) fn update_child(&mut self, ino: u64, e: &TreeEntry) -> bool {
        let pending = self.put_pending.contains(&ino);
        let Some(n) = self.nodes.get_mut(&ino) else {
            return false;
        };
        // Mode, owner or time changed elsewhere (unless changed here too: ours is committed
        // next).
        let stored_time = e.meta.mtime.map(Timestamp::to_system_time);
        if !pending
            && ((n.meta.mode, n.meta.owner) != (e.meta.mode, e.meta.owner)
                || stored_time.is_some_and(|t| t != n.mtime))
        {
            n.meta = e.meta;
            if let Some(t) = stored_time {
                n.mtime = t;
            }
            self.inval.push(Inval::Inode(ino));
        }
        let new_exec = e.kind == EntryKind::Executable;
        let mut changed = false;
        let mut keep_local = false;
        match (&mut n.kind, e.kind) {
            (Kind::Dir { .. }, EntryKind::Dir) => return true,
            (Kind::File { content, exec }, EntryKind::File | EntryKind::Executable) => {
                match content {
                    Content::Stored { id, size } => {
                        if *id == e.id && *exec == new_exec {
                        } else if n.writers > 0 {
                            // Open for writing here (its scratch file not made yet): like a
                            // written file, ours is committed next.
                            keep_local = true;
                        } else {
                            *id = e.id;
                            *size = e.size;
                            *exec = new_exec;
                            changed = true;
                        }
                    }
                    Content::Spill { committed, .. } => {
                        if *committed == Some(e.id) && *exec == new_exec {
                        } else if pending || n.open > 0 {
                            keep_local = true;
                        } else {
                            *content = Content::Stored {
                                id: e.id,
                                size: e.size,
                            };
                            *exec = new_exec;
                            changed = true;
                        }
                    }
                }
            }
            (Kind::Symlink { id, size, target }, EntryKind::Symlink) => {
                if *id != e.id {
                    *id = e.id;
                    *size = e.size;
                    *target = None;
                    changed = true;
                }
            }
            (Kind::Gitlink { id, size }, EntryKind::Gitlink) => {
                if *id != e.id {
                    *id = e.id;
                    *size = e.size;
                    changed = true;
                }
            }
            (Kind::Special { kind }, k) if *kind == k => {}
            _ => return false,
        }
        if changed && n.open > 0 {
            // Open files keep their version: the path gets a new inode instead (like a
            // rename over the file on a local disk), so the page caches do not mix.
            return false;
        }
        if changed {
            let now = SystemTime::now();
            n.mtime = stored_time.unwrap_or(now);
            n.ctime = now;
            if n.open > 0 {
                n.stale_cache = true;
            }
            self.inval.push(Inval::Inode(ino));
        }
        if keep_local {
            // Written here while someone else changed it: ours is committed next.
            self.mark_put(ino);
        }
        true
    }
}

/// A file whose content a commit is reading: writes to it wait until the guard is dropped.
pub(crate) struct Busy(Arc<Spill>);

impl Busy {
    fn new(spill: Arc<Spill>) -> Busy {
        *spill.busy_flag() += 1;
        Busy(spill)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut busy = self.0.busy_flag();
        *busy = busy.saturating_sub(1);
        if *busy == 0 {
            self.0.idle.notify_all();
        }
    }
}

/// The content a put commits, taken under the state lock.
pub(super) enum Put {
    Entry(EntryKind, ObjectId, u64),
    Spill {
        kind: EntryKind,
        size: u64,
        busy: Busy,
    },
    Symlink(Vec<u8>),
    Nothing,
}

impl Put {
    /// The same content for another name of a hard-linked inode.
    fn again(&self) -> Put {
        match self {
            Put::Entry(k, id, size) => Put::Entry(*k, *id, *size),
            Put::Spill { kind, size, busy } => Put::Spill {
                kind: *kind,
                size: *size,
                busy: Busy::new(busy.0.clone()),
            },
            Put::Symlink(t) => Put::Symlink(t.clone()),
            Put::Nothing => Put::Nothing,
        }
    }
}

/// One change of a commit, resolved.
pub(super) enum Item {
    Mkdir(RepoPath),
    Delete(RepoPath),
    Rename(RepoPath, RepoPath),
    Put {
        path: RepoPath,
        ino: u64,
        what: Put,
        meta: Option<EntryMeta>,
    },
}

/// What a commit holds, taken under the state lock and written without it.
pub(crate) struct CommitSnap {
    /// The operations taken (pending again if the commit fails).
    pub(super) ops: Vec<Op>,
    /// The head the mount showed.
    pub(super) base: Option<ObjectId>,
    pub(super) last_change: Option<Instant>,
    pub(super) pending: crate::durability::InFlight,
}

/// What a commit wrote.
pub(crate) struct Written {
    pub(super) id: ObjectId,
    /// Spill files stored: inode, file, content id.
    pub(super) stored: Vec<(u64, Arc<Spill>, ObjectId)>,
    /// The size each stored inode had when taken.
    pub(super) sizes: HashMap<u64, u64>,
    pub(super) skipped: bool,
    pub(super) moved: bool,
}

/// Writes a commit's changes into the store and commits them, without the state lock: file
/// contents stream from their spill files, each released for writes once read.
pub(super) fn write_items(
    shared: &Shared,
    items: Vec<Item>,
    base: Option<ObjectId>,
) -> Result<Written, hero_store::Error> {
    let repo = &shared.repo;
    let mut cs = repo.change_set(&shared.cfg.branch)?;
    let mut stored = Vec::new();
    let mut sizes = HashMap::new();
    let mut skipped = false;
    let mut paths: Vec<String> = Vec::new();
    for item in items {
        let res = match item {
            Item::Mkdir(p) => {
                paths.push(p.to_string());
                cs.mkdir(&p)
            }
            Item::Delete(p) => {
                paths.push(p.to_string());
                cs.delete(&p)
            }
            Item::Rename(a, b) => {
                paths.push(b.to_string());
                cs.rename(&a, &b)
            }
            // The root is no tree's entry: its metadata goes in the commit.
            Item::Put {
                path,
                meta: Some(m),
                ..
            } if path.is_root() => {
                cs.set_root_meta(m);
                Ok(())
            }
            Item::Put {
                path,
                ino,
                what,
                meta,
            } => {
                paths.push(path.to_string());
                let put = match what {
                    Put::Entry(kind, id, size) => cs.put_entry(&path, kind, id, size),
                    Put::Symlink(t) => cs.put_bytes(&path, EntryKind::Symlink, &t).map(|_| ()),
                    Put::Spill { kind, size, busy } => {
                        // The spill file's holes are not read: they become holes.
                        let res = cs.put_file(&path, kind, &busy.0.file, size);
                        let spill = busy.0.clone();
                        drop(busy); // read: writes to it may go on
                        match res {
                            Ok(s) => {
                                stored.push((ino, spill, s.id));
                                sizes.insert(ino, size);
                                Ok(())
                            }
                            Err(e @ hero_store::Error::Input(_)) => return Err(e),
                            Err(e) if e.is_disk_full() => return Err(e),
                            Err(e) => Err(e),
                        }
                    }
                    Put::Nothing => Ok(()),
                };
                match meta {
                    Some(m) if put.is_ok() && m != EntryMeta::NONE => cs.set_meta(&path, m),
                    _ => put,
                }
            }
        };
        if let Err(e) = res {
            tracing::warn!(error = %e, "a change no longer applies to the branch; skipped");
            skipped = true;
        }
    }
    paths.dedup();
    let mut message = match paths.len() {
        0 => "mount: update".to_owned(),
        1..=3 => format!("mount: {}", paths.join(", ")),
        n => format!("mount: {}, ... ({n} changes)", paths[..3].join(", ")),
    };
    message.push('\n');
    let meta = shared.cfg.author.commit_meta(message);
    let started_from = cs.base();
    let done = cs.commit(meta, Expect::Latest)?;
    let parent = if done.created {
        repo.commit(&done.id)?.parents.first().copied()
    } else {
        Some(done.id)
    };
    tracing::debug!(head = %done.id.short(), created = done.created, "committed");
    Ok(Written {
        id: done.id,
        stored,
        sizes,
        skipped,
        moved: started_from != base || parent != base,
    })
}
