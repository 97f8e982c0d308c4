//! How long inodes live: the kernel's lookups and forgets, unloading what nobody uses
//! ([`State::sweep`]) and keeping the table near its bound ([`State::trim`]).

use super::*;

impl State {
    /// Notes that directory `ino` was used now.
    pub(super) fn used(&mut self, ino: u64) {
        self.clock += 1;
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.used = self.clock;
        }
    }

    /// Keeps the inode table near `max` whatever is read: when it holds more, the directories
    /// used longest ago (loaded, unchanged here, not open) are invalidated in the kernel. An
    /// invalidated directory entry takes its whole cached subtree with it; the kernel then
    /// forgets those inodes and [`State::sweep`] unloads them. Without this the table follows
    /// what the kernel caches, which only memory pressure bounds (a `find` over a large tree
    /// and its `.snapshots` kept every entry). Brings the table down to three quarters of
    /// `max`, so that a walk does not invalidate at every tick.
    pub fn trim(&mut self, max: usize) {
        let n = self.nodes.len();
        if n <= max {
            return;
        }
        let target = max - max / 4;
        let mut dirs: Vec<(u64, u64, usize)> = self
            .nodes
            .iter()
            .filter_map(|(&ino, node)| match &node.kind {
                Kind::Dir {
                    tree: Some(_),
                    children: Some(c),
                } if ino != ROOT && node.parent != 0 && node.open == 0 => {
                    Some((node.used, ino, c.len()))
                }
                _ => None,
            })
            .collect();
        dirs.sort_unstable();
        let mut freed = 0usize;
        for (_, ino, count) in dirs {
            if n.saturating_sub(freed) <= target {
                break;
            }
            self.clock += 1;
            let clock = self.clock;
            let Some(node) = self.nodes.get_mut(&ino) else {
                continue;
            };
            // Not picked again at once if the kernel keeps it (a process works in it).
            node.used = clock;
            self.inval
                .push(Inval::Entry(node.parent, node.name.clone()));
            freed += count.max(1);
        }
    }

    /// Counts a lookup the kernel made through readdirplus.
    pub fn add_lookup(&mut self, ino: u64) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.lookups += 1;
        }
    }

    /// The kernel dropped `n` references to `ino`. Once it holds none, the inode may go:
    /// its directory is queued for [`State::sweep`].
    pub fn forget(&mut self, ino: u64, n: u64) {
        let mut queue = None;
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.lookups = node.lookups.saturating_sub(n);
            if node.lookups == 0 && node.parent != 0 {
                // Snapshot roots are not in a directory's children: they are swept themselves.
                queue = Some(if node.parent == SNAP {
                    ino
                } else {
                    node.parent
                });
            }
        }
        self.maybe_gc(ino);
        if let Some(d) = queue {
            self.queue_sweep(d);
        }
    }

    /// Queues `dir` for [`State::sweep`]; the first one queued wakes the watcher.
    fn queue_sweep(&mut self, dir: u64) {
        if self.sweep_dirs.is_empty() {
            self.bell.ring();
        }
        self.sweep_dirs.insert(dir);
    }

    /// Whether the watcher has inodes to let go (directories to sweep, or over the bound).
    pub fn has_inodes_to_let_go(&self) -> bool {
        !self.sweep_dirs.is_empty() || self.nodes.len() > self.max_inodes
    }

    /// The number of inodes in memory.
    pub fn inode_count(&self) -> usize {
        self.nodes.len()
    }

    /// Opens a directory listing; returns the handle.
    pub fn open_dir(&mut self, ino: u64, items: Vec<DirItem>) -> u64 {
        let fh = self.alloc_fh();
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.open += 1;
        }
        self.dir_handles.insert(fh, (ino, Arc::new(items)));
        fh
    }

    /// The listing of an open directory.
    pub fn dir_items(&self, fh: u64) -> Option<Arc<Vec<DirItem>>> {
        self.dir_handles.get(&fh).map(|(_, items)| items.clone())
    }

    pub fn release_dir(&mut self, fh: u64) {
        if let Some((ino, _)) = self.dir_handles.remove(&fh) {
            if let Some(n) = self.nodes.get_mut(&ino) {
                n.open = n.open.saturating_sub(1);
                if n.open == 0 && n.parent != 0 {
                    self.queue_sweep(ino);
                }
            }
            self.maybe_gc(ino);
        }
    }

    /// Whether an inode can be dropped and later rebuilt from its directory's stored tree:
    /// the kernel does not know it, nobody has it open, and it has no local state.
    pub(super) fn evictable(&self, ino: u64) -> bool {
        let Some(n) = self.nodes.get(&ino) else {
            return true;
        };
        if n.lookups != 0 || n.open != 0 || ino <= SNAP || self.put_queued(ino) {
            return false;
        }
        if self.is_local(ino) {
            return false;
        }
        // A hard-linked node is in several directories' children: it stays while any has it.
        if n.meta.link.is_some() {
            return false;
        }
        match &n.kind {
            Kind::File { content, .. } => matches!(content, Content::Stored { .. }),
            Kind::Symlink { .. } | Kind::Gitlink { .. } | Kind::Special { .. } => true,
            Kind::Dir { tree, children } => tree.is_some() && children.is_none(),
            Kind::SnapRoot => false,
        }
    }

    /// Unloads the children of queued directories when none of them is in use (the kernel
    /// forgot them all); a directory is read again from its tree when next looked up, with new
    /// inode numbers. Keeps memory proportional to what the kernel caches, not to the branch.
    pub fn sweep(&mut self) {
        let mut rounds = 0;
        while !self.sweep_dirs.is_empty() && rounds < 64 {
            rounds += 1;
            let dirs: Vec<u64> = self.sweep_dirs.drain().collect();
            for dir in dirs {
                let Some(node) = self.nodes.get(&dir) else {
                    continue;
                };
                if node.open != 0 {
                    continue; // a listing in progress refers to the children
                }
                let parent = node.parent;
                let Kind::Dir {
                    tree: Some(_),
                    children,
                } = &node.kind
                else {
                    continue;
                };
                let Some(children) = children else {
                    self.drop_snapshot_root(dir);
                    continue;
                };
                if !children.values().all(|&c| self.evictable(c)) {
                    continue;
                }
                if node.negatives {
                    // The kernel may cache names said to be missing here, which a commit
                    // made elsewhere would not invalidate once the children are unloaded:
                    // the directory's own entry goes, and those with it. The root has none:
                    // it stays loaded.
                    if dir == ROOT {
                        continue;
                    }
                    let name = node.name.clone();
                    if parent != 0 {
                        self.inval.push(super::Inval::Entry(parent, name));
                    }
                }
                let gone: Vec<u64> = children.values().copied().collect();
                for c in gone {
                    self.nodes.remove(&c);
                }
                if let Some(Node {
                    kind: Kind::Dir { children, .. },
                    negatives,
                    ..
                }) = self.nodes.get_mut(&dir)
                {
                    *children = None;
                    *negatives = false;
                }
                if dir != ROOT && parent != 0 && parent != SNAP {
                    self.sweep_dirs.insert(parent);
                }
                self.drop_snapshot_root(dir);
            }
        }
    }

    /// Forgets `.snapshots/<rev>` once unused (it is made again on the next lookup).
    pub(super) fn drop_snapshot_root(&mut self, ino: u64) {
        if self.nodes.get(&ino).is_some_and(|n| n.parent == SNAP) && self.evictable(ino) {
            self.nodes.remove(&ino);
            self.snap_cache.retain(|_, v| *v != ino);
        }
    }

    /// Whether a put of `ino` is pending or being committed.
    pub(super) fn put_queued(&self, ino: u64) -> bool {
        self.put_pending.contains(&ino) || self.committing.contains(&ino)
    }

    /// Drops an unlinked inode nobody uses any more.
    pub(super) fn maybe_gc(&mut self, ino: u64) {
        if ino <= SNAP {
            return;
        }
        let Some(n) = self.nodes.get(&ino) else {
            return;
        };
        if n.parent == 0 && n.lookups == 0 && n.open == 0 && !self.put_queued(ino) {
            self.nodes.remove(&ino);
        }
    }
}
