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

use hero_store::ObjectId;
use hero_store::codec::{ByteReader, ReadError};
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
        Announcements { receiver },
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
    /// The next valid announcement or new neighbour; `None` when the topic is closed. Invalid
    /// announcements are logged and skipped.
    pub async fn next(&mut self) -> Option<Heard> {
        use n0_future::StreamExt;
        loop {
            match self.receiver.next().await? {
                Ok(iroh_gossip::api::Event::NeighborUp(peer)) => return Some(Heard::PeerUp(peer)),
                Ok(iroh_gossip::api::Event::Received(m)) => {
                    match Announcement::decode(&m.content) {
                        Ok(a) => return Some(Heard::Announced(a)),
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
