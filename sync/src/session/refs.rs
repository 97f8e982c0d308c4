//! Branch and tag lists as they travel, and the branch and tag moves a session ends with.

use hero_store::{ObjectId, RefValue, Repo};

use super::report::{BranchUpdate, SyncReport, UpdateKind};
use crate::error::{Result, SyncError};
use crate::wire::{Dec, Enc};

/// Most branches a hello may name.
pub(super) const MAX_NAMED: usize = 4096;

/// Moves `branch` to include `theirs`: create, fast-forward, or merge (deterministically), with
/// a compare-and-swap that retries if a writer moved the branch meanwhile. Merges in this
/// process take turns ([`Repo::merging`]).
pub fn integrate(
    repo: &Repo,
    branch: &str,
    theirs: ObjectId,
    reason: &str,
) -> Result<BranchUpdate> {
    let _merging = repo.merging();
    let mut tries = 0;
    loop {
        tries += 1;
        let local = repo.branch_head(branch)?;
        let (new, how, conflicts) = match local {
            None => (theirs, UpdateKind::Created, 0),
            Some(l) if l == theirs => (l, UpdateKind::UpToDate, 0),
            Some(l) => {
                // Peers keep one branch in step: a merge that would only record how the same
                // edits met is not made (`converge`), or ten peers merging each other's merges
                // never agree on a head.
                let out = hero_store::merge::converge(repo, l, theirs).map_err(|source| {
                    SyncError::Merge {
                        branch: branch.to_owned(),
                        source,
                    }
                })?;
                let how = match out.kind {
                    hero_store::merge::MergeKind::UpToDate => UpdateKind::UpToDate,
                    hero_store::merge::MergeKind::FastForward => UpdateKind::FastForward,
                    hero_store::merge::MergeKind::Merged => UpdateKind::Merged,
                    // The branch moves to the other side's head, which holds every edit here.
                    hero_store::merge::MergeKind::Adopted => UpdateKind::FastForward,
                };
                (out.commit, how, out.conflicts.len())
            }
        };
        let update = BranchUpdate {
            branch: branch.to_owned(),
            old: local,
            new,
            how,
            conflicts,
        };
        if Some(new) == local {
            return Ok(BranchUpdate {
                how: UpdateKind::UpToDate,
                ..update
            });
        }
        // The membership branch is hero's own: the store's ordinary API refuses it, and the
        // session's checks (gate.rs) decided before that it may move.
        let moved = if branch == crate::membership::BRANCH {
            repo.update_branch_reserved(branch, local, Some(new), reason)
        } else {
            repo.update_branch(branch, local, Some(new), reason)
        };
        match moved {
            Ok(()) => return Ok(update),
            Err(hero_store::Error::RefMoved { .. }) if tries < 5 => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Creates a tag the other side has; a tag that exists here with another target is left alone
/// (tags do not move) and reported.
pub fn integrate_tag(repo: &Repo, name: &str, value: RefValue, reason: &str) -> Result<TagOutcome> {
    let refname = hero_store::tag_ref(name)?;
    match repo.view()?.get_ref(&refname)? {
        Some(v) if v == value => Ok(TagOutcome::Same),
        Some(_) => Ok(TagOutcome::Differs),
        None => match repo.cas_ref(&refname, None, Some(value), reason) {
            Ok(()) => Ok(TagOutcome::Created),
            Err(hero_store::Error::RefMoved { .. }) => Ok(TagOutcome::Differs),
            Err(e) => Err(e.into()),
        },
    }
}

/// What [`integrate_tag`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagOutcome {
    /// The tag was made here.
    Created,
    /// It was already here, the same.
    Same,
    /// It is here with another target; left alone.
    Differs,
}

pub(super) fn put_tags(m: &mut Enc, tags: &[(String, RefValue)]) {
    m.u32(tags.len() as u32);
    for (n, v) in tags {
        m.bytes(n.as_bytes());
        match v {
            RefValue::Commit(id) => m.u8(1).id(id),
            RefValue::Tag(id) => m.u8(2).id(id),
        };
    }
}

pub(super) fn parse_tags(d: &mut Dec<'_>) -> Result<Vec<(String, RefValue)>> {
    let n = d.u32()? as usize;
    if n > 1_000_000 {
        return Err(SyncError::protocol("too many tags"));
    }
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let name = d.string()?;
        hero_store::check_ref_name(&name)
            .map_err(|e| SyncError::protocol(format!("bad tag name {name:?}: {e}")))?;
        let v = match d.u8()? {
            1 => RefValue::Commit(d.id()?),
            2 => RefValue::Tag(d.id()?),
            k => return Err(SyncError::protocol(format!("unknown tag kind {k}"))),
        };
        out.push((name, v));
    }
    Ok(out)
}

/// Creates, in one transaction, the branches and tags of the peer that do not exist here and
/// whose objects are here (a clone of a repository with many refs is one commit, not one per
/// ref). Returns the names of the branches and tags made; none when a ref appeared meanwhile
/// (the per-ref path deals with it).
pub(super) fn create_missing_refs(
    repo: &Repo,
    branches: &[(String, ObjectId)],
    tags: &[(String, RefValue)],
    reason: &str,
) -> Result<(Vec<String>, Vec<String>)> {
    let mut moves: Vec<(String, RefValue)> = Vec::new();
    let (mut new_branches, mut new_tags) = (Vec::new(), Vec::new());
    {
        let view = repo.view()?;
        for (name, id) in branches {
            let refname = hero_store::branch_ref(name)?;
            if view.get_ref(&refname)?.is_none()
                && view.object_type(id)? == Some(hero_store::ObjType::Commit)
            {
                moves.push((refname, RefValue::Commit(*id)));
                new_branches.push(name.clone());
            }
        }
        for (name, v) in tags {
            let refname = hero_store::tag_ref(name)?;
            if view.get_ref(&refname)?.is_none() && view.object_type(&v.id())?.is_some() {
                moves.push((refname, *v));
                new_tags.push(name.clone());
            }
        }
    }
    if moves.is_empty() {
        return Ok((new_branches, new_tags));
    }
    let made = repo.batch(|b| {
        for (refname, v) in &moves {
            b.cas_ref(refname, None, Some(*v), reason)?;
        }
        Ok(())
    });
    match made {
        Ok(()) => Ok((new_branches, new_tags)),
        Err(hero_store::Error::RefMoved { .. }) => Ok((Vec::new(), Vec::new())),
        Err(e) => Err(e.into()),
    }
}

/// Creates the tags of `tags` whose objects are here; counts them into `report`.
pub(super) fn take_tags(
    repo: &Repo,
    tags: &[(String, RefValue)],
    reason: &str,
    report: &mut SyncReport,
) -> Result<()> {
    for (name, v) in tags {
        if repo.view()?.object_type(&v.id())?.is_none() {
            tracing::warn!("sync: tag {name} arrived without its object; skipped");
            continue;
        }
        match integrate_tag(repo, name, *v, reason)? {
            TagOutcome::Created => report.tags_created += 1,
            TagOutcome::Same => {}
            TagOutcome::Differs => report.tags_differing.push(name.clone()),
        }
    }
    Ok(())
}

pub(super) fn parse_branches(d: &mut Dec<'_>) -> Result<Vec<(String, ObjectId)>> {
    let n = d.u32()? as usize;
    if n > 1_000_000 {
        return Err(SyncError::protocol("too many branches"));
    }
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let name = d.string()?;
        hero_store::check_ref_name(&name)
            .map_err(|e| SyncError::protocol(format!("bad branch name {name:?}: {e}")))?;
        out.push((name, d.id()?));
    }
    Ok(out)
}

pub(super) fn put_branches(m: &mut Enc, branches: &[(String, ObjectId)]) {
    m.u32(branches.len() as u32);
    for (n, id) in branches {
        m.bytes(n.as_bytes()).id(id);
    }
}

/// One side's branches and tags, sorted by name: what a [`refs_digest`] was taken of.
///
/// [`refs_digest`]: super::handshake::refs_digest
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefSet {
    /// Branches by name.
    pub branches: Vec<(String, ObjectId)>,
    /// Tags by name.
    pub tags: Vec<(String, RefValue)>,
}

impl RefSet {
    /// The refs of `repo`, sorted by name.
    pub fn of(repo: &Repo) -> Result<RefSet> {
        let view = repo.view()?;
        Ok(RefSet::sorted(view.branches()?, view.tags()?))
    }

    /// `branches` and `tags`, sorted by name.
    pub fn sorted(
        mut branches: Vec<(String, ObjectId)>,
        mut tags: Vec<(String, RefValue)>,
    ) -> RefSet {
        branches.sort_by(|a, b| a.0.cmp(&b.0));
        tags.sort_by(|a, b| a.0.cmp(&b.0));
        RefSet { branches, tags }
    }

    /// The set's digest ([`super::handshake::refs_digest`]).
    pub fn digest(&self) -> [u8; 32] {
        super::handshake::refs_digest(&self.branches, &self.tags)
    }

    fn len(&self) -> usize {
        self.branches.len() + self.tags.len()
    }
}

/// How many ref sets a process remembers having advertised, per repository.
const REMEMBERED_STATES: usize = 8;
/// How many repositories a process remembers ref sets of.
const REMEMBERED_REPOS: usize = 64;
/// A set larger than this is not remembered (its peers get the whole list).
const MAX_REMEMBERED_REFS: usize = 100_000;

/// The ref sets this process advertised lately, by repository (its sync id), newest last,
/// with their digests: a peer whose refs have one of these digests gets only what changed
/// since (a welcome of form [`welcome_form::DELTA`]). Nothing here is trusted: the receiver
/// checks the digest of what it rebuilt. A cache only, bounded by [`REMEMBERED_STATES`] ×
/// [`REMEMBERED_REPOS`] sets of at most [`MAX_REMEMBERED_REFS`] refs: after a restart peers
/// get whole lists until a session has advertised a set again.
type States = Vec<(ObjectId, Vec<([u8; 32], std::sync::Arc<RefSet>)>)>;
static STATES: std::sync::Mutex<States> = std::sync::Mutex::new(Vec::new());

/// Remembers `set` of repository `repo` under `digest` (see [`STATES`]).
pub(super) fn remember(repo: &ObjectId, digest: [u8; 32], set: &RefSet) {
    if set.len() > MAX_REMEMBERED_REFS {
        return;
    }
    let Ok(mut all) = STATES.lock() else {
        return;
    };
    let mut states = match all.iter().position(|(r, _)| r == repo) {
        Some(i) => all.remove(i).1,
        None => Vec::new(),
    };
    match states.iter().position(|(d, _)| *d == digest) {
        Some(i) => {
            let s = states.remove(i);
            states.push(s);
        }
        None => {
            if states.len() >= REMEMBERED_STATES {
                states.remove(0);
            }
            states.push((digest, std::sync::Arc::new(set.clone())));
        }
    }
    if all.len() >= REMEMBERED_REPOS {
        all.remove(0);
    }
    all.push((*repo, states));
}

/// The set of repository `repo` remembered under `digest`, if any.
pub(super) fn recall(repo: &ObjectId, digest: &[u8; 32]) -> Option<std::sync::Arc<RefSet>> {
    let all = STATES.lock().ok()?;
    let (_, states) = all.iter().find(|(r, _)| r == repo)?;
    states
        .iter()
        .find(|(d, _)| d == digest)
        .map(|(_, s)| s.clone())
}

/// How a welcome carries the server's refs.
pub mod welcome_form {
    /// Nothing: the digests matched, the refs are the same.
    pub const SAME: u8 = 0;
    /// Every branch and tag.
    pub const FULL: u8 = 1;
    /// What differs from the client's refs (the set its hello's digest was taken of), then the
    /// digest of the result.
    pub const DELTA: u8 = 2;
    /// What differs from the server's refs as the client last received them (the set its
    /// hello's second digest names), then the digest of the result.
    pub const DELTA_AGREED: u8 = 3;
    /// Nothing: the server took the hello's wants, and its refs are the named branches at the
    /// heads the hello expected (only with `welcome_field::TAKEN`).
    pub const EXPECTED: u8 = 4;
}

/// The settings key under which a client keeps the refs `peer` last advertised to it.
fn agreed_key(peer: &iroh::EndpointId) -> String {
    format!("sync/peer-refs/{peer}")
}

/// The refs `peer` last advertised to this repository (whole, by a session about every ref),
/// with their digest, if they were kept and still read back.
pub(super) fn agreed(repo: &Repo, peer: &iroh::EndpointId) -> Result<Option<(RefSet, [u8; 32])>> {
    let Some(bytes) = repo.setting(&agreed_key(peer))? else {
        return Ok(None);
    };
    let mut d = Dec::new(&bytes);
    let read = parse_branches(&mut d).and_then(|b| Ok((b, parse_tags(&mut d)?)));
    match read {
        Ok((branches, tags)) => {
            let set = RefSet::sorted(branches, tags);
            let digest = set.digest();
            Ok(Some((set, digest)))
        }
        Err(e) => {
            tracing::debug!("sync: the refs kept of {peer} do not read back ({e}); ignored");
            Ok(None)
        }
    }
}

/// Keeps `set` as the refs `peer` last advertised, unless `kept` (the digest of what is
/// kept now) says it is already there.
pub(super) fn keep_agreed(
    repo: &Repo,
    peer: &iroh::EndpointId,
    set: &RefSet,
    kept: Option<&[u8; 32]>,
) -> Result<()> {
    if set.len() > MAX_REMEMBERED_REFS || kept == Some(&set.digest()) {
        return Ok(());
    }
    let mut m = Enc(Vec::new());
    put_branches(&mut m, &set.branches);
    put_tags(&mut m, &set.tags);
    repo.set_setting(&agreed_key(peer), Some(&m.0))?;
    Ok(())
}

/// Most changes one delta may carry.
const MAX_DELTA: usize = 1_000_000;

fn put_name(m: &mut Enc, name: &str) {
    m.varint(name.len() as u64);
    m.0.extend_from_slice(name.as_bytes());
}

fn get_name(d: &mut Dec<'_>) -> Result<String> {
    let n = d.varint()?;
    let n = usize::try_from(n).map_err(|_| SyncError::protocol("name too long"))?;
    let name = String::from_utf8(d.raw(n)?.to_vec())
        .map_err(|_| SyncError::protocol("a name is not UTF-8"))?;
    hero_store::check_ref_name(&name)
        .map_err(|e| SyncError::protocol(format!("bad ref name {name:?}: {e}")))?;
    Ok(name)
}

/// What turns `base` into `to`: for branches and tags, the names whose value changed or that
/// are new (with the value) and the names gone, each list sorted by name; then the digest of
/// `to` (which the receiver checks what it rebuilt against).
pub fn put_delta(m: &mut Enc, base: &RefSet, to: &RefSet) {
    fn diff<V: PartialEq + Copy>(
        base: &[(String, V)],
        to: &[(String, V)],
    ) -> Vec<(String, Option<V>)> {
        let old: std::collections::HashMap<&str, &V> =
            base.iter().map(|(n, v)| (n.as_str(), v)).collect();
        let new: std::collections::HashSet<&str> = to.iter().map(|(n, _)| n.as_str()).collect();
        let mut out: Vec<(String, Option<V>)> = to
            .iter()
            .filter(|(n, v)| old.get(n.as_str()) != Some(&v))
            .map(|(n, v)| (n.clone(), Some(*v)))
            .collect();
        out.extend(
            base.iter()
                .filter(|(n, _)| !new.contains(n.as_str()))
                .map(|(n, _)| (n.clone(), None)),
        );
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
    let branches = diff(&base.branches, &to.branches);
    m.varint(branches.len() as u64);
    for (name, v) in &branches {
        put_name(m, name);
        match v {
            None => m.u8(0),
            Some(id) => m.u8(1).id(id),
        };
    }
    let tags = diff(&base.tags, &to.tags);
    m.varint(tags.len() as u64);
    for (name, v) in &tags {
        put_name(m, name);
        match v {
            None => m.u8(0),
            Some(RefValue::Commit(id)) => m.u8(1).id(id),
            Some(RefValue::Tag(id)) => m.u8(2).id(id),
        };
    }
    m.0.extend_from_slice(&to.digest());
}

/// Rebuilds the sender's refs from `base` and a delta ([`put_delta`]); the result's digest
/// must be the one the delta ends with.
pub fn apply_delta(d: &mut Dec<'_>, base: &RefSet) -> Result<RefSet> {
    use std::collections::BTreeMap;
    let mut branches: BTreeMap<String, ObjectId> = base.branches.iter().cloned().collect();
    let n = d.varint()?;
    if n > MAX_DELTA as u64 {
        return Err(SyncError::protocol("a refs delta is too long"));
    }
    for _ in 0..n {
        let name = get_name(d)?;
        match d.u8()? {
            0 => {
                branches.remove(&name);
            }
            1 => {
                branches.insert(name, d.id()?);
            }
            k => return Err(SyncError::protocol(format!("unknown branch change {k}"))),
        }
    }
    let mut tags: BTreeMap<String, RefValue> = base.tags.iter().cloned().collect();
    let n = d.varint()?;
    if n > MAX_DELTA as u64 {
        return Err(SyncError::protocol("a refs delta is too long"));
    }
    for _ in 0..n {
        let name = get_name(d)?;
        match d.u8()? {
            0 => {
                tags.remove(&name);
            }
            1 => {
                tags.insert(name, RefValue::Commit(d.id()?));
            }
            2 => {
                tags.insert(name, RefValue::Tag(d.id()?));
            }
            k => return Err(SyncError::protocol(format!("unknown tag change {k}"))),
        }
    }
    let set = RefSet {
        branches: branches.into_iter().collect(),
        tags: tags.into_iter().collect(),
    };
    if d.raw(32)? != set.digest().as_slice() {
        return Err(SyncError::protocol(
            "the refs rebuilt from the peer's delta do not match its digest",
        ));
    }
    Ok(set)
}
