//! `.snapshots/`: what it lists and which names it accepts, and directory link counts.
//!
//! - Listed: every branch and tag (names without `/`), and the [`RECENT`] newest commits of
//!   the mounted branch (first parents) by short id.
//! - Accepted besides: any revision `heroctl` takes (full or abbreviated commit id, `main~2`),
//!   and `[BRANCH]@DATE`, the mounted branch when BRANCH is empty (`View::resolve_dated`).

use hero_store::{Error, ObjectId, Repo, View};

use crate::state::{Kind, State};

/// Where the number of entries of `.snapshots` is kept among the trees' subdirectory counts
/// (no tree has this id: it is not the hash of anything).
const SNAP_KEY: ObjectId = ObjectId([0xff; 32]);

/// How many of the mounted branch's newest commits `.snapshots` lists.
pub(crate) const RECENT: usize = 20;

/// The names `.snapshots` lists.
pub(crate) fn names(view: &View, branch: &str) -> Result<Vec<String>, Error> {
    let mut names: Vec<String> = Vec::new();
    names.extend(view.branches()?.into_iter().map(|b| b.0));
    names.extend(view.tags()?.into_iter().map(|t| t.0));
    if let Some(head) = view.get_ref(&hero_store::branch_ref(branch)?)? {
        let head = view.peel(head)?;
        for item in view.log(&[head], true)?.take(RECENT) {
            names.push(item?.0.short());
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// The commit a `.snapshots` name stands for (`View::resolve_dated`).
pub(crate) fn resolve(view: &View, branch: &str, name: &str) -> Result<ObjectId, Error> {
    view.resolve_dated(name, branch)
}

impl State {
    /// Counts the subdirectories of an unloaded directory from its stored tree (once per
    /// tree), so that its link count can be given without loading its children.
    pub(crate) fn fill_links(&mut self, repo: &Repo, ino: u64) {
        self.fill_data_len(repo, ino);
        if ino == crate::state::SNAP {
            // Counted again on every request: the refs move.
            match repo.view().and_then(|v| names(&v, &self.branch)) {
                Ok(n) => {
                    self.links
                        .insert(SNAP_KEY, u32::try_from(n.len()).unwrap_or(u32::MAX));
                }
                Err(e) => tracing::warn!(error = %e, "listing .snapshots for its link count"),
            }
            return;
        }
        let Ok(node) = self.node(ino) else { return };
        let Kind::Dir {
            tree: Some(t),
            children: None,
        } = node.kind
        else {
            return;
        };
        if self.links.contains_key(&t) {
            return;
        }
        match repo.tree(&t) {
            Ok(tree) => {
                let n = tree.entries.iter().filter(|e| is_dir_kind(e.kind)).count();
                self.links.insert(t, u32::try_from(n).unwrap_or(u32::MAX));
            }
            Err(e) => tracing::warn!(error = %e, "reading a tree for its link count"),
        }
    }

    /// A directory's link count: 2 plus its subdirectories (`.snapshots` counts in the
    /// root when the root lists it; its entries count in `.snapshots`).
    pub(crate) fn dir_nlink(&self, ino: u64) -> u32 {
        let Ok(node) = self.node(ino) else { return 2 };
        let subdirs = match &node.kind {
            Kind::Dir {
                children: Some(c), ..
            } => c
                .values()
                .filter(|c| self.node(**c).is_ok_and(|n| n.is_dir()))
                .count() as u32,
            Kind::Dir {
                tree: Some(t),
                children: None,
            } => self.links.get(t).copied().unwrap_or(0),
            Kind::SnapRoot => self.links.get(&SNAP_KEY).copied().unwrap_or(0),
            _ => 0,
        };
        let snap = u32::from(ino == crate::state::ROOT && self.show_snapshots);
        2u32.saturating_add(subdirs).saturating_add(snap)
    }
}

fn is_dir_kind(k: hero_store::EntryKind) -> bool {
    matches!(
        k,
        hero_store::EntryKind::Dir | hero_store::EntryKind::Gitlink
    )
}
