//! What can go wrong while replicating, in words a user understands.

use std::path::{Path, PathBuf};

/// A replication error.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The peer could not be reached (offline, wrong address, firewall).
    #[error("peer {peer} is unreachable: {reason}")]
    Unreachable {
        /// The peer's endpoint id.
        peer: String,
        /// What the network layer said.
        reason: String,
    },
    /// The peer does not count this repository's node among its members (or allow list).
    #[error(
        "peer {peer} does not allow this repository (node id {me}): it is not a member; \
         on a peer of an owner run: heroctl member add {me} --role writer"
    )]
    NotAllowed {
        /// The peer that refused.
        peer: String,
        /// Our endpoint id, what the serving peer has to allow.
        me: String,
    },
    /// The peer allows us to pull only.
    #[error(
        "peer {peer} allows this repository to pull only (a reader); an owner runs: \
         heroctl member role {me} writer to allow pushing"
    )]
    ReadOnly {
        /// The peer that refused.
        peer: String,
        /// Our endpoint id.
        me: String,
    },
    /// The peer refused this node a moment ago (not a member, or past a limit) and closed the
    /// connection at once, before any work (`admission`, ADR 0038).
    #[error(
        "peer {peer} refused this repository (node id {me}) a moment ago and closed the \
         connection: it is not a member there, or it went past a limit; if an owner has just \
         added it, try again in a minute"
    )]
    RefusedRecently {
        /// The peer that refused.
        peer: String,
        /// Our endpoint id.
        me: String,
    },
    /// The peer speaks another version of the protocol.
    #[error(
        "incompatible version: this peer speaks sync protocol {ours}, the other {theirs}; upgrade the older one"
    )]
    Incompatible {
        /// Our protocol version.
        ours: u32,
        /// Theirs.
        theirs: u32,
    },
    /// The peer holds a different repository.
    #[error(
        "repository mismatch: this is repository {ours}, the peer serves {theirs} \
         (clone into a new repository instead)"
    )]
    RepoMismatch {
        /// Our repository id.
        ours: String,
        /// Theirs.
        theirs: String,
    },
    /// The peer sent something that breaks the protocol (bad object, garbage, oversized).
    #[error("peer sent bad data: {0}")]
    Protocol(String),
    /// The peer asked for more than one session may ask for in one message (signatures,
    /// wants, haves): bounded work per peer.
    #[error("peer sent bad data: {asked} {what} in one message, over the limit of {limit}")]
    OverLimit {
        /// What was counted.
        what: &'static str,
        /// How many the peer asked for.
        asked: u64,
        /// The most accepted.
        limit: u64,
    },
    /// The peer said nothing within the time a step allows (a silent connection holds no
    /// session slot longer than that).
    #[error("connection lost: the peer sent no {what} within {} s", waited.as_secs())]
    Silent {
        /// What was awaited.
        what: &'static str,
        /// How long.
        waited: std::time::Duration,
    },
    /// The peer reported an error of its own.
    #[error("the peer reported: {0}")]
    Remote(String),
    /// The connection broke (peer went away mid-transfer, timeout).
    #[error("connection lost: {0}")]
    Connection(String),
    /// A ticket or endpoint id that does not parse.
    #[error("invalid ticket {ticket:?}: {reason}")]
    BadTicket {
        /// What was given.
        ticket: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A remote name that is not saved.
    #[error("no remote named {0:?} (add it with `heroctl remote add NAME TICKET`)")]
    UnknownRemote(String),
    /// An invalid endpoint id.
    #[error("invalid endpoint id {0:?}")]
    BadId(String),
    /// The key file could not be read, written or understood.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The network endpoint could not start.
    #[error("cannot start networking: {0}")]
    Bind(String),
    /// Merging diverged branches failed.
    #[error("merging branch {branch}")]
    Merge {
        /// The branch.
        branch: String,
        /// Why.
        #[source]
        source: hero_store::merge::MergeError,
    },
    /// The membership could not be read or changed.
    #[error(transparent)]
    Membership(Box<crate::membership::MembershipError>),
    /// Only an owner may do this.
    #[error("this node ({0}) is not an owner of the repository's membership")]
    NotOwner(String),
    /// A path scope that is not a valid glob.
    #[error("invalid scope: {0}")]
    BadScope(String),
    /// The peer refused an invitation.
    #[error("invitation refused by peer {peer}: {reason}")]
    InvitationRefused {
        /// The peer that refused.
        peer: String,
        /// Why.
        reason: String,
    },
    /// The peer refused a push, whole, because of one commit or change.
    #[error("push refused by peer {peer}: {reason}")]
    PushRefused {
        /// The peer that refused.
        peer: String,
        /// Which branch, commit, path and rule.
        reason: String,
    },
    /// A peer's membership history was not taken: it brings a change that breaks the rules.
    #[error("the peer's membership was not taken: {0}")]
    MembershipRefused(String),
    /// A peer's history was not taken: a commit in it fails the checks of ADR 0018.
    #[error("history refused: {0}")]
    HistoryRefused(String),
    /// The local repository failed.
    #[error(transparent)]
    Store(#[from] hero_store::Error),
    /// Local I/O failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Result with [`SyncError`].
pub type Result<T, E = SyncError> = std::result::Result<T, E>;

impl From<crate::membership::MembershipError> for SyncError {
    fn from(e: crate::membership::MembershipError) -> Self {
        SyncError::Membership(Box::new(e))
    }
}

impl SyncError {
    pub(crate) fn protocol(msg: impl Into<String>) -> Self {
        SyncError::Protocol(msg.into())
    }
}

/// Why the key file cannot give a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or creating it failed.
    #[error("key file {}: {source}", path.display())]
    Io {
        /// The key file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// It is empty: it never held a key (an older version could leave one behind when two
    /// first runs raced or one was killed).
    #[error("key file {} is empty", path.display())]
    Empty {
        /// The key file.
        path: PathBuf,
    },
    /// It holds something that is not a secret key.
    #[error("key file {} holds no secret key", path.display())]
    Invalid {
        /// The key file.
        path: PathBuf,
    },
}

impl KeyError {
    /// The key file concerned.
    pub fn path(&self) -> &Path {
        match self {
            KeyError::Io { path, .. } | KeyError::Empty { path } | KeyError::Invalid { path } => {
                path
            }
        }
    }
}
