//! What a session did: the branches it moved and how, the tags, the objects and bytes.

use hero_store::{ObjectId, Repo};

use crate::error::{Result, SyncError};
use crate::membership;
use crate::transfer::TransferStats;
use crate::wire::Wire;

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
    pub(super) fn code(self) -> u8 {
        match self {
            UpdateKind::Created => 1,
            UpdateKind::FastForward => 2,
            UpdateKind::Merged => 3,
            UpdateKind::UpToDate => 4,
        }
    }
    pub(super) fn from_code(c: u8) -> Result<Self> {
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
    /// Round trips: the times this side waited for the peer after sending.
    pub round_trips: u64,
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
    /// How the session used its connection, when it ran on a pooled one ([`crate::Pool`]).
    pub connection: Option<ConnectionUse>,
}

/// What one session cost its pooled connection: whether the connection was already open, and
/// the UDP payload the connection carried while the session ran (QUIC headers, acknowledgements
/// and whatever else the connection sent meanwhile included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionUse {
    /// The session ran on a connection that was open before it (no handshake).
    pub reused: bool,
    /// Connections the pool has dialled since it started, this one's included.
    pub dials: u64,
    /// UDP datagrams sent on the connection during the session.
    pub datagrams_sent: u64,
    /// UDP payload bytes sent on the connection during the session.
    pub udp_bytes_sent: u64,
    /// UDP datagrams received on the connection during the session.
    pub datagrams_received: u64,
    /// UDP payload bytes received on the connection during the session.
    pub udp_bytes_received: u64,
}

impl SyncReport {
    /// The report of a session that ended at the welcome: both sides had the same refs.
    pub(super) fn same_refs<R, W>(repo: &Repo, wire: &Wire<R, W>) -> Result<SyncReport> {
        Ok(SyncReport {
            peer_heads: repo.branches()?,
            same_refs: true,
            bytes_in: wire.bytes_in,
            bytes_out: wire.bytes_out,
            round_trips: wire.round_trips,
            ..SyncReport::default()
        })
    }

    /// Moves hero's own branches out of `branches` (the membership into `membership`).
    pub(super) fn set_aside_reserved(&mut self) {
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
