//! Change announcements: peers of one repository share an iroh-gossip topic derived from its
//! id, and a peer whose branch heads moved says so there, signed with its key.
//!
//! An announcement is only a hint: the receiver checks the signature and that it has not got
//! the heads already, then pulls from the announcer over the sync protocol, which verifies
//! everything as any pull does.
//!
//! Wire form (`MAGIC`, then): version `u8` = 1, announcer id (32 bytes), time (`u64` BE, Unix
//! seconds), branch count (`u16` BE), per branch: name length (`u8`), name, head (32 bytes);
//! then an ed25519 signature (64 bytes) over everything before it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hero_store::codec::{ByteReader, ReadError};
use hero_store::{ObjectId, Repo};
use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler};
use iroh::{EndpointId, PublicKey, SecretKey, Signature};
use iroh_gossip::TopicId;

use crate::error::{Result, SyncError};

const MAGIC: &[u8; 4] = b"HANN";
const VERSION: u8 = 1;
/// Most branches one announcement carries (the rest are found by the pull).
pub const MAX_BRANCHES: usize = 256;

/// The gossip topic of the repository whose (sync) id is `repo_id`.
pub fn topic_of(repo_id: &ObjectId) -> TopicId {
    let mut h = blake3::Hasher::new();
    h.update(b"hero-store/announce/1\0");
    h.update(repo_id.as_bytes());
    TopicId::from_bytes(*h.finalize().as_bytes())
}

/// A peer's branch heads, as it announced them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// Who announced (the key that signed it).
    pub from: EndpointId,
    /// When, by its clock (Unix seconds).
    pub time: u64,
    /// Branch heads.
    pub heads: Vec<(String, ObjectId)>,
}

impl Announcement {
    /// Encodes and signs (branches beyond [`MAX_BRANCHES`] and names longer than 255 bytes
    /// are left out).
    pub fn encode(&self, key: &SecretKey) -> Vec<u8> {
        let heads: Vec<&(String, ObjectId)> = self
            .heads
            .iter()
            .filter(|(n, _)| n.len() <= 255)
            .take(MAX_BRANCHES)
            .collect();
        let mut out = Vec::with_capacity(64 + heads.len() * 48);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(key.public().as_bytes());
        out.extend_from_slice(&self.time.to_be_bytes());
        out.extend_from_slice(&(heads.len() as u16).to_be_bytes());
        for (name, id) in heads {
            out.push(name.len() as u8);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(id.as_bytes());
        }
        let sig = key.sign(&out);
        out.extend_from_slice(&sig.to_bytes());
        out
    }

    /// Decodes an announcement and checks its signature.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let bad = |why: &str| SyncError::protocol(format!("announcement: {why}"));
        if bytes.len() < MAGIC.len() + 1 + 32 + 8 + 2 + 64 {
            return Err(bad("too short"));
        }
        let (body, sig) = bytes.split_at(bytes.len() - 64);
        let mut r = ByteReader::new(body);
        let truncated = |_: ReadError| bad("truncated");
        if r.take(4).map_err(truncated)? != MAGIC {
            return Err(bad("not an announcement"));
        }
        if r.u8().map_err(truncated)? != VERSION {
            return Err(bad("unknown version"));
        }
        let from_bytes: [u8; 32] = r.array().map_err(truncated)?;
        let from = PublicKey::from_bytes(&from_bytes).map_err(|_| bad("not a key"))?;
        let sig_bytes: [u8; 64] = sig.try_into().map_err(|_| bad("signature"))?;
        from.verify(body, &Signature::from_bytes(&sig_bytes))
            .map_err(|_| bad("bad signature"))?;
        let time = r.u64_be().map_err(truncated)?;
        let n = usize::from(r.u16_be().map_err(truncated)?);
        if n > MAX_BRANCHES {
            return Err(bad("too many branches"));
        }
        let mut heads = Vec::with_capacity(n);
        for _ in 0..n {
            let len = usize::from(r.u8().map_err(truncated)?);
            let name = std::str::from_utf8(r.take(len).map_err(truncated)?)
                .map_err(|_| bad("branch name"))?
                .to_owned();
            heads.push((name, r.id().map_err(truncated)?));
        }
        if !r.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(Announcement { from, time, heads })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tampering() {
        let key = SecretKey::generate();
        let a = Announcement {
            from: key.public(),
            time: 7,
            heads: vec![("main".into(), ObjectId::of(b"x"))],
        };
        let bytes = a.encode(&key);
        assert_eq!(Announcement::decode(&bytes).unwrap(), a);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 1;
            assert!(Announcement::decode(&b).is_err(), "byte {i}");
        }
        assert!(Announcement::decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn old_future_and_replayed_announcements_are_not_fresh() {
        let now = 1_800_000_000;
        let age = MAX_ANNOUNCEMENT_AGE.as_secs();
        assert_eq!(freshness(now, now, None), Ok(()));
        assert_eq!(freshness(now - age, now, None), Ok(()));
        assert_eq!(freshness(now - age - 1, now, None), Err(Stale::TooOld));
        let ahead = MAX_ANNOUNCEMENT_AHEAD.as_secs();
        assert_eq!(freshness(now + ahead, now, None), Ok(()));
        assert_eq!(
            freshness(now + ahead + 1, now, None),
            Err(Stale::FromTheFuture)
        );
        assert_eq!(
            freshness(now - 5, now, Some(now - 4)),
            Err(Stale::Superseded)
        );
        assert_eq!(freshness(now - 4, now, Some(now - 4)), Ok(()));
        assert_eq!(freshness(0, now, None), Err(Stale::TooOld));
        assert_eq!(freshness(u64::MAX, now, None), Err(Stale::FromTheFuture));
    }
}

/// Announces this peer's heads on the repository's topic and learns peers' addresses.
#[derive(Debug)]
pub struct Announcer {
    sender: iroh_gossip::api::GossipSender,
    lookup: iroh::address_lookup::MemoryLookup,
    key: SecretKey,
}

/// The announcements other peers make, signature checked.
#[derive(Debug)]
pub struct Announcements {
    receiver: iroh_gossip::api::GossipReceiver,
    /// When set, announcements of peers that are not members of this repository are dropped.
    members_of: Option<Arc<Repo>>,
    /// The time of the newest announcement taken from each announcer (at most
    /// [`MAX_ANNOUNCERS`] remembered).
    newest: HashMap<EndpointId, u64>,
}

/// How old an announcement may be when it arrives (its time, by the announcer's clock, against
/// this peer's): an older one is a replay or was held back, and is dropped.
pub const MAX_ANNOUNCEMENT_AGE: Duration = Duration::from_secs(10 * 60);
/// How far ahead of this peer's clock an announcement's time may be.
pub const MAX_ANNOUNCEMENT_AHEAD: Duration = Duration::from_secs(2 * 60);
/// Announcers whose newest time is remembered (more forget the oldest entries at once).
pub const MAX_ANNOUNCERS: usize = 4096;

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Why an announcement that verifies is not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    /// Older than [`MAX_ANNOUNCEMENT_AGE`].
    TooOld,
    /// Further ahead than [`MAX_ANNOUNCEMENT_AHEAD`].
    FromTheFuture,
    /// Older than one already taken from the same announcer (a replay).
    Superseded,
}

/// Whether an announcement made at `time` (announcer's clock) is fresh at `now`, given the
/// newest time already taken from its announcer.
pub fn freshness(time: u64, now: u64, newest: Option<u64>) -> Result<(), Stale> {
    if time.saturating_add(MAX_ANNOUNCEMENT_AGE.as_secs()) < now {
        return Err(Stale::TooOld);
    }
    if time > now.saturating_add(MAX_ANNOUNCEMENT_AHEAD.as_secs()) {
        return Err(Stale::FromTheFuture);
    }
    if newest.is_some_and(|n| time < n) {
        return Err(Stale::Superseded);
    }
    Ok(())
}

/// The gossip protocol behind the membership: a connection on the gossip ALPN from a peer that
/// may not read the repository is closed (and audited) before gossip sees any of it.
#[derive(Debug, Clone)]
pub(crate) struct Gated {
    pub(crate) gossip: iroh_gossip::Gossip,
    pub(crate) repo: Arc<Repo>,
    /// Shared with the sync handler: a node id refused there is refused here too.
    pub(crate) admission: Arc<crate::admission::Admission>,
}

impl ProtocolHandler for Gated {
    async fn accept(&self, conn: Connection) -> std::result::Result<(), AcceptError> {
        let peer = conn.remote_id();
        let head = || crate::transfer::blocking(|| crate::net::membership_head(&self.repo));
        if self
            .admission
            .is_refused(&peer, std::time::Instant::now(), head)
        {
            conn.close(
                crate::admission::REFUSED_RECENTLY.into(),
                b"refused recently",
            );
            return Ok(());
        }
        let standing = crate::transfer::blocking(|| crate::gate::standing(&self.repo, &peer));
        match standing {
            Ok(s) if s.access.is_some() => self.gossip.accept(conn).await,
            other => {
                let why = match other {
                    Ok(s) => s.describe(),
                    Err(e) => format!("membership unreadable: {e}"),
                };
                tracing::warn!("announcements: refused gossip connection of {peer}: {why}");
                let head = crate::transfer::blocking(|| crate::net::membership_head(&self.repo));
                self.admission
                    .refuse_id(peer, head, std::time::Instant::now());
                crate::transfer::blocking(|| {
                    crate::audit::record(
                        &self.repo,
                        crate::audit::Entry::new(
                            Some(&peer),
                            "gossip",
                            crate::audit::Decision::Refused,
                            why,
                        )
                        .rule("not a member"),
                    )
                });
                conn.close(1u32.into(), b"not a member");
                Ok(())
            }
        }
    }

    async fn shutdown(&self) {
        ProtocolHandler::shutdown(&self.gossip).await
    }
}

/// Joins the topic of `repo_id` on the endpoint of `server` (started with
/// [`crate::serve_announced`]), with `peers` as the first neighbours. Returns at once; the
/// topic is joined as peers answer.
pub async fn start(
    server: &crate::Server,
    gossip: &iroh_gossip::Gossip,
    key: SecretKey,
    repo_id: &ObjectId,
    peers: &[crate::Ticket],
) -> Result<(Announcer, Announcements)> {
    let lookup = iroh::address_lookup::MemoryLookup::new();
    server
        .endpoint()
        .address_lookup()
        .map_err(|e| SyncError::Bind(e.to_string()))?
        .add(lookup.clone());
    for t in peers {
        lookup.add_endpoint_info(t.addr.clone());
    }
    let me = key.public();
    let bootstrap: Vec<EndpointId> = peers
        .iter()
        .map(|t| t.id())
        .filter(|id| *id != me)
        .collect();
    let topic = gossip
        .subscribe(topic_of(repo_id), bootstrap)
        .await
        .map_err(|e| SyncError::Bind(format!("joining the announcement topic: {e}")))?;
    let (sender, receiver) = topic.split();
    Ok((
        Announcer {
            sender,
            lookup,
            key,
        },
        Announcements {
            receiver,
            members_of: None,
            newest: HashMap::new(),
        },
    ))
}

impl Announcer {
    /// Remembers how to reach a peer and makes it a neighbour on the topic.
    pub async fn learn(&self, ticket: &crate::Ticket) {
        self.lookup.add_endpoint_info(ticket.addr.clone());
        if ticket.id() != self.key.public()
            && let Err(e) = self.sender.join_peers(vec![ticket.id()]).await
        {
            tracing::debug!("announcements: joining {}: {e}", ticket.id());
        }
    }

    /// Says that this peer's heads are now `heads`.
    pub async fn announce(&self, heads: Vec<(String, ObjectId)>) {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let a = Announcement {
            from: self.key.public(),
            time,
            heads,
        };
        let bytes = bytes::Bytes::from(a.encode(&self.key));
        if let Err(e) = self.sender.broadcast(bytes).await {
            tracing::debug!("announcements: broadcast failed: {e}");
        }
    }
}

/// What the topic brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// A valid announcement.
    Announced(Announcement),
    /// A peer became a direct neighbour in the topic: it is reachable (again). What either
    /// side changed while they could not talk was announced to no one; a catch-up with it
    /// finds it.
    PeerUp(EndpointId),
}

impl Announcements {
    /// Drops, from now on, announcements of peers that are not members of `repo` (or not on
    /// its allow list).
    pub fn only_members(mut self, repo: Arc<Repo>) -> Self {
        self.members_of = Some(repo);
        self
    }

    /// Whether an announcement that verifies is taken: fresh, not older than the last one of
    /// its announcer, from a member.
    fn take(&mut self, a: &Announcement) -> std::result::Result<(), String> {
        freshness(a.time, now_secs(), self.newest.get(&a.from).copied())
            .map_err(|s| format!("{s:?} (made at {})", a.time))?;
        if let Some(repo) = &self.members_of {
            let member = crate::transfer::blocking(|| crate::gate::standing(repo, &a.from))
                .map(|s| s.access.is_some())
                .unwrap_or(false);
            if !member {
                return Err("its announcer is not a member".to_owned());
            }
        }
        if self.newest.len() >= MAX_ANNOUNCERS && !self.newest.contains_key(&a.from) {
            self.newest.clear();
        }
        self.newest.insert(a.from, a.time);
        Ok(())
    }

    /// The next valid announcement or new neighbour; `None` when the topic is closed. Invalid
    /// announcements are logged and skipped.
    pub async fn next(&mut self) -> Option<Heard> {
        use n0_future::StreamExt;
        loop {
            match self.receiver.next().await? {
                Ok(iroh_gossip::api::Event::NeighborUp(peer)) => return Some(Heard::PeerUp(peer)),
                Ok(iroh_gossip::api::Event::Received(m)) => {
                    match Announcement::decode(&m.content) {
                        Ok(a) => {
                            if let Err(why) = self.take(&a) {
                                tracing::info!(
                                    "announcements: dropped one of {} delivered by {}: {why}",
                                    a.from,
                                    m.delivered_from
                                );
                                continue;
                            }
                            return Some(Heard::Announced(a));
                        }
                        Err(e) => tracing::debug!(
                            "announcements: dropped a message delivered by {}: {e}",
                            m.delivered_from
                        ),
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!("announcements: {e}");
                    return None;
                }
            }
        }
    }
}
