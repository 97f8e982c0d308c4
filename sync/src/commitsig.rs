//! Commit signatures (ADR 0018): a node's ed25519 signature over a commit id, kept beside the
//! commit (a cross-reference), transferred by the sync protocol, and checked by every receiver
//! against the membership the signer cited.
//!
//! ```text
//! signature := kind u8 (1 made, 2 vouch) | signer [32] | n u16 BE | heads [32] * n | sig [64]
//! signed    := "hero-store commit v1\0" | kind | commit id [32] | n u16 BE | heads [32] * n
//! xref key  := "sig/" | commit id [32] | signer [32]
//! ```
//!
//! *Made*: the signer made the commit (its `hero-peer` header names it); it vouches for the
//! commit's own changes, which must lie inside its scopes in the membership at the cited heads.
//! *Vouch*: an owner vouches for a commit and all its ancestors (the heads present when a
//! repository was upgraded to membership; heads an owner imported from git).

use std::collections::HashMap;

use automerge::ChangeHash;
use hero_store::{IdSet, ObjectId, Repo};
use iroh::{EndpointId, SecretKey, Signature};

use crate::error::{Result, SyncError};
use crate::membership::{self, Membership, Role};

/// What the signature covers before the kind.
pub const DOMAIN: &[u8] = b"hero-store commit v1\0";
/// The xref prefix of signatures.
pub const PREFIX: &[u8] = b"sig/";
/// The most membership heads a signature cites.
pub const MAX_HEADS: usize = membership::MAX_DEPS;

/// What a signature says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The signer made the commit.
    Made,
    /// An owner vouches for the commit and its ancestors.
    Vouch,
}

/// One signature of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSig {
    /// What it says.
    pub kind: Kind,
    /// Who signed.
    pub signer: EndpointId,
    /// The membership heads the signer had.
    pub heads: Vec<ChangeHash>,
    /// The signature.
    pub sig: [u8; 64],
}

fn signed_bytes(kind: Kind, commit: &ObjectId, heads: &[ChangeHash]) -> Vec<u8> {
    let mut m = DOMAIN.to_vec();
    m.push(kind_code(kind));
    m.extend_from_slice(commit.as_bytes());
    m.extend_from_slice(&(heads.len() as u16).to_be_bytes());
    for h in heads {
        m.extend_from_slice(&h.0);
    }
    m
}

fn kind_code(k: Kind) -> u8 {
    match k {
        Kind::Made => 1,
        Kind::Vouch => 2,
    }
}

impl CommitSig {
    /// Signs `commit` as `key`'s node, citing the membership `heads`.
    pub fn sign(key: &SecretKey, kind: Kind, commit: &ObjectId, heads: &[ChangeHash]) -> Self {
        let heads: Vec<ChangeHash> = heads.iter().copied().take(MAX_HEADS).collect();
        let sig = key.sign(&signed_bytes(kind, commit, &heads));
        CommitSig {
            kind,
            signer: key.public(),
            heads,
            sig: sig.to_bytes(),
        }
    }

    /// Whether the signature verifies for `commit`.
    pub fn verify(&self, commit: &ObjectId) -> bool {
        let sig = Signature::from_bytes(&self.sig);
        self.signer
            .verify(&signed_bytes(self.kind, commit, &self.heads), &sig)
            .is_ok()
    }

    /// The encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![kind_code(self.kind)];
        b.extend_from_slice(self.signer.as_bytes());
        b.extend_from_slice(&(self.heads.len() as u16).to_be_bytes());
        for h in &self.heads {
            b.extend_from_slice(&h.0);
        }
        b.extend_from_slice(&self.sig);
        b
    }

    /// Decodes one signature at the start of `b`; returns it and the bytes it used.
    pub fn decode(b: &[u8]) -> Option<(CommitSig, usize)> {
        let kind = match *b.first()? {
            1 => Kind::Made,
            2 => Kind::Vouch,
            _ => return None,
        };
        let signer = EndpointId::from_bytes(b.get(1..33)?.try_into().ok()?).ok()?;
        let n = u16::from_be_bytes(b.get(33..35)?.try_into().ok()?) as usize;
        if n > MAX_HEADS {
            return None;
        }
        let mut at = 35;
        let mut heads = Vec::with_capacity(n);
        for _ in 0..n {
            heads.push(ChangeHash(b.get(at..at + 32)?.try_into().ok()?));
            at += 32;
        }
        let sig: [u8; 64] = b.get(at..at + 64)?.try_into().ok()?;
        Some((
            CommitSig {
                kind,
                signer,
                heads,
                sig,
            },
            at + 64,
        ))
    }
}

fn xref_key(commit: &ObjectId, signer: &EndpointId) -> Vec<u8> {
    let mut k = PREFIX.to_vec();
    k.extend_from_slice(commit.as_bytes());
    k.extend_from_slice(signer.as_bytes());
    k
}

/// The stored signatures of a commit.
pub fn stored(repo: &Repo, commit: &ObjectId) -> Result<Vec<CommitSig>> {
    let mut prefix = PREFIX.to_vec();
    prefix.extend_from_slice(commit.as_bytes());
    Ok(repo
        .xrefs_with_prefix(&prefix)?
        .into_iter()
        .filter_map(|(_, v)| CommitSig::decode(&v).map(|(s, _)| s))
        .collect())
}

/// Stores signatures that verify (others are dropped); how many were stored.
pub fn store(repo: &Repo, sigs: &[(ObjectId, CommitSig)]) -> Result<usize> {
    let good: Vec<&(ObjectId, CommitSig)> = sigs.iter().filter(|(c, s)| s.verify(c)).collect();
    if good.is_empty() {
        return Ok(0);
    }
    repo.batch(|b| {
        for (c, s) in &good {
            b.set_xref(&xref_key(c, &s.signer), Some(&s.encode()))?;
        }
        Ok(())
    })?;
    Ok(good.len())
}

/// Signs, as `key`'s node, the commits of `commits` it made (whose `hero-peer` header names it,
/// or that name no maker and are not merges) and has not signed yet, citing the membership heads it has now. Lazy: a commit is signed
/// the first time it is sent.
pub fn sign_own(repo: &Repo, key: &SecretKey, commits: &[ObjectId]) -> Result<usize> {
    let me = key.public();
    let me_text = me.to_string();
    let view = repo.view()?;
    let mut todo = Vec::new();
    for c in commits {
        let Ok(commit) = view.commit(c) else {
            continue;
        };
        // Its own commits; and commits that name no maker (made here by code that records
        // none, e.g. a mount's recovery commit): the first member to send one vouches for it,
        // within its own scopes. Merges sync makes are recomputed by receivers instead.
        match commit.header(hero_store::PEER_HEADER) {
            Some(h) if h == me_text.as_bytes() => {}
            None if commit.parents.len() < 2 => {}
            _ => continue,
        }
        if repo.xref(&xref_key(c, &me))?.is_some() {
            continue;
        }
        todo.push(*c);
    }
    drop(view);
    if todo.is_empty() {
        return Ok(0);
    }
    let heads = crate::current::membership_of(repo)?.heads().to_vec();
    let sigs: Vec<(ObjectId, CommitSig)> = todo
        .iter()
        .map(|c| (*c, CommitSig::sign(key, Kind::Made, c, &heads)))
        .collect();
    store(repo, &sigs)
}

/// Vouches, as owner `key`, for `heads` and everything they reach (the upgrade to membership;
/// an owner's git import).
pub fn vouch(repo: &Repo, key: &SecretKey, heads: &[ObjectId]) -> Result<usize> {
    let mheads = crate::current::membership_of(repo)?.heads().to_vec();
    let sigs: Vec<(ObjectId, CommitSig)> = heads
        .iter()
        .map(|c| (*c, CommitSig::sign(key, Kind::Vouch, c, &mheads)))
        .collect();
    store(repo, &sigs)
}

/// The signatures to send for `commits`: signs this node's own first.
pub fn for_sending(
    repo: &Repo,
    key: Option<&SecretKey>,
    commits: &[ObjectId],
) -> Result<Vec<(ObjectId, CommitSig)>> {
    if let Some(k) = key {
        sign_own(repo, k, commits)?;
    }
    let mut out = Vec::new();
    for c in commits {
        for s in stored(repo, c)? {
            out.push((*c, s));
        }
    }
    Ok(out)
}

/// Why a commit was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRefusal {
    /// The commit.
    pub commit: ObjectId,
    /// A path it changes that no signer may change, if that is the reason.
    pub path: Option<String>,
    /// The rule.
    pub rule: String,
}

/// Memberships at cited heads, evaluated once each.
struct AtHeads<'a> {
    files: Vec<(String, Vec<u8>)>,
    pinned: Option<ChangeHash>,
    deps: HashMap<ChangeHash, Vec<ChangeHash>>,
    cache: HashMap<Vec<ChangeHash>, Option<Membership>>,
    _repo: &'a Repo,
}

impl<'a> AtHeads<'a> {
    fn new(repo: &'a Repo, incoming_membership: Option<ObjectId>) -> Result<Self> {
        let files = membership::stored_files(repo, incoming_membership)?;
        let mut deps = HashMap::new();
        for (_, bytes) in &files {
            if let Ok(v) = membership::Envelope::from_bytes(bytes.clone()).verify() {
                deps.insert(v.hash, v.change.deps().to_vec());
            }
        }
        Ok(AtHeads {
            files,
            pinned: membership::pinned(repo)?,
            deps,
            cache: HashMap::new(),
            _repo: repo,
        })
    }

    /// The membership made of the changes in the causal past of `heads` (inclusive); `None`
    /// when a cited head is unknown here.
    fn at(&mut self, heads: &[ChangeHash]) -> Option<&Membership> {
        let mut key = heads.to_vec();
        key.sort();
        if !self.cache.contains_key(&key) {
            let mut past = std::collections::HashSet::new();
            let mut stack = key.clone();
            let mut known = true;
            while let Some(h) = stack.pop() {
                if !past.insert(h) {
                    continue;
                }
                match self.deps.get(&h) {
                    Some(d) => stack.extend(d.iter().copied()),
                    None => known = false,
                }
            }
            let m = known.then(|| {
                let files: Vec<(String, Vec<u8>)> = self
                    .files
                    .iter()
                    .filter(|(n, _)| n.parse::<ChangeHash>().is_ok_and(|h| past.contains(&h)))
                    .cloned()
                    .collect();
                membership::evaluate(files, self.pinned).0
            });
            self.cache.insert(key.clone(), m);
        }
        self.cache.get(&key).and_then(|m| m.as_ref())
    }
}

/// The paths a commit itself changes: its diff against its parent; for a merge, the paths that
/// differ from every parent.
pub fn own_changes(view: &hero_store::View, c: &ObjectId) -> Result<Vec<String>> {
    let commit = view.commit(c)?;
    let parents: Vec<Option<ObjectId>> = if commit.parents.is_empty() {
        vec![None]
    } else {
        commit.parents.iter().copied().map(Some).collect()
    };
    let mut changed: Option<std::collections::BTreeSet<String>> = None;
    for p in parents {
        let paths: std::collections::BTreeSet<String> = view
            .diff_commits(p, c)?
            .into_iter()
            .map(|d| d.path.to_string())
            .collect();
        changed = Some(match changed {
            None => paths,
            Some(prev) => prev.intersection(&paths).cloned().collect(),
        });
    }
    Ok(changed.unwrap_or_default().into_iter().collect())
}

/// The commits reachable from `heads` that no ref of `repo` reaches: what a transfer brought.
pub fn new_commits(repo: &Repo, heads: &[ObjectId]) -> Result<Vec<ObjectId>> {
    let view = repo.view()?;
    let mut ours = IdSet::default();
    let mut stack: Vec<ObjectId> = view.branches()?.into_iter().map(|(_, id)| id).collect();
    for (_, v) in view.tags()? {
        if let hero_store::RefValue::Commit(id) = v {
            stack.push(id);
        }
    }
    while let Some(c) = stack.pop() {
        if ours.insert(c) {
            stack.extend(view.commit(&c)?.parents);
        }
    }
    let mut seen = IdSet::default();
    let mut out = Vec::new();
    let mut stack: Vec<ObjectId> = heads.to_vec();
    while let Some(c) = stack.pop() {
        if ours.contains(&c) || !seen.insert(c) {
            continue;
        }
        let Ok(commit) = view.commit(&c) else {
            // An annotated tag: what it points at (tags of trees or blobs change no path).
            if let Ok(t) = view.tag(&c) {
                stack.push(t.target);
            }
            continue;
        };
        stack.extend(commit.parents);
        out.push(c);
    }
    Ok(out)
}

/// Finds owners' signatures of commits, evaluating each cited membership once.
pub struct OwnerSignatures<'a> {
    repo: &'a Repo,
    at: AtHeads<'a>,
}

impl<'a> OwnerSignatures<'a> {
    /// Over the membership stored in `repo`.
    pub fn new(repo: &'a Repo) -> Result<Self> {
        Ok(OwnerSignatures {
            repo,
            at: AtHeads::new(repo, None)?,
        })
    }

    /// An owner's signature of `commit` among those stored here: a vouch, or a commit it made,
    /// by a node that was an owner in the membership its signature cites. The first found.
    pub fn of(&mut self, commit: &ObjectId) -> Result<Option<(Kind, EndpointId)>> {
        let sigs = stored(self.repo, commit)?;
        Ok(sigs.into_iter().filter(|s| s.verify(commit)).find_map(|s| {
            self.at
                .at(&s.heads)
                .is_some_and(|m| m.role_of(&s.signer) == Some(Role::Owner))
                .then_some((s.kind, s.signer))
        }))
    }
}

/// Whether `c` (`commit`) is the merge of its two parents that any peer makes: no one's
/// choice, so no one needs to have signed it. A merge that cannot be made because of this
/// machine (its disk is full, its database fails) is an error of the session, not a refusal
/// of the peer's commit; one that fails on what the history holds is "not that merge".
pub(crate) fn is_anyones_merge(
    repo: &Repo,
    c: &ObjectId,
    commit: &hero_store::Commit,
) -> Result<bool> {
    let [a, b] = commit.parents[..] else {
        return Ok(false);
    };
    match hero_store::merge::merge(repo, a, b) {
        Ok(out) => Ok(out.commit == *c),
        Err(hero_store::merge::MergeError::Store(
            e @ (hero_store::Error::Db(_)
            | hero_store::Error::Io { .. }
            | hero_store::Error::Input(_)),
        )) => Err(e.into()),
        Err(_) => Ok(false),
    }
}

/// Checks every commit of `commits` (new to this side, objects stored, signatures received
/// stored): each must be vouched for by an owner (itself or a descendant among `commits`), be a
/// merge any peer would make the same, or carry a signature by a node that could change every
/// path it changes in the membership the signature cites. The first failure.
pub fn check(
    repo: &Repo,
    incoming_membership: Option<ObjectId>,
    commits: &[ObjectId],
) -> Result<Option<CommitRefusal>> {
    if commits.is_empty() {
        return Ok(None);
    }
    let mut at = AtHeads::new(repo, incoming_membership)?;
    // Views are opened per step and closed before a merge is made: the merges write, and a
    // read transaction open across writes keeps redb from reusing the pages they free.
    let view = repo.view()?;
    let set: IdSet = commits.iter().copied().collect();
    // Each signature is verified when it is relied on, not before: after a clone of an
    // imported history an owner's vouch for each head covers every commit, and the commits'
    // own signatures need no second look (verifying one costs about 50 µs).
    let mut sigs: HashMap<ObjectId, Vec<CommitSig>> = HashMap::new();
    for c in commits {
        sigs.insert(*c, stored(repo, c)?);
    }
    // Vouched: ancestors (within the new commits) of a commit an owner vouched for.
    let mut vouched = IdSet::default();
    for c in commits {
        let by_owner = sigs.get(c).into_iter().flatten().any(|s| {
            s.kind == Kind::Vouch
                && at
                    .at(&s.heads)
                    .is_some_and(|m| m.role_of(&s.signer) == Some(Role::Owner))
                && s.verify(c)
        });
        if by_owner {
            let mut stack = vec![*c];
            while let Some(x) = stack.pop() {
                if set.contains(&x) && vouched.insert(x) {
                    stack.extend(view.commit(&x)?.parents);
                }
            }
        }
    }
    drop(view);
    for c in commits {
        if vouched.contains(c) {
            continue;
        }
        let (changed, commit) = {
            let view = repo.view()?;
            (own_changes(&view, c)?, view.commit(c)?)
        };
        if changed.is_empty() {
            continue;
        }
        if commit.header(hero_store::PEER_HEADER).is_none() && is_anyones_merge(repo, c, &commit)? {
            // What any peer merging these two makes: no one's choice to vouch for.
            continue;
        }
        let mut best: Option<CommitRefusal> = None;
        let mut ok = false;
        for s in sigs.get(c).into_iter().flatten() {
            if s.kind != Kind::Made || !s.verify(c) {
                continue;
            }
            let Some(m) = at.at(&s.heads) else {
                best.get_or_insert(CommitRefusal {
                    commit: *c,
                    path: None,
                    rule: format!(
                        "signed by {} citing membership changes unknown here",
                        s.signer.fmt_short()
                    ),
                });
                continue;
            };
            match changed.iter().find(|p| !m.may_write(&s.signer, p)) {
                None => {
                    ok = true;
                    break;
                }
                Some(p) => {
                    let why = match m.member(&s.signer) {
                        Some(mm) if mm.role == Role::Writer && hero_store::is_config_path(p) => {
                            format!(
                                "{} (signer {})",
                                membership::config_rule(),
                                s.signer.fmt_short()
                            )
                        }
                        Some(mm) if mm.role == Role::Writer => {
                            format!(
                                "outside the scopes {:?} of its signer {}",
                                mm.scopes,
                                s.signer.fmt_short()
                            )
                        }
                        Some(mm) => format!("its signer {} is a {}", s.signer.fmt_short(), mm.role),
                        None => format!(
                            "its signer {} was not a member at the membership it cites",
                            s.signer.fmt_short()
                        ),
                    };
                    best = Some(CommitRefusal {
                        commit: *c,
                        path: Some(p.clone()),
                        rule: why,
                    });
                }
            }
        }
        if !ok {
            return Ok(Some(best.unwrap_or(CommitRefusal {
                commit: *c,
                path: changed.first().cloned(),
                rule: "not signed by a member that may write it".to_owned(),
            })));
        }
    }
    Ok(None)
}

/// Encodes the signatures of `commits` for the wire without repeating the commits' ids: for
/// each commit, in order, a varint count and its signatures (`SIGS_AHEAD`, whose list of
/// commits comes first).
pub fn encode_grouped(commits: &[ObjectId], sigs: &[(ObjectId, CommitSig)]) -> Vec<u8> {
    let mut by: std::collections::HashMap<&ObjectId, Vec<&CommitSig>> =
        std::collections::HashMap::new();
    for (c, s) in sigs {
        by.entry(c).or_default().push(s);
    }
    let mut b = Vec::new();
    for c in commits {
        let of = by.get(c).map(Vec::as_slice).unwrap_or_default();
        hero_store::codec::put_varint(&mut b, of.len() as u64);
        for s in of {
            b.extend_from_slice(&s.encode());
        }
    }
    b
}

/// Decodes [`encode_grouped`] for `commits`; every byte must be used.
pub fn decode_grouped(commits: &[ObjectId], b: &[u8]) -> Result<Vec<(ObjectId, CommitSig)>> {
    let bad = || SyncError::protocol("bad commit signatures");
    let mut at = b;
    let mut out = Vec::new();
    for c in commits {
        let mut d = crate::wire::Dec::new(at);
        let n = d.varint()?;
        at = d.rest();
        for _ in 0..n {
            let (s, used) = CommitSig::decode(at).ok_or_else(bad)?;
            at = at.get(used..).ok_or_else(bad)?;
            out.push((*c, s));
        }
    }
    if !at.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// Encodes signatures for the wire: count u32, then (commit id, signature) each.
pub fn encode_list(sigs: &[(ObjectId, CommitSig)]) -> Vec<u8> {
    let mut b = (sigs.len() as u32).to_be_bytes().to_vec();
    for (c, s) in sigs {
        b.extend_from_slice(c.as_bytes());
        b.extend_from_slice(&s.encode());
    }
    b
}

/// Decodes [`encode_list`].
pub fn decode_list(b: &[u8]) -> Result<Vec<(ObjectId, CommitSig)>> {
    let bad = || SyncError::protocol("bad commit signatures");
    let n = u32::from_be_bytes(b.get(..4).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
    let mut at = 4;
    let mut out = Vec::new();
    for _ in 0..n {
        let id: [u8; 32] = b
            .get(at..at + 32)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?;
        at += 32;
        let (s, used) = CommitSig::decode(b.get(at..).ok_or_else(bad)?).ok_or_else(bad)?;
        at += used;
        out.push((ObjectId(id), s));
    }
    Ok(out)
}
