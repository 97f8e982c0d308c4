//! The start of every session: hello and welcome (version, repository, access, the refs digest
//! that ends a session with nothing to do), and one-time invitations.

use hero_store::{ObjectId, RefValue, Repo};
use iroh::{EndpointId, SecretKey};
use tokio::io::{AsyncRead, AsyncWrite};

use super::refs::{
    MAX_NAMED, RefSet, agreed, apply_delta, keep_agreed, parse_branches, parse_tags, welcome_form,
};
use crate::access::{self, Access};
use crate::audit::{self, Decision, Entry};
use crate::error::{Result, SyncError};
use crate::membership;
use crate::transfer::blocking;
use crate::wire::{Dec, Enc, MAGIC, VERSION, Wire, code, hello_field, kind, welcome_field};

/// What a client wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Receive from the server.
    Pull,
    /// Send to the server.
    Push,
}

impl Intent {
    pub(super) fn code(self) -> u8 {
        match self {
            Intent::Pull => 1,
            Intent::Push => 2,
        }
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
pub(super) const NO_DIGEST: [u8; 32] = [0; 32];

/// Whether a repository has no branch yet (a clone target); hero's own branches (the
/// membership) do not count.
pub(super) fn is_empty(repo: &Repo) -> Result<bool> {
    Ok(repo
        .branches()?
        .iter()
        .all(|(n, _)| membership::is_reserved(n)))
}

/// The client's hello; `only` names the branches the session is about (`None`: every ref);
/// `digest` is the client's [`refs_digest`] (or [`NO_DIGEST`]), `agreed` the digest of the
/// server's refs as the client last received them (or [`NO_DIGEST`]).
pub(crate) fn hello(
    repo_id: &ObjectId,
    intent: Intent,
    empty: bool,
    only: Option<&[String]>,
    digest: &[u8; 32],
    agreed: &[u8; 32],
) -> Enc {
    Hello {
        version: VERSION,
        repo: *repo_id,
        intent,
        empty,
        only: only.map(<[String]>::to_vec).unwrap_or_default(),
        digest: *digest,
        agreed: *agreed,
        early: None,
    }
    .encode()
}

/// A pull's wants sent with the hello: taken by the server when its advertisement of the
/// named branches is exactly `heads` (the client learned them from an announcement), so the
/// objects follow the welcome without another round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlyWants {
    /// The head the client expects of each named branch, in the order named.
    pub heads: Vec<ObjectId>,
    /// A WANTS body computed against those heads as if they were the advertisement.
    pub wants: Vec<u8>,
}

/// A HELLO message (the body after its kind byte).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The protocol version the client speaks.
    pub version: u32,
    /// The client's sync repository id.
    pub repo: ObjectId,
    /// Pull or push.
    pub intent: Intent,
    /// The client has no branch but hero's own.
    pub empty: bool,
    /// The branches the session is about (empty: every ref).
    pub only: Vec<String>,
    /// The client's refs digest, or [`NO_DIGEST`] (not sent).
    pub digest: [u8; 32],
    /// The agreed digest, or [`NO_DIGEST`] (not sent).
    pub agreed: [u8; 32],
    /// A pull's wants, sent ahead.
    pub early: Option<EarlyWants>,
}

impl Hello {
    /// The message.
    pub fn encode(&self) -> Enc {
        let mut m = Enc::new(kind::HELLO);
        m.0.extend_from_slice(MAGIC);
        m.u32(self.version)
            .id(&self.repo)
            .u8(self.intent.code())
            .u8(u8::from(self.empty));
        m.u32(self.only.len() as u32);
        for b in &self.only {
            m.bytes(b.as_bytes());
        }
        let mut fields = 0;
        if self.digest != NO_DIGEST {
            fields |= hello_field::DIGEST;
        }
        if self.agreed != NO_DIGEST {
            fields |= hello_field::AGREED;
        }
        if self.early.is_some() {
            fields |= hello_field::WANTS;
        }
        m.u8(fields);
        if self.digest != NO_DIGEST {
            m.0.extend_from_slice(&self.digest);
        }
        if self.agreed != NO_DIGEST {
            m.0.extend_from_slice(&self.agreed);
        }
        if let Some(e) = &self.early {
            for h in &e.heads {
                m.id(h);
            }
            m.bytes(&e.wants);
        }
        m
    }

    /// The version a hello body (after its kind byte) speaks: every version starts with the
    /// magic and the version.
    pub fn version_of(body: &[u8]) -> Result<u32> {
        let mut d = Dec::new(body);
        if d.raw(4)? != MAGIC.as_slice() {
            return Err(SyncError::protocol("the first message is not a hello"));
        }
        d.u32()
    }

    /// Reads a hello body (after its kind byte) of this build's version.
    pub fn decode(body: &[u8]) -> Result<Hello> {
        let version = Self::version_of(body)?;
        if version != VERSION {
            return Err(SyncError::Incompatible {
                ours: VERSION,
                theirs: version,
            });
        }
        let mut d = Dec::new(&body[8..]);
        let repo = d.id()?;
        let intent = match d.u8()? {
            1 => Intent::Pull,
            2 => Intent::Push,
            other => return Err(SyncError::protocol(format!("unknown intent {other}"))),
        };
        let empty = d.u8()? != 0;
        let named = d.u32()? as usize;
        if named > MAX_NAMED {
            return Err(SyncError::protocol("a hello names too many branches"));
        }
        let mut only = Vec::with_capacity(named);
        for _ in 0..named {
            only.push(d.string()?);
        }
        let fields = d.u8()?;
        if fields & !hello_field::ALL != 0 {
            return Err(SyncError::protocol(format!(
                "unknown hello fields {fields:#04x}"
            )));
        }
        let mut digest = NO_DIGEST;
        if fields & hello_field::DIGEST != 0 {
            digest.copy_from_slice(d.raw(32)?);
        }
        let mut agreed = NO_DIGEST;
        if fields & hello_field::AGREED != 0 {
            agreed.copy_from_slice(d.raw(32)?);
        }
        let early = if fields & hello_field::WANTS != 0 {
            if intent != Intent::Pull || only.is_empty() {
                return Err(SyncError::protocol(
                    "wants in a hello that pulls no named branches",
                ));
            }
            let mut heads = Vec::with_capacity(only.len());
            for _ in 0..only.len() {
                heads.push(d.id()?);
            }
            let wants = d.bytes()?.to_vec();
            Some(EarlyWants { heads, wants })
        } else {
            None
        };
        Ok(Hello {
            version,
            repo,
            intent,
            empty,
            only,
            digest,
            agreed,
            early,
        })
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
    /// The server took the wants the hello carried: the objects follow.
    pub taken: bool,
}

/// Client side of the handshake: hello (with `early` wants of a pull, when given), then the
/// welcome or a refusal in words.
pub(crate) async fn handshake<R, W>(
    wire: &mut Wire<R, W>,
    repo: &Repo,
    intent: Intent,
    only: Option<&[String]>,
    early: Option<EarlyWants>,
    peer: &EndpointId,
    me: &EndpointId,
) -> Result<Welcome>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let ours = access::sync_repo_id(repo)?;
    let empty = is_empty(repo)?;
    // The refs the digest is taken of are kept: a welcome may be a delta against them.
    let mine = if only.is_none() && !empty {
        Some(blocking(|| RefSet::of(repo))?)
    } else {
        None
    };
    let digest = mine.as_ref().map_or(NO_DIGEST, RefSet::digest);
    // The peer's refs as they were last received: a base the peer may remember even when
    // this side's own refs are no set the peer ever had.
    let last = if only.is_none() {
        blocking(|| agreed(repo, peer))?
    } else {
        None
    };
    let last_digest = last.as_ref().map_or(NO_DIGEST, |(_, d)| *d);
    // The refs the early wants were made against: the welcome's when the server took them.
    let expected: Option<Vec<(String, ObjectId)>> = early.as_ref().map(|e| {
        only.unwrap_or_default()
            .iter()
            .cloned()
            .zip(e.heads.iter().copied())
            .collect()
    });
    let m = Hello {
        version: VERSION,
        repo: ours,
        intent,
        empty,
        only: only.map(<[String]>::to_vec).unwrap_or_default(),
        digest,
        agreed: last_digest,
        early,
    }
    .encode();
    wire.send(&m).await?;
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
    let fields = d.u8()?;
    if fields & !welcome_field::ALL != 0 {
        return Err(SyncError::protocol(format!(
            "unknown welcome fields {fields:#04x}"
        )));
    }
    let repo_id = if fields & welcome_field::REPO != 0 {
        d.id()?
    } else {
        ours
    };
    let taken = fields & welcome_field::TAKEN != 0;
    let access = match d.u8()? {
        2 => Access::ReadWrite,
        _ => Access::ReadOnly,
    };
    let form = d.u8()?;
    let (branches, tags) = match (form, &mine) {
        (welcome_form::SAME, _) => (Vec::new(), Vec::new()),
        (welcome_form::FULL, _) => (parse_branches(&mut d)?, parse_tags(&mut d)?),
        (welcome_form::DELTA, Some(mine)) => {
            let set = apply_delta(&mut d, mine)?;
            (set.branches, set.tags)
        }
        (welcome_form::DELTA_AGREED, _) => {
            let Some((base, _)) = &last else {
                return Err(SyncError::protocol("a refs delta against no refs"));
            };
            let set = apply_delta(&mut d, base)?;
            (set.branches, set.tags)
        }
        (welcome_form::EXPECTED, _) => match (&expected, taken) {
            (Some(heads), true) => (heads.clone(), Vec::new()),
            _ => return Err(SyncError::protocol("expected refs without wants taken")),
        },
        (k, _) => return Err(SyncError::protocol(format!("unknown welcome form {k}"))),
    };
    if taken && form != welcome_form::EXPECTED {
        return Err(SyncError::protocol("wants taken with refs sent"));
    }
    let same_refs = form == welcome_form::SAME;
    let default_branch = d.string()?;
    hero_store::branch_ref(&default_branch)
        .map_err(|e| SyncError::protocol(format!("bad default branch {default_branch:?}: {e}")))?;
    let genesis = if fields & welcome_field::GENESIS != 0 {
        Some(automerge::ChangeHash(
            d.raw(32)?
                .try_into()
                .map_err(|_| SyncError::protocol("bad genesis"))?,
        ))
    } else {
        None
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
    // Kept once the peer is known to hold this repository: the base of the next session's
    // delta.
    if only.is_none() && !same_refs {
        let set = RefSet::sorted(branches.clone(), tags.clone());
        let kept = last.as_ref().map(|(_, d)| d);
        blocking(|| keep_agreed(repo, peer, &set, kept))?;
    }
    Ok(Welcome {
        access,
        branches,
        tags,
        default_branch,
        same_refs,
        genesis,
        taken,
    })
}

/// A JOIN from a peer that is not a member: redeems the invitation or refuses it (recorded
/// either way). The role granted.
pub(super) async fn join<R, W>(
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
