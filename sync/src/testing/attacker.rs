//! A peer that speaks the sync protocol directly and lies: what the tests of a server's limits
//! play against a real server process. Built on [`RawPeer`]; each step is one message, so a
//! test can stop, repeat or falsify any of them. Not a stable API.

use std::time::{Duration, Instant};

use hero_store::{ObjectId, RefValue, Repo};
use iroh::EndpointId;

use super::RawPeer;
use crate::error::{Result, SyncError};
use crate::session::{Intent, handshake};
use crate::wire::{Enc, kind};

/// What a server advertised in its welcome.
#[derive(Debug, Clone, Default)]
pub struct Advertised {
    /// Its branches.
    pub branches: Vec<(String, ObjectId)>,
    /// Its tags.
    pub tags: Vec<(String, RefValue)>,
}

impl Advertised {
    /// The advertised ids, in the order a WANTS bitmap follows (branches, then tags).
    pub fn ids(&self) -> Vec<ObjectId> {
        crate::transfer::advertised(&self.branches, &self.tags)
    }
}

/// How a connection ended, as the peer saw it.
#[derive(Debug)]
pub struct Ended {
    /// How long after the call it ended.
    pub after: Duration,
    /// What the read said (the server's ERROR text, or why the connection closed).
    pub error: String,
}

impl RawPeer {
    /// Says hello (a pull about `only` those branches, or every ref, from the empty
    /// repository `scratch`) and reads the welcome: what the server advertises to this key.
    pub async fn open_pull(
        &mut self,
        scratch: &Repo,
        only: Option<&[String]>,
    ) -> Result<Advertised> {
        let (peer, me) = (self.client.peer, self.client.me);
        let w = handshake(
            &mut self.client.wire,
            scratch,
            Intent::Pull,
            only,
            None,
            &peer,
            &me,
        )
        .await?;
        Ok(Advertised {
            branches: w.branches,
            tags: w.tags,
        })
    }

    /// Reads frames until the server ends the transfer (END) or the session: the number of
    /// PACK frames that came.
    pub async fn drain_pack(&mut self) -> Result<u64> {
        let mut packs = 0;
        loop {
            let (k, _) = self.client.wire.recv().await?;
            match k {
                kind::PACK => packs += 1,
                kind::END => return Ok(packs),
                _ => {}
            }
        }
    }

    /// Waits until the server ends the connection (an ERROR frame or a close), at most
    /// `within`: how long it took and what was said.
    pub async fn wait_closed(&mut self, within: Duration) -> Result<Ended> {
        let t0 = Instant::now();
        let read = async {
            loop {
                if let Err(e) = self.client.wire.recv().await {
                    return e;
                }
            }
        };
        match tokio::time::timeout(within, read).await {
            Ok(e) => {
                // A close says why in its reason, which a read does not repeat.
                let error = match self.client.conn.close_reason() {
                    Some(why) => format!("{e} ({why})"),
                    None => e.to_string(),
                };
                Ok(Ended {
                    after: t0.elapsed(),
                    error,
                })
            }
            Err(_) => Err(SyncError::Connection(format!(
                "the server kept the connection open for {within:?}"
            ))),
        }
    }

    /// The server's node id.
    pub fn server(&self) -> EndpointId {
        self.client.peer
    }
}

/// A WANTS body: `wants`, `haves`, no flags, and a bitmap of `advertised` refs said to be
/// held (none).
pub fn wants_body(wants: &[ObjectId], haves: &[ObjectId], advertised: usize) -> Vec<u8> {
    let mut m = Enc::default();
    m.ids(wants)
        .ids(haves)
        .u8(0)
        .bytes(&vec![0u8; advertised.div_ceil(8)]);
    m.0
}

/// A SIG_WANT body naming `ids`.
pub fn sig_want_body(ids: &[ObjectId]) -> Vec<u8> {
    let mut m = Enc::default();
    m.ids(ids);
    m.0
}

/// A PACK body of one object that claims `raw_len` bytes and carries `data`.
pub fn pack_claiming(ty: hero_store::ObjType, raw_len: u64, data: &[u8]) -> Vec<u8> {
    let mut m = Enc::default();
    m.u8(0)
        .u8(crate::wire::type_code(ty))
        .u8(crate::wire::form::PLAIN)
        .varint(raw_len)
        .varint(data.len() as u64);
    m.0.extend_from_slice(data);
    m.0
}

/// A frame header claiming `len` bytes (the 4-byte prefix; a longer claim cannot be framed),
/// then `body`.
pub fn frame_claiming(len: u32, body: &[u8]) -> Vec<u8> {
    let mut b = len.to_be_bytes().to_vec();
    b.extend_from_slice(body);
    b
}

/// A peer on the gossip ALPN: its own endpoint, gossip and topic subscription.
pub struct GossipPeer {
    router: iroh::protocol::Router,
    sender: iroh_gossip::api::GossipSender,
    _receiver: iroh_gossip::api::GossipReceiver,
    key: iroh::SecretKey,
}

impl std::fmt::Debug for GossipPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GossipPeer")
    }
}

async fn gossip_endpoint(
    key: iroh::SecretKey,
    cfg: &crate::NetConfig,
    ticket: &crate::Ticket,
) -> Result<iroh::Endpoint> {
    let ep = crate::net::endpoint(key, cfg, vec![iroh_gossip::ALPN.to_vec()]).await?;
    let lookup = iroh::address_lookup::MemoryLookup::new();
    ep.address_lookup()
        .map_err(|e| SyncError::Bind(e.to_string()))?
        .add(lookup.clone());
    lookup.add_endpoint_info(ticket.addr.clone());
    Ok(ep)
}

impl GossipPeer {
    /// Joins the announcement topic of repository `repo_id` through the peer at `ticket`,
    /// waiting (at most `within`) until it is a neighbour.
    pub async fn join(
        key: iroh::SecretKey,
        cfg: &crate::NetConfig,
        ticket: &crate::Ticket,
        repo_id: &ObjectId,
        within: Duration,
    ) -> Result<GossipPeer> {
        let ep = gossip_endpoint(key.clone(), cfg, ticket).await?;
        let gossip = iroh_gossip::Gossip::builder().spawn(ep.clone());
        let router = iroh::protocol::Router::builder(ep)
            .accept(iroh_gossip::ALPN, gossip.clone())
            .spawn();
        let topic = gossip
            .subscribe(crate::gossip::topic_of(repo_id), vec![ticket.id()])
            .await
            .map_err(|e| SyncError::Connection(e.to_string()))?;
        let (sender, mut receiver) = topic.split();
        tokio::time::timeout(within, receiver.joined())
            .await
            .map_err(|_| SyncError::Connection("never joined the topic".to_owned()))?
            .map_err(|e| SyncError::Connection(e.to_string()))?;
        Ok(GossipPeer {
            router,
            sender,
            _receiver: receiver,
            key,
        })
    }

    /// Broadcasts an announcement of `heads` made at `time` (Unix seconds), signed with this
    /// peer's key.
    pub async fn announce(&self, time: u64, heads: Vec<(String, ObjectId)>) -> Result<()> {
        let key = self.key.clone();
        self.announce_signed(&key, time, heads).await
    }

    /// Broadcasts (relays) an announcement signed by `signer`.
    pub async fn announce_signed(
        &self,
        signer: &iroh::SecretKey,
        time: u64,
        heads: Vec<(String, ObjectId)>,
    ) -> Result<()> {
        let a = crate::gossip::Announcement {
            from: signer.public(),
            time,
            heads,
        };
        self.sender
            .broadcast(bytes::Bytes::from(a.encode(signer)))
            .await
            .map_err(|e| SyncError::Connection(e.to_string()))
    }

    /// Leaves.
    pub async fn close(self) {
        let _ = self.router.shutdown().await;
    }
}

/// Connects to the peer at `ticket` on the gossip ALPN as `key` and waits (at most `within`)
/// for the peer to close the connection: why it closed it.
pub async fn gossip_connection_closed(
    key: iroh::SecretKey,
    cfg: &crate::NetConfig,
    ticket: &crate::Ticket,
    within: Duration,
) -> Result<String> {
    let ep = gossip_endpoint(key, cfg, ticket).await?;
    let result = async {
        let conn = tokio::time::timeout(
            crate::net::CONNECT_TIMEOUT,
            ep.connect(ticket.addr.clone(), iroh_gossip::ALPN),
        )
        .await
        .map_err(|_| SyncError::Connection("no answer".to_owned()))?
        .map_err(|e| SyncError::Connection(e.to_string()))?;
        let why = tokio::time::timeout(within, conn.closed())
            .await
            .map_err(|_| SyncError::Connection("the peer kept the connection open".to_owned()))?;
        Ok(why.to_string())
    }
    .await;
    ep.close().await;
    result
}

/// How a series of connection attempts ended ([`dial_repeatedly`]).
#[derive(Debug, Default, Clone)]
pub struct Dials {
    /// Handshakes completed (each connection closed at once after).
    pub admitted: u64,
    /// Attempts the server refused (it answered, so no handshake was made).
    pub refused: u64,
    /// Attempts that got no answer within the wait.
    pub unanswered: u64,
    /// Why the refused ones failed, as the client saw it.
    pub errors: Vec<String>,
}

/// Dials the peer at `ticket` `n` times from one endpoint (bound as `cfg` says, key `key`),
/// `parallel` attempts at a time, waiting at most `each` for every attempt and closing each
/// connection as soon as it is made: what a peer that reconnects in a loop gets.
pub async fn dial_repeatedly(
    key: iroh::SecretKey,
    cfg: &crate::NetConfig,
    ticket: &crate::Ticket,
    n: usize,
    parallel: usize,
    each: Duration,
) -> Result<Dials> {
    let ep = crate::net::endpoint(key, cfg, Vec::new()).await?;
    let mut d = Dials::default();
    let mut left = n;
    while left > 0 {
        let round = left.min(parallel.max(1));
        left -= round;
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..round {
            let (ep, addr) = (ep.clone(), ticket.addr.clone());
            set.spawn(async move {
                tokio::time::timeout(each, ep.connect(addr, crate::wire::ALPN)).await
            });
        }
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Ok(Ok(conn))) => {
                    d.admitted += 1;
                    conn.close(0u32.into(), b"done");
                }
                Ok(Ok(Err(e))) => {
                    d.refused += 1;
                    d.errors.push(e.to_string());
                }
                Ok(Err(_)) => d.unanswered += 1,
                Err(e) => d.errors.push(e.to_string()),
            }
        }
    }
    ep.close().await;
    Ok(d)
}
