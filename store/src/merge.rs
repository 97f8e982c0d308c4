//! Deterministic three-way merges of two commits.
//!
//! [`merge`] combines two heads of a branch into one merge commit. The result depends only on
//! the two heads (and the history and content they reach): the same pair merged on any peer, in
//! either order, gives the same commit id, so peers that merge each other's work converge.
//!
//! # Rules
//!
//! - If one head is an ancestor of the other, nothing is created: [`MergeKind::UpToDate`] or
//!   [`MergeKind::FastForward`] with the descendant's id.
//! - The two heads are put in a canonical order (by id bytes) before anything else, so the
//!   merge never depends on which one the caller called "ours".
//! - Base: the best common ancestors are found by painting history down from both heads;
//!   when there are several (criss-cross histories) they are merged into one, in id order, by
//!   these same rules, and that merge is the base ([`VIRTUAL_BASE_DEPTH`] levels deep and
//!   [`VIRTUAL_MERGE_BUDGET`] merges at most, then the smallest id). With no common ancestor the base is the empty tree.
//!   When several best ancestors exist, a file both sides changed against the base takes the
//!   version of the side whose own version none of them holds, if the other side's version is
//!   in one of them (relative to that ancestor only one side changed it): a file one peer
//!   alone edits never conflicts, however many ancestors there are.
//! - Per path, comparing entries by (kind, id): unchanged on one side → the other side; the same
//!   change on both → that change; deleted on one side and modified on the other → the modified
//!   version is kept (a directory deleted on one side keeps only what the other side changed in
//!   it); a file against a directory → the directory keeps the name and the file moves aside;
//!   the executable bit and the content merge separately; symlinks and gitlinks are opaque.
//! - Both sides changed a regular file: if the three versions are text (no NUL byte) and at most
//!   [`SMALL_FILE_MAX`] bytes, a line-level three-way merge is tried (Myers diffs of each side
//!   against the base): changes to separate regions merge, identical changes merge, changes that
//!   overlap or touch conflict. Files rewritten beyond [`LINE_MERGE_MAX_LINES`] /
//!   [`LINE_MERGE_BUDGET`] conflict whole; the bound depends on content only, never on a clock.
//! - Renames are not detected: a file renamed on one side and edited on the other ends up
//!   twice (nothing is lost).
//! - A conflict keeps both whole versions, never conflict markers: the plain name gets the
//!   later version by modification time (ties: the larger content id), or, when a version has
//!   no modification time, the version of the side whose head has the later committer time
//!   (ties: the larger commit id); the other version sits beside it as
//!   `NAME.conflict-<peer>-<short id>` (see [`conflict_name`]) unless a copy beside the name
//!   already holds it. The merge commit records every conflict in a [`CONFLICT_HEADER`]
//!   header; [`open_conflicts`] lists the recorded conflicts whose copy is still there.
//! - Peers keeping a branch in step merge with [`converge`]: a side whose own commits are all
//!   such merges, and whose content the merge would equal the other side's, brings nothing, and
//!   no merge commit records how the same edits met (the larger id is kept when both are such).
//! - The merge commit: parents sorted by id; author and committer [`MERGE_AUTHOR`] with an empty
//!   e-mail, the later of the two heads' committer times and time zone 0; message
//!   `merge <short id> and <short id>` plus one line per conflict. No local name, no clock.

use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

use crate::{
    Commit, EntryKind, EntryMeta, IdMap, NameError, ObjectId, PEER_HEADER, Repo, RepoPath,
    SMALL_FILE_MAX, Signature, Tree, TreeEntry, View,
};

/// The extra header a merge commit records each conflict in. Its value is
/// `<path>\0<conflict path>\0<kept_from hex>\0<moved_aside_from hex>`.
pub const CONFLICT_HEADER: &[u8] = b"hero-conflict";

/// Author and committer name of every merge commit.
pub const MERGE_AUTHOR: &[u8] = b"hero merge";

/// How many commits of a branch's history [`open_conflicts`] looks at, newest first.
pub const OPEN_CONFLICT_SCAN: usize = 10_000;

/// The most lines (both versions, after their common start and end are trimmed) a line merge
/// diffs; beyond that the file conflicts whole. With [`LINE_MERGE_BUDGET`] this bounds the time
/// a merge can take, without a clock (a deadline would make merges differ between peers).
pub const LINE_MERGE_MAX_LINES: usize = 40_000;

/// The most diff work (lines × estimated edit distance) a line merge does per side; a file
/// rewritten more heavily than that conflicts whole.
pub const LINE_MERGE_BUDGET: u64 = 500_000_000;

/// What went wrong in a merge.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// The store failed or holds something unexpected.
    #[error(transparent)]
    Store(#[from] crate::Error),
    /// A name the store refuses (a conflict name built from a stored name).
    #[error("invalid name: {0}")]
    Name(#[from] NameError),
    /// The branch does not exist.
    #[error("no branch {0:?}")]
    NoSuchBranch(String),
}

/// What [`merge`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeKind {
    /// The other head was already contained: the result is the head that contains it.
    UpToDate,
    /// One head is an ancestor of the other: the result is the descendant, nothing was made.
    FastForward,
    /// A new merge commit was made.
    Merged,
    /// [`converge`] only: the two heads hold the same edits and what the merge would make is
    /// the other head's content, while this side's own commits are merges any peer makes: the
    /// branch takes the other head, and the merges only this side held are left to gc.
    Adopted,
}

/// The result of [`merge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeOutcome {
    /// The commit the branch should hold: the merge commit, or the descendant head.
    pub commit: ObjectId,
    /// What happened.
    pub kind: MergeKind,
    /// The conflicts the merge commit records, sorted by path (empty unless `Merged`).
    pub conflicts: Vec<Conflict>,
}

/// A conflict: both versions are kept, one at the plain name and one beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The plain path.
    pub path: RepoPath,
    /// Where the other version was put.
    pub conflict_path: RepoPath,
    /// The head whose version has the plain path.
    pub kept_from: ObjectId,
    /// The head whose version was moved aside.
    pub moved_aside_from: ObjectId,
    /// Short form of the peer that made `moved_aside_from` (as in the conflict name).
    pub peer: String,
    /// The merge commit that records the conflict.
    pub recorded_in: ObjectId,
}

/// Merges two commits. Creates the trees, blobs and merge commit it needs, but moves no branch:
/// the caller moves the branch to `outcome.commit` with a compare-and-swap.
///
/// `merge(repo, a, b)` and `merge(repo, b, a)` give the same outcome (apart from the
/// `UpToDate`/`FastForward` label, which is from `ours`' point of view).
pub fn merge(repo: &Repo, ours: ObjectId, theirs: ObjectId) -> Result<MergeOutcome, MergeError> {
    let mut budget = VIRTUAL_MERGE_BUDGET;
    merge_at(repo, ours, theirs, 0, &mut budget)
}

/// Merges two heads of a branch that peers keep in step, without making a merge that only
/// records how the same edits met. [`merge`] joins any two diverged heads with a new commit; when
/// ten peers merge each other's heads at once, each merge of a merge is new to every other peer,
/// which merges it again, and the fleet never agrees on a head. Here a side whose own commits
/// (those the other side does not reach) are all merges any peer makes, and whose content the
/// merged result equals the other side's, brings nothing: if it is theirs, ours stays
/// ([`MergeKind::UpToDate`]); if it is ours, the branch takes theirs ([`MergeKind::Adopted`]);
/// if both sides are such (the same edits merged in another order), the larger commit id is
/// kept, so every peer picks the same one. Otherwise the outcome is [`merge`]'s.
///
/// Edits are never dropped: a side is given up only when every commit it alone holds is a
/// merge (edits, signed merges and a person's own merges are never such commits) and the
/// content that is kept equals what merging both would give.
pub fn converge(repo: &Repo, ours: ObjectId, theirs: ObjectId) -> Result<MergeOutcome, MergeError> {
    let out = merge(repo, ours, theirs)?;
    if out.kind != MergeKind::Merged {
        return Ok(out);
    }
    let view = repo.view()?;
    let merged = view.commit(&out.commit)?.tree;
    let ours_tree = view.commit(&ours)?.tree;
    let theirs_tree = view.commit(&theirs)?.tree;
    if merged != ours_tree && merged != theirs_tree {
        return Ok(out);
    }
    let painted = Graph::new(&view).paint(ours, &[theirs])?;
    // A commit painted from one side only is one that side alone holds, or (rarely, with
    // committer clocks out of order) one the paint stopped above before the other side's
    // paint reached it: counting it makes the rule stricter, never looser.
    let only_merges = |side: u8| -> Result<bool, MergeError> {
        for (id, f) in &painted.flags {
            if f & (P1 | P2 | STALE) == side && !is_anyones_merge_commit(&view.commit(id)?) {
                return Ok(false);
            }
        }
        Ok(true)
    };
    let ours_adds_nothing = merged == theirs_tree && only_merges(P1)?;
    let theirs_adds_nothing = merged == ours_tree && only_merges(P2)?;
    let keep_theirs = match (ours_adds_nothing, theirs_adds_nothing) {
        (true, true) => theirs > ours,
        (true, false) => true,
        (false, true) => false,
        (false, false) => return Ok(out),
    };
    tracing::debug!(
        ours = %ours.short(),
        theirs = %theirs.short(),
        kept = %if keep_theirs { theirs } else { ours }.short(),
        "the same edits on both sides: no merge"
    );
    Ok(if keep_theirs {
        MergeOutcome {
            commit: theirs,
            kind: MergeKind::Adopted,
            conflicts: Vec::new(),
        }
    } else {
        up_to_date(ours)
    })
}

/// Whether `c` is a merge as [`merge`] makes it: two parents, the merge author, no peer's
/// header (a person's own merge, or a signed one, is that person's choice and is kept).
fn is_anyones_merge_commit(c: &Commit) -> bool {
    c.parents.len() == 2 && c.author.name == MERGE_AUTHOR && c.header(PEER_HEADER).is_none()
}

/// [`merge`] at `depth` levels of virtual bases, with `budget` virtual merges left (see
/// [`virtual_base`]).
fn merge_at(
    repo: &Repo,
    ours: ObjectId,
    theirs: ObjectId,
    depth: usize,
    budget: &mut usize,
) -> Result<MergeOutcome, MergeError> {
    if ours == theirs {
        return Ok(up_to_date(ours));
    }
    let bases = merge_bases(&repo.view()?, ours, theirs)?;
    if bases.contains(&theirs) {
        return Ok(up_to_date(ours));
    }
    if bases.contains(&ours) {
        return Ok(MergeOutcome {
            commit: theirs,
            kind: MergeKind::FastForward,
            conflicts: Vec::new(),
        });
    }
    let base = virtual_base(repo, &bases, depth, budget)?;
    // A fresh view: the virtual base may have just been written.
    let view = repo.view()?;
    let (lo, hi) = if ours < theirs {
        (ours, theirs)
    } else {
        (theirs, ours)
    };
    let lo_commit = view.commit(&lo)?;
    let hi_commit = view.commit(&hi)?;
    let sides = [Side::new(lo, &lo_commit), Side::new(hi, &hi_commit)];
    // The later committer time wins the plain name; ties go to the larger id (`hi`).
    let winner = if sides[0].time > sides[1].time { 0 } else { 1 };
    let time = sides[0].time.max(sides[1].time);
    let base_tree = match base {
        Some(b) => Some(view.commit(&b)?.tree),
        None => None,
    };
    tracing::debug!(
        a = %lo.short(),
        b = %hi.short(),
        base = ?base.map(|b| b.short()),
        "merging"
    );
    let mut m = Merger {
        view: &view,
        sides,
        winner,
        blobs: Vec::new(),
        trees: Vec::new(),
        written: HashSet::new(),
        conflicts: Vec::new(),
        base_only: depth > 0,
        best_bases: if bases.len() > 1 {
            bases
                .iter()
                .map(|b| Ok(view.commit(b)?.tree))
                .collect::<Result<_, MergeError>>()?
        } else {
            Vec::new()
        },
    };
    let root = m.merge_dir(
        &RepoPath::root(),
        base_tree,
        Some(lo_commit.tree),
        Some(hi_commit.tree),
    )?;
    let mut conflicts = std::mem::take(&mut m.conflicts);
    conflicts.sort_by(|x, y| {
        x.path
            .cmp(&y.path)
            .then(x.conflict_path.cmp(&y.conflict_path))
    });

    let mut message = format!("merge {} and {}\n", lo.short(), hi.short()).into_bytes();
    if !conflicts.is_empty() {
        message.extend_from_slice(b"\nconflicts (both versions kept):\n");
    }
    let mut extra = Vec::new();
    for c in &conflicts {
        message.extend_from_slice(format!("  {} -> {}\n", c.path, c.conflict_path).as_bytes());
        extra.push((CONFLICT_HEADER.to_vec(), encode_conflict(c)));
    }
    let sig = Signature {
        name: MERGE_AUTHOR.to_vec(),
        email: Vec::new(),
        time,
        tz_offset_minutes: 0,
    };
    let commit = Commit {
        tree: root.id,
        parents: vec![lo, hi],
        author: sig.clone(),
        committer: sig,
        message,
        extra,
    };

    // Files too large for one blob (a line merge can grow a file) go in first, through the
    // streaming writer; everything else is written in one transaction.
    let mut small = Vec::new();
    for (content, previous) in std::mem::take(&mut m.blobs) {
        if content.len() > SMALL_FILE_MAX {
            repo.write_file(content.as_slice(), previous)?;
        } else {
            small.push((content, previous));
        }
    }
    let trees = std::mem::take(&mut m.trees);
    drop(m);
    drop(view);
    let id = repo.batch(|b| {
        for (content, previous) in &small {
            b.put_blob(content, *previous)?;
        }
        for (tree, previous) in &trees {
            b.put_tree(tree, *previous)?;
        }
        b.put_commit(&commit)
    })?;
    for c in &mut conflicts {
        c.recorded_in = id;
    }
    tracing::info!(
        commit = %id.short(),
        conflicts = conflicts.len(),
        "merged {} and {}",
        lo.short(),
        hi.short()
    );
    Ok(MergeOutcome {
        commit: id,
        kind: MergeKind::Merged,
        conflicts,
    })
}

/// How deep merges of merge bases nest before the smallest base is used as it is.
pub const VIRTUAL_BASE_DEPTH: usize = 4;

/// How many merges of merge bases one merge may make, at all depths together; when the bases
/// left to fold are more than the budget left, the smallest base is used as it is. With the
/// depth bound it keeps a tangled history's merge (ten peers merging each other at once) from
/// growing without end, and it depends on the history only, so every peer merges the same.
pub const VIRTUAL_MERGE_BUDGET: usize = 16;

/// The commit a merge compares both sides against. One best common ancestor is the base. Several
/// (criss-cross histories: peers that merged each other's work at the same time) are merged
/// into one, in id order, and that merge commit is the base: a file one peer alone keeps
/// editing is then unchanged on the side that holds an older version of it, where any single
/// base would have it changed on both sides and make a conflict copy. The virtual merge commit
/// is written like any merge but no branch holds it; gc collects it. Beyond
/// [`VIRTUAL_BASE_DEPTH`] or [`VIRTUAL_MERGE_BUDGET`] the smallest base is used.
fn virtual_base(
    repo: &Repo,
    bases: &[ObjectId],
    depth: usize,
    budget: &mut usize,
) -> Result<Option<ObjectId>, MergeError> {
    let Some((&first, rest)) = bases.split_first() else {
        return Ok(None);
    };
    if rest.is_empty() || depth >= VIRTUAL_BASE_DEPTH || rest.len() > *budget {
        return Ok(bases.iter().min().copied());
    }
    *budget -= rest.len();
    let mut acc = first;
    for &next in rest {
        acc = merge_at(repo, acc, next, depth + 1, budget)?.commit;
    }
    tracing::debug!(bases = bases.len(), base = %acc.short(), depth, "virtual merge base");
    Ok(Some(acc))
}

fn up_to_date(id: ObjectId) -> MergeOutcome {
    MergeOutcome {
        commit: id,
        kind: MergeKind::UpToDate,
        conflicts: Vec::new(),
    }
}

/// The smallest of the best common ancestors of `a` and `b` (the base [`merge`] uses when
/// there is one best ancestor; several are merged into one); `None` when the histories share
/// nothing.
pub fn merge_base(view: &View, a: ObjectId, b: ObjectId) -> Result<Option<ObjectId>, MergeError> {
    Ok(merge_bases(view, a, b)?.into_iter().min())
}

/// All best common ancestors of `a` and `b` (common ancestors that are not ancestors of another
/// common ancestor), sorted by id. `[a]` when `a` is an ancestor of `b`.
pub fn merge_bases(view: &View, a: ObjectId, b: ObjectId) -> Result<Vec<ObjectId>, MergeError> {
    let mut graph = Graph::new(view);
    if a == b {
        return Ok(vec![a]);
    }
    let mut candidates = graph.paint_down(a, b)?;
    candidates.sort();
    candidates.dedup();
    if candidates.len() > 1 {
        // Drop any candidate reachable from another one.
        let mut keep = Vec::new();
        for (i, c) in candidates.iter().enumerate() {
            let others: Vec<ObjectId> = candidates
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, o)| *o)
                .collect();
            if !graph.reachable(&others, *c)? {
                keep.push(*c);
            }
        }
        candidates = keep;
    }
    Ok(candidates)
}

/// The conflicts recorded by merge commits in `branch`'s history (the newest
/// [`OPEN_CONFLICT_SCAN`] commits) whose conflict copy is still in the branch head, unchanged.
/// Deleting or renaming the copy resolves a conflict.
pub fn open_conflicts(repo: &Repo, branch: &str) -> Result<Vec<Conflict>, MergeError> {
    let view = repo.view()?;
    let head = view
        .branch_head(branch)?
        .ok_or_else(|| MergeError::NoSuchBranch(branch.to_owned()))?;
    let head_tree = view.commit(&head)?.tree;
    let mut seen = HashSet::new();
    let mut open = Vec::new();
    for item in view.log(&[head], false)?.take(OPEN_CONFLICT_SCAN) {
        let (id, commit) = item?;
        for (key, value) in &commit.extra {
            if key != CONFLICT_HEADER {
                continue;
            }
            let Some((path, conflict_path, kept_from, moved_aside_from)) = decode_conflict(value)
            else {
                tracing::warn!(commit = %id.short(), "ignoring a malformed conflict header");
                continue;
            };
            if !seen.insert(conflict_path.clone()) {
                continue;
            }
            let recorded = view.entry_at(&commit.tree, &conflict_path)?;
            let now = view.entry_at(&head_tree, &conflict_path)?;
            let still_there = matches!((&recorded, &now), (Some(r), Some(n)) if same_entry(r, n));
            if !still_there {
                continue;
            }
            let peer = match view.commit(&moved_aside_from) {
                Ok(c) => short_peer(&c),
                Err(_) => UNKNOWN_PEER.to_owned(),
            };
            open.push(Conflict {
                path,
                conflict_path,
                kept_from,
                moved_aside_from,
                peer,
                recorded_in: id,
            });
        }
    }
    open.sort_by(|x, y| {
        x.path
            .cmp(&y.path)
            .then(x.conflict_path.cmp(&y.conflict_path))
    });
    Ok(open)
}

const UNKNOWN_PEER: &str = "unknown";

/// The short peer name used in conflict names: the first 8 characters of the commit's
/// [`PEER_HEADER`] (letters, digits, `-` and `_` only), or `unknown`.
pub fn short_peer(commit: &Commit) -> String {
    let peer: String = commit
        .header(PEER_HEADER)
        .map(|v| {
            String::from_utf8_lossy(v)
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .take(8)
                .collect()
        })
        .unwrap_or_default();
    if peer.is_empty() {
        UNKNOWN_PEER.to_owned()
    } else {
        peer
    }
}

/// The name a moved-aside version gets: `NAME.conflict-<peer>-<short content id>`.
pub fn conflict_name(name: &[u8], peer: &str, content: &ObjectId) -> Vec<u8> {
    let mut out = name.to_vec();
    out.extend_from_slice(CONFLICT_INFIX);
    out.extend_from_slice(format!("{peer}-{}", content.short()).as_bytes());
    out
}

/// What follows a name in the names of its conflict copies.
const CONFLICT_INFIX: &[u8] = b".conflict-";

/// Which of two versions of a file both sides changed is the later edit: the later
/// modification time, then the larger content id; `None` when either has no modification
/// time (then the later head wins). It depends on the versions only, not on the heads that
/// carry them, so merges of the same versions in any order keep the same one at the name.
fn later_version(x: &TreeEntry, y: &TreeEntry) -> Option<usize> {
    let (tx, ty) = (x.meta.mtime?, y.meta.mtime?);
    Some(if (tx, x.id) >= (ty, y.id) { 0 } else { 1 })
}

fn encode_conflict(c: &Conflict) -> Vec<u8> {
    let mut v = c.path.to_bytes();
    v.push(0);
    v.extend_from_slice(&c.conflict_path.to_bytes());
    v.push(0);
    v.extend_from_slice(c.kept_from.to_hex().as_bytes());
    v.push(0);
    v.extend_from_slice(c.moved_aside_from.to_hex().as_bytes());
    v
}

fn decode_conflict(v: &[u8]) -> Option<(RepoPath, RepoPath, ObjectId, ObjectId)> {
    let parts: Vec<&[u8]> = v.split(|&b| b == 0).collect();
    let [path, conflict_path, kept, aside] = parts.as_slice() else {
        return None;
    };
    let id = |b: &[u8]| ObjectId::from_hex(std::str::from_utf8(b).ok()?);
    let path = RepoPath::parse(path).ok()?;
    let conflict_path = RepoPath::parse(conflict_path).ok()?;
    if path.is_root() || conflict_path.is_root() {
        return None;
    }
    Some((path, conflict_path, id(kept)?, id(aside)?))
}

fn same_entry(a: &TreeEntry, b: &TreeEntry) -> bool {
    a.kind == b.kind && a.id == b.id && a.meta == b.meta
}

/// Three-way merge of entry metadata, made to fit `kind`. Metadata never makes a conflict:
/// a part both sides changed differently takes the later modification or access time, and
/// the winning side's mode, owner, link group and device number.
fn merge_meta(
    o: Option<&TreeEntry>,
    x: &TreeEntry,
    y: &TreeEntry,
    winner: usize,
    kind: EntryKind,
) -> EntryMeta {
    let (ox, oy) = (&x.meta, &y.meta);
    let base = o.map(|o| o.meta);
    let pick = |part: fn(&EntryMeta) -> Option<u32>| {
        merge3(base.as_ref().map(part), part(ox), part(oy)).unwrap_or(if winner == 0 {
            part(ox)
        } else {
            part(oy)
        })
    };
    let owner = merge3(base.map(|m| m.owner), ox.owner, oy.owner).unwrap_or(if winner == 0 {
        ox.owner
    } else {
        oy.owner
    });
    let mtime = merge3(base.map(|m| m.mtime), ox.mtime, oy.mtime).unwrap_or(ox.mtime.max(oy.mtime));
    let atime = merge3(base.map(|m| m.atime), ox.atime, oy.atime).unwrap_or(ox.atime.max(oy.atime));
    let link = merge3(base.map(|m| m.link), ox.link, oy.link).unwrap_or(if winner == 0 {
        ox.link
    } else {
        oy.link
    });
    let rdev = merge3(base.map(|m| m.rdev), ox.rdev, oy.rdev).unwrap_or(if winner == 0 {
        ox.rdev
    } else {
        oy.rdev
    });
    EntryMeta {
        mode: pick(|m| m.mode),
        owner,
        mtime,
        atime,
        link,
        rdev,
    }
    .fitted_to(kind)
}

fn same(a: Option<&TreeEntry>, b: Option<&TreeEntry>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => same_entry(a, b),
        _ => false,
    }
}

fn is_dir(e: Option<&TreeEntry>) -> bool {
    e.is_some_and(|e| e.kind == EntryKind::Dir)
}

fn dir_id(e: Option<&TreeEntry>) -> Option<ObjectId> {
    e.filter(|e| e.kind == EntryKind::Dir).map(|e| e.id)
}

fn file_like(kind: EntryKind) -> bool {
    matches!(kind, EntryKind::File | EntryKind::Executable)
}

/// Three-way merge of one value: `None` when both sides changed it differently.
fn merge3<T: PartialEq + Copy>(base: Option<T>, a: T, b: T) -> Option<T> {
    if a == b {
        Some(a)
    } else if base == Some(a) {
        Some(b)
    } else if base == Some(b) {
        Some(a)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// History

const P1: u8 = 1;
const P2: u8 = 2;
const STALE: u8 = 4;
const RESULT: u8 = 8;

/// Commit times and parents, read once each.
struct Graph<'v> {
    view: &'v View,
    nodes: IdMap<(i64, Vec<ObjectId>)>,
}

impl<'v> Graph<'v> {
    fn new(view: &'v View) -> Self {
        Graph {
            view,
            nodes: IdMap::default(),
        }
    }

    fn node(&mut self, id: ObjectId) -> Result<&(i64, Vec<ObjectId>), MergeError> {
        if !self.nodes.contains_key(&id) {
            let c = self.view.commit(&id)?;
            self.nodes.insert(id, (c.committer.time, c.parents));
        }
        self.nodes
            .get(&id)
            .ok_or(MergeError::Store(crate::Error::Missing(id)))
    }

    /// Common ancestors of `a` and `b` not below another one found, newest first in time
    /// order (git's paint-down-to-common). May hold redundant ones; the caller filters.
    fn paint_down(&mut self, a: ObjectId, b: ObjectId) -> Result<Vec<ObjectId>, MergeError> {
        let flags = self.paint(a, &[b])?;
        Ok(flags.result)
    }

    /// Paints history down from `one` (`P1`) and from `twos` (`P2`) until every line still
    /// being walked has reached what both paints share (everything below a commit painted by
    /// both is `STALE`). The walk ends where the lines meet, not at the root: a history of
    /// many thousand commits costs what its recent, diverged part costs.
    fn paint(&mut self, one: ObjectId, twos: &[ObjectId]) -> Result<Painted, MergeError> {
        let mut flags: IdMap<u8> = IdMap::default();
        let mut heap: BinaryHeap<(i64, ObjectId)> = BinaryHeap::new();
        // How many entries of the heap each commit has, and how many entries are of commits not
        // (yet) stale: the walk ends when that count is zero. Counting keeps each step constant
        // time where a scan of the heap made a tangled history's walk quadratic.
        let mut queued: IdMap<u32> = IdMap::default();
        let mut nonstale = 0usize;
        flags.insert(one, P1);
        for &two in twos {
            *flags.entry(two).or_insert(0) |= P2;
        }
        for id in std::iter::once(&one).chain(twos) {
            let t = self.node(*id)?.0;
            heap.push((t, *id));
            *queued.entry(*id).or_insert(0) += 1;
            nonstale += 1;
        }
        let mut result = Vec::new();
        while nonstale > 0 {
            let Some((_, id)) = heap.pop() else { break };
            let f = flags.get(&id).copied().unwrap_or(0);
            if let Some(q) = queued.get_mut(&id) {
                *q = q.saturating_sub(1);
            }
            if f & STALE == 0 {
                nonstale = nonstale.saturating_sub(1);
            }
            let mut paint = f & (P1 | P2 | STALE);
            if paint & (P1 | P2) == P1 | P2 {
                if f & (RESULT | STALE) == 0 {
                    flags.insert(id, f | RESULT);
                    result.push(id);
                }
                paint |= STALE;
            }
            let parents = self.node(id)?.1.clone();
            for p in parents {
                let pf = flags.get(&p).copied().unwrap_or(0);
                if pf & paint == paint {
                    continue;
                }
                let nf = pf | paint;
                flags.insert(p, nf);
                if pf & STALE == 0 && nf & STALE != 0 {
                    // Its entries already queued are stale now.
                    let q = queued.get(&p).copied().unwrap_or(0) as usize;
                    nonstale = nonstale.saturating_sub(q);
                }
                let t = self.node(p)?.0;
                heap.push((t, p));
                *queued.entry(p).or_insert(0) += 1;
                if nf & STALE == 0 {
                    nonstale += 1;
                }
            }
        }
        let result = result
            .into_iter()
            .filter(|id| flags.get(id).is_some_and(|f| f & STALE == 0))
            .collect();
        Ok(Painted { flags, result })
    }

    /// Whether `target` is an ancestor of one of `starts` (or one of them). A paint from
    /// `target` against `starts`: `target` is reached from them exactly when it is below one,
    /// and the walk stops where the lines meet (an unbounded walk from `starts` went down to
    /// the root whenever the answer was no, in every merge of a criss-cross history).
    fn reachable(&mut self, starts: &[ObjectId], target: ObjectId) -> Result<bool, MergeError> {
        if starts.contains(&target) {
            return Ok(true);
        }
        let painted = self.paint(target, starts)?;
        Ok(painted.flags.get(&target).is_some_and(|f| f & P2 != 0))
    }
}

/// What [`Graph::paint`] leaves: each commit's paint, and the common ancestors it found.
struct Painted {
    flags: IdMap<u8>,
    result: Vec<ObjectId>,
}

// ---------------------------------------------------------------------------------------------
// Trees

struct Side {
    commit: ObjectId,
    time: i64,
    peer: String,
}

impl Side {
    fn new(commit: ObjectId, c: &Commit) -> Self {
        Side {
            commit,
            time: c.committer.time,
            peer: short_peer(c),
        }
    }
}

/// How one name resolves.
enum Resolved {
    Take(Option<TreeEntry>),
    /// Side `keep`'s entry stays; side `1 - keep`'s entry moves aside.
    Conflict {
        keep: usize,
        kept: TreeEntry,
        aside: TreeEntry,
    },
}

struct Merger<'v> {
    view: &'v View,
    sides: [Side; 2],
    winner: usize,
    /// New blob contents, with their delta base.
    blobs: Vec<(Vec<u8>, Option<ObjectId>)>,
    /// New trees, children before parents, with their delta base.
    trees: Vec<(Tree, Option<ObjectId>)>,
    written: HashSet<ObjectId>,
    conflicts: Vec<Conflict>,
    /// A merge of merge bases (a virtual base, see [`virtual_base`]): a conflict keeps the
    /// bases' own base version of the name and moves nothing aside. A conflict copy's name
    /// comes from its content, so a copy made here could carry the name of a real copy one
    /// side holds; the other side, lacking it, would then look as if it had deleted that copy
    /// and the merge would drop it.
    base_only: bool,
    /// The root trees of the best common ancestors when there are several (see
    /// [`Merger::superseded`]); empty with one.
    best_bases: Vec<ObjectId>,
}

impl Merger<'_> {
    /// Which side's version of a file both sides changed holds when the other side's version
    /// is in one of the best common ancestors and its own is in none: relative to that
    /// ancestor only one side changed the file. The base a merge compares against is one
    /// commit (a virtual merge of the best ancestors, or the smallest of them when there are
    /// too many to merge); a file one peer alone edits can then look changed on both sides
    /// although one side holds a version the other had and moved on from.
    fn superseded(
        &self,
        path: &RepoPath,
        x: &TreeEntry,
        y: &TreeEntry,
    ) -> Result<Option<TreeEntry>, MergeError> {
        let (mut x_in, mut y_in) = (false, false);
        for root in &self.best_bases {
            if let Some(e) = self.view.entry_at(root, path)? {
                x_in |= same_entry(&e, x);
                y_in |= same_entry(&e, y);
            }
        }
        Ok(match (x_in, y_in) {
            (true, false) => Some(y.clone()),
            (false, true) => Some(x.clone()),
            _ => None,
        })
    }

    fn load(&self, id: Option<ObjectId>) -> Result<Tree, MergeError> {
        Ok(match id {
            Some(id) => self.view.tree(&id)?,
            None => Tree::default(),
        })
    }

    /// Merges three directories (`None` = absent) and returns the merged tree's entry (its
    /// name left empty). New trees are queued for writing.
    fn merge_dir(
        &mut self,
        path: &RepoPath,
        base: Option<ObjectId>,
        a: Option<ObjectId>,
        b: Option<ObjectId>,
    ) -> Result<TreeEntry, MergeError> {
        let trees = [self.load(base)?, self.load(a)?, self.load(b)?];
        let mut slots: BTreeMap<&[u8], [Option<&TreeEntry>; 3]> = BTreeMap::new();
        for (i, t) in trees.iter().enumerate() {
            for e in &t.entries {
                slots.entry(e.name.as_slice()).or_insert([None; 3])[i] = Some(e);
            }
        }
        let mut out: BTreeMap<Vec<u8>, TreeEntry> = BTreeMap::new();
        let mut asides = Vec::new();
        for (name, [o, x, y]) in slots {
            match self.merge_entry(path, name, o, x, y)? {
                Resolved::Take(Some(mut e)) => {
                    e.name = name.to_vec();
                    out.insert(e.name.clone(), e);
                }
                Resolved::Take(None) => {}
                Resolved::Conflict { .. } if self.base_only => {
                    if let Some(o) = o {
                        out.insert(name.to_vec(), o.clone());
                    }
                }
                Resolved::Conflict { keep, kept, aside } => {
                    let mut kept = kept;
                    kept.name = name.to_vec();
                    out.insert(kept.name.clone(), kept);
                    asides.push((name.to_vec(), keep, aside));
                }
            }
        }
        for (name, keep, mut aside) in asides {
            // A version already kept beside the name (a copy one side made earlier, under the
            // name that side gave it) is not copied again: merges of the same versions in
            // another order then hold the same set of versions, and peers agree.
            let mut prefix = name.clone();
            prefix.extend_from_slice(CONFLICT_INFIX);
            if out
                .iter()
                .any(|(n, e)| n.starts_with(&prefix) && e.kind == aside.kind && e.id == aside.id)
            {
                continue;
            }
            let lose = 1 - keep;
            let peer = self.sides[lose].peer.clone();
            let base_name = conflict_name(&name, &peer, &aside.id);
            let mut cname = base_name.clone();
            let mut n = 1u32;
            while let Some(existing) = out.get(&cname) {
                if same_entry(existing, &aside) {
                    break;
                }
                n += 1;
                cname = base_name.clone();
                cname.extend_from_slice(format!("-{n}").as_bytes());
            }
            aside.name = cname.clone();
            self.conflicts.push(Conflict {
                path: path.join(&name)?,
                conflict_path: path.join(&cname)?,
                kept_from: self.sides[keep].commit,
                moved_aside_from: self.sides[lose].commit,
                peer,
                recorded_in: ObjectId::default(),
            });
            out.insert(cname, aside);
        }
        let tree = Tree {
            entries: out.into_values().collect(),
        };
        let id = tree.id();
        let size = tree.entries.len() as u64;
        if Some(id) != a && Some(id) != b && Some(id) != base && self.written.insert(id) {
            let previous = if self.winner == 0 { a.or(b) } else { b.or(a) };
            self.trees.push((tree, previous));
        }
        Ok(TreeEntry {
            name: Vec::new(),
            kind: EntryKind::Dir,
            id,
            size,
            meta: EntryMeta::NONE,
        })
    }

    fn merge_entry(
        &mut self,
        dir: &RepoPath,
        name: &[u8],
        o: Option<&TreeEntry>,
        x: Option<&TreeEntry>,
        y: Option<&TreeEntry>,
    ) -> Result<Resolved, MergeError> {
        if same(x, y) || same(o, y) {
            return Ok(Resolved::Take(x.cloned()));
        }
        if same(o, x) {
            return Ok(Resolved::Take(y.cloned()));
        }
        // Both sides changed it, differently.
        let path = dir.join(name)?;
        match (x, y) {
            (Some(xe), Some(ye)) if is_dir(x) && is_dir(y) => {
                let mut merged = self.merge_dir(&path, dir_id(o), Some(xe.id), Some(ye.id))?;
                let o = o.filter(|o| o.kind == EntryKind::Dir);
                merged.meta = merge_meta(o, xe, ye, self.winner, EntryKind::Dir);
                Ok(Resolved::Take(Some(merged)))
            }
            (Some(d), None) | (None, Some(d)) if d.kind == EntryKind::Dir => {
                if is_dir(o) {
                    // Deleted on one side, changed on the other: keep what was changed.
                    let (a, b) = if x.is_some() {
                        (Some(d.id), None)
                    } else {
                        (None, Some(d.id))
                    };
                    let mut merged = self.merge_dir(&path, dir_id(o), a, b)?;
                    merged.meta = d.meta;
                    if merged.size == 0 {
                        Ok(Resolved::Take(None))
                    } else {
                        Ok(Resolved::Take(Some(merged)))
                    }
                } else {
                    Ok(Resolved::Take(Some(d.clone())))
                }
            }
            // Deleted on one side, modified on the other: nothing is lost.
            (Some(e), None) | (None, Some(e)) => Ok(Resolved::Take(Some(e.clone()))),
            (Some(xe), Some(ye)) if xe.kind == EntryKind::Dir => Ok(Resolved::Conflict {
                keep: 0,
                kept: xe.clone(),
                aside: ye.clone(),
            }),
            (Some(xe), Some(ye)) if ye.kind == EntryKind::Dir => Ok(Resolved::Conflict {
                keep: 1,
                kept: ye.clone(),
                aside: xe.clone(),
            }),
            (Some(xe), Some(ye)) => self.merge_files(&path, o, xe, ye),
            (None, None) => Ok(Resolved::Take(None)),
        }
    }

    fn merge_files(
        &mut self,
        path: &RepoPath,
        o: Option<&TreeEntry>,
        x: &TreeEntry,
        y: &TreeEntry,
    ) -> Result<Resolved, MergeError> {
        if let Some(newer) = self.superseded(path, x, y)? {
            return Ok(Resolved::Take(Some(TreeEntry {
                name: Vec::new(),
                ..newer
            })));
        }
        if file_like(x.kind) && file_like(y.kind) {
            let o = o.filter(|o| file_like(o.kind));
            if let Some(kind) = merge3(o.map(|o| o.kind), x.kind, y.kind) {
                let meta = merge_meta(o, x, y, self.winner, kind);
                if let Some(id) = merge3(o.map(|o| o.id), x.id, y.id) {
                    let size = if id == x.id { x.size } else { y.size };
                    return Ok(Resolved::Take(Some(TreeEntry {
                        name: Vec::new(),
                        kind,
                        id,
                        size,
                        meta,
                    })));
                }
                if let Some(content) = self.line_merge(path, o, x, y)? {
                    let id = ObjectId::of(&content);
                    let size = content.len() as u64;
                    let previous = if self.winner == 0 { x.id } else { y.id };
                    if self.written.insert(id) {
                        self.blobs.push((content, Some(previous)));
                    }
                    return Ok(Resolved::Take(Some(TreeEntry {
                        name: Vec::new(),
                        kind,
                        id,
                        size,
                        meta,
                    })));
                }
            }
        }
        let w = later_version(x, y).unwrap_or(self.winner);
        let (kept, aside) = if w == 0 { (x, y) } else { (y, x) };
        Ok(Resolved::Conflict {
            keep: w,
            kept: kept.clone(),
            aside: aside.clone(),
        })
    }

    /// Line-level three-way merge of two text versions; `None` when it conflicts or the files
    /// are not small text.
    fn line_merge(
        &self,
        path: &RepoPath,
        o: Option<&TreeEntry>,
        x: &TreeEntry,
        y: &TreeEntry,
    ) -> Result<Option<Vec<u8>>, MergeError> {
        let max = SMALL_FILE_MAX as u64;
        if x.size > max || y.size > max || o.is_some_and(|o| o.size > max) {
            return Ok(None);
        }
        let base = match o {
            Some(o) => self.view.read_file(&o.id, max)?,
            None => Vec::new(),
        };
        let ours = self.view.read_file(&x.id, max)?;
        let theirs = self.view.read_file(&y.id, max)?;
        if [&base, &ours, &theirs].iter().any(|c| c.contains(&0)) {
            tracing::debug!(%path, "binary file changed on both sides");
            return Ok(None);
        }
        let merged = merge_text(&base, &ours, &theirs);
        if merged.is_none() {
            tracing::debug!(%path, "overlapping line changes");
        }
        Ok(merged)
    }
}

// ---------------------------------------------------------------------------------------------
// Lines

/// A changed region: base lines `base.0..base.1` became new lines `new.0..new.1`.
#[derive(Debug, Clone, Copy)]
struct Hunk {
    base: (usize, usize),
    new: (usize, usize),
}

fn lines(data: &[u8]) -> Vec<&[u8]> {
    data.split_inclusive(|&b| b == b'\n').collect()
}

fn hunks(base: &[u32], new: &[u32]) -> Vec<Hunk> {
    let mut out: Vec<Hunk> = Vec::new();
    for op in similar::capture_diff_slices(similar::Algorithm::Myers, base, new) {
        let (tag, old, new) = op.as_tag_tuple();
        if tag == similar::DiffTag::Equal {
            continue;
        }
        if let Some(last) = out.last_mut()
            && last.base.1 == old.start
            && last.new.1 == new.start
        {
            last.base.1 = old.end;
            last.new.1 = new.end;
            continue;
        }
        out.push(Hunk {
            base: (old.start, old.end),
            new: (new.start, new.end),
        });
    }
    out
}

/// Numbers each distinct line, so that diffs compare integers.
fn intern<'a>(table: &mut HashMap<&'a [u8], u32>, lines: &[&'a [u8]]) -> Vec<u32> {
    lines
        .iter()
        .map(|l| {
            let next = u32::try_from(table.len()).unwrap_or(u32::MAX);
            *table.entry(l).or_insert(next)
        })
        .collect()
}

/// Whether diffing `a` against `b` stays within [`LINE_MERGE_MAX_LINES`] and
/// [`LINE_MERGE_BUDGET`]. Myers' algorithm costs about (lines left after trimming the common
/// start and end) × (edit distance); the edit distance is at least the number of lines of one
/// side that have no partner on the other. Depends only on the content, never on the clock.
fn diff_affordable(a: &[u32], b: &[u32]) -> bool {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let a_mid = &a[prefix..a.len() - suffix];
    let b_mid = &b[prefix..b.len() - suffix];
    let middle = a_mid.len() + b_mid.len();
    if middle > LINE_MERGE_MAX_LINES {
        return false;
    }
    let mut counts: HashMap<u32, i64> = HashMap::new();
    for l in a_mid {
        *counts.entry(*l).or_insert(0) += 1;
    }
    for l in b_mid {
        *counts.entry(*l).or_insert(0) -= 1;
    }
    let unmatched: u64 = counts.values().map(|c| c.unsigned_abs()).sum();
    (middle as u64).saturating_mul(unmatched.max(1)) <= LINE_MERGE_BUDGET
}

/// Three-way line merge (diff3 style). Changes of the two sides that overlap or touch in the
/// base conflict unless they are identical; `None` on a conflict. Symmetric in `a` and `b`.
pub fn merge_text(base: &[u8], a: &[u8], b: &[u8]) -> Option<Vec<u8>> {
    let base_l = lines(base);
    let a_l = lines(a);
    let b_l = lines(b);
    let mut table = HashMap::new();
    let base_n = intern(&mut table, &base_l);
    let a_n = intern(&mut table, &a_l);
    let b_n = intern(&mut table, &b_l);
    if !diff_affordable(&base_n, &a_n) || !diff_affordable(&base_n, &b_n) {
        return None;
    }
    let sides = [(hunks(&base_n, &a_n), &a_l), (hunks(&base_n, &b_n), &b_l)];
    // All hunks in base order, tagged with their side.
    let mut all: Vec<(usize, Hunk)> = sides
        .iter()
        .enumerate()
        .flat_map(|(s, (h, _))| h.iter().map(move |h| (s, *h)))
        .collect();
    all.sort_by_key(|(s, h)| (h.base.0, h.base.1, *s));

    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let mut pos = 0; // next base line to copy
    let mut delta = [0isize; 2]; // new index - base index, after the hunks applied so far
    let mut i = 0;
    while i < all.len() {
        // A cluster: hunks that overlap or touch each other.
        let start = all[i].1.base.0;
        let mut end = all[i].1.base.1;
        let mut j = i + 1;
        while j < all.len() && all[j].1.base.0 <= end {
            end = end.max(all[j].1.base.1);
            j += 1;
        }
        let cluster = &all[i..j];
        for line in &base_l[pos..start] {
            out.extend_from_slice(line);
        }
        let mut text: [Option<Vec<u8>>; 2] = [None, None];
        for (s, (_, side_lines)) in sides.iter().enumerate() {
            let mine: Vec<&Hunk> = cluster
                .iter()
                .filter(|(hs, _)| *hs == s)
                .map(|(_, h)| h)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let from = start.checked_add_signed(delta[s])?;
            for h in &mine {
                delta[s] += (h.new.1 - h.new.0) as isize - (h.base.1 - h.base.0) as isize;
            }
            let to = end.checked_add_signed(delta[s])?;
            text[s] = Some(side_lines.get(from..to)?.concat());
        }
        match text {
            [Some(x), Some(y)] => {
                if x != y {
                    return None;
                }
                out.extend_from_slice(&x);
            }
            [Some(t), None] | [None, Some(t)] => out.extend_from_slice(&t),
            [None, None] => {}
        }
        pos = end;
        i = j;
    }
    for line in &base_l[pos..] {
        out.extend_from_slice(line);
    }
    Some(out)
}
