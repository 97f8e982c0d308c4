//! What evaluating the membership changes yields: the members and their roles, the changes
//! refused and why, and the errors of reading or writing the membership.

use std::collections::BTreeMap;

use automerge::{Automerge, Change, ChangeHash};
use iroh::{EndpointId, SecretKey};

use super::envelope::{Envelope, EnvelopeError, Op, Role, VerifiedChange, sign_change};
use super::glob::scope_matches;

/// A member, as the evaluation left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Path scopes of a writer (empty: everywhere; ignored for other roles).
    pub scopes: Vec<String>,
    /// Who added it (the author of the change that made it a member).
    pub added_by: EndpointId,
    /// When, by the adder's clock, in milliseconds since the Unix epoch (informational).
    pub added_at_ms: i64,
    /// The change that made it a member.
    pub added_in: ChangeHash,
    /// (causal depth of `added_in`, its hash): smaller is more senior.
    pub(crate) seniority: (u64, ChangeHash),
}

/// Which rule a refused change broke.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Rule {
    /// The envelope, its record or its change is malformed, too large or not canonical.
    #[error("malformed: {0}")]
    Malformed(String),
    /// The signature does not verify against the author's key.
    #[error("bad signature")]
    BadSignature,
    /// Stored under a name that is not its change hash.
    #[error("stored under another name than its hash")]
    Misfiled,
    /// Depends on changes that are missing (or themselves undecidable).
    #[error("depends on {} unknown change(s)", .0.len())]
    UnknownDeps(Vec<ChangeHash>),
    /// A change without dependencies that is not this repository's genesis.
    #[error("not this repository's genesis")]
    NotGenesis,
    /// The author was not an owner at the change's causal point.
    #[error("the author was not an owner at the change's causal point")]
    NotOwner,
    /// The target was not a member at the change's causal point.
    #[error("the target was not a member")]
    NotMember,
    /// The target already was a member (re-adding needs a change after the removal).
    #[error("the target already was a member")]
    AlreadyMember,
    /// It would remove or demote the last owner.
    #[error("it would remove or demote the last owner")]
    LastOwner,
    /// Scopes for a member that is not a writer.
    #[error("only writers have scopes")]
    ScopesOnlyForWriters,
}

/// A change that was not applied: which one, by whom, and why (for the audit log).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Refusal {
    /// The file it was stored as (`changes/<name>`), or the name it was offered under.
    pub file: String,
    /// Its change hash, when its envelope could be read.
    pub change: Option<ChangeHash>,
    /// Its author, when its envelope could be read.
    pub author: Option<EndpointId>,
    /// The rule it broke.
    pub rule: Rule,
}

impl Refusal {
    pub(super) fn of(v: &VerifiedChange, file: String, rule: Rule) -> Refusal {
        Refusal {
            file,
            change: Some(v.hash),
            author: Some(v.author),
            rule,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "membership change {} refused: {}", self.file, self.rule)?;
        if let Some(a) = &self.author {
            write!(f, " (author {a})")?;
        }
        Ok(())
    }
}

/// What can go wrong reading or writing the membership.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] hero_store::Error),
    /// A name the store refuses.
    #[error(transparent)]
    Name(#[from] hero_store::NameError),
    /// An envelope could not be made.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The change was refused; nothing was stored.
    #[error("{0}")]
    Refused(Box<Refusal>),
    /// The accepted changes do not form an automerge document automerge can load: an author's
    /// sequence numbers are not 1, 2, 3… or its operation counters go backwards (only a
    /// misbehaving signer makes such changes; the membership never depends on it).
    #[error("the accepted changes of {author} do not form a loadable automerge history")]
    NotADocument {
        /// The author whose changes are out of sequence.
        author: EndpointId,
    },
    /// Automerge refused the changes.
    #[error(transparent)]
    Automerge(#[from] automerge::AutomergeError),
    /// The repository already has a membership.
    #[error("the repository already has a membership")]
    AlreadyInitialized,
}

/// The membership computed from a set of changes.
#[derive(Debug, Clone)]
pub struct Membership {
    pub(super) members: BTreeMap<EndpointId, Member>,
    pub(super) heads: Vec<ChangeHash>,
    pub(super) genesis: Option<ChangeHash>,
    pub(super) last_seq: BTreeMap<EndpointId, u64>,
    pub(super) max_op: u64,
    pub(super) accepted: Vec<Change>,
}

impl PartialEq for Membership {
    fn eq(&self, other: &Self) -> bool {
        self.members == other.members && self.heads == other.heads && self.genesis == other.genesis
    }
}

impl Membership {
    /// A node's role, `None` when it is not a member.
    pub fn role_of(&self, node: &EndpointId) -> Option<Role> {
        self.members.get(node).map(|m| m.role)
    }

    /// A member.
    pub fn member(&self, node: &EndpointId) -> Option<&Member> {
        self.members.get(node)
    }

    /// The members, by node id.
    pub fn members(&self) -> impl Iterator<Item = (&EndpointId, &Member)> {
        self.members.iter()
    }

    /// The owners.
    pub fn owners(&self) -> impl Iterator<Item = &EndpointId> {
        self.members
            .iter()
            .filter(|(_, m)| m.role == Role::Owner)
            .map(|(id, _)| id)
    }

    /// Whether `node` may pull.
    pub fn may_read(&self, node: &EndpointId) -> bool {
        self.members.contains_key(node)
    }

    /// Whether `node` may change `path` (a repository path such as `services/web/x.conf`):
    /// owners everywhere, writers within their scopes (everywhere without scopes) except the
    /// configuration directory `.hero/` ([`hero_store::is_config_path`]): what makes the
    /// daemons act is written by owners only.
    pub fn may_write(&self, node: &EndpointId, path: &str) -> bool {
        match self.members.get(node) {
            Some(m) if m.role == Role::Owner => true,
            Some(_) if hero_store::is_config_path(path) => false,
            Some(m) if m.role == Role::Writer => {
                // A path that climbs out of a scope (`..`) or names `.` never matches one.
                m.scopes.is_empty()
                    || (path
                        .split('/')
                        .all(|seg| seg != "." && seg != ".." && !seg.contains('\0'))
                        && m.scopes.iter().any(|s| scope_matches(s, path)))
            }
            _ => false,
        }
    }

    /// The accepted changes no other accepted change follows (what a new change depends on).
    pub fn heads(&self) -> &[ChangeHash] {
        &self.heads
    }

    /// The genesis change, when it was accepted.
    pub fn genesis(&self) -> Option<ChangeHash> {
        self.genesis
    }

    /// The accepted changes, in causal order.
    pub fn accepted_changes(&self) -> &[Change] {
        &self.accepted
    }

    /// The accepted changes as an automerge document (each record under its own key).
    ///
    /// Automerge 0.12 panics on some histories a signer could make (an author's first change
    /// not numbered 1); those are checked here first and come back as
    /// [`MembershipError::NotADocument`]: every author's changes numbered 1, 2, 3… in causal
    /// order, each starting its operation counter after those of its dependencies.
    pub fn document(&self) -> Result<Automerge, MembershipError> {
        let mut next: BTreeMap<&[u8], u64> = BTreeMap::new();
        let mut max_op: BTreeMap<ChangeHash, u64> = BTreeMap::new();
        for c in &self.accepted {
            let actor = c.actor_id().to_bytes();
            let seq = next.entry(actor).or_insert(1);
            let after_deps = c
                .deps()
                .iter()
                .all(|d| max_op.get(d).is_some_and(|m| *m < c.start_op().get()));
            if c.seq() != *seq || !after_deps {
                let author = <[u8; 32]>::try_from(actor)
                    .ok()
                    .and_then(|b| EndpointId::from_bytes(&b).ok());
                return match author {
                    Some(author) => Err(MembershipError::NotADocument { author }),
                    None => Err(MembershipError::Envelope(EnvelopeError::BadAuthor)),
                };
            }
            *seq += 1;
            max_op.insert(c.hash(), c.max_op());
        }
        let mut doc = Automerge::new();
        doc.apply_changes(self.accepted.iter().cloned())?;
        Ok(doc)
    }

    /// Makes and signs a change by `key`'s node that follows everything accepted so far.
    pub fn change(
        &self,
        key: &SecretKey,
        op: &Op,
        time_ms: i64,
    ) -> Result<Envelope, EnvelopeError> {
        let seq = self.last_seq.get(&key.public()).copied().unwrap_or(0) + 1;
        sign_change(key, op, self.heads.clone(), seq, self.max_op + 1, time_ms)
    }
}
