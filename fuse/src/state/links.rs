//! Hard links: several names that are one inode (docs/adr/0029).
//!
//! A tree records the names of one inode as entries sharing a link group
//! ([`hero_store::EntryMeta::link`]) and agreeing on everything else. The mount keeps one node
//! per group: its first name in `parent`/`name`, the others in [`Node::names`], each also in
//! its directory's children. When a node of a group is first made from a tree, every other
//! name the group has in the base commit is found (one walk of the base tree, kept until the
//! base moves) and its directory loaded, so the link count is right from the first `stat`.
//! A change to the node is committed to every name it has then (see `take_commit`).

use super::*;
use hero_store::LinkGroup;

/// The names of every link group of one commit's tree.
pub(crate) type LinkIndex = HashMap<LinkGroup, Vec<RepoPath>>;

/// Every link group of `tree` with the paths of its names.
fn index_tree(repo: &Repo, tree: ObjectId) -> Result<LinkIndex, hero_store::Error> {
    let view = repo.view()?;
    let mut out: LinkIndex = HashMap::new();
    let mut stack = vec![(RepoPath::root(), tree)];
    while let Some((at, t)) = stack.pop() {
        for e in view.tree(&t)?.entries {
            let Ok(p) = at.join(&e.name) else { continue };
            if e.kind == EntryKind::Dir {
                stack.push((p, e.id));
            } else if let Some(g) = e.meta.link {
                out.entry(g).or_default().push(p);
            }
        }
    }
    Ok(out)
}

impl State {
    /// Makes the node for entry `e` of directory `dir`: a new one, or, for another name of a
    /// link group the mount already has a node for, that node (the name is added to it).
    pub(super) fn node_for_entry(
        &mut self,
        dir: u64,
        e: TreeEntry,
        ro: bool,
        time: SystemTime,
    ) -> (u64, Option<LinkGroup>) {
        let group = e.meta.link.filter(|_| !ro);
        if let Some(g) = group
            && let Some(&ino) = self.groups.get(&g)
            && let Some(n) = self.nodes.get_mut(&ino)
            && n.parent != 0
            && n.meta.link == Some(g)
            && n.entry_kind() == e.kind
        {
            let name = (dir, e.name);
            if (n.parent, &n.name) != (name.0, &name.1) && !n.names.contains(&name) {
                n.names.push(name);
            }
            return (ino, None);
        }
        let ino = self.alloc();
        self.nodes.insert(ino, Node::from_entry(dir, e, ro, time));
        if let Some(g) = group {
            self.groups.insert(g, ino);
        }
        (ino, group)
    }

    /// Finds the other names of a group whose node was just made (at `path`): loads the
    /// directories that hold them in the base commit, which adds them to the node.
    pub(super) fn gather_names(&mut self, repo: &Repo, group: LinkGroup, path: &RepoPath) {
        let Some(base) = self.base else { return };
        if self.link_index.as_ref().is_none_or(|(b, _)| *b != base) {
            let index = repo.commit(&base).and_then(|c| index_tree(repo, c.tree));
            match index {
                Ok(i) => self.link_index = Some((base, i)),
                Err(e) => {
                    tracing::warn!(error = %e, "listing the hard links of the branch");
                    return;
                }
            }
        }
        let others: Vec<RepoPath> = self
            .link_index
            .as_ref()
            .and_then(|(_, i)| i.get(&group))
            .map(|v| v.iter().filter(|p| *p != path).cloned().collect())
            .unwrap_or_default();
        for p in others {
            let names = p.names();
            let mut cur = ROOT;
            for name in names {
                match self.child(repo, cur, name) {
                    Ok(Some(next)) => cur = next,
                    _ => break,
                }
            }
        }
    }

    /// The path of the name `name` in directory `dir`.
    pub(super) fn name_path(&self, dir: u64, name: &[u8]) -> R<RepoPath> {
        self.path_of(dir)?.join(name).map_err(|_| Errno::EINVAL)
    }

    /// Every path `ino` has now: its first name's, then its other names'.
    pub(super) fn all_paths(&self, ino: u64) -> Vec<RepoPath> {
        let Some(n) = self.nodes.get(&ino) else {
            return Vec::new();
        };
        let mut out: Vec<RepoPath> = self.path_of(ino).into_iter().collect();
        for (dir, name) in &n.names {
            if let Ok(p) = self.name_path(*dir, name) {
                out.push(p);
            }
        }
        out
    }

    /// Takes the name `name` in `dir` off `ino`: another name becomes its first, and only
    /// when it had no other does the inode lose its last link.
    pub(super) fn drop_name(&mut self, ino: u64, dir: u64, name: &[u8]) {
        let Some(n) = self.nodes.get_mut(&ino) else {
            return;
        };
        if n.parent == dir && n.name == name {
            match n.names.pop() {
                Some((d, nm)) => {
                    n.parent = d;
                    n.name = nm;
                }
                None => n.parent = 0,
            }
        } else {
            n.names.retain(|(d, nm)| !(*d == dir && nm == name));
        }
        n.ctime = SystemTime::now();
    }

    /// Renames one name of `ino`: `dir`/`name` becomes `newdir`/`newname`.
    pub(super) fn move_name(
        &mut self,
        ino: u64,
        dir: u64,
        name: &[u8],
        newdir: u64,
        newname: &[u8],
    ) {
        let Some(n) = self.nodes.get_mut(&ino) else {
            return;
        };
        if n.parent == dir && n.name == name {
            n.parent = newdir;
            n.name = newname.to_vec();
        } else if let Some(slot) = n.names.iter_mut().find(|(d, nm)| *d == dir && nm == name) {
            *slot = (newdir, newname.to_vec());
        }
        n.ctime = SystemTime::now();
    }

    /// link(2): gives `ino` the new name `newdir`/`newname`. Directories cannot be linked
    /// (EPERM), nor gitlinks; an inode of `.snapshots` lives on a file system of its own
    /// as far as a link is concerned (EXDEV); the name must be new (EEXIST).
    pub fn link(&mut self, shared: &Shared, ino: u64, newdir: u64, newname: &[u8]) -> R<u64> {
        let n = self.node(ino)?;
        if n.is_dir() || matches!(n.kind, Kind::Gitlink { .. } | Kind::SnapRoot) {
            return Err(Errno::EPERM);
        }
        if n.ro && !self.node(newdir)?.ro {
            return Err(Errno::EXDEV);
        }
        if n.parent == 0 {
            return Err(Errno::ENOENT);
        }
        if self.is_local(ino) {
            // An ignored (local) file is no entry of the branch to share an inode with.
            return Err(Errno::EPERM);
        }
        let path = self.prepare_new(shared, newdir, newname)?;
        if self.node(newdir)?.is_dir() && self.is_local(newdir) {
            return Err(Errno::EPERM);
        }
        let links = self.node(ino)?.names.len() + 1;
        if links >= MAX_LINKS {
            return Err(Errno::EMLINK);
        }
        if self.node(ino)?.meta.link.is_none() {
            let seed = format!(
                "{} {} {:?} {path}",
                std::process::id(),
                ino,
                SystemTime::now()
            );
            let g = LinkGroup::from_seed(seed.as_bytes());
            self.node_mut(ino)?.meta.link = Some(g);
            self.groups.insert(g, ino);
        }
        self.children_mut(newdir)?.insert(newname.to_vec(), ino);
        {
            let n = self.node_mut(ino)?;
            n.names.push((newdir, newname.to_vec()));
            n.ctime = SystemTime::now();
        }
        self.dirty_dir(newdir);
        // Every name gets the group (and the content) at the next commit; recovery puts it
        // at the new name too.
        self.mark_put(ino);
        self.journal_meta(ino);
        if let (Some(b), Some(m)) = (
            self.binding(ino),
            self.nodes.get(&ino).map(Node::stored_meta),
        ) {
            self.pending.journal_put(ino, &path, b, m);
        }
        self.touch();
        Ok(ino)
    }
}

/// Most names one inode may have (ext4's limit).
pub(crate) const MAX_LINKS: usize = 65_000;
