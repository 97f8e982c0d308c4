//! Connections to peers kept open and reused: a pull after an announcement or a local change
//! pays for its payload, not for a new QUIC handshake.
//!
//! The pool dials from a running server's endpoint (so it connects as this peer), keeps one
//! connection per peer and runs each session on a new stream of it; the server side serves
//! stream after stream on one connection ([`crate::net`]). A connection unused for
//! [`POOL_IDLE`] is closed by either side; a dead one is replaced on the next use.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hero_store::Repo;
use std::net::SocketAddr;

use iroh::endpoint::Connection;
use iroh::{Endpoint, EndpointId, TransportAddr};

use crate::error::{Result, SyncError};
use crate::net::CONNECT_TIMEOUT;
pub use crate::net::POOL_IDLE;
use crate::session::{self, ConnectionUse, SyncReport};
use crate::ticket::Ticket;
use crate::transfer::ProgressFn;
use crate::wire::{ALPN, Wire};

struct Entry {
    conn: Connection,
    used: Instant,
}

/// Open connections to peers, one per peer.
pub struct Pool {
    ep: Endpoint,
    conns: tokio::sync::Mutex<HashMap<EndpointId, Entry>>,
    /// Connections dialled since the pool started.
    dials: AtomicU64,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("me", &self.ep.id()).finish()
    }
}

/// Which exchange a session runs.
enum Exchange<'a> {
    Pull(Option<&'a [String]>),
    PullAnnounced(&'a [(String, hero_store::ObjectId)]),
    Push(Option<&'a [String]>),
}

impl Pool {
    /// A pool dialling from `ep` (a [`crate::Server::endpoint`]).
    pub fn new(ep: Endpoint) -> Self {
        Pool {
            ep,
            conns: tokio::sync::Mutex::new(HashMap::new()),
            dials: AtomicU64::new(0),
        }
    }

    /// Connections dialled since the pool started (each session on an open one dials none).
    pub fn dials(&self) -> u64 {
        self.dials.load(Ordering::Relaxed)
    }

    /// Whether a connection to `peer` is open now.
    pub async fn is_connected(&self, peer: &EndpointId) -> bool {
        self.conns
            .lock()
            .await
            .get(peer)
            .is_some_and(|e| e.conn.close_reason().is_none())
    }

    /// An open connection to the peer of `ticket`: the pooled one (`true`: reused), else a
    /// new one.
    async fn connection(&self, ticket: &Ticket, fresh: bool) -> Result<(Connection, bool)> {
        let peer = ticket.id();
        let mut conns = self.conns.lock().await;
        conns.retain(|_, e| e.conn.close_reason().is_none() && e.used.elapsed() < POOL_IDLE);
        if !fresh && let Some(e) = conns.get_mut(&peer) {
            e.used = Instant::now();
            return Ok((e.conn.clone(), true));
        }
        if let Some(old) = conns.remove(&peer) {
            old.conn.close(0u32.into(), b"replaced");
        }
        drop(conns);
        let unreachable = |reason: String| SyncError::Unreachable {
            peer: peer.to_string(),
            reason,
        };
        // The peer by who it is: the ticket's addresses and those this endpoint learned from
        // the peer itself (it dialled us from where it runs now, e.g. restarted on a new port).
        let mut addr = ticket.addr.clone();
        for a in self.learned(&peer).await {
            addr.addrs.insert(TransportAddr::Ip(a));
        }
        self.dials.fetch_add(1, Ordering::Relaxed);
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, self.ep.connect(addr, ALPN))
            .await
            .map_err(|_| unreachable("no answer within 20 seconds".to_owned()))?
            .map_err(|e| unreachable(e.to_string()))?;
        self.conns.lock().await.insert(
            peer,
            Entry {
                conn: conn.clone(),
                used: Instant::now(),
            },
        );
        Ok((conn, false))
    }

    async fn run(
        &self,
        repo: &Repo,
        ticket: &Ticket,
        what: Exchange<'_>,
        progress: Option<&ProgressFn>,
    ) -> Result<SyncReport> {
        let peer = ticket.id();
        let me = self.ep.id();
        // A pooled connection may have died since its last use: one more try on a new one.
        let mut fresh = false;
        let (conn, reused, send, recv) = loop {
            let (conn, reused) = self.connection(ticket, fresh).await?;
            match conn.open_bi().await {
                Ok((s, r)) => break (conn, reused, s, r),
                Err(e) if !fresh => {
                    tracing::debug!("sync: pooled connection to {peer} gone ({e}); reconnecting");
                    fresh = true;
                }
                Err(e) => {
                    return Err(SyncError::Unreachable {
                        peer: peer.to_string(),
                        reason: e.to_string(),
                    });
                }
            }
        };
        let before = conn.stats();
        let mut wire = Wire::new(recv, send);
        let (label, r) = match what {
            Exchange::Pull(only) => (
                "pull",
                session::pull_only(&mut wire, repo, &peer, &me, only, progress).await,
            ),
            Exchange::PullAnnounced(heads) => (
                "pull",
                session::pull_announced(&mut wire, repo, &peer, &me, heads, progress).await,
            ),
            Exchange::Push(b) => (
                "push",
                session::push(&mut wire, repo, &peer, &me, b, progress).await,
            ),
        };
        let _ = wire.writer().finish();
        let r = r.map_err(|e| crate::net::refused_recently(&conn, &peer, &me, e));
        let after = conn.stats();
        let used = ConnectionUse {
            reused,
            dials: self.dials(),
            datagrams_sent: after
                .udp_tx
                .datagrams
                .saturating_sub(before.udp_tx.datagrams),
            udp_bytes_sent: after.udp_tx.bytes.saturating_sub(before.udp_tx.bytes),
            datagrams_received: after
                .udp_rx
                .datagrams
                .saturating_sub(before.udp_rx.datagrams),
            udp_bytes_received: after.udp_rx.bytes.saturating_sub(before.udp_rx.bytes),
        };
        tracing::debug!(
            "pool: {label} with {} on {} connection: {} bytes sent, {} received (protocol \
             messages), {} round trip(s); the connection meanwhile: {} datagrams ({} bytes) \
             sent, {} ({} bytes) received",
            peer.fmt_short(),
            if reused { "an open" } else { "a new" },
            wire.bytes_out,
            wire.bytes_in,
            wire.round_trips,
            used.datagrams_sent,
            used.udp_bytes_sent,
            used.datagrams_received,
            used.udp_bytes_received,
        );
        let r = r.map(|r| SyncReport {
            connection: Some(used),
            ..r
        });
        if r.is_err() {
            // A failed session may leave the stream half-read: start afresh next time.
            if let Some(e) = self.conns.lock().await.remove(&peer) {
                e.conn.close(0u32.into(), b"failed");
            }
        }
        r
    }

    /// Pulls every branch of the peer into `repo` over the pooled connection.
    pub async fn pull(
        &self,
        repo: &Repo,
        ticket: &Ticket,
        progress: Option<&ProgressFn>,
    ) -> Result<SyncReport> {
        self.run(repo, ticket, Exchange::Pull(None), progress).await
    }

    /// Pulls only the branches `only` of the peer (what an announcement named) over the
    /// pooled connection.
    pub async fn pull_only(
        &self,
        repo: &Repo,
        ticket: &Ticket,
        only: &[String],
        progress: Option<&ProgressFn>,
    ) -> Result<SyncReport> {
        self.run(repo, ticket, Exchange::Pull(Some(only)), progress)
            .await
    }

    /// Pulls the branches of `heads`, which the peer announced it has, over the pooled
    /// connection: the wants travel with the hello ([`session::pull_announced`]), so a small
    /// change arrives in one round trip.
    pub async fn pull_announced(
        &self,
        repo: &Repo,
        ticket: &Ticket,
        heads: &[(String, hero_store::ObjectId)],
        progress: Option<&ProgressFn>,
    ) -> Result<SyncReport> {
        self.run(repo, ticket, Exchange::PullAnnounced(heads), progress)
            .await
    }

    /// Pushes `branches` (all when `None`) to the peer over the pooled connection.
    pub async fn push(
        &self,
        repo: &Repo,
        ticket: &Ticket,
        branches: Option<&[String]>,
        progress: Option<&ProgressFn>,
    ) -> Result<SyncReport> {
        self.run(repo, ticket, Exchange::Push(branches), progress)
            .await
    }

    /// Connects to the peer of `ticket` and keeps the connection (until [`POOL_IDLE`] of
    /// disuse): the peer learns where this endpoint is now.
    pub async fn connect(&self, ticket: &Ticket) -> Result<()> {
        self.connection(ticket, false).await.map(|_| ())
    }

    /// The direct addresses this endpoint uses now to talk with `peer` (learned from a
    /// connection either way), most useful when the peer restarted elsewhere and dialled us.
    pub async fn learned(&self, peer: &EndpointId) -> Vec<SocketAddr> {
        crate::net::active_addrs(&self.ep, peer).await
    }

    /// Closes every pooled connection.
    pub async fn close(&self) {
        for (_, e) in self.conns.lock().await.drain() {
            e.conn.close(0u32.into(), b"bye");
        }
    }
}
