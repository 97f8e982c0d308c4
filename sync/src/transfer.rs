//! The two roles of an object transfer, independent of the network: the sender finds what the
//! receiver lacks and streams it children first; the receiver checks every object against its
//! id and stores them in small transactions, so an interrupted transfer keeps what arrived.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use hero_store::{EntryKind, ObjType, ObjectId, Repo, SMALL_FILE_MAX, View, object_links};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::{Result, SyncError};
use crate::wire::{Dec, Enc, INVENTORY_BATCH, MAX_FRAME, Wire, enc, kind, type_code, type_of};

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
/// A receiver stores what arrived once this many bytes are pending.
pub const STORE_BATCH_BYTES: usize = 4 << 20;
/// Longest chain of tags pointing at tags that is followed.
const MAX_TAG_CHAIN: usize = 16;
/// Have-commits whose trees are used to prune what is listed.
const PRUNE_COMMITS: usize = 4;

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

/// The commits a receiver says it has: its heads, then ancestors at exponentially growing
/// distances along first parents, so a long divergent history still meets a common commit
/// within one round trip.
pub fn haves_of(repo: &Repo) -> Result<Vec<ObjectId>> {
    let view = repo.view()?;
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let branches = view.branches()?;
    for (_, head) in &branches {
        if seen.insert(*head) {
            out.push(*head);
        }
    }
    let per_head = (MAX_HAVES / branches.len().max(1)).clamp(8, 64);
    for (_, head) in &branches {
        let mut step = 1usize;
        let mut next = 1usize;
        let mut taken = 0;
        for (i, item) in view.log(&[*head], true)?.enumerate().take(HAVES_WALK) {
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

/// Objects with their types, in transfer order.
type Typed = Vec<(ObjType, ObjectId)>;

/// What the sender will list, oldest commits first, each object after everything it links to.
#[derive(Debug, Default)]
struct Plan {
    order: Vec<(ObjType, ObjectId)>,
    /// Delta bases (objects the receiver has) by object.
    bases: HashMap<ObjectId, ObjectId>,
}

fn plan(view: &View, wants: &[ObjectId], haves: &[ObjectId]) -> Result<Plan> {
    if wants.is_empty() {
        return Ok(Plan::default());
    }
    let mut have_commits = Vec::new();
    for h in haves {
        if view.object_type(h)? == Some(ObjType::Commit) {
            have_commits.push(*h);
        }
    }
    // Commits to send, parents before children; annotated tags after what they tag.
    let mut stack: Vec<(ObjectId, bool)> = Vec::new();
    let mut tags: Vec<ObjectId> = Vec::new();
    let mut tagged: Vec<(ObjType, ObjectId)> = Vec::new();
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
                    tagged.push((t, cur));
                }
                Some(ObjType::ManifestNode) | None => {}
            }
            break;
        }
        tags.extend(chain.into_iter().rev());
    }
    // Most pulls are a few commits ahead of a have: walk down from the wants and stop at the
    // haves. Only when that runs long (the histories diverged below the sampled haves) walk
    // the receiver's ancestors too, boundedly; whatever it still lists that the receiver has
    // costs inventory entries, never objects (the NEED bitmap filters them).
    let mut excluded: HashSet<ObjectId> = have_commits.iter().copied().collect();
    let commits = match commits_between(view, stack.clone(), &excluded, Some(SHORT_WALK))? {
        Some(c) => c,
        None => {
            let mut todo: std::collections::VecDeque<ObjectId> =
                have_commits.iter().copied().collect();
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
    // Objects reachable from a few have-commits are not listed at all.
    let mut known: HashSet<ObjectId> = HashSet::new();
    for c in have_commits.iter().take(PRUNE_COMMITS) {
        let root = view.commit(c)?.tree;
        let mut trees = vec![root];
        while let Some(t) = trees.pop() {
            if !known.insert(t) {
                continue;
            }
            for e in view.tree(&t)?.entries {
                match e.kind {
                    EntryKind::Dir => trees.push(e.id),
                    EntryKind::Gitlink => {}
                    _ => {
                        known.insert(e.id);
                    }
                }
            }
        }
    }
    let base_root = match have_commits.first() {
        Some(c) => Some(view.commit(c)?.tree),
        None => None,
    };
    let mut p = Plan::default();
    let mut listed: HashSet<ObjectId> = HashSet::new();
    for c in commits {
        let commit = view.commit(&c)?;
        // Deltas against the first parent's version of each path: the parent is either sent
        // before this commit or held by the receiver already. Without a parent, against a
        // commit the receiver has.
        let base = match commit.parents.first() {
            Some(parent) => Some(view.commit(parent)?.tree),
            None => base_root,
        };
        walk(
            view,
            ObjType::Tree,
            commit.tree,
            base,
            &known,
            &mut listed,
            &mut p,
        )?;
        p.order.push((ObjType::Commit, c));
    }
    for (t, id) in tagged {
        walk(view, t, id, None, &known, &mut listed, &mut p)?;
    }
    for t in tags {
        if listed.insert(t) {
            p.order.push((ObjType::Tag, t));
        }
    }
    Ok(p)
}

/// Commits reachable from `stack` and not from `excluded`, parents before children; `None`
/// when more than `limit` commits were visited.
fn commits_between(
    view: &View,
    mut stack: Vec<(ObjectId, bool)>,
    excluded: &HashSet<ObjectId>,
    limit: Option<usize>,
) -> Result<Option<Vec<ObjectId>>> {
    let mut commits = Vec::new();
    let mut seen = HashSet::new();
    while let Some((c, expanded)) = stack.pop() {
        if expanded {
            commits.push(c);
            continue;
        }
        if excluded.contains(&c) || !seen.insert(c) {
            continue;
        }
        if limit.is_some_and(|l| seen.len() > l) {
            return Ok(None);
        }
        stack.push((c, true));
        for p in view.commit(&c)?.parents.iter().rev() {
            if !excluded.contains(p) && !seen.contains(p) {
                stack.push((*p, false));
            }
        }
    }
    Ok(Some(commits))
}

fn walk(
    view: &View,
    ty: ObjType,
    id: ObjectId,
    base: Option<ObjectId>,
    known: &HashSet<ObjectId>,
    listed: &mut HashSet<ObjectId>,
    p: &mut Plan,
) -> Result<()> {
    if known.contains(&id) || !listed.insert(id) {
        return Ok(());
    }
    match ty {
        ObjType::Tree => {
            if let Some(b) = base
                && b != id
            {
                p.bases.insert(id, b);
            }
            let base_tree = match base {
                Some(b) if view.object_type(&b)? == Some(ObjType::Tree) => Some(view.tree(&b)?),
                _ => None,
            };
            for e in view.tree(&id)?.entries {
                let old = base_tree
                    .as_ref()
                    .and_then(|t| t.entries.iter().find(|o| o.name == e.name));
                let small = |size: u64| size <= SMALL_FILE_MAX as u64;
                let (child_ty, child_base) = match e.kind {
                    EntryKind::Gitlink => continue,
                    EntryKind::Dir => (
                        ObjType::Tree,
                        old.filter(|o| o.kind == EntryKind::Dir).map(|o| o.id),
                    ),
                    EntryKind::File | EntryKind::Executable | EntryKind::Symlink => {
                        if small(e.size) {
                            let b = old
                                .filter(|o| {
                                    matches!(o.kind, EntryKind::File | EntryKind::Executable)
                                        && small(o.size)
                                        && o.id != e.id
                                })
                                .map(|o| o.id);
                            (ObjType::Blob, b)
                        } else {
                            (ObjType::Manifest, None)
                        }
                    }
                };
                walk(view, child_ty, e.id, child_base, known, listed, p)?;
            }
        }
        ObjType::Manifest | ObjType::ManifestNode => {
            let Some((found, raw)) = view.raw_object(&id)? else {
                return Err(SyncError::Store(hero_store::Error::Missing(id)));
            };
            for (t, l) in object_links(found, &raw)? {
                walk(view, t, l, None, known, listed, p)?;
            }
        }
        ObjType::Blob => {
            if let Some(b) = base {
                p.bases.insert(id, b);
            }
        }
        ObjType::Commit | ObjType::Tag => {}
    }
    p.order.push((ty, id));
    Ok(())
}

/// The sender's side: answers a WANTS message already received.
pub(crate) async fn send_objects<R, W>(
    wire: &mut Wire<R, W>,
    repo: &Repo,
    wants_body: &[u8],
    progress: Option<&ProgressFn>,
) -> Result<TransferStats>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let mut d = Dec::new(wants_body);
    let wants = d.ids()?;
    let haves = d.ids()?;
    if haves.len() > MAX_HAVES * 2 || wants.len() > 1_000_000 {
        return Err(SyncError::protocol("too many wants or haves"));
    }
    let plan = blocking(|| -> Result<Plan> { plan(&repo.view()?, &wants, &haves) })?;
    let mut stats = TransferStats {
        candidates: plan.order.len() as u64,
        ..TransferStats::default()
    };
    for part in plan.order.chunks(INVENTORY_BATCH) {
        let mut m = Enc::new(kind::INVENTORY);
        m.u32(part.len() as u32);
        for (t, id) in part {
            m.u8(type_code(*t)).id(id);
        }
        wire.send(&m).await?;
    }
    let mut m = Enc::new(kind::INVENTORY_END);
    m.u32(plan.order.len() as u32);
    wire.send(&m).await?;
    wire.flush().await?;
    let need = wire.expect(kind::NEED).await?;
    let mut d = Dec::new(&need);
    let bits = d.bytes()?;
    if bits.len() != plan.order.len().div_ceil(8) {
        return Err(SyncError::protocol(
            "the bitmap of needed objects has the wrong size",
        ));
    }
    let needed: Vec<(ObjType, ObjectId)> = plan
        .order
        .iter()
        .enumerate()
        .filter(|(i, _)| bits[i / 8] & (1 << (i % 8)) != 0)
        .map(|(_, x)| *x)
        .collect();
    let total = needed.len() as u64;
    let mut i = 0;
    while i < needed.len() {
        // Read and encode a group without holding a read transaction across network waits.
        let (frames, next) = blocking(|| -> Result<(Vec<Enc>, usize)> {
            let view = repo.view()?;
            let mut frames = Vec::new();
            let mut size = 0usize;
            let mut j = i;
            while j < needed.len() && size < STORE_BATCH_BYTES {
                let (_, id) = needed[j];
                let Some((found, raw)) = view.raw_object(&id)? else {
                    return Err(SyncError::Store(hero_store::Error::Missing(id)));
                };
                let base = plan.bases.get(&id).copied();
                let f = encode_object(&view, found, &id, &raw, base)?;
                size += f.0.len();
                frames.push(f);
                j += 1;
            }
            Ok((frames, j))
        })?;
        for f in &frames {
            if f.0.get(34) == Some(&enc::DELTA) {
                stats.deltas += 1;
            }
            stats.object_bytes += f.0.len() as u64;
            wire.send(f).await?;
            stats.objects += 1;
        }
        stats.commits += needed[i..next]
            .iter()
            .filter(|(t, _)| *t == ObjType::Commit)
            .count() as u64;
        i = next;
        if let Some(p) = progress {
            p(&Progress {
                phase: Phase::Transferring,
                objects: stats.objects,
                objects_total: total,
                bytes: wire.bytes_out,
            });
        }
    }
    wire.send(&Enc::new(kind::END)).await?;
    wire.flush().await?;
    Ok(stats)
}

/// One OBJECT frame: zstd when it helps, a delta against `base` when the receiver has it.
pub(crate) fn encode_object(
    view: &View,
    ty: ObjType,
    id: &ObjectId,
    raw: &[u8],
    base: Option<ObjectId>,
) -> Result<Enc> {
    let mut m = Enc::new(kind::OBJECT);
    m.u8(type_code(ty)).id(id);
    let raw_len = u32::try_from(raw.len()).map_err(|_| SyncError::protocol("object too large"))?;
    if let Some(b) = base
        && let Some((_, base_raw)) = view.raw_object(&b)?
        && let Ok(mut c) = zstd::bulk::Compressor::with_dictionary(3, &base_raw)
        && let Ok(z) = c.compress(raw)
        && z.len() + 32 < raw.len()
    {
        m.u8(enc::DELTA).id(&b).u32(raw_len);
        m.0.extend_from_slice(&z);
        return Ok(m);
    }
    match zstd::bulk::compress(raw, 1) {
        Ok(z) if z.len() < raw.len() => {
            m.u8(enc::ZSTD).u32(raw_len);
            m.0.extend_from_slice(&z);
        }
        _ => {
            m.u8(enc::RAW).u32(raw_len);
            m.0.extend_from_slice(raw);
        }
    }
    Ok(m)
}

/// The receiver's side: sends WANTS, answers the inventory, stores what arrives.
pub(crate) async fn receive_objects<R, W>(
    wire: &mut Wire<R, W>,
    repo: &Repo,
    wants: &[ObjectId],
    haves: &[ObjectId],
    progress: Option<&ProgressFn>,
) -> Result<TransferStats>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let mut m = Enc::new(kind::WANTS);
    m.ids(wants).ids(haves);
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
    let mut inventory: Vec<(ObjType, ObjectId)> = Vec::new();
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
                    let t = type_of(d.u8()?)?;
                    inventory.push((t, d.id()?));
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
    let (bits, expected) = blocking(|| -> Result<(Vec<u8>, Typed)> {
        let view = repo.view()?;
        let mut bits = vec![0u8; inventory.len().div_ceil(8)];
        let mut expected = Vec::new();
        for (i, (t, id)) in inventory.iter().enumerate() {
            if view.object_type(id)?.is_none() {
                bits[i / 8] |= 1 << (i % 8);
                expected.push((*t, *id));
            }
        }
        Ok((bits, expected))
    })?;
    let mut m = Enc::new(kind::NEED);
    m.bytes(&bits);
    wire.send(&m).await?;
    wire.flush().await?;
    let mut stats = TransferStats {
        candidates: inventory.len() as u64,
        ..TransferStats::default()
    };
    drop(inventory);
    let total = expected.len() as u64;
    let mut pending: Vec<Incoming> = Vec::new();
    let mut pending_bytes = 0usize;
    let mut next = 0usize;
    loop {
        let (k, body) = wire.recv().await?;
        match k {
            kind::OBJECT => {
                let Some(&(want_ty, want_id)) = expected.get(next) else {
                    return Err(SyncError::protocol("an object that was not asked for"));
                };
                next += 1;
                stats.object_bytes += body.len() as u64 + 5;
                let obj = decode_object(repo, &body, &pending)?;
                if obj.id != want_id || obj.ty != want_ty {
                    return Err(SyncError::protocol(format!(
                        "object {} arrived out of order (expected {})",
                        obj.id.short(),
                        want_id.short()
                    )));
                }
                if obj.delta {
                    stats.deltas += 1;
                }
                pending_bytes += obj.raw.len();
                pending.push(obj);
                if pending_bytes >= STORE_BATCH_BYTES {
                    store(repo, &mut pending, &mut stats)?;
                    pending_bytes = 0;
                    if let Some(p) = progress {
                        p(&Progress {
                            phase: Phase::Transferring,
                            objects: stats.objects,
                            objects_total: total,
                            bytes: wire.bytes_in,
                        });
                    }
                }
            }
            kind::END => break,
            other => {
                return Err(SyncError::protocol(format!(
                    "expected an object, got message {other}"
                )));
            }
        }
    }
    if next != expected.len() {
        return Err(SyncError::protocol(format!(
            "the transfer ended after {next} of {} objects",
            expected.len()
        )));
    }
    store(repo, &mut pending, &mut stats)?;
    if let Some(p) = progress {
        p(&Progress {
            phase: Phase::Transferring,
            objects: stats.objects,
            objects_total: total,
            bytes: wire.bytes_in,
        });
    }
    Ok(stats)
}

/// An object received and decompressed, not yet stored.
#[derive(Debug)]
pub(crate) struct Incoming {
    ty: ObjType,
    id: ObjectId,
    raw: Vec<u8>,
    base: Option<ObjectId>,
    delta: bool,
}

fn decode_object(repo: &Repo, body: &[u8], pending: &[Incoming]) -> Result<Incoming> {
    let mut d = Dec::new(body);
    let ty = type_of(d.u8()?)?;
    let id = d.id()?;
    let e = d.u8()?;
    let base = if e == enc::DELTA { Some(d.id()?) } else { None };
    let raw_len = d.u32()? as usize;
    if raw_len > MAX_FRAME {
        return Err(SyncError::protocol(format!(
            "object {} claims {raw_len} bytes, over the limit",
            id.short()
        )));
    }
    let data = d.rest();
    let raw = match e {
        enc::RAW => data.to_vec(),
        enc::ZSTD => zstd::bulk::decompress(data, raw_len)
            .map_err(|err| SyncError::protocol(format!("object {}: {err}", id.short())))?,
        enc::DELTA => {
            let b = base.unwrap_or_default();
            // Bases are usually the previous version, received just before: look back first.
            let base_raw = match pending.iter().rev().find(|o| o.id == b) {
                Some(o) => o.raw.clone(),
                None => blocking(|| repo.view()?.raw_object(&b))?
                    .map(|(_, r)| r)
                    .ok_or_else(|| {
                        SyncError::protocol(format!(
                            "object {} is a delta against {}, which is not here",
                            id.short(),
                            b.short()
                        ))
                    })?,
            };
            let mut dc = zstd::bulk::Decompressor::with_dictionary(&base_raw)?;
            dc.decompress(data, raw_len)
                .map_err(|err| SyncError::protocol(format!("object {}: {err}", id.short())))?
        }
        other => {
            return Err(SyncError::protocol(format!("unknown encoding {other}")));
        }
    };
    // Checked here too (the store checks again) so a lying peer is cut off at once.
    if ty != ObjType::Manifest && ObjectId::of(&raw) != id {
        return Err(SyncError::protocol(format!(
            "object {} refused: content does not match its id",
            id.short()
        )));
    }
    if raw.len() != raw_len {
        return Err(SyncError::protocol(format!(
            "object {} has {} bytes, {raw_len} announced",
            id.short(),
            raw.len()
        )));
    }
    Ok(Incoming {
        ty,
        id,
        raw,
        base,
        delta: e == enc::DELTA,
    })
}

/// Stores pending objects in one transaction; each is verified against its id first. On a
/// bad object nothing of the batch is kept and the peer is named in the error.
fn store(repo: &Repo, pending: &mut Vec<Incoming>, stats: &mut TransferStats) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let (n, commits) = blocking(|| {
        repo.batch(|b| {
            let mut n = 0u64;
            let mut commits = 0u64;
            for o in pending.iter() {
                b.put_raw(o.ty, &o.id, &o.raw, o.base)?;
                n += 1;
                if o.ty == ObjType::Commit {
                    commits += 1;
                }
            }
            Ok((n, commits))
        })
    })
    .map_err(|e| match e {
        hero_store::Error::Refused { id, reason } => {
            SyncError::protocol(format!("object {} refused: {reason}", id.short()))
        }
        other => SyncError::Store(other),
    })?;
    stats.objects += n;
    stats.commits += commits;
    pending.clear();
    Ok(())
}
