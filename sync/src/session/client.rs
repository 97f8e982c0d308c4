//! The client's side of a session: pull (what the server sends) and push (what it takes).

use hero_store::{ObjectId, RefValue, Repo};
use iroh::EndpointId;
use tokio::io::{AsyncRead, AsyncWrite};

use super::handshake::{EarlyWants, Intent, Welcome, handshake, is_empty};
use super::refs::{create_missing_refs, integrate, put_branches, put_tags, take_tags};
use super::report::{BranchUpdate, SyncReport, UpdateKind};
use super::signatures::{fetch_signatures, send_signatures};
use crate::access::Access;
use crate::audit::{self, Decision, Entry};
use crate::error::{Result, SyncError};
use crate::gate;
use crate::membership;
use crate::transfer::{self, Ask, ProgressFn, advertised, blocking};
use crate::wire::{Dec, Enc, Wire, code, kind};

/// Pulls every branch of the peer into `repo` over `wire` (any byte stream: a QUIC stream in
/// [`crate::net`], an in-memory pipe in tests).
pub async fn pull<R, W>(
    wire: &mut Wire<R, W>,
    repo: &Repo,
    peer: &EndpointId,
    me: &EndpointId,
    progress: Option<&ProgressFn>,
) -> Result<SyncReport>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    pull_only(wire, repo, peer, me, None, progress).await
}

/// Pulls the branches named in `only` (every branch and tag when `None`): the peer
/// advertises only those, and this side names only their history as what it has, so the
/// session costs what those branches changed, not what the repository holds.
pub async fn pull_only<R, W>(
    wire: &mut Wire<R, W>,
    repo: &Repo,
    peer: &EndpointId,
    me: &EndpointId,
    only: Option<&[String]>,
    progress: Option<&ProgressFn>,
) -> Result<SyncReport>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    pull_with(wire, repo, peer, me, only, None, progress).await
}

/// Pulls the branches of `heads` (what the peer announced it has), sending the wants with the
/// hello: when the peer still has exactly those heads, the objects follow its welcome without
/// another round trip; otherwise the pull goes on as [`pull_only`] of those branches.
pub async fn pull_announced<R, W>(
    wire: &mut Wire<R, W>,
    repo: &Repo,
    peer: &EndpointId,
    me: &EndpointId,
    heads: &[(String, ObjectId)],
    progress: Option<&ProgressFn>,
) -> Result<SyncReport>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    // By name, one head each: the order the peer advertises in.
    let mut heads = heads.to_vec();
    heads.sort();
    heads.dedup_by(|a, b| a.0 == b.0);
    let names: Vec<String> = heads.iter().map(|(n, _)| n.clone()).collect();
    let early = blocking(|| -> Result<Option<(Ask, EarlyWants)>> {
        // An interrupted transfer is resumed with an inventory, after the welcome.
        if transfer::resuming(repo)? {
            return Ok(None);
        }
        let ask = Ask::of(repo, &heads, &[], true)?;
        let early = EarlyWants {
            heads: heads.iter().map(|(_, id)| *id).collect(),
            wants: transfer::wants_body(&ask, false),
        };
        Ok(Some((ask, early)))
    })?;
    pull_with(wire, repo, peer, me, Some(&names), early, progress).await
}

async fn pull_with<R, W>(
    wire: &mut Wire<R, W>,
    repo: &Repo,
    peer: &EndpointId,
    me: &EndpointId,
    only: Option<&[String]>,
    early: Option<(Ask, EarlyWants)>,
    progress: Option<&ProgressFn>,
) -> Result<SyncReport>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let (early_ask, early) = match early {
        Some((a, e)) => (Some(a), Some(e)),
        None => (None, None),
    };
    let welcome = handshake(wire, repo, Intent::Pull, only, early, peer, me).await?;
    if welcome.same_refs {
        return SyncReport::same_refs(repo, wire);
    }
    // A clone (or a repository that never chose) adopts the peer's default branch.
    if blocking(|| -> Result<bool> { Ok(is_empty(repo)? && !repo.has_default_branch()?) })? {
        blocking(|| repo.set_default_branch(&welcome.default_branch))?;
    }
    let (ask, sent) = match early_ask {
        Some(ask) if welcome.taken => (ask, true),
        _ => (
            blocking(|| Ask::of(repo, &welcome.branches, &welcome.tags, only.is_some()))?,
            false,
        ),
    };
    let stats = transfer::receive_objects(wire, repo, &ask, sent, progress).await?;
    let ordinary: Vec<ObjectId> = welcome
        .branches
        .iter()
        .filter(|(n, _)| !membership::is_reserved(n))
        .map(|(_, id)| *id)
        .chain(welcome.tags.iter().map(|(_, v)| v.id()))
        .collect();
    let new_commits = fetch_signatures(wire, repo, &ordinary).await?;
    let reason = format!("pull from {}", peer.fmt_short());
    let mut report = SyncReport {
        transfer: stats,
        peer_heads: welcome.branches.clone(),
        ..SyncReport::default()
    };
    // Hero's own branches are taken only after their checks (ADR 0018).
    let (kept, dropped) =
        blocking(|| gate::filter_pulled(repo, welcome.genesis, &welcome.branches))?;
    // An empty repository that made a membership of its own (`heroctl init`) cannot take a
    // peer's history: none of its signers are members here.
    let mut foreign_genesis = false;
    for (name, why) in dropped {
        if name == membership::BRANCH && why.contains("another genesis") {
            foreign_genesis = blocking(|| is_empty(repo))?;
        }
        if name == membership::BRANCH && why.contains("refused") {
            tracing::warn!("sync: membership from {peer} not taken: {why}");
            blocking(|| {
                audit::record(
                    repo,
                    Entry::new(Some(peer), "pull", Decision::Refused, why.clone())
                        .rule("membership change refused"),
                )
            });
            let e = SyncError::MembershipRefused(why);
            report.branches_failed.push((name, e.into()));
        } else {
            tracing::debug!("sync: branch {name} of {peer} left out: {why}");
        }
    }
    // Every new commit is checked end to end (ADR 0018): one that fails keeps every branch of
    // this pull where it was.
    let incoming = kept
        .iter()
        .find(|(n, _)| n == membership::BRANCH)
        .map(|(_, id)| *id);
    let kept = if blocking(|| membership::is_enforced(repo))? {
        match blocking(|| crate::commitsig::check(repo, incoming, &new_commits))? {
            None => kept,
            Some(r) => {
                let mut text = format!(
                    "commit {}{}: {}",
                    r.commit.short(),
                    r.path
                        .as_deref()
                        .map(|p| format!(", path {p}"))
                        .unwrap_or_default(),
                    r.rule
                );
                if foreign_genesis {
                    text = format!(
                        "this repository is empty but has a membership of its own (made by \
                         `heroctl init`), not the peer's, so it can check none of the peer's \
                         commits ({text}); to copy the peer's repository, use `heroctl clone \
                         TICKET` (as a member) or `heroctl join INVITATION` on a new path"
                    );
                }
                tracing::warn!("sync: history from {peer} refused: {text}");
                blocking(|| {
                    let mut e = Entry::new(Some(peer), "pull", Decision::Refused, text.clone())
                        .rule(r.rule.clone());
                    e.commit = Some(r.commit.to_hex());
                    e.path = r.path.clone();
                    audit::record(repo, e)
                });
                let (refused, rest): (Vec<_>, Vec<_>) = kept
                    .into_iter()
                    .partition(|(n, _)| !membership::is_reserved(n));
                for (name, _) in refused {
                    let e = SyncError::HistoryRefused(text.clone());
                    report.branches_failed.push((name, e.into()));
                }
                rest
            }
        }
    } else {
        kept
    };
    let welcome = Welcome {
        branches: kept,
        tags: if report.branches_failed.is_empty() {
            welcome.tags
        } else {
            Vec::new()
        },
        ..welcome
    };
    let (new_branches, new_tags) =
        blocking(|| create_missing_refs(repo, &welcome.branches, &welcome.tags, &reason))?;
    // Refs already where the peer has them need nothing more (one read, not one per ref).
    let (same_branches, same_tags) = blocking(|| -> Result<_> {
        let view = repo.view()?;
        let ours: std::collections::HashMap<String, ObjectId> =
            view.branches()?.into_iter().collect();
        let our_tags: std::collections::HashMap<String, RefValue> =
            view.tags()?.into_iter().collect();
        let same_branches: std::collections::HashSet<&str> = welcome
            .branches
            .iter()
            .filter(|(n, id)| ours.get(n) == Some(id))
            .map(|(n, _)| n.as_str())
            .collect();
        let same_tags: std::collections::HashSet<&str> = welcome
            .tags
            .iter()
            .filter(|(n, v)| our_tags.get(n) == Some(v))
            .map(|(n, _)| n.as_str())
            .collect();
        Ok((same_branches, same_tags))
    })?;
    let new_branches: std::collections::HashSet<&str> =
        new_branches.iter().map(String::as_str).collect();
    let new_tags: std::collections::HashSet<&str> = new_tags.iter().map(String::as_str).collect();
    for (name, id) in &welcome.branches {
        if same_branches.contains(name.as_str()) && !new_branches.contains(name.as_str()) {
            report.branches.push(BranchUpdate {
                branch: name.clone(),
                old: Some(*id),
                new: *id,
                how: UpdateKind::UpToDate,
                conflicts: 0,
            });
            continue;
        }
        if new_branches.contains(name.as_str()) {
            report.branches.push(BranchUpdate {
                branch: name.clone(),
                old: None,
                new: *id,
                how: UpdateKind::Created,
                conflicts: 0,
            });
            continue;
        }
        if blocking(|| repo.view()?.object_type(id))? != Some(hero_store::ObjType::Commit) {
            tracing::warn!("sync: branch {name} of the peer did not arrive whole; left alone");
            let e = SyncError::protocol(format!("its head {} did not arrive", id.short()));
            report.branches_failed.push((name.clone(), e.into()));
            continue;
        }
        // One branch that cannot be merged does not keep the others from moving.
        match blocking(|| integrate(repo, name, *id, &reason)) {
            Ok(u) => report.branches.push(u),
            Err(e @ SyncError::Merge { .. }) => {
                tracing::warn!("sync: branch {name} not updated: {e}");
                report.branches_failed.push((name.clone(), e.into()));
            }
            Err(e) => return Err(e),
        }
    }
    report.tags_created += new_tags.len();
    let rest: Vec<(String, RefValue)> = welcome
        .tags
        .iter()
        .filter(|(name, _)| !new_tags.contains(name.as_str()) && !same_tags.contains(name.as_str()))
        .cloned()
        .collect();
    blocking(|| take_tags(repo, &rest, &reason, &mut report))?;
    report.set_aside_reserved();
    report.bytes_in = wire.bytes_in;
    report.bytes_out = wire.bytes_out;
    report.round_trips = wire.round_trips;
    Ok(report)
}

/// Pushes `branches` (all when `None`) of `repo` to the peer over `wire`.
pub async fn push<R, W>(
    wire: &mut Wire<R, W>,
    repo: &Repo,
    peer: &EndpointId,
    me: &EndpointId,
    branches: Option<&[String]>,
    progress: Option<&ProgressFn>,
) -> Result<SyncReport>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    // The peer advertises only the branches pushed (its other refs do not matter here).
    let welcome = handshake(wire, repo, Intent::Push, branches, None, peer, me).await?;
    if welcome.same_refs {
        return SyncReport::same_refs(repo, wire);
    }
    if welcome.access != Access::ReadWrite {
        return Err(SyncError::ReadOnly {
            peer: peer.to_string(),
            me: me.to_string(),
        });
    }
    let mut ours = repo.branches()?;
    // The membership travels only to a peer that trusts the same genesis; no other branch of
    // hero's own travels at all.
    let same_root = welcome.genesis.is_some() && membership::pinned(repo)? == welcome.genesis;
    ours.retain(|(n, _)| !membership::is_reserved(n) || (n == membership::BRANCH && same_root));
    if let Some(only) = branches {
        for b in only {
            if !ours.iter().any(|(n, _)| n == b) {
                return Err(SyncError::Store(hero_store::Error::UnknownRevision(
                    b.clone(),
                )));
            }
        }
        ours.retain(|(n, _)| only.contains(n));
    }
    // Tags travel with a push of everything; a push of named branches is about those only.
    let our_tags = if branches.is_some() {
        Vec::new()
    } else {
        repo.tags()?
    };
    // Refs already where the peer has them travel no further: the peer would find them up to
    // date (and says so in the report without being told).
    let theirs: std::collections::HashSet<&(String, ObjectId)> = welcome.branches.iter().collect();
    let (same, ours): (Vec<_>, Vec<_>) = ours.into_iter().partition(|b| theirs.contains(b));
    let their_tags: std::collections::HashMap<&str, &RefValue> =
        welcome.tags.iter().map(|(n, v)| (n.as_str(), v)).collect();
    let mut our_tags = our_tags;
    our_tags.retain(|(n, v)| their_tags.get(n.as_str()) != Some(&v));
    let mut m = Enc::new(kind::PUSH);
    put_branches(&mut m, &ours);
    put_tags(&mut m, &our_tags);
    wire.send(&m).await?;
    wire.flush().await?;
    // A push of nothing (the peer has every ref already) ends at its result.
    let stats = if ours.is_empty() && our_tags.is_empty() {
        transfer::TransferStats::default()
    } else {
        let wants = wire.expect(kind::WANTS).await?;
        let advertised = advertised(&ours, &our_tags);
        let (stats, commits) =
            transfer::send_objects(wire, repo, &wants, &advertised, progress).await?;
        send_signatures(wire, repo, None, stats.candidates, &commits).await?;
        stats
    };
    let (k, body) = wire.recv_any().await?;
    if k == kind::ERROR {
        let mut d = Dec::new(&body);
        let c = d.u8()?;
        let msg = d.string()?;
        return Err(match c {
            code::PUSH_REFUSED => SyncError::PushRefused {
                peer: peer.to_string(),
                reason: msg,
            },
            code::PROTOCOL => SyncError::Remote(format!("it says we broke the protocol: {msg}")),
            _ => SyncError::Remote(msg),
        });
    }
    if k != kind::PUSH_RESULT {
        return Err(SyncError::protocol(format!(
            "expected message {}, got {k}",
            kind::PUSH_RESULT
        )));
    }
    let mut d = Dec::new(&body);
    let n = d.u32()? as usize;
    let mut report = SyncReport {
        transfer: stats,
        ..SyncReport::default()
    };
    for _ in 0..n.min(1_000_000) {
        let branch = d.string()?;
        let how = UpdateKind::from_code(d.u8()?)?;
        let conflicts = d.u32()? as usize;
        let new = d.id()?;
        let old = ours.iter().find(|(b, _)| *b == branch).map(|(_, id)| *id);
        report.peer_heads.push((branch.clone(), new));
        report.branches.push(BranchUpdate {
            branch,
            old,
            new,
            how,
            conflicts,
        });
    }
    for (branch, id) in same {
        report.peer_heads.push((branch.clone(), id));
        report.branches.push(BranchUpdate {
            branch,
            old: Some(id),
            new: id,
            how: UpdateKind::UpToDate,
            conflicts: 0,
        });
    }
    report.tags_created = d.u32()? as usize;
    let differing = d.u32()? as usize;
    for _ in 0..differing.min(1_000_000) {
        report.tags_differing.push(d.string()?);
    }
    report.set_aside_reserved();
    report.bytes_in = wire.bytes_in;
    report.bytes_out = wire.bytes_out;
    report.round_trips = wire.round_trips;
    Ok(report)
}
