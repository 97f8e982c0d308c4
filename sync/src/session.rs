//! One sync session over a framed stream: the handshake (version, repository, access), then a
//! pull (the server sends) or a push (the server receives), then branch moves.

use hero_store::{ObjectId, RefValue, Repo};
use iroh::{EndpointId, SecretKey};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::access::{self, Access};
use crate::audit::{self, Decision, Entry};
use crate::error::{Result, SyncError};
use crate::gate;
use crate::membership;
use crate::transfer::{self, ProgressFn, TransferStats, blocking};
use crate::wire::{Dec, Enc, MAGIC, VERSION, Wire, code, kind};

/// What a client wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Receive from the server.
    Pull,
    /// Send to the server.
    Push,
}

impl Intent {
    fn code(self) -> u8 {
        match self {
            Intent::Pull => 1,
            Intent::Push => 2,
        }
    }
}

/// How a branch was moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    /// It did not exist here.
    Created,
    /// It moved forward to the other side's head.
    FastForward,
    /// Both sides had moved: a merge commit joins them.
    Merged,
    /// Nothing to do (same head, or this side already contains the other).
    UpToDate,
}

impl UpdateKind {
    fn code(self) -> u8 {
        match self {
            UpdateKind::Created => 1,
            UpdateKind::FastForward => 2,
            UpdateKind::Merged => 3,
            UpdateKind::UpToDate => 4,
        }
    }
    fn from_code(c: u8) -> Result<Self> {
        Ok(match c {
            1 => UpdateKind::Created,
            2 => UpdateKind::FastForward,
            3 => UpdateKind::Merged,
            4 => UpdateKind::UpToDate,
            _ => return Err(SyncError::protocol(format!("unknown branch outcome {c}"))),
        })
    }
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateKind::Created => "created",
            UpdateKind::FastForward => "fast-forward",
            UpdateKind::Merged => "merged",
            UpdateKind::UpToDate => "up-to-date",
        }
    }
}

/// What became of one branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchUpdate {
    /// The branch.
    pub branch: String,
    /// Where it was (on the side that moved it).
    pub old: Option<ObjectId>,
    /// Where it is now.
    pub new: ObjectId,
    /// How it moved.
    pub how: UpdateKind,
    /// Conflicts recorded by the merge (both versions kept).
    pub conflicts: usize,
}

/// The result of a pull or push.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    /// Object counts.
    pub transfer: TransferStats,
    /// Bytes received on the wire.
    pub bytes_in: u64,
    /// Bytes sent on the wire.
    pub bytes_out: u64,
    /// Branch moves (local for a pull, on the peer for a push).
    pub branches: Vec<BranchUpdate>,
    /// Tags created (locally for a pull, on the peer for a push).
    pub tags_created: usize,
    /// Tags that exist on both sides with different targets (left as they were).
    pub tags_differing: Vec<String>,
    /// Branches that could not be brought up to date, and why (the others were).
    pub branches_failed: Vec<(String, std::sync::Arc<SyncError>)>,
    /// The peer's heads of the branches of the session, as it advertised them (a pull) or
    /// moved them (a push): what the peer is known to have now.
    pub peer_heads: Vec<(String, ObjectId)>,
    /// Both sides had the same branches and tags (their digests matched): nothing was listed
    /// or sent.
    pub same_refs: bool,
    /// What became of the membership branch (hero's own; not among `branches`).
    pub membership: Option<BranchUpdate>,
    /// The direct addresses the peer was reached at, when a one-shot client learned them
    /// (empty otherwise): they may differ from the ticket's when the peer moved and was found
    /// by its id ([`crate::access::follow_remotes`]).
    pub reached_at: Vec<std::net::SocketAddr>,
}

impl SyncReport {
    /// The report of a session that ended at the welcome: both sides had the same refs.
    fn same_refs<R, W>(repo: &Repo, wire: &Wire<R, W>) -> Result<SyncReport> {
        Ok(SyncReport {
            peer_heads: repo.branches()?,
            same_refs: true,
            bytes_in: wire.bytes_in,
            bytes_out: wire.bytes_out,
            ..SyncReport::default()
        })
    }

    /// Moves hero's own branches out of `branches` (the membership into `membership`).
    fn set_aside_reserved(&mut self) {
        let (reserved, user): (Vec<_>, Vec<_>) = std::mem::take(&mut self.branches)
            .into_iter()
            .partition(|b| membership::is_reserved(&b.branch));
        self.branches = user;
        self.membership = reserved
            .into_iter()
            .find(|b| b.branch == membership::BRANCH);
    }
}

impl SyncReport {
    /// Branches that actually moved.
    pub fn updated(&self) -> usize {
        self.branches
            .iter()
            .filter(|b| b.how != UpdateKind::UpToDate)
            .count()
    }
}

/// A digest of a side's branches and tags: equal digests mean equal refs, so a catch-up
/// between peers that already agree costs a hello and a welcome, not two lists of every ref.
pub fn refs_digest(branches: &[(String, ObjectId)], tags: &[(String, RefValue)]) -> [u8; 32] {
    let mut b: Vec<&(String, ObjectId)> = branches.iter().collect();
    b.sort();
    let mut t: Vec<&(String, RefValue)> = tags.iter().collect();
    t.sort_by(|x, y| x.0.cmp(&y.0));
    let mut h = blake3::Hasher::new();
    h.update(b"hero-store/refs/1\0");
    for (name, id) in b {
        h.update(&(name.len() as u64).to_be_bytes());
        h.update(name.as_bytes());
        h.update(id.as_bytes());
    }
    h.update(b"\0tags\0");
    for (name, v) in t {
        h.update(&(name.len() as u64).to_be_bytes());
        h.update(name.as_bytes());
        match v {
            RefValue::Commit(id) => h.update(&[1]).update(id.as_bytes()),
            RefValue::Tag(id) => h.update(&[2]).update(id.as_bytes()),
        };
    }
    *h.finalize().as_bytes()
}

/// No digest: the client does not offer one (a session about named branches, an empty
/// repository).
const NO_DIGEST: [u8; 32] = [0; 32];

/// The client's hello; `only` names the branches the session is about (`None`: every ref);
/// `digest` is the client's [`refs_digest`] (or [`NO_DIGEST`]).
pub(crate) fn hello(
    repo_id: &ObjectId,
    intent: Intent,
    empty: bool,
    only: Option<&[String]>,
    digest: &[u8; 32],
) -> Enc {
    let mut m = Enc::new(kind::HELLO);
    m.0.extend_from_slice(MAGIC);
    m.u32(VERSION)
        .id(repo_id)
        .u8(intent.code())
        .u8(u8::from(empty));
    let only = only.unwrap_or_default();
    m.u32(only.len() as u32);
    for b in only {
        m.bytes(b.as_bytes());
    }
    m.0.extend_from_slice(digest);
    m
}

/// Most branches a hello may name.
const MAX_NAMED: usize = 4096;

/// Whether a repository has no branch yet (a clone target); hero's own branches (the
/// membership) do not count.
fn is_empty(repo: &Repo) -> Result<bool> {
    Ok(repo
        .branches()?
        .iter()
        .all(|(n, _)| membership::is_reserved(n)))
}

/// Moves `branch` to include `theirs`: create, fast-forward, or merge (deterministically), with
/// a compare-and-swap that retries if a local writer moved the branch meanwhile.
pub fn integrate(
    repo: &Repo,
    branch: &str,
    theirs: ObjectId,
    reason: &str,
) -> Result<BranchUpdate> {
    let mut tries = 0;
    loop {
        tries += 1;
        let local = repo.branch_head(branch)?;
        let (new, how, conflicts) = match local {
            None => (theirs, UpdateKind::Created, 0),
            Some(l) if l == theirs => (l, UpdateKind::UpToDate, 0),
            Some(l) => {
                let out =
                    crate::merge::merge(repo, l, theirs).map_err(|source| SyncError::Merge {
                        branch: branch.to_owned(),
                        source,
                    })?;
                let how = match out.kind {
                    crate::merge::MergeKind::UpToDate => UpdateKind::UpToDate,
                    crate::merge::MergeKind::FastForward => UpdateKind::FastForward,
                    crate::merge::MergeKind::Merged => UpdateKind::Merged,
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
        match repo.update_branch(branch, local, Some(new), reason) {
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

fn put_tags(m: &mut Enc, tags: &[(String, RefValue)]) {
    m.u32(tags.len() as u32);
    for (n, v) in tags {
        m.bytes(n.as_bytes());
        match v {
            RefValue::Commit(id) => m.u8(1).id(id),
            RefValue::Tag(id) => m.u8(2).id(id),
        };
    }
}

fn parse_tags(d: &mut Dec<'_>) -> Result<Vec<(String, RefValue)>> {
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
fn create_missing_refs(
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
fn take_tags(
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

fn parse_branches(d: &mut Dec<'_>) -> Result<Vec<(String, ObjectId)>> {
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

fn put_branches(m: &mut Enc, branches: &[(String, ObjectId)]) {
    m.u32(branches.len() as u32);
    for (n, id) in branches {
        m.bytes(n.as_bytes()).id(id);
    }
}

/// The ids a side advertised (branches, then tags), in the order a receiver's bitmap of
/// common refs follows.
fn advertised(branches: &[(String, ObjectId)], tags: &[(String, RefValue)]) -> Vec<ObjectId> {
    branches
        .iter()
        .map(|(_, id)| *id)
        .chain(tags.iter().map(|(_, v)| v.id()))
        .collect()
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
            ask.haves = transfer::haves_for(&view, &receiving, &shared, !focused)?;
        }
        Ok(ask)
    }
}

/// What the server said in its welcome.
#[derive(Debug)]
pub(crate) struct Welcome {
    pub access: Access,
    pub branches: Vec<(String, ObjectId)>,
    pub tags: Vec<(String, RefValue)>,
    /// The peer's default branch.
    pub default_branch: String,
    /// The peer's refs are the same as ours (the digests matched): nothing was listed and
    /// nothing is to be exchanged.
    pub same_refs: bool,
    /// The membership genesis the peer trusts, if it has one.
    pub genesis: Option<automerge::ChangeHash>,
}

/// Client side of the handshake: hello, then the welcome or a refusal in words.
pub(crate) async fn handshake<R, W>(
    wire: &mut Wire<R, W>,
    repo: &Repo,
    intent: Intent,
    only: Option<&[String]>,
    peer: &EndpointId,
    me: &EndpointId,
) -> Result<Welcome>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let ours = access::sync_repo_id(repo)?;
    let empty = is_empty(repo)?;
    let digest = if only.is_none() && !empty {
        refs_digest(&repo.branches()?, &repo.tags()?)
    } else {
        NO_DIGEST
    };
    wire.send(&hello(&ours, intent, empty, only, &digest))
        .await?;
    wire.flush().await?;
    let (k, body) = wire.recv_any().await.map_err(|e| match e {
        SyncError::Connection(_) => SyncError::Connection(format!(
            "peer {peer} closed the connection during the handshake ({e})"
        )),
        other => other,
    })?;
    let mut d = Dec::new(&body);
    if k == kind::ERROR {
        let c = d.u8()?;
        let msg = d.string()?;
        return Err(match c {
            code::NOT_ALLOWED => SyncError::NotAllowed {
                peer: peer.to_string(),
                me: me.to_string(),
            },
            code::READ_ONLY => SyncError::ReadOnly {
                peer: peer.to_string(),
                me: me.to_string(),
            },
            code::INCOMPATIBLE => SyncError::Incompatible {
                ours: VERSION,
                theirs: msg.parse().unwrap_or(0),
            },
            code::REPO_MISMATCH => SyncError::RepoMismatch {
                ours: ours.to_hex(),
                theirs: msg,
            },
            code::INVITE_REFUSED => SyncError::InvitationRefused {
                peer: peer.to_string(),
                reason: msg,
            },
            _ => SyncError::Remote(msg),
        });
    }
    if k != kind::WELCOME {
        return Err(SyncError::protocol(format!("expected a welcome, got {k}")));
    }
    let version = d.u32()?;
    if version != VERSION {
        return Err(SyncError::Incompatible {
            ours: VERSION,
            theirs: version,
        });
    }
    let repo_id = d.id()?;
    let access = match d.u8()? {
        2 => Access::ReadWrite,
        _ => Access::ReadOnly,
    };
    let branches = parse_branches(&mut d)?;
    let tags = parse_tags(&mut d)?;
    let default_branch = d.string()?;
    let same_refs = d.u8()? == 1;
    hero_store::branch_ref(&default_branch)
        .map_err(|e| SyncError::protocol(format!("bad default branch {default_branch:?}: {e}")))?;
    let genesis = match d.u8()? {
        0 => None,
        _ => Some(automerge::ChangeHash(
            d.raw(32)?
                .try_into()
                .map_err(|_| SyncError::protocol("bad genesis"))?,
        )),
    };
    // A repository that has no membership yet (a clone, a peer from before membership) takes
    // the one its source trusts: the ticket named the source, so the source names the root.
    if intent == Intent::Pull
        && let Some(g) = genesis
        && !blocking(|| membership::is_enforced(repo))?
    {
        blocking(|| membership::pin_genesis(repo, &g))?;
    }
    if repo_id != ours {
        if empty {
            access::adopt_repo_id(repo, &repo_id)?;
        } else if intent == Intent::Pull || !branches.is_empty() {
            return Err(SyncError::RepoMismatch {
                ours: ours.to_hex(),
                theirs: repo_id.to_hex(),
            });
        }
    }
    Ok(Welcome {
        access,
        branches,
        tags,
        default_branch,
        same_refs,
        genesis,
    })
}

/// Pulls every branch of the peer into `repo` over `wire` (any byte stream: a QUIC stream in
/// [`crate::net`], an in-memory pipe in tests).
pub async fn pull<R, W>(
    wire: &mut Wire<R, W>,
    repo: &Repo,
    peer: &EndpointId,
    me: &EndpointId,
    progress: Option<&ProgressFn>,
) -> Result<SyncReport>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    pull_only(wire, repo, peer, me, None, progress).await
}

/// Pulls the branches named in `only` (every branch and tag when `None`): the peer
/// advertises only those, and this side names only their history as what it has, so the
/// session costs what those branches changed, not what the repository holds.
pub async fn pull_only<R, W>(
    wire: &mut Wire<R, W>,
    repo: &Repo,
    peer: &EndpointId,
    me: &EndpointId,
    only: Option<&[String]>,
    progress: Option<&ProgressFn>,
) -> Result<SyncReport>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let welcome = handshake(wire, repo, Intent::Pull, only, peer, me).await?;
    if welcome.same_refs {
        return SyncReport::same_refs(repo, wire);
    }
    // A clone (or a repository that never chose) adopts the peer's default branch.
    if blocking(|| -> Result<bool> { Ok(is_empty(repo)? && !repo.has_default_branch()?) })? {
        blocking(|| repo.set_default_branch(&welcome.default_branch))?;
    }
    let ask = blocking(|| Ask::of(repo, &welcome.branches, &welcome.tags, only.is_some()))?;
    let stats = transfer::receive_objects(wire, repo, &ask, progress).await?;
    let ordinary: Vec<ObjectId> = welcome
        .branches
        .iter()
        .filter(|(n, _)| !membership::is_reserved(n))
        .map(|(_, id)| *id)
        .chain(welcome.tags.iter().map(|(_, v)| v.id()))
        .collect();
    let new_commits = fetch_signatures(wire, repo, &ordinary).await?;
    let reason = format!("pull from {}", peer.fmt_short());
    let mut report = SyncReport {
        transfer: stats,
        peer_heads: welcome.branches.clone(),
        ..SyncReport::default()
    };
    // Hero's own branches are taken only after their checks (ADR 0018).
    let (kept, dropped) =
        blocking(|| gate::filter_pulled(repo, welcome.genesis, &welcome.branches))?;
    for (name, why) in dropped {
        if name == membership::BRANCH && why.contains("refused") {
            tracing::warn!("sync: membership from {peer} not taken: {why}");
            blocking(|| {
                audit::record(
                    repo,
                    Entry::new(Some(peer), "pull", Decision::Refused, why.clone())
                        .rule("membership change refused"),
                )
            });
            let e = SyncError::MembershipRefused(why);
            report.branches_failed.push((name, e.into()));
        } else {
            tracing::debug!("sync: branch {name} of {peer} left out: {why}");
        }
    }
    // Every new commit is checked end to end (ADR 0018): one that fails keeps every branch of
    // this pull where it was.
    let incoming = kept
        .iter()
        .find(|(n, _)| n == membership::BRANCH)
        .map(|(_, id)| *id);
    let kept = if blocking(|| membership::is_enforced(repo))? {
        match blocking(|| crate::commitsig::check(repo, incoming, &new_commits))? {
            None => kept,
            Some(r) => {
                let text = format!(
                    "commit {}{}: {}",
                    r.commit.short(),
                    r.path
                        .as_deref()
                        .map(|p| format!(", path {p}"))
                        .unwrap_or_default(),
                    r.rule
                );
                tracing::warn!("sync: history from {peer} refused: {text}");
                blocking(|| {
                    let mut e = Entry::new(Some(peer), "pull", Decision::Refused, text.clone())
                        .rule(r.rule.clone());
                    e.commit = Some(r.commit.to_hex());
                    e.path = r.path.clone();
                    audit::record(repo, e)
                });
                let (refused, rest): (Vec<_>, Vec<_>) = kept
                    .into_iter()
                    .partition(|(n, _)| !membership::is_reserved(n));
                for (name, _) in refused {
                    let e = SyncError::HistoryRefused(text.clone());
                    report.branches_failed.push((name, e.into()));
                }
                rest
            }
        }
    } else {
        kept
    };
    let welcome = Welcome {
        branches: kept,
        tags: if report.branches_failed.is_empty() {
            welcome.tags
        } else {
            Vec::new()
        },
        ..welcome
    };
    let (new_branches, new_tags) =
        blocking(|| create_missing_refs(repo, &welcome.branches, &welcome.tags, &reason))?;
    // Refs already where the peer has them need nothing more (one read, not one per ref).
    let (same_branches, same_tags) = blocking(|| -> Result<_> {
        let view = repo.view()?;
        let ours: std::collections::HashMap<String, ObjectId> =
            view.branches()?.into_iter().collect();
        let our_tags: std::collections::HashMap<String, RefValue> =
            view.tags()?.into_iter().collect();
        let same_branches: std::collections::HashSet<&str> = welcome
            .branches
            .iter()
            .filter(|(n, id)| ours.get(n) == Some(id))
            .map(|(n, _)| n.as_str())
            .collect();
        let same_tags: std::collections::HashSet<&str> = welcome
            .tags
            .iter()
            .filter(|(n, v)| our_tags.get(n) == Some(v))
            .map(|(n, _)| n.as_str())
            .collect();
        Ok((same_branches, same_tags))
    })?;
    let new_branches: std::collections::HashSet<&str> =
        new_branches.iter().map(String::as_str).collect();
    let new_tags: std::collections::HashSet<&str> = new_tags.iter().map(String::as_str).collect();
    for (name, id) in &welcome.branches {
        if same_branches.contains(name.as_str()) && !new_branches.contains(name.as_str()) {
            report.branches.push(BranchUpdate {
                branch: name.clone(),
                old: Some(*id),
                new: *id,
                how: UpdateKind::UpToDate,
                conflicts: 0,
            });
            continue;
        }
        if new_branches.contains(name.as_str()) {
            report.branches.push(BranchUpdate {
                branch: name.clone(),
                old: None,
                new: *id,
                how: UpdateKind::Created,
                conflicts: 0,
            });
            continue;
        }
        if blocking(|| repo.view()?.object_type(id))? != Some(hero_store::ObjType::Commit) {
            tracing::warn!("sync: branch {name} of the peer did not arrive whole; left alone");
            let e = SyncError::protocol(format!("its head {} did not arrive", id.short()));
            report.branches_failed.push((name.clone(), e.into()));
            continue;
        }
        // One branch that cannot be merged does not keep the others from moving.
        match blocking(|| integrate(repo, name, *id, &reason)) {
            Ok(u) => report.branches.push(u),
            Err(e @ SyncError::Merge { .. }) => {
                tracing::warn!("sync: branch {name} not updated: {e}");
                report.branches_failed.push((name.clone(), e.into()));
            }
            Err(e) => return Err(e),
        }
    }
    report.tags_created += new_tags.len();
    let rest: Vec<(String, RefValue)> = welcome
        .tags
        .iter()
        .filter(|(name, _)| !new_tags.contains(name.as_str()) && !same_tags.contains(name.as_str()))
        .cloned()
        .collect();
    blocking(|| take_tags(repo, &rest, &reason, &mut report))?;
    report.set_aside_reserved();
    report.bytes_in = wire.bytes_in;
    report.bytes_out = wire.bytes_out;
    Ok(report)
}

/// Pushes `branches` (all when `None`) of `repo` to the peer over `wire`.
pub async fn push<R, W>(
    wire: &mut Wire<R, W>,
    repo: &Repo,
    peer: &EndpointId,
    me: &EndpointId,
    branches: Option<&[String]>,
    progress: Option<&ProgressFn>,
) -> Result<SyncReport>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    // The peer advertises only the branches pushed (its other refs do not matter here).
    let welcome = handshake(wire, repo, Intent::Push, branches, peer, me).await?;
    if welcome.same_refs {
        return SyncReport::same_refs(repo, wire);
    }
    if welcome.access != Access::ReadWrite {
        return Err(SyncError::ReadOnly {
            peer: peer.to_string(),
            me: me.to_string(),
        });
    }
    let mut ours = repo.branches()?;
    // The membership travels only to a peer that trusts the same genesis; no other branch of
    // hero's own travels at all.
    let same_root = welcome.genesis.is_some() && membership::pinned(repo)? == welcome.genesis;
    ours.retain(|(n, _)| !membership::is_reserved(n) || (n == membership::BRANCH && same_root));
    if let Some(only) = branches {
        for b in only {
            if !ours.iter().any(|(n, _)| n == b) {
                return Err(SyncError::Store(hero_store::Error::UnknownRevision(
                    b.clone(),
                )));
            }
        }
        ours.retain(|(n, _)| only.contains(n));
    }
    // Tags travel with a push of everything; a push of named branches is about those only.
    let our_tags = if branches.is_some() {
        Vec::new()
    } else {
        repo.tags()?
    };
    let mut m = Enc::new(kind::PUSH);
    put_branches(&mut m, &ours);
    put_tags(&mut m, &our_tags);
    wire.send(&m).await?;
    wire.flush().await?;
    let wants = wire.expect(kind::WANTS).await?;
    let advertised = advertised(&ours, &our_tags);
    let stats = transfer::send_objects(wire, repo, &wants, &advertised, progress).await?;
    send_signatures(wire, repo, None).await?;
    let (k, body) = wire.recv_any().await?;
    if k == kind::ERROR {
        let mut d = Dec::new(&body);
        let c = d.u8()?;
        let msg = d.string()?;
        return Err(match c {
            code::PUSH_REFUSED => SyncError::PushRefused {
                peer: peer.to_string(),
                reason: msg,
            },
            code::PROTOCOL => SyncError::Remote(format!("it says we broke the protocol: {msg}")),
            _ => SyncError::Remote(msg),
        });
    }
    if k != kind::PUSH_RESULT {
        return Err(SyncError::protocol(format!(
            "expected message {}, got {k}",
            kind::PUSH_RESULT
        )));
    }
    let mut d = Dec::new(&body);
    let n = d.u32()? as usize;
    let mut report = SyncReport {
        transfer: stats,
        ..SyncReport::default()
    };
    for _ in 0..n.min(1_000_000) {
        let branch = d.string()?;
        let how = UpdateKind::from_code(d.u8()?)?;
        let conflicts = d.u32()? as usize;
        let new = d.id()?;
        let old = ours.iter().find(|(b, _)| *b == branch).map(|(_, id)| *id);
        report.peer_heads.push((branch.clone(), new));
        report.branches.push(BranchUpdate {
            branch,
            old,
            new,
            how,
            conflicts,
        });
    }
    report.tags_created = d.u32()? as usize;
    let differing = d.u32()? as usize;
    for _ in 0..differing.min(1_000_000) {
        report.tags_differing.push(d.string()?);
    }
    report.set_aside_reserved();
    report.bytes_in = wire.bytes_in;
    report.bytes_out = wire.bytes_out;
    Ok(report)
}

/// The server's side of one session with `peer` (whose id the transport authenticated) over
/// `wire`, without a key: invitations cannot be redeemed.
pub async fn serve<R, W>(wire: &mut Wire<R, W>, repo: &Repo, peer: &EndpointId) -> Result<()>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    serve_as(wire, repo, peer, None, None).await
}

/// The most bytes a peer that is not a member may send: one JOIN message.
const MAX_STRANGER_MESSAGE: usize = 1024;

/// The server's side of one session with `peer` over `wire`; `key` (this node's) lets a peer
/// that presents a valid invitation in (ADR 0018); `admitted` is called once the peer is let
/// in (the server then counts the connection among those to close if the peer is removed).
pub async fn serve_as<R, W>(
    wire: &mut Wire<R, W>,
    repo: &Repo,
    peer: &EndpointId,
    key: Option<&SecretKey>,
    admitted: Option<&(dyn Fn() + Send + Sync)>,
) -> Result<()>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    // Refuse strangers before saying anything about us; a stranger may present an
    // invitation (one small message), nothing else.
    let mut standing = blocking(|| gate::standing(repo, peer))?;
    let mut first: Option<(u8, Vec<u8>)> = None;
    if standing.access.is_none() {
        if let Some(key) = key
            && standing.membership.is_some()
        {
            let (k, body) = wire.recv_small(MAX_STRANGER_MESSAGE).await?;
            if k == kind::JOIN {
                let role = join(wire, repo, peer, key, &body).await?;
                standing = blocking(|| gate::standing(repo, peer))?;
                if standing.access.is_none() {
                    standing.access = Some(gate::access_of_role(role));
                }
            } else {
                first = Some((k, body));
            }
        }
        if standing.access.is_none() {
            let why = standing.describe();
            blocking(|| {
                audit::record(
                    repo,
                    Entry::new(Some(peer), "connect", Decision::Refused, why.clone())
                        .rule("not a member"),
                )
            });
            wire.send_error(code::NOT_ALLOWED, "not allowed").await;
            return Err(SyncError::NotAllowed {
                peer: peer.to_string(),
                me: String::new(),
            });
        }
    }
    let Some(access) = standing.access else {
        return Err(SyncError::NotAllowed {
            peer: peer.to_string(),
            me: String::new(),
        });
    };
    if let Some(f) = admitted {
        f();
    }
    let (k, body) = match first {
        Some(f) => f,
        None => wire.recv_any().await?,
    };
    let mut d = Dec::new(&body);
    if k != kind::HELLO || d.rest().get(..4) != Some(MAGIC.as_slice()) {
        wire.send_error(code::PROTOCOL, "expected a hello").await;
        return Err(SyncError::protocol("the first message is not a hello"));
    }
    let mut d = Dec::new(&body[4..]);
    let version = d.u32()?;
    if version != VERSION {
        wire.send_error(code::INCOMPATIBLE, &VERSION.to_string())
            .await;
        return Err(SyncError::Incompatible {
            ours: VERSION,
            theirs: version,
        });
    }
    let their_repo = d.id()?;
    let intent = match d.u8()? {
        1 => Intent::Pull,
        2 => Intent::Push,
        other => return Err(SyncError::protocol(format!("unknown intent {other}"))),
    };
    let they_are_empty = d.u8()? != 0;
    let named = d.u32()? as usize;
    if named > MAX_NAMED {
        return Err(SyncError::protocol("a hello names too many branches"));
    }
    let mut only = Vec::with_capacity(named);
    for _ in 0..named {
        only.push(d.string()?);
    }
    let mut their_digest = [0u8; 32];
    their_digest.copy_from_slice(d.raw(32)?);
    let ours = access::sync_repo_id(repo)?;
    let we_are_empty = is_empty(repo)?;
    if their_repo != ours && !they_are_empty {
        if intent == Intent::Push && we_are_empty {
            access::adopt_repo_id(repo, &their_repo)?;
        } else {
            wire.send_error(code::REPO_MISMATCH, &ours.to_hex()).await;
            return Err(SyncError::RepoMismatch {
                ours: ours.to_hex(),
                theirs: their_repo.to_hex(),
            });
        }
    }
    if intent == Intent::Push && access != Access::ReadWrite {
        let why = standing.describe();
        blocking(|| {
            audit::record(
                repo,
                Entry::new(Some(peer), "push", Decision::Refused, why.clone())
                    .rule("readers may not push"),
            )
        });
        wire.send_error(code::READ_ONLY, "read-only").await;
        return Err(SyncError::ReadOnly {
            peer: peer.to_string(),
            me: String::new(),
        });
    }
    let mut m = Enc::new(kind::WELCOME);
    m.u32(VERSION)
        .id(&access::sync_repo_id(repo)?)
        .u8(match access {
            Access::ReadWrite => 2,
            Access::ReadOnly => 1,
        });
    let (mut our_branches, mut our_tags) = (repo.branches()?, repo.tags()?);
    let same = only.is_empty()
        && their_digest != NO_DIGEST
        && their_digest == refs_digest(&our_branches, &our_tags);
    if !only.is_empty() {
        our_branches.retain(|(n, _)| only.contains(n));
        our_tags.clear();
    }
    if same {
        our_branches.clear();
        our_tags.clear();
    }
    put_branches(&mut m, &our_branches);
    put_tags(&mut m, &our_tags);
    m.bytes(repo.default_branch()?.as_bytes());
    m.u8(u8::from(same));
    match membership::pinned(repo)? {
        Some(g) => m.u8(1).0.extend_from_slice(&g.0),
        None => {
            m.u8(0);
        }
    }
    wire.send(&m).await?;
    wire.flush().await?;
    if same {
        // Both sides have the same refs: nothing to send either way.
        return Ok(());
    }
    match intent {
        Intent::Pull => {
            let wants = wire.expect(kind::WANTS).await?;
            let advertised = advertised(&our_branches, &our_tags);
            let stats = transfer::send_objects(wire, repo, &wants, &advertised, None).await?;
            send_signatures(wire, repo, key).await?;
            tracing::info!(
                "sync: sent {} objects ({} bytes) to {}",
                stats.objects,
                wire.bytes_out,
                peer.fmt_short()
            );
            let why = format!("{}; {} objects sent", standing.describe(), stats.objects);
            blocking(|| {
                audit::record(
                    repo,
                    Entry::new(Some(peer), "pull", Decision::Accepted, why),
                )
            });
        }
        Intent::Push => {
            let body = wire.expect(kind::PUSH).await?;
            let mut d = Dec::new(&body);
            let pushed = parse_branches(&mut d)?;
            let pushed_tags = parse_tags(&mut d)?;
            let ask = blocking(|| Ask::of(repo, &pushed, &pushed_tags, !only.is_empty()))?;
            let stats = transfer::receive_objects(wire, repo, &ask, None).await?;
            // Every check before any branch moves: one failing commit refuses the whole push.
            for (name, id) in &pushed {
                if blocking(|| repo.view()?.object_type(id))?.is_none() {
                    return Err(SyncError::protocol(format!(
                        "branch {name} was pushed without its commit"
                    )));
                }
            }
            let ordinary: Vec<ObjectId> = pushed
                .iter()
                .filter(|(n, _)| !membership::is_reserved(n))
                .map(|(_, id)| *id)
                .chain(pushed_tags.iter().map(|(_, v)| v.id()))
                .collect();
            let new_commits = fetch_signatures(wire, repo, &ordinary).await?;
            let incoming = pushed
                .iter()
                .find(|(n, _)| n == membership::BRANCH)
                .map(|(_, id)| *id);
            let mut refusal = blocking(|| gate::check_push(repo, &standing, peer, &pushed))?;
            if refusal.is_none() && standing.membership.is_some() {
                refusal =
                    blocking(|| crate::commitsig::check(repo, incoming, &new_commits))?.map(|r| {
                        gate::PushRefusal {
                            branch: String::new(),
                            commit: Some(r.commit),
                            path: r.path,
                            rule: r.rule,
                        }
                    });
            }
            if let Some(r) = refusal {
                let text = r.to_string();
                blocking(|| {
                    let mut e = Entry::new(Some(peer), "push", Decision::Refused, text.clone())
                        .rule(r.rule.clone());
                    e.commit = r.commit.map(|c| c.to_hex());
                    e.path = r.path.clone();
                    audit::record(repo, e)
                });
                wire.send_error(code::PUSH_REFUSED, &text).await;
                return Err(SyncError::PushRefused {
                    peer: peer.to_string(),
                    reason: text,
                });
            }
            let reason = format!("push from {}", peer.fmt_short());
            let mut m = Enc::new(kind::PUSH_RESULT);
            m.u32(pushed.len() as u32);
            for (name, id) in &pushed {
                let u = blocking(|| integrate(repo, name, *id, &reason))?;
                m.bytes(name.as_bytes())
                    .u8(u.how.code())
                    .u32(u.conflicts as u32)
                    .id(&u.new);
            }
            let mut tag_report = SyncReport::default();
            blocking(|| take_tags(repo, &pushed_tags, &reason, &mut tag_report))?;
            m.u32(tag_report.tags_created as u32);
            m.u32(tag_report.tags_differing.len() as u32);
            for t in &tag_report.tags_differing {
                m.bytes(t.as_bytes());
            }
            wire.send(&m).await?;
            wire.flush().await?;
            tracing::info!(
                "sync: received {} objects from {}",
                stats.objects,
                peer.fmt_short()
            );
            let names: Vec<&str> = pushed.iter().map(|(n, _)| n.as_str()).collect();
            let why = format!(
                "{}; {} objects received; branches {}",
                standing.describe(),
                stats.objects,
                names.join(", ")
            );
            blocking(|| {
                audit::record(
                    repo,
                    Entry::new(Some(peer), "push", Decision::Accepted, why),
                )
            });
        }
    }
    Ok(())
}

/// A JOIN from a peer that is not a member: redeems the invitation or refuses it (recorded
/// either way). The role granted.
async fn join<R, W>(
    wire: &mut Wire<R, W>,
    repo: &Repo,
    peer: &EndpointId,
    key: &SecretKey,
    body: &[u8],
) -> Result<membership::Role>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let mut d = Dec::new(body);
    let secret: [u8; 32] = d
        .raw(32)?
        .try_into()
        .map_err(|_| SyncError::protocol("bad invitation"))?;
    let name = d.string()?;
    match blocking(|| crate::invite::redeem(repo, key, &secret, peer, &name))? {
        Ok(role) => {
            blocking(|| {
                audit::record(
                    repo,
                    Entry::new(
                        Some(peer),
                        "join",
                        Decision::Accepted,
                        format!("invitation redeemed; added as {role}"),
                    ),
                )
            });
            let mut m = Enc::new(kind::JOINED);
            m.u8(match role {
                membership::Role::Owner => 1,
                membership::Role::Writer => 2,
                membership::Role::Reader => 3,
            });
            wire.send(&m).await?;
            wire.flush().await?;
            Ok(role)
        }
        Err(refusal) => {
            let text = refusal.to_string();
            blocking(|| {
                audit::record(
                    repo,
                    Entry::new(Some(peer), "join", Decision::Refused, text.clone())
                        .rule("invitation"),
                )
            });
            wire.send_error(code::INVITE_REFUSED, &text).await;
            Err(SyncError::InvitationRefused {
                peer: String::new(),
                reason: text,
            })
        }
    }
}

/// This node's key, for signing its own commits as they are sent: the key beside the
/// repository file (none for a repository without one, e.g. in memory).
fn own_key(repo: &Repo) -> Option<SecretKey> {
    let path = crate::identity::key_path(repo.path());
    if !path.exists() {
        return None;
    }
    crate::identity::load_or_create_key(repo.path()).ok()
}

/// Sender side of the signature exchange: answers the receiver's SIG_WANT.
async fn send_signatures<R, W>(
    wire: &mut Wire<R, W>,
    repo: &Repo,
    key: Option<&SecretKey>,
) -> Result<()>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let body = wire.expect(kind::SIG_WANT).await?;
    let ids = Dec::new(&body).ids()?;
    let key = key.cloned().or_else(|| blocking(|| own_key(repo)));
    let sigs = blocking(|| crate::commitsig::for_sending(repo, key.as_ref(), &ids))?;
    let mut m = Enc::new(kind::SIGS);
    m.0.extend_from_slice(&crate::commitsig::encode_list(&sigs));
    wire.send(&m).await?;
    wire.flush().await
}

/// Receiver side: asks for the signatures of the commits the transfer brought (those of
/// `heads` that no ref here reaches) and stores the ones that verify. The new commits.
/// When every head is already where one of this side's refs points (a pull with nothing
/// new), the history is not walked. (Present is not enough: objects of a refused push stay
/// stored, unreferenced, until gc, and must be checked again when offered again.)
async fn fetch_signatures<R, W>(
    wire: &mut Wire<R, W>,
    repo: &Repo,
    heads: &[ObjectId],
) -> Result<Vec<ObjectId>>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let new = blocking(|| -> Result<Vec<ObjectId>> {
        let view = repo.view()?;
        let mut at: hero_store::IdSet = view.branches()?.into_iter().map(|(_, id)| id).collect();
        at.extend(view.tags()?.into_iter().map(|(_, v)| v.id()));
        drop(view);
        if heads.iter().all(|h| at.contains(h)) {
            return Ok(Vec::new());
        }
        crate::commitsig::new_commits(repo, heads)
    })?;
    let mut m = Enc::new(kind::SIG_WANT);
    m.ids(&new);
    wire.send(&m).await?;
    wire.flush().await?;
    let body = wire.expect(kind::SIGS).await?;
    let sigs = crate::commitsig::decode_list(&body)?;
    let asked: hero_store::IdSet = new.iter().copied().collect();
    let sigs: Vec<_> = sigs
        .into_iter()
        .filter(|(c, _)| asked.contains(c))
        .collect();
    blocking(|| crate::commitsig::store(repo, &sigs))?;
    Ok(new)
}

/// The client's side of a join: presents the invitation's secret and a name, and waits for the
/// inviting peer's answer. A pull follows on the same stream.
pub async fn present_invitation<R, W>(
    wire: &mut Wire<R, W>,
    peer: &EndpointId,
    secret: &[u8; 32],
    name: &str,
) -> Result<()>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let mut m = Enc::new(kind::JOIN);
    m.0.extend_from_slice(secret);
    m.bytes(name.as_bytes());
    wire.send(&m).await?;
    wire.flush().await?;
    let (k, body) = wire.recv_any().await?;
    let mut d = Dec::new(&body);
    match k {
        kind::JOINED => Ok(()),
        kind::ERROR => {
            let c = d.u8()?;
            let msg = d.string()?;
            Err(match c {
                code::INVITE_REFUSED => SyncError::InvitationRefused {
                    peer: peer.to_string(),
                    reason: msg,
                },
                code::NOT_ALLOWED => SyncError::InvitationRefused {
                    peer: peer.to_string(),
                    reason: "it does not take invitations (no membership, or no key)".to_owned(),
                },
                _ => SyncError::Remote(msg),
            })
        }
        k => Err(SyncError::protocol(format!("expected joined, got {k}"))),
    }
}
