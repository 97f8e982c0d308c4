//! What the sender sends: the receiver's haves, the commits between, and the listing of
//! their objects (newest content first, each after what it links to).

use std::collections::{HashMap, VecDeque};

use hero_store::{
    EntryKind, IdMap, IdSet, ObjType, ObjectId, RefValue, Repo, Tree, TreeEntry, View,
    entry_link_type, object_links,
};

use super::base::*;
use crate::error::{Result, SyncError};

/// The commits a receiver names besides the refs it shares with the sender (those travel as a
/// bitmap): its own heads, then, for each branch it is about to receive (`receiving`), its own
/// version's first-parent ancestors at exponentially growing distances, so a long divergent
/// history still meets a common commit within one round trip. Only the branches being received
/// are walked: the cost follows what differs, not the number of branches. Nothing in `shared`
/// (the refs both sides have) is named again.
pub fn haves_of(view: &View, receiving: &[&str], shared: &IdSet) -> Result<Vec<ObjectId>> {
    haves_for(view, receiving, shared, true)
}

/// [`haves_of`], naming the heads of every branch (`all_heads`) or only of those being
/// received (a session about a few branches: a repository with hundreds of branches does not
/// send hundreds of ids to receive one).
pub fn haves_for(
    view: &View,
    receiving: &[&str],
    shared: &IdSet,
    all_heads: bool,
) -> Result<Vec<ObjectId>> {
    let mut out = Vec::new();
    let mut seen = shared.clone();
    let mut branches = view.branches()?;
    // A branch new here has no history of its own to name: then every head is named, so the
    // sender finds what the new branch shares with the others (a fork of main sends only its
    // own commits).
    let all_heads = all_heads
        || receiving
            .iter()
            .any(|r| !branches.iter().any(|(name, _)| name == r));
    if !all_heads {
        branches.retain(|(name, _)| receiving.contains(&name.as_str()));
    }
    for (_, head) in &branches {
        if out.len() >= MAX_HAVES {
            return Ok(out);
        }
        if seen.insert(*head) {
            out.push(*head);
        }
    }
    let walked: Vec<ObjectId> = branches
        .iter()
        .filter(|(name, _)| receiving.contains(&name.as_str()))
        .map(|(_, head)| *head)
        .collect();
    let per_head = (MAX_HAVES / walked.len().max(1)).clamp(8, 64);
    for head in walked {
        let mut step = 1usize;
        let mut next = 1usize;
        let mut taken = 0;
        for (i, item) in view.log(&[head], true)?.enumerate().take(HAVES_WALK) {
            let (id, _) = item?;
            if i == next {
                if seen.insert(id) {
                    out.push(id);
                }
                taken += 1;
                step = step.saturating_mul(2);
                next = next.saturating_add(step);
                if taken >= per_head || out.len() >= MAX_HAVES {
                    break;
                }
            }
        }
        if out.len() >= MAX_HAVES {
            break;
        }
    }
    Ok(out)
}

/// What the sender knows about the receiver, and the bases it found for new deltas.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// For objects the receiver lacks: the version of the same path the receiver has (a
    /// base for a new delta).
    pub(super) bases: IdMap<ObjectId>,
    /// Objects the receiver has (everything reachable from a few of its commits).
    pub(super) known: IdSet,
}

/// An object a tree or manifest links to: its type, id and the receiver's version of its
/// path.
pub(super) type Child = (ObjType, ObjectId, Option<ObjectId>);

/// A tree or manifest whose links are being listed.
pub(super) struct Frame {
    pub(super) ty: ObjType,
    pub(super) id: ObjectId,
    pub(super) children: Vec<Child>,
    pub(super) next: usize,
}

/// Where the listing is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// The trees of the commits, newest commit first.
    Trees,
    /// The commits, oldest first.
    Commits,
    /// Objects tags point at directly (not commits).
    Tagged,
    /// Annotated tags.
    Tags,
    Done,
}

/// Lists what the sender sends, a piece at a time, so sending starts before the listing
/// ends: the content of the newest commit first (an object is listed with the newest commit
/// holding it, which is where the store keeps it whole; older versions, stored as deltas
/// against newer ones, follow), each object after everything it links to; then the commits,
/// oldest first; then tagged objects and tags.
pub(super) struct Lister {
    /// Commits to send with their trees and the receiver's root tree their paths get delta
    /// bases from, parents before children.
    pub(super) commits: Vec<(ObjectId, ObjectId, Option<ObjectId>)>,
    /// Commits whose trees are still to be walked (counting down).
    pub(super) trees_left: usize,
    pub(super) tagged: Vec<(ObjType, ObjectId)>,
    pub(super) tags: Vec<ObjectId>,
    pub(super) listed: IdSet,
    pub(super) stack: Vec<Frame>,
    pub(super) stage: Stage,
    /// Objects listed so far.
    pub(super) count: u64,
}

/// Finds the commits to send and what the receiver has; the objects are listed by the
/// returned [`Lister`]. `haves` are commits the receiver named, `common` the sender's own
/// advertised refs the receiver said it has.
pub(super) fn plan(
    view: &View,
    wants: &[ObjectId],
    haves: &[ObjectId],
    common: &[ObjectId],
) -> Result<(Plan, Lister)> {
    let mut lister = Lister {
        commits: Vec::new(),
        trees_left: 0,
        tagged: Vec::new(),
        tags: Vec::new(),
        listed: IdSet::default(),
        stack: Vec::new(),
        stage: Stage::Trees,
        count: 0,
    };
    let mut p = Plan::default();
    if wants.is_empty() {
        lister.stage = Stage::Done;
        return Ok((p, lister));
    }
    // The receiver's commits that are here: what it named, then the refs it shares (tags
    // peeled to what they tag).
    let mut have_commits = Vec::new();
    let mut seen = IdSet::default();
    for h in haves.iter().chain(common) {
        let mut cur = *h;
        for _ in 0..MAX_TAG_CHAIN {
            match view.object_type(&cur)? {
                Some(ObjType::Commit) if seen.insert(cur) => have_commits.push(cur),
                Some(ObjType::Tag) => {
                    cur = view.tag(&cur)?.target;
                    continue;
                }
                _ => {}
            }
            break;
        }
    }
    // Commits to send, parents before children; annotated tags after what they tag.
    let mut stack: Vec<(ObjectId, bool)> = Vec::new();
    for w in wants {
        let mut cur = *w;
        let mut chain = Vec::new();
        for _ in 0..MAX_TAG_CHAIN {
            match view.object_type(&cur)? {
                Some(ObjType::Commit) => stack.push((cur, false)),
                Some(ObjType::Tag) => {
                    chain.push(cur);
                    cur = view.tag(&cur)?.target;
                    continue;
                }
                Some(t @ (ObjType::Tree | ObjType::Blob | ObjType::Manifest)) => {
                    lister.tagged.push((t, cur));
                }
                Some(ObjType::ManifestNode) | None => {}
            }
            break;
        }
        lister.tags.extend(chain.into_iter().rev());
    }
    // Most pulls are a few commits ahead of a have: walk down from the wants and stop at the
    // haves. Only when that runs long (the histories diverged below the sampled haves) walk
    // the receiver's ancestors too, boundedly; whatever it still lists that the receiver has
    // is skipped by the receiver's checks, never stored twice.
    let mut excluded: IdSet = have_commits.iter().copied().collect();
    let walk = match commits_between(view, stack.clone(), &excluded, Some(SHORT_WALK))? {
        Some(w) => w,
        None => {
            let mut todo: VecDeque<ObjectId> = have_commits.iter().copied().collect();
            let mut walked = 0usize;
            while let Some(c) = todo.pop_front() {
                walked += 1;
                if walked > EXCLUDE_WALK {
                    break;
                }
                for p in view.commit(&c)?.parents {
                    if excluded.insert(p) {
                        todo.push_back(p);
                    }
                }
            }
            commits_between(view, stack, &excluded, None)?.unwrap_or_default()
        }
    };
    // The receiver has everything its edge commits (the parents of what is sent that it has)
    // hold: none of it is listed. Without edges (unrelated history), a few of its commits.
    let mut roots: IdMap<ObjectId> = IdMap::default();
    let edges: Vec<ObjectId> = if walk.edges.is_empty() {
        have_commits.iter().take(PRUNE_COMMITS).copied().collect()
    } else {
        walk.edges.iter().take(PRUNE_EDGES).copied().collect()
    };
    for c in &edges {
        let root = view.commit(c)?.tree;
        roots.insert(*c, root);
        let mut trees = vec![root];
        while let Some(t) = trees.pop() {
            if !p.known.insert(t) {
                continue;
            }
            for e in view.tree(&t)?.entries {
                match e.kind {
                    EntryKind::Dir => trees.push(e.id),
                    EntryKind::Gitlink => {}
                    _ => {
                        p.known.insert(e.id);
                    }
                }
            }
        }
    }
    // Each commit's new content gets delta bases from the receiver's version of its paths:
    // the root of the edge its first parents lead down to.
    let fallback = edges.first().and_then(|c| roots.get(c).copied());
    let mut base_of: IdMap<ObjectId> = IdMap::default();
    let edge_set: IdSet = walk.edges.iter().copied().collect();
    for (c, tree, first_parent) in walk.commits {
        let base = match first_parent {
            Some(fp) => match roots.get(&fp) {
                Some(root) => Some(*root),
                None if edge_set.contains(&fp) => Some(view.commit(&fp)?.tree),
                None => base_of.get(&fp).copied(),
            },
            None => None,
        };
        if let Some(b) = base {
            base_of.insert(c, b);
        }
        lister.commits.push((c, tree, base.or(fallback)));
    }
    lister.trees_left = lister.commits.len();
    // Listed in the order the wants named them (taken from the end).
    lister.tagged.reverse();
    Ok((p, lister))
}

/// The commits a transfer sends, and where they meet what the receiver has.
#[derive(Debug, Default)]
pub(super) struct Walk {
    /// Commits with their tree and first parent, parents before children.
    pub(super) commits: Vec<(ObjectId, ObjectId, Option<ObjectId>)>,
    /// Parents of those commits that the receiver has, in the order met.
    pub(super) edges: Vec<ObjectId>,
}

/// Commits reachable from `stack` and not from `excluded` with their trees, parents before
/// children, and the excluded commits they meet; `None` when more than `limit` commits were
/// visited.
pub(super) fn commits_between(
    view: &View,
    mut stack: Vec<(ObjectId, bool)>,
    excluded: &IdSet,
    limit: Option<usize>,
) -> Result<Option<Walk>> {
    let mut walk = Walk::default();
    let mut seen = IdSet::default();
    let mut met = IdSet::default();
    let mut info: IdMap<(ObjectId, Option<ObjectId>)> = IdMap::default();
    while let Some((c, expanded)) = stack.pop() {
        if expanded {
            let (tree, fp) = info.remove(&c).unwrap_or_default();
            walk.commits.push((c, tree, fp));
            continue;
        }
        if excluded.contains(&c) || !seen.insert(c) {
            continue;
        }
        if limit.is_some_and(|l| seen.len() > l) {
            return Ok(None);
        }
        stack.push((c, true));
        let commit = view.commit(&c)?;
        info.insert(c, (commit.tree, commit.parents.first().copied()));
        for p in commit.parents.iter().rev() {
            if excluded.contains(p) {
                if met.insert(*p) {
                    walk.edges.push(*p);
                }
            } else if !seen.contains(p) {
                stack.push((*p, false));
            }
        }
    }
    Ok(Some(walk))
}

impl Lister {
    /// Whether everything is listed.
    pub(super) fn done(&self) -> bool {
        self.stage == Stage::Done
    }

    /// Lists objects onto `out` until it holds `len` or everything is listed.
    pub(super) fn fill(
        &mut self,
        view: &View,
        p: &mut Plan,
        out: &mut VecDeque<(ObjType, ObjectId)>,
        len: usize,
    ) -> Result<()> {
        while out.len() < len && !self.done() {
            self.step(view, p, out)?;
        }
        Ok(())
    }

    pub(super) fn emit(
        &mut self,
        out: &mut VecDeque<(ObjType, ObjectId)>,
        ty: ObjType,
        id: ObjectId,
    ) {
        out.push_back((ty, id));
        self.count += 1;
    }

    /// One step: descend into a link, list a finished tree, or start the next root.
    pub(super) fn step(
        &mut self,
        view: &View,
        p: &mut Plan,
        out: &mut VecDeque<(ObjType, ObjectId)>,
    ) -> Result<()> {
        if let Some(top) = self.stack.last_mut() {
            match top.children.get(top.next).copied() {
                Some((ty, id, base)) => {
                    top.next += 1;
                    self.visit(view, p, out, ty, id, base)?;
                }
                None => {
                    if let Some(f) = self.stack.pop() {
                        self.emit(out, f.ty, f.id);
                    }
                }
            }
            return Ok(());
        }
        match self.stage {
            Stage::Trees => match self.trees_left.checked_sub(1) {
                Some(i) => {
                    self.trees_left = i;
                    let (_, tree, base) = self.commits[i];
                    self.visit(view, p, out, ObjType::Tree, tree, base)?;
                }
                None => self.stage = Stage::Commits,
            },
            Stage::Commits => {
                for (c, _, _) in std::mem::take(&mut self.commits) {
                    self.emit(out, ObjType::Commit, c);
                }
                self.stage = Stage::Tagged;
            }
            Stage::Tagged => match self.tagged.pop() {
                Some((ty, id)) => self.visit(view, p, out, ty, id, None)?,
                None => self.stage = Stage::Tags,
            },
            Stage::Tags => {
                for t in std::mem::take(&mut self.tags) {
                    if self.listed.insert(t) {
                        self.emit(out, ObjType::Tag, t);
                    }
                }
                self.stage = Stage::Done;
            }
            Stage::Done => {}
        }
        Ok(())
    }

    /// Lists `id` (after its links, if it has any) unless the receiver has it or it is
    /// listed already. `base` is the receiver's version of the same path, when it has one.
    pub(super) fn visit(
        &mut self,
        view: &View,
        p: &mut Plan,
        out: &mut VecDeque<(ObjType, ObjectId)>,
        ty: ObjType,
        id: ObjectId,
        base: Option<ObjectId>,
    ) -> Result<()> {
        if p.known.contains(&id) || !self.listed.insert(id) {
            return Ok(());
        }
        let children = match ty {
            ObjType::Tree => {
                if let Some(b) = base {
                    p.bases.insert(id, b);
                }
                tree_children(view, &id, base)?
            }
            ObjType::Manifest | ObjType::ManifestNode => {
                let Some((found, raw)) = view.raw_object(&id)? else {
                    return Err(SyncError::Store(hero_store::Error::Missing(id)));
                };
                object_links(found, &raw)?
                    .into_iter()
                    .map(|(t, l)| (t, l, None))
                    .collect()
            }
            ObjType::Blob => {
                if let Some(b) = base {
                    p.bases.insert(id, b);
                }
                Vec::new()
            }
            ObjType::Commit | ObjType::Tag => Vec::new(),
        };
        if children.is_empty() {
            self.emit(out, ty, id);
        } else {
            self.stack.push(Frame {
                ty,
                id,
                children,
                next: 0,
            });
        }
        Ok(())
    }
}

/// The links of tree `id`, each with the receiver's version of its path (from `base`, the
/// receiver's version of the tree) when it is a tree or a small file.
pub(super) fn tree_children(
    view: &View,
    id: &ObjectId,
    base: Option<ObjectId>,
) -> Result<Vec<Child>> {
    let Some(base) = base else {
        // No version to match by name (a clone): the names need not be read.
        let raw = match view.raw_object(id)? {
            Some((ObjType::Tree, raw)) => raw,
            Some(_) => {
                return Err(SyncError::Store(hero_store::Error::WrongType {
                    id: *id,
                    expected: "tree",
                }));
            }
            None => return Err(SyncError::Store(hero_store::Error::Missing(*id))),
        };
        let entries = Tree::entries_without_names(&raw).map_err(|e| {
            SyncError::Store(hero_store::Error::Corrupt {
                id: *id,
                reason: e.to_string(),
            })
        })?;
        return Ok(entries
            .into_iter()
            .filter_map(|(kind, id, size)| Some((entry_link_type(kind, size)?, id, None)))
            .collect());
    };
    let base_tree = match view.object_type(&base)? {
        Some(ObjType::Tree) => Some(view.tree(&base)?),
        _ => None,
    };
    let old_by_name: HashMap<&[u8], &TreeEntry> = base_tree
        .as_ref()
        .map(|t| t.entries.iter().map(|e| (e.name.as_slice(), e)).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for e in view.tree(id)?.entries {
        let Some(ty) = entry_link_type(e.kind, e.size) else {
            continue;
        };
        // A base only of the same kind: a directory's, or a small regular file's.
        let old = old_by_name
            .get(e.name.as_slice())
            .filter(|o| entry_link_type(o.kind, o.size) == Some(ty))
            .filter(|o| o.kind != EntryKind::Symlink);
        let b = match ty {
            ObjType::Tree | ObjType::Blob => old.map(|o| o.id),
            _ => None,
        };
        out.push((ty, e.id, b));
    }
    Ok(out)
}

/// What a receiver asks for, given the sender's refs.
#[derive(Debug, Default)]
pub(crate) struct Ask {
    /// Advertised ids this side lacks.
    pub wants: Vec<ObjectId>,
    /// One bit per advertised ref (branches, then tags): set when this side has it, so the
    /// sender knows those commits are here without any id travelling.
    pub common: Vec<u8>,
    /// Commits of this side beyond the common refs (empty when nothing is wanted).
    pub haves: Vec<ObjectId>,
}

impl Ask {
    /// Compares the sender's advertisement with what is here.
    pub(crate) fn of(
        repo: &Repo,
        branches: &[(String, ObjectId)],
        tags: &[(String, RefValue)],
        focused: bool,
    ) -> Result<Ask> {
        let view = repo.view()?;
        let ids = advertised(branches, tags);
        let mut ask = Ask {
            common: vec![0; ids.len().div_ceil(8)],
            ..Ask::default()
        };
        let mut receiving = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            if view.object_type(id)?.is_some() {
                ask.common[i / 8] |= 1 << (i % 8);
            } else {
                if let Some((name, _)) = branches.get(i) {
                    receiving.push(name.as_str());
                }
                if !ask.wants.contains(id) {
                    ask.wants.push(*id);
                }
            }
        }
        // A pull with nothing new is the advertisement and an empty answer: no history walk.
        if !ask.wants.is_empty() {
            let shared: hero_store::IdSet = ids.iter().copied().collect();
            ask.haves = haves_for(&view, &receiving, &shared, !focused)?;
        }
        Ok(ask)
    }
}

/// The ids a side advertised (branches, then tags), in the order a receiver's bitmap of
/// common refs follows.
pub(crate) fn advertised(
    branches: &[(String, ObjectId)],
    tags: &[(String, RefValue)],
) -> Vec<ObjectId> {
    branches
        .iter()
        .map(|(_, id)| *id)
        .chain(tags.iter().map(|(_, v)| v.id()))
        .collect()
}
