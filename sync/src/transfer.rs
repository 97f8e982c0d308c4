//! The two roles of an object transfer, independent of the network.
//!
//! The sender finds what the receiver lacks and streams it as a pack: newest content first,
//! every object after what it links to, then the commits oldest first. Objects stored as
//! deltas against objects the receiver has or already received travel as those stored deltas;
//! small objects travel raw inside one zstd stream, so commits and trees compress against each
//! other; large ones travel on their own. No object ids are sent: the receiver hashes what it
//! gets, checks every link, and only keeps objects reachable from what it asked for.
//!
//! The receiver stores what arrives in transactions of up to 32 MiB, so an interrupted transfer
//! keeps what arrived; the next one asks for an inventory first and skips those objects.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hero_store::{
    EntryKind, IdMap, IdSet, Incoming, ObjType, ObjectId, Prepared, Repo, StoredForm, Tree,
    TreeEntry, View, apply_delta_frame, delta_frame, entry_link_type, object_links,
};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::{Result, SyncError};
use crate::session::Ask;
use crate::wire::{
    Dec, Enc, INVENTORY_BATCH, MAX_FRAME, Wire, form, kind, pack_start, type_code, type_of,
    wants_flag,
};

/// Most haves a receiver sends (heads plus spaced ancestors).
pub const MAX_HAVES: usize = 2048;

/// Commits a sender walks down from the wants before it also walks the receiver's history.
const SHORT_WALK: usize = 256;

/// Ancestors of the receiver's haves a sender walks at most.
const EXCLUDE_WALK: usize = 20_000;

/// First-parent commits a receiver walks to sample its haves.
const HAVES_WALK: usize = 1024;
/// Most candidate objects one transfer may list.
pub const MAX_INVENTORY: usize = 20_000_000;
/// A receiver stores what arrived once this many bytes are pending. Large enough that most
/// transfers of history are one transaction written in key order (dense pages, no compaction
/// needed), small enough that an interrupted transfer of bulk data keeps most of what came.
pub const STORE_BATCH_BYTES: usize = 32 << 20;
/// A sender reads and encodes this many bytes of objects between network writes.
const SEND_GROUP_BYTES: usize = 512 << 10;
/// Most objects a receiver makes room for up front.
const RESERVE_MAX: usize = 1 << 16;
/// Objects a sender lists at a time once it has started sending.
const LIST_STEP: usize = 2048;
/// Raw bytes of small objects gathered before the sender cuts a compressed PACK message.
const PACK_RAW: usize = 256 << 10;
/// Objects with at least this many bytes travel outside the compressed stream.
const BULK: usize = 16 << 10;
/// Largest decoded content of one compressed PACK message a receiver accepts.
const MAX_PACK_DECODED: usize = 8 << 20;
/// Window of the compressed stream (16 MiB, the most a receiver accepts): objects compress
/// against all that came shortly before them.
const PACK_WINDOW_LOG: u32 = MAX_WINDOW_LOG;
/// Largest window a receiver decodes with.
const MAX_WINDOW_LOG: u32 = 24;
/// Raw bytes of recently received objects a receiver keeps for deltas against them.
const WINDOW_BYTES: usize = 64 << 20;
/// Transfers of at most this many objects are compressed at a higher level. It is also how
/// much the sender lists before it starts sending (listing 20,000 took ~60 ms on 10,000
/// commits, all of it waited for).
const SMALL_TRANSFER: usize = 4096;
/// Largest raw object sent through the compressed stream (a small file or a chunk is at most
/// this), well within what one message may decode to.
const RAW_IN_STREAM_MAX: usize = 1 << 20;
/// Largest object the sender makes a new delta for.
const FDELTA_MAX: usize = 1 << 20;
/// Setting a receiver keeps while a transfer has stored part of what it will get.
const INCOMPLETE: &str = "sync/incomplete";
/// Longest chain of tags pointing at tags that is followed.
const MAX_TAG_CHAIN: usize = 16;
/// Have-commits whose trees are used to prune what is listed when no edge is found.
const PRUNE_COMMITS: usize = 4;
/// Most edge commits whose trees are used to prune what is listed.
const PRUNE_EDGES: usize = 256;

/// What a transfer is doing, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Finding what is missing.
    Negotiating,
    /// Moving objects.
    Transferring,
    /// Moving branches.
    UpdatingRefs,
}

/// Progress of a transfer.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// What is happening.
    pub phase: Phase,
    /// Objects moved so far.
    pub objects: u64,
    /// Objects to move in all (once known).
    pub objects_total: u64,
    /// Bytes on the wire so far.
    pub bytes: u64,
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Counts of one transfer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// Objects moved.
    pub objects: u64,
    /// Objects listed as candidates.
    pub candidates: u64,
    /// Commits moved.
    pub commits: u64,
    /// Bytes of object data on the wire (after compression).
    pub object_bytes: u64,
    /// Objects sent as deltas.
    pub deltas: u64,
    /// Transactions the receiver stored objects in.
    pub transactions: u64,
}

/// Runs blocking store work without stalling the async runtime.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// The commits a receiver names besides the refs it shares with the sender (those travel as a
/// bitmap): its own heads, then, for each branch it is about to receive (`receiving`), its own
/// version's first-parent ancestors at exponentially growing distances, so a long divergent
/// history still meets a common commit within one round trip. Only the branches being received
/// are walked: the cost follows what differs, not the number of branches. Nothing in `shared`
/// (the refs both sides have) is named again.
pub fn haves_of(view: &View, receiving: &[&str], shared: &IdSet) -> Result<Vec<ObjectId>> {
    let mut out = Vec::new();
    let mut seen = shared.clone();
    let branches = view.branches()?;
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
struct Plan {
    /// For objects the receiver lacks: the version of the same path the receiver has (a
    /// base for a new delta).
    bases: IdMap<ObjectId>,
    /// Objects the receiver has (everything reachable from a few of its commits).
    known: IdSet,
}

/// An object a tree or manifest links to: its type, id and the receiver's version of its
/// path.
type Child = (ObjType, ObjectId, Option<ObjectId>);

/// A tree or manifest whose links are being listed.
struct Frame {
    ty: ObjType,
    id: ObjectId,
    children: Vec<Child>,
    next: usize,
}

/// Where the listing is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
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
struct Lister {
    /// Commits to send with their trees and the receiver's root tree their paths get delta
    /// bases from, parents before children.
    commits: Vec<(ObjectId, ObjectId, Option<ObjectId>)>,
    /// Commits whose trees are still to be walked (counting down).
    trees_left: usize,
    tagged: Vec<(ObjType, ObjectId)>,
    tags: Vec<ObjectId>,
    listed: IdSet,
    stack: Vec<Frame>,
    stage: Stage,
    /// Objects listed so far.
    count: u64,
}

/// Finds the commits to send and what the receiver has; the objects are listed by the
/// returned [`Lister`]. `haves` are commits the receiver named, `common` the sender's own
/// advertised refs the receiver said it has.
fn plan(
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
    for (c, tree, first_parent) in walk.commits {
        let base = match first_parent {
            Some(fp) => match roots.get(&fp) {
                Some(root) => Some(*root),
                None if walk.edges.contains(&fp) => Some(view.commit(&fp)?.tree),
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
struct Walk {
    /// Commits with their tree and first parent, parents before children.
    commits: Vec<(ObjectId, ObjectId, Option<ObjectId>)>,
    /// Parents of those commits that the receiver has, in the order met.
    edges: Vec<ObjectId>,
}

/// Commits reachable from `stack` and not from `excluded` with their trees, parents before
/// children, and the excluded commits they meet; `None` when more than `limit` commits were
/// visited.
fn commits_between(
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
    fn done(&self) -> bool {
        self.stage == Stage::Done
    }

    /// Lists objects onto `out` until it holds `len` or everything is listed.
    fn fill(
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

    fn emit(&mut self, out: &mut VecDeque<(ObjType, ObjectId)>, ty: ObjType, id: ObjectId) {
        out.push_back((ty, id));
        self.count += 1;
    }

    /// One step: descend into a link, list a finished tree, or start the next root.
    fn step(
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
    fn visit(
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
fn tree_children(view: &View, id: &ObjectId, base: Option<ObjectId>) -> Result<Vec<Child>> {
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

/// How an entry names its delta base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BaseRef {
    /// The entry this many places earlier in the transfer.
    Back(u64),
    /// An object the receiver had before the transfer.
    Held(ObjectId),
}

/// One object as it travels: `type, form, varint raw length, [id of a manifest], [base],
/// varint data length, data`. A base is a varint: n > 0 is the entry n places back, 0 is
/// followed by the id of an object the receiver has.
fn entry_bytes(
    ty: ObjType,
    form: u8,
    raw_len: u64,
    base: Option<BaseRef>,
    manifest_id: Option<&ObjectId>,
    data: &[u8],
) -> Vec<u8> {
    let mut m = Enc(Vec::with_capacity(data.len() + 48));
    m.u8(type_code(ty)).u8(form).varint(raw_len);
    if let Some(id) = manifest_id {
        m.id(id);
    }
    match base {
        Some(BaseRef::Back(n)) => {
            m.varint(n);
        }
        Some(BaseRef::Held(id)) => {
            m.varint(0).id(&id);
        }
        None => {}
    }
    m.varint(data.len() as u64);
    m.0.extend_from_slice(data);
    m.0
}

/// An encoded entry.
struct Entry {
    bytes: Vec<u8>,
    /// Travels outside the compressed stream.
    bulk: bool,
    delta: bool,
}

/// What the sender has sent so far.
#[derive(Default)]
struct Sent {
    /// Stream position of every object sent.
    at: IdMap<u64>,
    /// Objects the receiver said it has (from the inventory).
    held: IdSet,
    next: u64,
}

impl Sent {
    fn base_ref(&self, plan: &Plan, b: &ObjectId) -> Option<BaseRef> {
        if let Some(&at) = self.at.get(b) {
            return Some(BaseRef::Back(self.next - at));
        }
        if plan.known.contains(b) || self.held.contains(b) {
            return Some(BaseRef::Held(*b));
        }
        None
    }
}

/// Encodes one object: its stored delta when the receiver has the base, its stored frame or
/// plain bytes, else its raw bytes (or a new delta against the receiver's version of its path).
fn encode_entry(
    view: &View,
    ty: ObjType,
    id: &ObjectId,
    plan: &Plan,
    sent: &Sent,
) -> Result<Entry> {
    let stored = view
        .stored(id)?
        .ok_or(SyncError::Store(hero_store::Error::Missing(*id)))?;
    if stored.ty != ty && !(is_content(ty) && is_content(stored.ty)) {
        return Err(SyncError::Store(hero_store::Error::WrongType {
            id: *id,
            expected: ty.as_str(),
        }));
    }
    let ty = stored.ty;
    match stored.form {
        StoredForm::Delta { base, frame } => {
            if let Some(r) = sent.base_ref(plan, &base) {
                return Ok(Entry {
                    bulk: frame.len() >= BULK,
                    bytes: entry_bytes(ty, form::DELTA, stored.raw_len, Some(r), None, &frame),
                    delta: true,
                });
            }
        }
        StoredForm::Plain(raw) => {
            return Ok(Entry {
                bulk: raw.len() >= BULK,
                bytes: entry_bytes(ty, form::PLAIN, stored.raw_len, None, None, &raw),
                delta: false,
            });
        }
        // Whole objects travel raw through the compressed stream, where they compress against
        // what came before them (versions of a file on other branches, renamed copies): on a
        // 43,000-object history the stored frames of whole blobs were 6.4 MB, the same blobs
        // raw through the stream 2.2 MB. The receiver compresses them again as it stores them.
        // Only objects too large for one compressed message travel as their stored frame.
        StoredForm::Zstd(frame)
            if stored.raw_len > RAW_IN_STREAM_MAX as u64
                && plan
                    .bases
                    .get(id)
                    .and_then(|b| sent.base_ref(plan, b))
                    .is_none() =>
        {
            return Ok(Entry {
                bulk: frame.len() >= BULK,
                bytes: entry_bytes(ty, form::ZSTD, stored.raw_len, None, None, &frame),
                delta: false,
            });
        }
        StoredForm::Zstd(_) | StoredForm::Other => {}
    }
    let Some((_, raw)) = view.raw_object(id)? else {
        return Err(SyncError::Store(hero_store::Error::Missing(*id)));
    };
    let manifest_id = (ty == ObjType::Manifest).then_some(id);
    if manifest_id.is_none()
        && raw.len() <= FDELTA_MAX
        && let Some(b) = plan.bases.get(id)
        && b != id
        && let Some(r) = sent.base_ref(plan, b)
        && let Some((_, base_raw)) = view.raw_object(b)?
        && let Some(f) = delta_frame(&raw, &base_raw)
        && f.len() + 40 < raw.len()
    {
        return Ok(Entry {
            bulk: f.len() >= BULK,
            bytes: entry_bytes(ty, form::FDELTA, raw.len() as u64, Some(r), None, &f),
            delta: true,
        });
    }
    // Raw bytes go through the compressed stream (outside it they would travel uncompressed),
    // unless they are too large for one message.
    Ok(Entry {
        bulk: raw.len() > RAW_IN_STREAM_MAX,
        bytes: entry_bytes(ty, form::RAW, raw.len() as u64, None, manifest_id, &raw),
        delta: false,
    })
}

/// Longest chain of stored blob deltas sent ahead of the blob that needs it.
const MAX_AHEAD_CHAIN: usize = 512;

/// Takes the next objects to send off the queue: the next one not sent yet, preceded by the
/// blobs its stored delta needs. A blob stored as a delta against a blob that this transfer
/// sends later (listed, listing further if need be) has that base, and the base's own, sent
/// first, so it travels as its stored delta instead of raw: with many branches the listing
/// often meets an old version of a file before the newer one it is stored against. Blobs link
/// to nothing, so sending one early still sends every object after what it links to; each
/// object is still sent once (one sent early is skipped when the queue reaches it), so the
/// count is unchanged.
fn next_objects(
    view: &View,
    plan: &mut Plan,
    lister: &mut Lister,
    queue: &mut VecDeque<(ObjType, ObjectId)>,
    sent: &Sent,
    out: &mut Vec<(ObjType, ObjectId)>,
) -> Result<()> {
    let (ty, id) = loop {
        if queue.is_empty() {
            lister.fill(view, plan, queue, LIST_STEP)?;
        }
        match queue.pop_front() {
            None => return Ok(()),
            Some((_, id)) if sent.at.contains_key(&id) => {}
            Some(x) => break x,
        }
    };
    if ty == ObjType::Blob {
        let start = out.len();
        let mut cur = id;
        while out.len() - start < MAX_AHEAD_CHAIN {
            let Some((_, Some(base))) = view.stored_base(&cur)? else {
                break;
            };
            if sent.base_ref(plan, &base).is_some() {
                break;
            }
            while !lister.listed.contains(&base) && !lister.done() {
                let more = queue.len() + LIST_STEP;
                lister.fill(view, plan, queue, more)?;
            }
            // Only a blob this transfer sends anyway and that is not sent yet.
            if !lister.listed.contains(&base)
                || base == id
                || out[start..].iter().any(|(_, o)| *o == base)
                || !matches!(view.stored_base(&base)?, Some((ObjType::Blob, _)))
            {
                break;
            }
            out.push((ObjType::Blob, base));
            cur = base;
        }
        out[start..].reverse();
    }
    out.push((ty, id));
    Ok(())
}

fn is_content(t: ObjType) -> bool {
    matches!(t, ObjType::Blob | ObjType::Manifest)
}

/// Cuts entries into PACK messages: small ones through one zstd stream (flushed at each cut,
/// so every message decodes on its own given the ones before), large ones as they are.
struct Packer {
    z: zstd::stream::write::Encoder<'static, Vec<u8>>,
    pending: usize,
}

impl Packer {
    fn new(level: i32) -> Result<Self> {
        let mut raw = zstd::stream::raw::Encoder::new(level).map_err(SyncError::Io)?;
        raw.set_parameter(zstd::zstd_safe::CParameter::WindowLog(PACK_WINDOW_LOG))
            .map_err(SyncError::Io)?;
        // Long-distance matching finds the far repeats of a history (a file's version on
        // another branch, megabytes back) at little cost.
        raw.set_parameter(zstd::zstd_safe::CParameter::EnableLongDistanceMatching(
            true,
        ))
        .map_err(SyncError::Io)?;
        Ok(Packer {
            z: zstd::stream::write::Encoder::with_encoder(Vec::new(), raw),
            pending: 0,
        })
    }

    fn add(&mut self, e: Entry, out: &mut Vec<Enc>) -> Result<()> {
        if e.bulk {
            self.cut(out)?;
            let mut m = Enc(Vec::with_capacity(e.bytes.len() + 2));
            m.u8(kind::PACK).u8(0);
            m.0.extend_from_slice(&e.bytes);
            out.push(m);
            return Ok(());
        }
        self.z.write_all(&e.bytes).map_err(SyncError::Io)?;
        self.pending += e.bytes.len();
        if self.pending >= PACK_RAW {
            self.cut(out)?;
        }
        Ok(())
    }

    fn cut(&mut self, out: &mut Vec<Enc>) -> Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        self.z.flush().map_err(SyncError::Io)?;
        let data = std::mem::take(self.z.get_mut());
        let mut m = Enc(Vec::with_capacity(data.len() + 2));
        m.u8(kind::PACK).u8(1);
        m.0.extend_from_slice(&data);
        out.push(m);
        self.pending = 0;
        Ok(())
    }
}

/// The sender's side: answers a WANTS message already received.
pub(crate) async fn send_objects<R, W>(
    wire: &mut Wire<R, W>,
    repo: &Repo,
    wants_body: &[u8],
    advertised: &[ObjectId],
    progress: Option<&ProgressFn>,
) -> Result<TransferStats>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let mut d = Dec::new(wants_body);
    let wants = d.ids()?;
    let haves = d.ids()?;
    let flags = d.u8()?;
    if haves.len() > MAX_HAVES * 2 || wants.len() > 1_000_000 {
        return Err(SyncError::protocol("too many wants or haves"));
    }
    let bits = d.bytes()?;
    if bits.len() != advertised.len().div_ceil(8) {
        return Err(SyncError::protocol(
            "the bitmap of common refs does not match what was advertised",
        ));
    }
    let common: Vec<ObjectId> = advertised
        .iter()
        .enumerate()
        .filter(|(i, _)| bits[i / 8] & (1 << (i % 8)) != 0)
        .map(|(_, id)| *id)
        .collect();
    let t0 = Instant::now();
    let inventory = flags & wants_flag::INVENTORY != 0;
    // List enough to know whether this is a small transfer; a large one starts sending while
    // the rest is listed. An inventory needs the whole list first.
    let (mut plan, mut lister, mut queue) = blocking(|| -> Result<_> {
        let view = repo.view()?;
        let (mut plan, mut lister) = plan(&view, &wants, &haves, &common)?;
        let mut queue = VecDeque::new();
        let first = if inventory {
            usize::MAX
        } else {
            SMALL_TRANSFER + 1
        };
        lister.fill(&view, &mut plan, &mut queue, first)?;
        Ok((plan, lister, queue))
    })?;
    tracing::debug!(
        objects = queue.len(),
        complete = lister.done(),
        "listed in {:?}",
        t0.elapsed()
    );
    let mut sent = Sent::default();
    if inventory {
        // The receiver may hold part of an interrupted transfer: it says which it lacks.
        let order: Vec<(ObjType, ObjectId)> = std::mem::take(&mut queue).into();
        for part in order.chunks(INVENTORY_BATCH) {
            let mut m = Enc::new(kind::INVENTORY);
            m.u32(part.len() as u32);
            for (t, id) in part {
                m.u8(type_code(*t)).id(id);
            }
            wire.send(&m).await?;
        }
        let mut m = Enc::new(kind::INVENTORY_END);
        m.u32(order.len() as u32);
        wire.send(&m).await?;
        wire.flush().await?;
        let need = wire.expect(kind::NEED).await?;
        let mut d = Dec::new(&need);
        let bits = d.bytes()?;
        if bits.len() != order.len().div_ceil(8) {
            return Err(SyncError::protocol(
                "the bitmap of needed objects has the wrong size",
            ));
        }
        for (i, x) in order.into_iter().enumerate() {
            if bits[i / 8] & (1 << (i % 8)) != 0 {
                queue.push_back(x);
            } else {
                sent.held.insert(x.1);
            }
        }
    }
    let candidates = lister.count;
    // The count is exact when the listing is complete; otherwise PACK_COUNT follows later.
    let exact = lister.done();
    let mut total = if inventory {
        queue.len() as u64
    } else {
        lister.count
    };
    let mut m = Enc::new(kind::PACK_START);
    m.varint(total).u8(if exact { 0 } else { pack_start::MORE });
    wire.send(&m).await?;
    let mut count_sent = exact;
    // Small transfers compress harder: a few milliseconds more for a few percent fewer bytes.
    // Large ones stay at level 3, where zstd keeps up with the network and the store.
    let small = exact && queue.len() <= SMALL_TRANSFER;
    let level = if small { 9 } else { 3 };
    let mut packer = Packer::new(level)?;
    let mut stats = TransferStats::default();
    let (mut encoding, mut sending) = (Duration::ZERO, Duration::ZERO);
    loop {
        // Read and encode a group without holding a read transaction across network waits.
        let t = Instant::now();
        let (msgs, finished) = blocking(|| -> Result<(Vec<Enc>, bool)> {
            let view = repo.view()?;
            let mut msgs = Vec::new();
            let mut size = 0usize;
            let mut next = Vec::new();
            while size < SEND_GROUP_BYTES {
                next.clear();
                next_objects(&view, &mut plan, &mut lister, &mut queue, &sent, &mut next)?;
                if next.is_empty() {
                    break;
                }
                for (ty, id) in &next {
                    let e = encode_entry(&view, *ty, id, &plan, &sent)?;
                    sent.at.insert(*id, sent.next);
                    sent.next += 1;
                    size += e.bytes.len();
                    if e.delta {
                        stats.deltas += 1;
                    }
                    if *ty == ObjType::Commit {
                        stats.commits += 1;
                    }
                    stats.objects += 1;
                    packer.add(e, &mut msgs)?;
                }
            }
            let finished = queue.is_empty() && lister.done();
            if finished {
                packer.cut(&mut msgs)?;
            }
            Ok((msgs, finished))
        })?;
        encoding += t.elapsed();
        let t = Instant::now();
        for m in &msgs {
            stats.object_bytes += m.0.len() as u64 + 4;
            wire.send(m).await?;
        }
        if !count_sent && lister.done() {
            total = lister.count;
            let mut m = Enc::new(kind::PACK_COUNT);
            m.varint(total);
            wire.send(&m).await?;
            count_sent = true;
        }
        sending += t.elapsed();
        if let Some(p) = progress {
            p(&Progress {
                phase: Phase::Transferring,
                objects: stats.objects,
                objects_total: if count_sent { total } else { 0 },
                bytes: wire.bytes_out,
            });
        }
        if finished {
            break;
        }
    }
    stats.candidates = candidates.max(lister.count);
    wire.send(&Enc::new(kind::END)).await?;
    wire.flush().await?;
    tracing::debug!(
        objects = stats.objects,
        bytes = stats.object_bytes,
        ?encoding,
        ?sending,
        "sent in {:?}",
        t0.elapsed()
    );
    Ok(stats)
}

/// An entry parsed from a PACK message, not yet stored.
#[derive(Debug)]
struct Parsed {
    ty: ObjType,
    form: u8,
    raw_len: u64,
    manifest_id: Option<ObjectId>,
    base: Option<BaseRef>,
    data: Vec<u8>,
}

fn parse_entries(buf: &[u8], out: &mut Vec<Parsed>) -> Result<usize> {
    let mut d = Dec::new(buf);
    let mut bytes = 0usize;
    while !d.is_empty() {
        let ty = type_of(d.u8()?)?;
        let f = d.u8()?;
        if f > form::FDELTA {
            return Err(SyncError::protocol(format!("unknown object form {f}")));
        }
        let raw_len = d.varint()?;
        if raw_len > MAX_FRAME as u64 {
            return Err(SyncError::protocol(format!(
                "an object claims {raw_len} bytes, over the limit"
            )));
        }
        let manifest_id = if ty == ObjType::Manifest && f == form::RAW {
            Some(d.id()?)
        } else {
            None
        };
        let base = if f == form::DELTA || f == form::FDELTA {
            match d.varint()? {
                0 => Some(BaseRef::Held(d.id()?)),
                n => Some(BaseRef::Back(n)),
            }
        } else {
            None
        };
        let n = usize::try_from(d.varint()?)
            .map_err(|_| SyncError::protocol("object length overflow"))?;
        let data = d.raw(n)?.to_vec();
        if (f == form::RAW || f == form::PLAIN) && data.len() as u64 != raw_len {
            return Err(SyncError::protocol("an object's length does not match"));
        }
        bytes += data.len();
        out.push(Parsed {
            ty,
            form: f,
            raw_len,
            manifest_id,
            base,
            data,
        });
    }
    Ok(bytes)
}

/// The receiver's state over one transfer.
struct Rx {
    dec: zstd::stream::raw::Decoder<'static>,
    /// What the checks look objects up in besides this transfer (refreshed after each store).
    view: Option<View>,
    /// Checked and encoded, not yet stored.
    pending: Vec<Prepared>,
    pending_bytes: usize,
    /// Every object received, by stream position.
    ids: Vec<ObjectId>,
    /// Every object received, with whether something received after it links to it (set
    /// while its linker's links are checked, so no second lookup is needed).
    arrived: IdMap<(ObjType, Cell<bool>)>,
    /// Delta chains of objects kept as deltas (see `hero_store::Received::chain`).
    chains: IdMap<(ObjectId, u32)>,
    /// Objects of this transfer kept whole.
    whole_here: IdSet,
    window: IdMap<Arc<[u8]>>,
    window_order: VecDeque<ObjectId>,
    window_bytes: usize,
    wants: IdSet,
    /// With an inventory: the ids that will arrive, in order.
    expected: Option<Vec<ObjectId>>,
    started: bool,
    stats: TransferStats,
}

impl Rx {
    fn new(wants: &[ObjectId], expected: Option<Vec<ObjectId>>) -> Result<Self> {
        let mut dec = zstd::stream::raw::Decoder::new().map_err(SyncError::Io)?;
        dec.set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(MAX_WINDOW_LOG))
            .map_err(SyncError::Io)?;
        Ok(Rx {
            dec,
            view: None,
            pending: Vec::new(),
            pending_bytes: 0,
            ids: Vec::new(),
            arrived: IdMap::default(),
            chains: IdMap::default(),
            whole_here: IdSet::default(),
            window: IdMap::default(),
            window_order: VecDeque::new(),
            window_bytes: 0,
            wants: wants.iter().copied().collect(),
            expected,
            started: false,
            stats: TransferStats::default(),
        })
    }

    /// Takes a PACK message apart and checks its objects as they arrive (the sender is still
    /// sending meanwhile); they are written by [`Rx::store`].
    fn unpack(&mut self, repo: &Repo, body: &[u8]) -> Result<()> {
        let (&flag, data) = body
            .split_first()
            .ok_or_else(|| SyncError::protocol("empty pack"))?;
        let mut parsed = Vec::new();
        match flag {
            0 => parse_entries(data, &mut parsed)?,
            1 => {
                let decoded = self.inflate(data)?;
                parse_entries(&decoded, &mut parsed)?
            }
            other => return Err(SyncError::protocol(format!("unknown pack flag {other}"))),
        };
        for p in &parsed {
            self.prepare_one(repo, p)?;
        }
        Ok(())
    }

    /// Decodes the next part of the compressed stream, refusing more than
    /// [`MAX_PACK_DECODED`] bytes.
    fn inflate(&mut self, mut input: &[u8]) -> Result<Vec<u8>> {
        use zstd::stream::raw::Operation;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let start = out.len();
            let room = (256usize << 10).min(MAX_PACK_DECODED + 1 - start);
            if room == 0 {
                return Err(SyncError::protocol("a pack decodes to more than the limit"));
            }
            out.resize(start + room, 0);
            let st = self
                .dec
                .run_on_buffers(input, &mut out[start..])
                .map_err(|e| SyncError::protocol(format!("a pack does not decode: {e}")))?;
            out.truncate(start + st.bytes_written);
            input = &input[st.bytes_read..];
            if input.is_empty() && st.bytes_written < room {
                return Ok(out);
            }
        }
    }

    fn remember(&mut self, id: ObjectId, raw: Arc<[u8]>) {
        if raw.len() > WINDOW_BYTES / 8 || self.window.contains_key(&id) {
            return;
        }
        self.window_bytes += raw.len();
        self.window.insert(id, raw);
        self.window_order.push_back(id);
        while self.window_bytes > WINDOW_BYTES {
            let Some(old) = self.window_order.pop_front() else {
                break;
            };
            if let Some(r) = self.window.remove(&old) {
                self.window_bytes -= r.len();
            }
        }
    }

    /// Opens the read view the checks use, unless one is open.
    fn ensure_view(&mut self, repo: &Repo) -> Result<()> {
        if self.view.is_none() {
            self.view = Some(repo.view()?);
        }
        Ok(())
    }

    /// The raw bytes of a delta base: recently received, stored, or (received but neither
    /// remembered nor stored yet) stored now to be read back.
    fn base_raw(&mut self, repo: &Repo, base: &ObjectId) -> Result<Arc<[u8]>> {
        if let Some(r) = self.window.get(base) {
            return Ok(r.clone());
        }
        if self.arrived.contains_key(base) && self.pending.iter().any(|p| p.id == *base) {
            self.store(repo, false)?;
        }
        self.ensure_view(repo)?;
        let found = match &self.view {
            Some(v) => v.raw_object(base)?,
            None => None,
        };
        match found {
            Some((_, r)) => Ok(r.into()),
            None => Err(SyncError::protocol(format!(
                "a delta is against {}, which is not here",
                base.short()
            ))),
        }
    }

    /// Checks and encodes one entry; its record waits in `pending`.
    fn prepare_one(&mut self, repo: &Repo, p: &Parsed) -> Result<()> {
        let index = self.ids.len() as u64;
        let base = match p.base {
            None => None,
            Some(BaseRef::Held(id)) => Some(id),
            Some(BaseRef::Back(n)) => match index.checked_sub(n) {
                Some(at) => self.ids.get(at as usize).copied(),
                None => {
                    return Err(SyncError::protocol(
                        "a delta names a base before the start of the transfer",
                    ));
                }
            },
        };
        let base_raw = match base {
            Some(b) => Some(self.base_raw(repo, &b)?),
            None => None,
        };
        let forward: Option<Vec<u8>> = match (p.form, &base_raw) {
            (form::FDELTA, Some(br)) => {
                Some(apply_delta_frame(&p.data, p.raw_len, br).map_err(refused)?)
            }
            _ => None,
        };
        let incoming = match (p.form, base, &base_raw, &forward) {
            (form::RAW, _, _, _) => Incoming::Raw {
                raw: &p.data,
                plain: false,
                previous: None,
            },
            (form::PLAIN, _, _, _) => Incoming::Raw {
                raw: &p.data,
                plain: true,
                previous: None,
            },
            (form::ZSTD, _, _, _) => Incoming::Zstd {
                frame: &p.data,
                raw_len: p.raw_len,
            },
            (form::DELTA, Some(bid), Some(br), _) => Incoming::Delta {
                base: bid,
                base_raw: br,
                frame: &p.data,
                raw_len: p.raw_len,
                chain: self.chains.get(&bid).copied(),
                base_whole: self.whole_here.contains(&bid),
            },
            (form::FDELTA, Some(bid), _, Some(raw)) => Incoming::Raw {
                raw,
                plain: false,
                previous: Some(bid),
            },
            _ => return Err(SyncError::protocol("a malformed pack entry")),
        };
        self.ensure_view(repo)?;
        let Some(view) = &self.view else {
            return Err(SyncError::protocol("no view of the repository"));
        };
        let arrived = &self.arrived;
        let mut r = view
            .prepare_received(p.ty, p.manifest_id, incoming, &|x| {
                arrived.get(x).map(|(t, linked)| {
                    linked.set(true);
                    *t
                })
            })
            .map_err(refused)?;
        if let Some(exp) = &self.expected
            && exp.get(index as usize) != Some(&r.id)
        {
            return Err(SyncError::protocol(format!(
                "object {} refused: its content does not match its id (expected {})",
                r.id.short(),
                exp.get(index as usize)
                    .map(|e| e.short())
                    .unwrap_or_else(|| "nothing more".to_owned())
            )));
        }
        // The links are not kept with what is pending (a tree's are most of its size).
        r.links = Vec::new();
        // An object this side already has is never a stray: it was stored with everything it
        // links to, and nothing of it is stored again.
        self.arrived.insert(r.id, (p.ty, Cell::new(r.present)));
        self.ids.push(r.id);
        match r.chain {
            Some(c) => {
                self.chains.insert(r.id, c);
            }
            None if !r.present => {
                self.whole_here.insert(r.id);
            }
            None => {}
        }
        let raw: Arc<[u8]> = match (r.decoded.take(), forward) {
            (Some(d), _) => d.into(),
            (None, Some(f)) => f.into(),
            (None, None) => p.data.as_slice().into(),
        };
        self.remember(r.id, raw);
        if !r.present && p.ty == ObjType::Commit {
            self.stats.commits += 1;
        }
        if matches!(p.form, form::DELTA | form::FDELTA) {
            self.stats.deltas += 1;
        }
        self.pending_bytes += p.data.len();
        self.pending.push(r);
        Ok(())
    }

    /// Writes what is pending in one transaction, sorted by id. The last call also checks that
    /// everything received is reachable from what was asked for; if not, that transaction is
    /// dropped.
    fn store(&mut self, repo: &Repo, last: bool) -> Result<()> {
        // Nothing to store and nothing to clear: no transaction (a pull with nothing new must
        // not bump the repository's generation). A resumed transfer clears the mark even when
        // nothing was left to send.
        if self.pending.is_empty() && (!last || (!self.started && self.expected.is_none())) {
            return Ok(());
        }
        let mut pending = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        // In key order, B-tree leaves fill up (ids are random: in arrival order they end up
        // about two thirds full, and the file correspondingly larger). A peer sending one object
        // twice gets it stored once.
        pending.sort_unstable_by_key(|p| p.id);
        pending.dedup_by_key(|p| p.id);
        // No read transaction of ours may stay open while writing: redb cannot reuse the pages
        // a write frees while an older reader might see them (the file grew several-fold).
        self.view = None;
        let result = repo.batch(|b| -> hero_store::Result<u64> {
            if !self.started && !pending.is_empty() {
                b.set_setting(INCOMPLETE, Some(b"1"))?;
                self.started = true;
            }
            let new = b.put_prepared_sorted(pending)?;
            if last {
                let stray: Vec<ObjectId> = self
                    .arrived
                    .iter()
                    .filter(|(id, (_, linked))| !linked.get() && !self.wants.contains(*id))
                    .map(|(id, _)| *id)
                    .collect();
                if let Some(first) = stray.first() {
                    // Dropping this transaction keeps none of its objects.
                    return Err(hero_store::Error::Refused {
                        id: *first,
                        reason: format!(
                            "{} object(s) were sent that nothing asked for: their content \
                             does not match the id of anything wanted",
                            stray.len()
                        ),
                    });
                }
                b.set_setting(INCOMPLETE, None)?;
            }
            Ok(new)
        });
        let new = result.map_err(refused)?;
        self.stats.objects += new;
        self.stats.transactions += 1;
        Ok(())
    }
}

/// A store error about what the peer sent, as a protocol error (the peer is cut off).
fn refused(e: hero_store::Error) -> SyncError {
    match e {
        hero_store::Error::Refused { id, reason } => {
            SyncError::protocol(format!("object {} refused: {reason}", id.short()))
        }
        hero_store::Error::Undecodable(reason) => SyncError::protocol(reason),
        other => SyncError::Store(other),
    }
}

/// The receiver's side: sends WANTS, stores what arrives.
pub(crate) async fn receive_objects<R, W>(
    wire: &mut Wire<R, W>,
    repo: &Repo,
    ask: &Ask,
    progress: Option<&ProgressFn>,
) -> Result<TransferStats>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let t0 = Instant::now();
    let wants = ask.wants.as_slice();
    let resume = blocking(|| repo.setting(INCOMPLETE))?.is_some();
    let mut m = Enc::new(kind::WANTS);
    m.ids(wants)
        .ids(&ask.haves)
        .u8(if resume { wants_flag::INVENTORY } else { 0 })
        .bytes(&ask.common);
    wire.send(&m).await?;
    wire.flush().await?;
    if let Some(p) = progress {
        p(&Progress {
            phase: Phase::Negotiating,
            objects: 0,
            objects_total: 0,
            bytes: wire.bytes_in,
        });
    }
    let mut candidates = 0u64;
    let expected = if resume {
        let (n, expected) = receive_inventory(wire, repo).await?;
        candidates = n;
        Some(expected)
    } else {
        None
    };
    let start = wire.expect(kind::PACK_START).await?;
    let mut d = Dec::new(&start);
    let announced = d.varint()?;
    let more = if d.is_empty() {
        false
    } else {
        d.u8()? & pack_start::MORE != 0
    };
    if announced > MAX_INVENTORY as u64 {
        return Err(SyncError::protocol("too many objects announced"));
    }
    // The whole count: known now, or from the PACK_COUNT a sender still listing sends later.
    let mut total = (!more).then_some(announced);
    let mut rx = Rx::new(wants, expected)?;
    rx.stats.candidates = candidates.max(announced);
    // Room for what was announced, within reason (the count is the peer's word).
    let room = (announced as usize).min(RESERVE_MAX);
    rx.pending.reserve(room);
    rx.arrived.reserve(room);
    let report = |rx: &Rx, total: Option<u64>, bytes: u64| {
        if let Some(p) = progress {
            p(&Progress {
                phase: Phase::Transferring,
                objects: rx.ids.len() as u64,
                objects_total: total.unwrap_or(0),
                bytes,
            });
        }
    };
    // Where the receiver's time goes: waiting for the network, or checking what arrived.
    let (mut waited, mut checking) = (Duration::ZERO, Duration::ZERO);
    loop {
        let t = Instant::now();
        let (k, body) = wire.recv().await?;
        waited += t.elapsed();
        match k {
            kind::PACK => {
                rx.stats.object_bytes += body.len() as u64 + 5;
                let t = Instant::now();
                blocking(|| rx.unpack(repo, &body))?;
                checking += t.elapsed();
                if rx.ids.len() as u64 > total.unwrap_or(MAX_INVENTORY as u64) {
                    return Err(SyncError::protocol("more objects than announced"));
                }
                if rx.pending_bytes >= STORE_BATCH_BYTES {
                    blocking(|| rx.store(repo, false))?;
                }
                report(&rx, total, wire.bytes_in);
            }
            kind::PACK_COUNT if total.is_none() => {
                let n = Dec::new(&body).varint()?;
                if n < announced.max(rx.ids.len() as u64) || n > MAX_INVENTORY as u64 {
                    return Err(SyncError::protocol(format!(
                        "a count of {n} objects does not fit what was announced"
                    )));
                }
                total = Some(n);
                rx.stats.candidates = rx.stats.candidates.max(n);
            }
            kind::END => break,
            other => {
                return Err(SyncError::protocol(format!(
                    "expected objects, got message {other}"
                )));
            }
        }
    }
    let Some(total) = total else {
        return Err(SyncError::protocol(
            "the transfer ended without saying how many objects it held",
        ));
    };
    if rx.ids.len() as u64 != total {
        return Err(SyncError::protocol(format!(
            "the transfer ended after {} of {total} objects",
            rx.ids.len()
        )));
    }
    let t = Instant::now();
    blocking(|| rx.store(repo, true))?;
    report(&rx, Some(total), wire.bytes_in);
    tracing::debug!(
        objects = rx.ids.len(),
        ?waited,
        ?checking,
        storing = ?t.elapsed(),
        "received in {:?}",
        t0.elapsed()
    );
    Ok(rx.stats)
}

/// Reads the sender's inventory and answers which objects are missing; returns the number
/// of candidates and the ids that will arrive, in order.
async fn receive_inventory<R, W>(wire: &mut Wire<R, W>, repo: &Repo) -> Result<(u64, Vec<ObjectId>)>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let mut inventory: Vec<ObjectId> = Vec::new();
    loop {
        let (k, body) = wire.recv().await?;
        let mut d = Dec::new(&body);
        match k {
            kind::INVENTORY => {
                let n = d.u32()? as usize;
                if n > INVENTORY_BATCH || inventory.len() + n > MAX_INVENTORY {
                    return Err(SyncError::protocol("inventory too large"));
                }
                for _ in 0..n {
                    type_of(d.u8()?)?;
                    inventory.push(d.id()?);
                }
            }
            kind::INVENTORY_END => {
                if d.u32()? as usize != inventory.len() {
                    return Err(SyncError::protocol("inventory count does not match"));
                }
                break;
            }
            other => {
                return Err(SyncError::protocol(format!(
                    "expected the inventory, got message {other}"
                )));
            }
        }
    }
    // The bitmap of what is missing: an object present means its closure is present.
    let (bits, expected) = blocking(|| -> Result<(Vec<u8>, Vec<ObjectId>)> {
        let view = repo.view()?;
        let mut bits = vec![0u8; inventory.len().div_ceil(8)];
        let mut expected = Vec::new();
        for (i, id) in inventory.iter().enumerate() {
            if view.object_type(id)?.is_none() {
                bits[i / 8] |= 1 << (i % 8);
                expected.push(*id);
            }
        }
        Ok((bits, expected))
    })?;
    let mut m = Enc::new(kind::NEED);
    m.bytes(&bits);
    wire.send(&m).await?;
    wire.flush().await?;
    Ok((inventory.len() as u64, expected))
}

#[cfg(test)]
mod analyze {
    //! Where a clone's bytes go: `HERO_ANALYZE_REPO=path cargo test --release -p hero-sync
    //! --lib analyze -- --ignored --nocapture`.
    use super::*;
    use std::collections::BTreeMap;

    fn zlen(data: &[u8], level: i32, wlog: u32) -> usize {
        zlen_ldm(data, level, wlog, false)
    }

    fn zlen_ldm(data: &[u8], level: i32, wlog: u32, ldm: bool) -> usize {
        let mut raw = zstd::stream::raw::Encoder::new(level).expect("encoder");
        raw.set_parameter(zstd::zstd_safe::CParameter::WindowLog(wlog))
            .expect("window");
        raw.set_parameter(zstd::zstd_safe::CParameter::EnableLongDistanceMatching(ldm))
            .expect("ldm");
        let mut z = zstd::stream::write::Encoder::with_encoder(Vec::new(), raw);
        z.write_all(data).expect("write");
        z.finish().expect("finish").len()
    }

    #[test]
    #[ignore]
    fn clone_bytes() {
        let path = std::env::var("HERO_ANALYZE_REPO").expect(
            "HERO_ANALYZE_REPO names the repository to analyse (a diagnostic, run by hand)",
        );
        let repo = Repo::open(&path).expect("open");
        let view = repo.view().expect("view");
        let mut wants: Vec<ObjectId> = view.branches().expect("b").iter().map(|b| b.1).collect();
        wants.extend(view.tags().expect("t").iter().map(|t| t.1.id()));
        let t = Instant::now();
        let (mut plan, mut lister) = plan(&view, &wants, &[], &[]).expect("plan");
        let mut queue = VecDeque::new();
        lister
            .fill(&view, &mut plan, &mut queue, SMALL_TRANSFER + 1)
            .expect("fill");
        let mut sent = Sent::default();
        let level = std::env::var("HERO_ANALYZE_LEVEL")
            .ok()
            .and_then(|l| l.parse().ok())
            .unwrap_or(3);
        let mut packer = Packer::new(level).expect("packer");
        let mut msgs = Vec::new();
        // (type, form) -> (count, entry bytes, stream of entries)
        let mut cat: BTreeMap<(&str, u8), (u64, u64, Vec<u8>)> = BTreeMap::new();
        let mut bulk = 0u64;
        let mut whole = Vec::new();
        let mut next = Vec::new();
        loop {
            next.clear();
            next_objects(&view, &mut plan, &mut lister, &mut queue, &sent, &mut next)
                .expect("next");
            if next.is_empty() {
                break;
            }
            for &(ty, id) in &next {
                let e = encode_entry(&view, ty, &id, &plan, &sent).expect("encode");
                sent.at.insert(id, sent.next);
                sent.next += 1;
                if e.bytes[1] == form::ZSTD && ty == ObjType::Blob {
                    let (_, raw) = view.raw_object(&id).expect("raw").expect("present");
                    whole.extend_from_slice(&raw);
                }
                let c = cat.entry((ty.as_str(), e.bytes[1])).or_default();
                c.0 += 1;
                c.1 += e.bytes.len() as u64;
                if e.bulk {
                    bulk += e.bytes.len() as u64;
                } else {
                    c.2.extend_from_slice(&e.bytes);
                }
                packer.add(e, &mut msgs).expect("add");
            }
        }
        packer.cut(&mut msgs).expect("cut");
        let total: usize = msgs.iter().map(|m| m.0.len() + 4).sum();
        println!(
            "objects {} pack {} bytes (level {level}) in {:?}; bulk entries {bulk}",
            sent.next,
            total,
            t.elapsed()
        );
        println!("type      form  count  entry-bytes  alone-z3");
        for ((ty, f), (n, b, st)) in &cat {
            println!("{ty:9} {f:4} {n:6} {b:12} {:9}", zlen(st, 3, 23));
        }
        println!("whole blobs raw {}", whole.len());
        for (l, w, ldm) in [
            (3, 23, false),
            (3, 27, true),
            (5, 27, true),
            (9, 27, true),
            (3, 25, true),
            (19, 27, true),
        ] {
            let t = Instant::now();
            let n = zlen_ldm(&whole, l, w, ldm);
            println!("  level {l} window {w} ldm {ldm}: {n} in {:?}", t.elapsed());
        }
    }
}
