//! The daemon's peer workers: one per peer, each keeping its peer in sync (pulls of what it
//! announced, catch-ups, a fallback push of what it has not confirmed), and the saved remotes
//! that follow a peer that moved.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hero_store::ObjectId;
use hero_sync::{EndpointId, Ticket};

use super::config::{Config, Peer};
use super::ctx::{Ctx, PeerStatus, unix_now};
use tokio::sync::watch as signal;

/// How long after a local change a worker waits for its peer to say (by announcing it) that
/// it pulled the change, before it pushes the change itself: announcements make peers pull,
/// so a push is needed only when one went unheard.
pub(super) const CONFIRM_WAIT: Duration = Duration::from_secs(1);

/// A catch-up asked for by the peer's reappearance is skipped when a full sync with it
/// succeeded this recently (at start every neighbour comes up just after the first sync).
const CATCH_UP_FRESH: Duration = Duration::from_secs(30);
/// The first retry after a failed sync; each failure in a row doubles it, up to the
/// catch-up interval.
const RETRY_FIRST: Duration = Duration::from_secs(15);

/// What the daemon asks of a worker.
#[derive(Debug)]
pub(super) enum Ask {
    /// Pull these branches from the peer at once: the heads an announcement named, which this
    /// node lacked.
    Pull(Vec<(String, ObjectId)>),
    /// The peer is reachable again: a full sync, unless one just ran.
    CatchUp,
}

/// A running peer worker.
pub(super) struct Worker {
    pub(super) ticket: Ticket,
    pub(super) task: tokio::task::JoinHandle<()>,
    /// What the daemon asks of it.
    pub(super) asks: tokio::sync::mpsc::UnboundedSender<Ask>,
}

/// Waits for every receiver (a worker's first try).
pub(super) async fn futures_join(firsts: Vec<tokio::sync::oneshot::Receiver<()>>) {
    for f in firsts {
        let _ = f.await;
    }
}

/// The peers of this node: the configuration's, then the saved remotes.
pub(super) fn peers_of(ctx: &Ctx, cfg: &Config) -> Vec<Peer> {
    let mut out: Vec<Peer> = cfg.peers.clone();
    match hero_sync::access::remotes(&ctx.repo) {
        Ok(list) => {
            for (name, t) in list {
                match t.parse::<Ticket>() {
                    Ok(ticket) if ticket.id() != ctx.me => {
                        if let Some(p) = out.iter_mut().find(|p| p.ticket.id() == ticket.id()) {
                            // Addresses from both.
                            let mut addr = p.ticket.addr.clone();
                            for a in ticket.addr.addrs.iter() {
                                addr.addrs.insert(a.clone());
                            }
                            p.ticket = Ticket { addr };
                        } else {
                            out.push(Peer {
                                ticket,
                                source: format!("remote {name}"),
                            });
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("remote {name}: {e}"),
                }
            }
        }
        Err(e) => tracing::warn!("reading the saved remotes: {e}"),
    }
    out
}

/// Starts workers for new peers and stops those of peers no longer configured; returns the
/// first-try signals of the workers it started.
pub(super) fn reconcile_workers(
    ctx: &Arc<Ctx>,
    cfg: &Config,
    workers: &mut HashMap<EndpointId, Worker>,
    changed: &signal::Receiver<u64>,
    announcer: &Arc<hero_sync::gossip::Announcer>,
) -> Vec<tokio::sync::oneshot::Receiver<()>> {
    let peers = peers_of(ctx, cfg);
    let mut firsts = Vec::new();
    workers.retain(|id, w| {
        let keep = peers
            .iter()
            .any(|p| p.ticket.id() == *id && p.ticket == w.ticket);
        if !keep {
            w.task.abort();
            ctx.status().peers.remove(&id.to_string());
        }
        keep
    });
    for p in peers {
        let id = p.ticket.id();
        if workers.contains_key(&id) {
            continue;
        }
        ctx.status().peers.insert(
            id.to_string(),
            PeerStatus {
                id: id.to_string(),
                source: p.source.clone(),
                ticket: p.ticket.to_string(),
                connected: false,
                last_sync: None,
                last_error: None,
                syncs: 0,
            },
        );
        let (first_tx, first_rx) = tokio::sync::oneshot::channel();
        firsts.push(first_rx);
        let (asks, asks_rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(peer_worker(
            ctx.clone(),
            p.ticket.clone(),
            changed.clone(),
            asks_rx,
            first_tx,
        ));
        {
            let an = announcer.clone();
            let t = p.ticket.clone();
            tokio::spawn(async move { an.learn(&t).await });
        }
        workers.insert(
            id,
            Worker {
                ticket: p.ticket,
                task,
                asks,
            },
        );
    }
    firsts
}

/// Keeps one peer in sync. At start, when the peer comes up again in the announcement topic
/// and every catch-up interval: a full sync (pull, then push, every branch); after a failed
/// sync, again after [`RETRY_FIRST`], doubling. When the peer announces heads this node
/// lacks: a pull of those branches only. After a local change: nothing at once (the change is announced and the peer
/// pulls it); if after [`CONFIRM_WAIT`] the peer has not shown it has our heads, a push of the
/// branches it lacks. So one change costs one session per peer, not a pull and a push both
/// ways (ADR 0019). A peer that cannot be reached is retried at the next of those.
async fn peer_worker(
    ctx: Arc<Ctx>,
    ticket: Ticket,
    mut changed: signal::Receiver<u64>,
    mut asks: tokio::sync::mpsc::UnboundedReceiver<Ask>,
    first: tokio::sync::oneshot::Sender<()>,
) {
    let mut first = Some(first);
    let peer = ticket.id();
    let mut full_at = Instant::now();
    let mut push_at: Option<Instant> = None;
    let mut synced_at: Option<Instant> = None;
    let mut failures = 0u32;
    loop {
        enum Do {
            Full,
            Pull(Vec<(String, ObjectId)>),
            Push,
        }
        let what = if Instant::now() >= full_at {
            Do::Full
        } else {
            let push_due = async {
                match push_at {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = changed.changed() => {
                    if r.is_err() {
                        return;
                    }
                    push_at.get_or_insert_with(|| Instant::now() + CONFIRM_WAIT);
                    continue;
                }
                p = asks.recv() => match p {
                    Some(Ask::Pull(heads)) => {
                        // Announcements that came meanwhile go into the same pull; a branch
                        // announced twice is pulled at its latest head.
                        let mut branches: BTreeMap<String, ObjectId> = heads.into_iter().collect();
                        let mut full = false;
                        while let Ok(more) = asks.try_recv() {
                            match more {
                                Ask::Pull(more) => branches.extend(more),
                                Ask::CatchUp => full = true,
                            }
                        }
                        if full {
                            full_at = Instant::now();
                            continue;
                        }
                        // Heads that arrived meanwhile (pulled from another peer, which had
                        // merged them) need no session: with ten peers announcing merges of one
                        // edit, most announced heads are here before their turn comes.
                        branches.retain(|_, h| !ctx.repo.has_object(h).unwrap_or(false));
                        if branches.is_empty() {
                            continue;
                        }
                        Do::Pull(branches.into_iter().collect())
                    }
                    Some(Ask::CatchUp) => {
                        if synced_at.is_none_or(|t| t.elapsed() >= CATCH_UP_FRESH) {
                            full_at = Instant::now();
                        }
                        continue;
                    }
                    None => return,
                },
                _ = push_due => Do::Push,
                _ = tokio::time::sleep_until(full_at.into()) => Do::Full,
            }
        };
        let result = match what {
            Do::Full => {
                changed.borrow_and_update();
                push_at = None;
                let r = sync_once(&ctx, &ticket).await;
                let wait = match &r {
                    Ok(_) => {
                        failures = 0;
                        synced_at = Some(Instant::now());
                        ctx.catch_up()
                    }
                    Err(_) => {
                        failures = failures.saturating_add(1);
                        let backoff = RETRY_FIRST.saturating_mul(1 << (failures - 1).min(16));
                        backoff.min(ctx.catch_up())
                    }
                };
                full_at = Instant::now() + wait;
                r
            }
            Do::Pull(branches) => pull_some(&ctx, &ticket, &branches).await,
            Do::Push => {
                push_at = None;
                push_unconfirmed(&ctx, &ticket).await
            }
        };
        {
            let mut st = ctx.status();
            if let Some(p) = st.peers.get_mut(&peer.to_string()) {
                match &result {
                    // Nothing needed a session.
                    Ok(false) => {}
                    Ok(true) => {
                        p.connected = true;
                        p.last_sync = Some(unix_now());
                        p.last_error = None;
                        p.syncs += 1;
                    }
                    Err(e) => {
                        p.connected = false;
                        p.last_error = Some(e.clone());
                    }
                }
            }
        }
        match &result {
            Ok(false) => {}
            Ok(true) => remember_addresses(&ctx, &peer).await,
            Err(e) => tracing::debug!("sync with {}: {e}", peer.fmt_short()),
        }
        if let Some(f) = first.take() {
            let _ = f.send(());
        }
    }
}

/// Saved remotes follow a peer that moved ([`hero_sync::access::follow_remotes`]) once this
/// endpoint talks with it at addresses its saved ticket does not name (it restarted on another
/// port and dialled us, say), so `heroctl sync REMOTE` finds it there too.
async fn remember_addresses(ctx: &Ctx, peer: &EndpointId) {
    let learned = ctx.pool.learned(peer).await;
    if learned.is_empty() {
        return;
    }
    match hero_sync::access::follow_remotes(&ctx.repo, peer, &learned) {
        Ok(names) => {
            for name in names {
                tracing::info!(
                    "remote {name} ({}) is now reached at {}",
                    peer.fmt_short(),
                    crate::commands::sync::addr_list(&learned)
                );
            }
        }
        Err(e) => tracing::warn!("saving where {} is now: {e}", peer.fmt_short()),
    }
}

/// Records heads `peer` is known to have; when it has this node's default branch head, that
/// head is confirmed (seen by a peer).
pub(super) fn note_known(ctx: &Ctx, peer: &EndpointId, heads: &[(String, ObjectId)]) {
    if heads.is_empty() {
        return;
    }
    {
        let mut known = ctx.known.lock().unwrap_or_else(|p| p.into_inner());
        let k = known.entry(*peer).or_default();
        for (b, h) in heads {
            k.insert(b.clone(), *h);
        }
    }
    let ours = ctx.repo.branch_head(&ctx.branch).ok().flatten();
    if let Some(h) = ours
        && heads.iter().any(|(b, id)| *b == ctx.branch && *id == h)
    {
        ctx.status().confirmed = Some(h);
    }
}

/// How many commits [`contains`] looks at before it answers no.
const CONTAINS_SCAN: usize = 256;

/// Whether the peer's head `theirs` holds this node's head `ours`: equal, or `ours` among
/// the newest [`CONTAINS_SCAN`] commits of `theirs`' history when that history is here. A
/// peer that merged our head into its own (the usual answer to an announcement when both
/// sides were editing) has it, and needs no push.
fn contains(ctx: &Ctx, theirs: &ObjectId, ours: &ObjectId) -> bool {
    if theirs == ours {
        return true;
    }
    if !ctx.repo.has_object(theirs).unwrap_or(false) {
        return false;
    }
    let Ok(view) = ctx.repo.view() else {
        return false;
    };
    let Ok(log) = view.log(&[*theirs], false) else {
        return false;
    };
    log.take(CONTAINS_SCAN)
        .map_while(|item| item.ok())
        .any(|(id, _)| id == *ours)
}

fn message_of(e: &hero_sync::SyncError) -> String {
    crate::error::messages_of(e).join(": ")
}

/// A full sync with a peer: every branch pulled, then every branch pushed, over the pooled
/// connection. `Ok(true)`: sessions ran.
async fn sync_once(ctx: &Ctx, ticket: &Ticket) -> std::result::Result<bool, String> {
    let pulled = ctx
        .pool
        .pull(&ctx.repo, ticket, None)
        .await
        .map_err(|e| message_of(&e))?;
    note_known(ctx, &ticket.id(), &pulled.peer_heads);
    if pulled.same_refs {
        // The peer has every branch and tag as they are here: nothing to push either.
        return Ok(true);
    }
    if pulled.updated() > 0 {
        tracing::info!(
            "pulled from {}: {} branch(es) moved",
            ticket.id().fmt_short(),
            pulled.updated()
        );
    }
    let pushed = ctx
        .pool
        .push(&ctx.repo, ticket, None, None)
        .await
        .map_err(|e| message_of(&e))?;
    note_known(ctx, &ticket.id(), &pushed.peer_heads);
    if !pushed.branches_failed.is_empty() {
        return Err(format!(
            "{} branch(es) not accepted by the peer",
            pushed.branches_failed.len()
        ));
    }
    Ok(true)
}

/// Pulls the branches a peer announced, their wants sent with the hello.
async fn pull_some(
    ctx: &Ctx,
    ticket: &Ticket,
    heads: &[(String, ObjectId)],
) -> std::result::Result<bool, String> {
    let pulled = ctx
        .pool
        .pull_announced(&ctx.repo, ticket, heads, None)
        .await
        .map_err(|e| message_of(&e))?;
    note_known(ctx, &ticket.id(), &pulled.peer_heads);
    if pulled.updated() > 0 {
        let names: Vec<&str> = heads.iter().map(|(b, _)| b.as_str()).collect();
        tracing::info!(
            "pulled {} from {}: {} branch(es) moved",
            names.join(", "),
            ticket.id().fmt_short(),
            pulled.updated()
        );
    }
    Ok(true)
}

/// Pushes the branches whose heads here the peer is not known to have; `Ok(false)` when it
/// is known to have them all (no session).
async fn push_unconfirmed(ctx: &Ctx, ticket: &Ticket) -> std::result::Result<bool, String> {
    let peer = ticket.id();
    let ours = ctx.repo.branches().map_err(|e| e.to_string())?;
    let theirs: HashMap<String, ObjectId> = {
        let known = ctx.known.lock().unwrap_or_else(|p| p.into_inner());
        known.get(&peer).cloned().unwrap_or_default()
    };
    let unconfirmed: Vec<String> = ours
        .into_iter()
        .filter(|(b, h)| !theirs.get(b).is_some_and(|t| contains(ctx, t, h)))
        .map(|(b, _)| b)
        .collect();
    if unconfirmed.is_empty() {
        return Ok(false);
    }
    tracing::debug!(
        "{} did not show it has {}: pushing",
        peer.fmt_short(),
        unconfirmed.join(", ")
    );
    let pushed = ctx
        .pool
        .push(&ctx.repo, ticket, Some(&unconfirmed), None)
        .await
        .map_err(|e| message_of(&e))?;
    note_known(ctx, &peer, &pushed.peer_heads);
    if !pushed.branches_failed.is_empty() {
        return Err(format!(
            "{} branch(es) not accepted by the peer",
            pushed.branches_failed.len()
        ));
    }
    Ok(true)
}
