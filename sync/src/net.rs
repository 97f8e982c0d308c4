//! The network side: an iroh endpoint with the sync protocol mounted on its router, and the
//! client calls that connect to a peer by ticket.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hero_store::Repo;
use iroh::endpoint::{
    Connection, IdleTimeout, Incoming, IncomingAddr, QuicTransportConfig, TransportAddrUsage,
    presets,
};
use iroh::protocol::{AcceptError, IncomingFilter, IncomingFilterOutcome, ProtocolHandler, Router};
use iroh::{Endpoint, EndpointAddr, EndpointId, RelayMode, SecretKey, TransportAddr};
use tokio::sync::Semaphore;

use crate::admission::{self, Admission, Verdict};
use crate::error::{Result, SyncError};
use crate::session::{self, SyncReport};
use crate::ticket::Ticket;
use crate::transfer::ProgressFn;
use crate::wire::{ALPN, Wire, code};

/// How to reach peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetMode {
    /// iroh's relays, address lookup (DNS, and mDNS on the local network) and hole punching.
    #[default]
    Internet,
    /// Direct addresses only: no relays, no external lookups (tests, a LAN without internet).
    Local,
}

/// Network settings.
#[derive(Debug, Clone, Default)]
pub struct NetConfig {
    /// Relays and lookups, or direct addresses only.
    pub mode: NetMode,
    /// The address to bind (default: any port; loopback in local mode).
    pub bind: Option<SocketAddr>,
    /// Start at once instead of waiting up to 10 s for a relay (internet mode): the ticket
    /// then carries direct addresses only; peers that know the id find the relay later. A
    /// long-running daemon starts as fast offline as online this way.
    pub no_relay_wait: bool,
    /// No local-network discovery (mDNS) in internet mode (local mode never has it).
    pub no_lan_discovery: bool,
}

/// Most sessions served at once.
pub const MAX_SESSIONS: usize = 32;
/// Most sessions one peer may have at once.
pub const MAX_SESSIONS_PER_PEER: usize = 2;
/// Most sessions of peers that are not members (a stranger presenting an invitation, or one
/// that will be refused) served at once. They draw on a budget of their own, apart from
/// [`MAX_SESSIONS`]: strangers with as many keys as they like cannot keep members out.
pub const MAX_STRANGER_SESSIONS: usize = 4;
/// How long a new connection may take to open its first stream before it is closed (later
/// streams of a pooled connection may wait [`POOL_IDLE`]).
pub const FIRST_STREAM_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a silent connection lives (keep-alives flow while both ends are up).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// The UDP payload that fits a 1500-byte Ethernet frame over IPv4.
const LAN_UDP_PAYLOAD: u16 = 1452;

/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long an unused pooled connection stays open ([`crate::pool`]); a server closes a
/// connection that brings no new stream for as long.
pub const POOL_IDLE: Duration = Duration::from_secs(60);

/// Starts an endpoint with `key`.
pub async fn endpoint(key: SecretKey, cfg: &NetConfig, alpns: Vec<Vec<u8>>) -> Result<Endpoint> {
    let bind_err = |e: String| SyncError::Bind(e);
    let builder = match cfg.mode {
        NetMode::Local => {
            let bind = cfg
                .bind
                .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
            Endpoint::builder(presets::Minimal)
                .relay_mode(RelayMode::Disabled)
                .clear_ip_transports()
                .bind_addr(bind)
                .map_err(|e| bind_err(e.to_string()))?
        }
        NetMode::Internet => {
            let b = Endpoint::builder(presets::N0);
            match cfg.bind {
                Some(bind) => b
                    .clear_ip_transports()
                    .bind_addr(bind)
                    .map_err(|e| bind_err(e.to_string()))?,
                None => b,
            }
        }
    };
    // A dead peer is noticed within IDLE_TIMEOUT; a sync connection carries one stream at a
    // time. Gossip (on an endpoint that speaks it) sends each message on a stream of its own.
    let gossip = alpns.iter().any(|a| a.as_slice() == iroh_gossip::ALPN);
    let idle = IdleTimeout::try_from(IDLE_TIMEOUT).map_err(|e| bind_err(e.to_string()))?;
    let mut transport = QuicTransportConfig::builder()
        .max_idle_timeout(Some(idle))
        .max_concurrent_bidi_streams(1u32.into())
        .max_concurrent_uni_streams(if gossip { 64u32 } else { 0 }.into());
    if cfg.mode == NetMode::Local {
        // On a LAN (or loopback) the path MTU is Ethernet's: start there instead of probing
        // upward on every connection (the probes cost more bytes than a small pull). Packet loss
        // still brings it down to the 1200-byte minimum if the network is smaller.
        transport = transport
            .initial_mtu(LAN_UDP_PAYLOAD)
            .mtu_discovery_config(None);
    }
    let transport = transport.build();
    let ep = builder
        .transport_config(transport)
        .secret_key(key)
        .alpns(alpns)
        .bind()
        .await
        .map_err(|e| bind_err(e.to_string()))?;
    if cfg.mode == NetMode::Internet && !cfg.no_lan_discovery {
        lan_lookup(&ep);
    }
    if cfg.mode == NetMode::Internet && !cfg.no_relay_wait {
        // Give the endpoint a moment to reach a relay so the ticket carries it; go on without.
        let _ = tokio::time::timeout(Duration::from_secs(10), ep.online()).await;
    }
    Ok(ep)
}

/// The mDNS service hero's endpoints announce themselves under (other iroh applications on
/// the LAN use their own).
const LAN_SERVICE: &str = "hero-store";

/// Adds local-network discovery (mDNS) to `ep`: it announces the endpoint's direct addresses
/// on the LAN and finds peers there by id, with no relay or internet (a peer restarted on a new
/// port is found again). A host where multicast cannot be set up keeps the other lookups.
fn lan_lookup(ep: &Endpoint) {
    match iroh_mdns_address_lookup::MdnsAddressLookup::builder()
        .service_name(LAN_SERVICE)
        .build(ep.id())
    {
        Ok(mdns) => match ep.address_lookup() {
            Ok(lookups) => lookups.add(mdns),
            Err(e) => tracing::debug!("no local-network discovery: {e}"),
        },
        Err(e) => tracing::info!("no local-network discovery (mDNS) on this host: {e}"),
    }
}

/// The ticket of a running endpoint: its id and the addresses it can be dialled at.
pub fn ticket_of(ep: &Endpoint) -> Ticket {
    let addr = ep.addr();
    let mut addrs: Vec<TransportAddr> = addr.addrs.iter().cloned().collect();
    if addr.ip_addrs().next().is_none() {
        for s in ep.bound_sockets() {
            let ip = if s.ip().is_unspecified() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                s.ip()
            };
            addrs.push(TransportAddr::Ip(SocketAddr::new(ip, s.port())));
        }
    }
    Ticket {
        addr: EndpointAddr::from_parts(ep.id(), addrs),
    }
}

/// A running sync server.
#[derive(Debug)]
pub struct Server {
    router: Router,
    ticket: Ticket,
    watcher: tokio::task::JoinHandle<()>,
    admission: Arc<Admission>,
}

impl Server {
    /// How peers reach this server.
    pub fn ticket(&self) -> &Ticket {
        &self.ticket
    }

    /// The endpoint the server accepts on; it dials out too (a [`crate::pool::Pool`] over it
    /// reuses connections as this peer).
    pub fn endpoint(&self) -> Endpoint {
        self.router.endpoint().clone()
    }

    /// What the server refused before the handshake, and the node ids it remembers as
    /// refused ([`crate::admission`]).
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// Stops accepting and closes connections.
    pub async fn shutdown(self) {
        self.watcher.abort();
        if let Err(e) = self.router.shutdown().await {
            tracing::warn!("sync server shutdown: {e}");
        }
    }
}

/// Serves `repo` to its members until [`Server::shutdown`]. A repository without a membership
/// is upgraded first (its allow list becomes the membership, `key`'s node the first owner).
pub async fn serve(repo: Arc<Repo>, key: SecretKey, cfg: &NetConfig) -> Result<Server> {
    prepare(&repo, &key)?;
    let ep = endpoint(key.clone(), cfg, vec![ALPN.to_vec()]).await?;
    let ticket = ticket_of(&ep);
    record_ticket(&repo, &ticket);
    let handler = Handler::new(repo, key);
    let watcher = tokio::spawn(handler.clone().watch_membership());
    let admission = handler.admission.clone();
    let router = Router::builder(ep)
        .incoming_filter(incoming_filter(admission.clone(), handler.repo.clone()))
        .accept(ALPN, handler)
        .spawn();
    Ok(Server {
        router,
        ticket,
        watcher,
        admission,
    })
}

/// Puts the repository under membership before it serves (ADR 0018).
fn prepare(repo: &Repo, key: &SecretKey) -> Result<()> {
    if let Some(up) = crate::gate::ensure_membership(repo, key, "")? {
        tracing::info!(
            "membership: upgraded from the allow list ({} peers; {} entries skipped)",
            up.added.len(),
            up.skipped.len()
        );
        crate::audit::record(
            repo,
            crate::audit::Entry::new(
                Some(&key.public()),
                "membership",
                crate::audit::Decision::Accepted,
                format!(
                    "initial membership from the allow list: {} peers",
                    up.added.len()
                ),
            ),
        );
    }
    Ok(())
}

/// Remembers how this server is reached (what `heroctl invite` puts in an invitation).
fn record_ticket(repo: &Repo, ticket: &Ticket) {
    if let Err(e) = repo.set_setting(
        crate::invite::TICKET_KEY,
        Some(ticket.to_string().as_bytes()),
    ) {
        tracing::warn!("could not record the server's ticket: {e}");
    }
}

/// Serves `repo` like [`serve`], and gossip on the same endpoint: the daemon's announcements
/// ([`crate::gossip`]).
pub async fn serve_announced(
    repo: Arc<Repo>,
    key: SecretKey,
    cfg: &NetConfig,
) -> Result<(Server, iroh_gossip::Gossip)> {
    prepare(&repo, &key)?;
    let ep = endpoint(
        key.clone(),
        cfg,
        vec![ALPN.to_vec(), iroh_gossip::ALPN.to_vec()],
    )
    .await?;
    let ticket = ticket_of(&ep);
    record_ticket(&repo, &ticket);
    let gossip = iroh_gossip::Gossip::builder().spawn(ep.clone());
    let repo_for_gossip = repo.clone();
    let handler = Handler::new(repo, key);
    let watcher = tokio::spawn(handler.clone().watch_membership());
    let admission = handler.admission.clone();
    let router = Router::builder(ep)
        .incoming_filter(incoming_filter(admission.clone(), handler.repo.clone()))
        .accept(ALPN, handler)
        .accept(
            iroh_gossip::ALPN,
            crate::gossip::Gated {
                gossip: gossip.clone(),
                repo: repo_for_gossip,
                admission: admission.clone(),
            },
        )
        .spawn();
    Ok((
        Server {
            router,
            ticket,
            watcher,
            admission,
        },
        gossip,
    ))
}

/// The router's first look at a new connection, before any handshake work: its address's
/// allowance ([`Admission::incoming`]). A connection through a relay carries its node id,
/// vouched for by the relay: a node id remembered as refused is dropped there already.
fn incoming_filter(admission: Arc<Admission>, repo: Arc<Repo>) -> IncomingFilter {
    Arc::new(move |incoming: &Incoming| {
        let now = Instant::now();
        match incoming.remote_addr() {
            IncomingAddr::Ip(addr) => {
                let (verdict, report) = admission.incoming(addr.ip(), now);
                if let Some(r) = report {
                    report_refusals(&admission, &repo, r);
                }
                match verdict {
                    Verdict::Admit => IncomingFilterOutcome::Accept,
                    Verdict::Refuse => IncomingFilterOutcome::Reject,
                    Verdict::Drop => IncomingFilterOutcome::Ignore,
                }
            }
            IncomingAddr::Relay { endpoint_id, .. } => {
                let head = || membership_head(&repo);
                if admission.is_refused(&endpoint_id, now, head) {
                    IncomingFilterOutcome::Ignore
                } else {
                    IncomingFilterOutcome::Accept
                }
            }
            // Custom transports (none is configured) carry no address to count.
            _ => IncomingFilterOutcome::Accept,
        }
    })
}

/// The head of the membership branch (what a remembered refusal was decided under).
pub(crate) fn membership_head(repo: &Repo) -> Option<hero_store::ObjectId> {
    repo.branch_head(crate::membership::BRANCH).ok().flatten()
}

/// A debug line and an audit line for an address's refusals (at most one per
/// [`admission::REPORT_EVERY`]), written off the accept loop.
fn report_refusals(admission: &Admission, repo: &Arc<Repo>, r: admission::Report) {
    let l = admission.limits();
    let reason = format!(
        "{} new connection(s) from {} refused before the handshake: over its allowance of {} \
         at once and one per {} ms",
        r.refused,
        r.addr,
        l.burst,
        l.refill.as_millis()
    );
    tracing::debug!("sync: {reason}");
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let repo = repo.clone();
    drop(rt.spawn_blocking(move || {
        crate::audit::record(
            &repo,
            crate::audit::Entry::new(None, "connect", crate::audit::Decision::Refused, reason)
                .rule("rate"),
        )
    }));
}

/// The IP address a connection came from (its selected path, else its first direct one).
fn remote_ip(conn: &Connection) -> Option<IpAddr> {
    let paths = conn.paths();
    let ip_of = |p: &iroh::endpoint::Path<'_>| match p.remote_addr() {
        TransportAddr::Ip(a) => Some(a.ip()),
        _ => None,
    };
    let selected = paths
        .iter()
        .filter(|p| p.is_selected())
        .find_map(|p| ip_of(&p));
    selected.or_else(|| paths.iter().find_map(|p| ip_of(&p)))
}

/// Open connections, by peer: (connection's stable id, connection).
type Live = Arc<Mutex<HashMap<EndpointId, Vec<(usize, Connection)>>>>;

#[derive(Debug, Clone)]
struct Handler {
    repo: Arc<Repo>,
    key: SecretKey,
    sessions: Arc<Semaphore>,
    strangers: Arc<Semaphore>,
    per_peer: Arc<Mutex<HashMap<EndpointId, usize>>>,
    live: Live,
    admission: Arc<Admission>,
}

/// Keeps a connection in [`Handler::live`] while it is served.
struct LiveSlot {
    live: Live,
    peer: EndpointId,
    id: usize,
}

impl Drop for LiveSlot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.live.lock()
            && let Some(v) = m.get_mut(&self.peer)
        {
            v.retain(|(i, _)| *i != self.id);
            if v.is_empty() {
                m.remove(&self.peer);
            }
        }
    }
}

impl Handler {
    fn new(repo: Arc<Repo>, key: SecretKey) -> Handler {
        Handler {
            repo,
            key,
            sessions: Arc::new(Semaphore::new(MAX_SESSIONS)),
            strangers: Arc::new(Semaphore::new(MAX_STRANGER_SESSIONS)),
            per_peer: Arc::new(Mutex::new(HashMap::new())),
            live: Arc::new(Mutex::new(HashMap::new())),
            admission: Arc::new(Admission::new(admission::Limits::default(), Instant::now())),
        }
    }

    /// Remembers `peer` as refused ([`Admission::refuse_id`]).
    fn remember_refused(&self, peer: &EndpointId) {
        let head = crate::transfer::blocking(|| membership_head(&self.repo));
        self.admission.refuse_id(*peer, head, Instant::now());
    }

    /// Re-evaluates the membership whenever its branch moves (a push, a pull, a local
    /// command) and closes the open connections of peers that were members and are no longer
    /// (a peer still presenting its invitation was never one, and is left alone). Woken by
    /// the repository's write transactions ([`Repo::subscribe`]), it sleeps at rest.
    async fn watch_membership(self) {
        let (tx, mut changed) = tokio::sync::watch::channel(0u64);
        let changes = self
            .repo
            .subscribe(move || tx.send_modify(|n| *n = n.wrapping_add(1)));
        let repo = self.repo.clone();
        let members_now = move || -> Option<std::collections::HashSet<EndpointId>> {
            if !crate::membership::is_enforced(&repo).ok()? {
                return None;
            }
            let (m, _) = crate::membership::load(&repo).ok()?;
            Some(m.members().map(|(id, _)| *id).collect())
        };
        let mut last = self
            .repo
            .branch_head(crate::membership::BRANCH)
            .ok()
            .flatten();
        let mut before = members_now();
        loop {
            tokio::select! {
                r = changed.changed() => {
                    if r.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep(changes.fallback()) => {}
            }
            let head = match self.repo.branch_head(crate::membership::BRANCH) {
                Ok(h) => h,
                Err(e) => {
                    tracing::debug!("membership watch: {e}");
                    continue;
                }
            };
            if head == last {
                continue;
            }
            last = head;
            self.admission.forget_refused();
            let now = members_now();
            let (Some(prev), Some(cur)) = (&before, &now) else {
                before = now;
                continue;
            };
            let gone: Vec<EndpointId> = prev.difference(cur).copied().collect();
            before = now.clone();
            for peer in gone {
                let conns = self
                    .live
                    .lock()
                    .ok()
                    .and_then(|mut m| m.remove(&peer))
                    .unwrap_or_default();
                for (_, c) in &conns {
                    c.close(4u32.into(), b"no longer a member");
                }
                if !conns.is_empty() {
                    tracing::info!(
                        "sync: closed {} connection(s) of removed peer {peer}",
                        conns.len()
                    );
                    crate::audit::record(
                        &self.repo,
                        crate::audit::Entry::new(
                            Some(&peer),
                            "close",
                            crate::audit::Decision::Refused,
                            "open connection closed: no longer a member",
                        )
                        .rule("not a member"),
                    );
                }
            }
        }
    }
}

/// Counts one session of a peer while alive.
struct PeerSlot {
    map: Arc<Mutex<HashMap<EndpointId, usize>>>,
    peer: EndpointId,
}

impl PeerSlot {
    fn take(map: &Arc<Mutex<HashMap<EndpointId, usize>>>, peer: EndpointId) -> Option<Self> {
        let mut m = map.lock().ok()?;
        let n = m.entry(peer).or_insert(0);
        if *n >= MAX_SESSIONS_PER_PEER {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            map: map.clone(),
            peer,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.map.lock()
            && let Some(n) = m.get_mut(&self.peer)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.peer);
            }
        }
    }
}

impl ProtocolHandler for Handler {
    async fn accept(&self, conn: Connection) -> std::result::Result<(), AcceptError> {
        let peer = conn.remote_id();
        // Refused a moment ago: closed before anything else is done for it.
        let head = || crate::transfer::blocking(|| membership_head(&self.repo));
        if self.admission.is_refused(&peer, Instant::now(), head) {
            tracing::debug!("sync: peer {peer} was refused a moment ago; closed");
            conn.close(
                crate::admission::REFUSED_RECENTLY.into(),
                b"refused recently",
            );
            return Ok(());
        }
        tracing::debug!("sync: connection from {peer}");
        let Some(_slot) = PeerSlot::take(&self.per_peer, peer) else {
            tracing::warn!("sync: peer {peer} has too many sessions open; refused");
            conn.close(2u32.into(), b"too many sessions");
            return Ok(());
        };
        // Members and strangers draw on budgets of their own (decided again, from the
        // membership, once the session starts).
        let member = crate::transfer::blocking(|| crate::gate::standing(&self.repo, &peer))
            .map(|s| s.access.is_some())
            .unwrap_or(false);
        if member && let Some(ip) = remote_ip(&conn) {
            self.admission.member_seen(ip, Instant::now());
        }
        let budget = if member {
            &self.sessions
        } else {
            &self.strangers
        };
        let Ok(_permit) = budget.clone().try_acquire_owned() else {
            tracing::warn!("sync: too many sessions; refused peer {peer}");
            if !member {
                self.remember_refused(&peer);
                // A stranger flood is worth a line; members are not audited for being busy.
                crate::transfer::blocking(|| {
                    crate::audit::record(
                        &self.repo,
                        crate::audit::Entry::new(
                            Some(&peer),
                            "connect",
                            crate::audit::Decision::Refused,
                            "busy: the sessions of peers that are not members are all taken",
                        )
                        .rule("not a member"),
                    )
                });
            }
            conn.close(3u32.into(), b"busy");
            return Ok(());
        };
        // Counted among the connections to close on removal once a session admits the peer
        // (a refused one is answered, not cut off).
        let _live = LiveSlot {
            live: self.live.clone(),
            peer,
            id: conn.stable_id(),
        };
        let admitted = {
            let (live, conn) = (self.live.clone(), conn.clone());
            move || {
                if let Ok(mut m) = live.lock() {
                    let v = m.entry(peer).or_default();
                    if !v.iter().any(|(i, _)| *i == conn.stable_id()) {
                        v.push((conn.stable_id(), conn.clone()));
                    }
                }
            }
        };
        // One session per stream; a pooled client opens the next stream on the same
        // connection (crate::pool), a one-shot client closes it after the first.
        let mut sessions = 0u64;
        loop {
            let wait = if sessions == 0 {
                FIRST_STREAM_TIMEOUT
            } else {
                POOL_IDLE
            };
            let next = tokio::time::timeout(wait, conn.accept_bi()).await;
            let (send, recv) = match next {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    if sessions == 0 {
                        tracing::debug!("sync: peer {peer} opened no stream: {e}");
                    }
                    return Ok(());
                }
                Err(_) => {
                    conn.close(0u32.into(), b"idle");
                    return Ok(());
                }
            };
            sessions += 1;
            let mut wire = Wire::new(recv, send);
            let result = session::serve_as(
                &mut wire,
                &self.repo,
                &peer,
                Some(&self.key),
                Some(&admitted),
            )
            .await;
            if result.is_ok() {
                tracing::info!("sync: session with {peer} done");
                let _ = wire.writer().finish();
                continue;
            }
            // Whoever failed or misbehaved gets a moment to read why, not a held slot.
            self.failed(&peer, member, result, &mut wire).await;
            let _ = wire.writer().finish();
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
            conn.close(0u32.into(), b"bye");
            return Ok(());
        }
    }
}

impl Handler {
    async fn failed(
        &self,
        peer: &EndpointId,
        member: bool,
        result: Result<()>,
        wire: &mut Wire<iroh::endpoint::RecvStream, iroh::endpoint::SendStream>,
    ) {
        // Strangers refused or disconnected are remembered for a while, and so is anyone who
        // asked past a limit no honest peer reaches; a member's other failures are not held
        // against it (a stalled link, or a bug on either side).
        let broke = match result {
            Ok(()) => return,
            Err(SyncError::NotAllowed { .. }) => {
                tracing::warn!(
                    "sync: refused peer {peer}: not a member (heroctl member add {peer} --role writer)"
                );
                self.remember_refused(peer);
                return;
            }
            Err(e @ (SyncError::Protocol(_) | SyncError::OverLimit { .. })) => {
                tracing::warn!("sync: disconnecting peer {peer}: {e}; nothing it sent was kept");
                wire.send_error(code::PROTOCOL, &e.to_string()).await;
                if !member || matches!(e, SyncError::OverLimit { .. }) {
                    self.remember_refused(peer);
                }
                e
            }
            Err(e @ SyncError::Silent { .. }) => {
                tracing::warn!("sync: disconnecting peer {peer}: {e}");
                if !member {
                    self.remember_refused(peer);
                }
                e
            }
            Err(e) => {
                tracing::warn!("sync: session with {peer} failed: {e}");
                return;
            }
        };
        // A peer that broke the protocol or held a session silent is recorded as refused.
        let reason = broke.to_string();
        crate::transfer::blocking(|| {
            crate::audit::record(
                &self.repo,
                crate::audit::Entry::new(
                    Some(peer),
                    "session",
                    crate::audit::Decision::Refused,
                    reason,
                )
                .rule("protocol"),
            )
        });
    }
}

/// The settings a client dials `ticket` with. In local mode an endpoint binds loopback unless
/// told otherwise, which cannot reach a peer elsewhere on the LAN: a client dialling such an
/// address binds every interface instead (any port), as a server on the LAN does.
///
/// A client never waits for a relay before dialling: the ticket's addresses, the lookups and
/// the peer's own relay are tried by the dial itself, so a pull offline starts at once.
fn client_config(cfg: &NetConfig, ticket: &Ticket) -> NetConfig {
    let mut cfg = cfg.clone();
    cfg.no_relay_wait = true;
    if cfg.mode == NetMode::Local && cfg.bind.is_none() {
        let beyond = |v4: bool| {
            ticket
                .addr
                .ip_addrs()
                .any(|a| a.is_ipv4() == v4 && !a.ip().is_loopback())
        };
        if beyond(true) {
            cfg.bind = Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0));
        } else if beyond(false) {
            cfg.bind = Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0));
        }
    }
    cfg
}

/// The direct addresses `ep` uses now to talk with `peer` (learned from a connection either
/// way, or found by a lookup).
pub(crate) async fn active_addrs(ep: &Endpoint, peer: &EndpointId) -> Vec<SocketAddr> {
    let Some(info) = ep.remote_info(*peer).await else {
        return Vec::new();
    };
    info.addrs()
        .filter(|a| matches!(a.usage(), TransportAddrUsage::Active))
        .filter_map(|a| match a.addr() {
            TransportAddr::Ip(ip) => Some(*ip),
            _ => None,
        })
        .collect()
}

/// A client connection to a peer.
pub(crate) struct Client {
    ep: Endpoint,
    pub(crate) conn: Connection,
    pub(crate) wire: Wire<iroh::endpoint::RecvStream, iroh::endpoint::SendStream>,
    pub(crate) peer: EndpointId,
    pub(crate) me: EndpointId,
}

impl Client {
    pub(crate) async fn connect(key: SecretKey, cfg: &NetConfig, ticket: &Ticket) -> Result<Self> {
        let me = key.public();
        let ep = endpoint(key, &client_config(cfg, ticket), Vec::new()).await?;
        let peer = ticket.id();
        let unreachable = |reason: String| SyncError::Unreachable {
            peer: peer.to_string(),
            reason,
        };
        let connected = async {
            let conn = tokio::time::timeout(CONNECT_TIMEOUT, ep.connect(ticket.addr.clone(), ALPN))
                .await
                .map_err(|_| unreachable("no answer within 20 seconds".to_owned()))?
                .map_err(|e| unreachable(e.to_string()))?;
            let (send, recv) = conn
                .open_bi()
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            Ok::<_, SyncError>((conn, send, recv))
        }
        .await;
        // An endpoint is closed, not dropped, on every path (a dropped one logs an error).
        let (conn, send, recv) = match connected {
            Ok(c) => c,
            Err(e) => {
                ep.close().await;
                return Err(e);
            }
        };
        Ok(Client {
            ep,
            conn,
            wire: Wire::new(recv, send),
            peer,
            me,
        })
    }

    /// Puts where the peer was reached into a finished session's report.
    async fn finish(self, r: Result<SyncReport>) -> Result<SyncReport> {
        let r = r.map_err(|e| refused_recently(&self.conn, &self.peer, &self.me, e));
        let reached_at = active_addrs(&self.ep, &self.peer).await;
        self.close().await;
        r.map(|r| SyncReport { reached_at, ..r })
    }

    pub(crate) async fn close(mut self) {
        let _ = self.wire.writer().finish();
        self.conn.close(0u32.into(), b"done");
        self.ep.close().await;
    }
}

/// A session's error, told apart when the connection ended because the peer had refused this
/// node a moment ago and closed it at once ([`crate::admission::REFUSED_RECENTLY`]): the
/// stream then only says the connection was lost.
pub(crate) fn refused_recently(
    conn: &iroh::endpoint::Connection,
    peer: &EndpointId,
    me: &EndpointId,
    e: SyncError,
) -> SyncError {
    match (&e, conn.close_reason()) {
        (SyncError::Connection(_), Some(iroh::endpoint::ConnectionError::ApplicationClosed(c)))
            if u64::from(c.error_code) == u64::from(crate::admission::REFUSED_RECENTLY) =>
        {
            SyncError::RefusedRecently {
                peer: peer.to_string(),
                me: me.to_string(),
            }
        }
        _ => e,
    }
}

/// Pulls every branch of the peer at `ticket` into `repo` (a clone when `repo` is empty).
pub async fn pull(
    repo: &Repo,
    key: SecretKey,
    cfg: &NetConfig,
    ticket: &Ticket,
    progress: Option<ProgressFn>,
) -> Result<SyncReport> {
    let mut c = Client::connect(key, cfg, ticket).await?;
    let r = session::pull(&mut c.wire, repo, &c.peer, &c.me, progress.as_ref()).await;
    c.finish(r).await
}

/// Pushes `branches` (all when `None`) to the peer at `ticket`.
pub async fn push(
    repo: &Repo,
    key: SecretKey,
    cfg: &NetConfig,
    ticket: &Ticket,
    branches: Option<&[String]>,
    progress: Option<ProgressFn>,
) -> Result<SyncReport> {
    let mut c = Client::connect(key, cfg, ticket).await?;
    let r = session::push(
        &mut c.wire,
        repo,
        &c.peer,
        &c.me,
        branches,
        progress.as_ref(),
    )
    .await;
    c.finish(r).await
}

/// Joins with an invitation: connects to the inviting peer, presents the secret, and once
/// admitted pulls everything (a clone when `repo` is empty).
pub async fn join(
    repo: &Repo,
    key: SecretKey,
    cfg: &NetConfig,
    invitation: &crate::invite::Invitation,
    name: &str,
    progress: Option<ProgressFn>,
) -> Result<SyncReport> {
    let mut c = Client::connect(key, cfg, &invitation.ticket).await?;
    let r = async {
        session::present_invitation(&mut c.wire, &c.peer, &invitation.secret, name).await?;
        session::pull(&mut c.wire, repo, &c.peer, &c.me, progress.as_ref()).await
    }
    .await;
    c.finish(r).await
}
