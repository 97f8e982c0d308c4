//! One sync session over a framed stream: the handshake (version, repository, access), then a
//! pull (the server sends) or a push (the server receives), then branch moves.
//!
//! `handshake.rs` the hello, the welcome and invitations; `client.rs` a client's pull and
//! push; `server.rs` the server's side of both; `refs.rs` branch and tag lists on the wire and
//! the branch moves (`integrate`); `signatures.rs` commit signatures sent after a pack. This
//! module keeps the session's report and the refs digest.

mod client;
mod handshake;
mod refs;
mod server;
mod signatures;

pub use client::{pull, pull_only, push};
pub use handshake::present_invitation;
pub(crate) use handshake::{Ask, hello};
pub use refs::{TagOutcome, integrate, integrate_tag};
pub use server::{serve, serve_as};

use hero_store::{ObjectId, RefValue, Repo};

use crate::error::{Result, SyncError};
use crate::membership;
use crate::transfer::TransferStats;
use crate::wire::Wire;

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

/// Whether a repository has no branch yet (a clone target); hero's own branches (the
/// membership) do not count.
fn is_empty(repo: &Repo) -> Result<bool> {
    Ok(repo
        .branches()?
        .iter()
        .all(|(n, _)| membership::is_reserved(n)))
}
