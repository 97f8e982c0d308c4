//! `/peers`: what the repository knows of its peers and of trust — remotes, open conflicts,
//! members with their roles and scopes, pending invitations, and the audit log (filtered by
//! peer, action and decision; refusals highlighted). Read-only.

use hero_store::{IdSet, ObjectId, Repo, View};
use hero_sync::audit::Decision;
use maud::html;

use crate::Reply;
use crate::error::PageError;
use crate::layout::{self, Section, time, tree_link};
use crate::request::Query;

/// Audit lines shown at most (the newest).
const AUDIT_MAX: usize = 500;
/// Commits counted at most for a peer's lag (and ancestors of its head looked at).
const LAG_MAX: usize = 10_000;

/// How far a peer's known head is behind `ours`: the commits reachable from `ours` and not
/// from `theirs`, counted up to [`LAG_MAX`]. `None` when `theirs` is not in this store (the
/// peer has commits this node has not pulled yet).
fn lag(
    repo: &Repo,
    view: &View,
    ours: ObjectId,
    theirs: ObjectId,
) -> Result<Option<usize>, PageError> {
    if ours == theirs {
        return Ok(Some(0));
    }
    if !repo.has_object(&theirs)? {
        return Ok(None);
    }
    let walk = |start: ObjectId, stop: &IdSet, limit: usize| -> Result<IdSet, PageError> {
        let mut seen = IdSet::default();
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(c) = queue.pop_front() {
            if seen.len() >= limit || stop.contains(&c) || !seen.insert(c) {
                continue;
            }
            queue.extend(view.commit(&c)?.parents);
        }
        Ok(seen)
    };
    let theirs_ancestors = walk(theirs, &IdSet::default(), LAG_MAX)?;
    Ok(Some(walk(ours, &theirs_ancestors, LAG_MAX)?.len()))
}

pub(crate) fn page(
    repo: &Repo,
    source: Option<&crate::PeerSource>,
    view: &View,
    q: &Query,
) -> Result<Reply, PageError> {
    let live_peers = source.map(|s| s());
    let ours = view.branch_head(&view.default_branch()?)?;
    let mut lags = std::collections::HashMap::new();
    for p in live_peers.iter().flatten() {
        let theirs = p
            .known_head
            .as_deref()
            .and_then(|h| h.parse::<ObjectId>().ok());
        let shown = match (ours, theirs) {
            (Some(o), Some(t)) => match lag(repo, view, o, t)? {
                Some(n) if n >= LAG_MAX => format!("{LAG_MAX}+ commits"),
                Some(n) => format!("{n} commits"),
                None => "has commits not here yet".to_string(),
            },
            _ => "unknown".to_string(),
        };
        lags.insert(p.id.clone(), shown);
    }
    let remotes = hero_sync::access::remotes(repo)?;
    let branch = view.default_branch()?;
    let conflicts = match view.branch_head(&branch)? {
        Some(_) => hero_store::merge::open_conflicts(repo, &branch)?,
        None => Vec::new(),
    };
    let (membership, refusals) = hero_sync::membership::load(repo)?;
    let mut members: Vec<_> = membership.members().collect();
    members.sort_by(|a, b| (a.1.role.as_str(), &a.1.name).cmp(&(b.1.role.as_str(), &b.1.name)));
    let now_ms = hero_sync::audit::now_ms();
    let invitations: Vec<_> = hero_sync::invite::list(repo)?
        .into_iter()
        .filter(|(_, o)| o.used_by.is_none() && o.expires_ms > now_ms)
        .collect();
    let peer = q.get("peer");
    let action = q.get("action");
    let refused_only = q.get("refused").is_some();
    let mut audit = hero_sync::audit::read(repo.path(), peer, None)?;
    audit.retain(|e| {
        action.is_none_or(|a| e.action == a) && (!refused_only || e.decision == Decision::Refused)
    });
    let total = audit.len();
    audit.reverse();
    audit.truncate(AUDIT_MAX);
    let secs = |ms: i64| time(ms.div_euclid(1000));
    let body = html! {
        h1 { "Peers and trust" }
        h2 { "Peers" }
        @match &live_peers {
            None => p.muted { "Not served by the daemon: connections are not known here (remotes below)." },
            Some(ps) if ps.is_empty() => p.muted { "The daemon knows no peers." },
            Some(ps) => table.peers {
                thead { tr { th { "Peer" } th { "Connected" } th { "Last sync" } th { "Behind" } th.wide { "Syncs" } th { "Problem" } } }
                tbody { @for p in ps { tr class=[p.last_error.is_some().then_some("refused")] {
                    td.mono.msg { (p.id) br; span.muted { (p.source) } }
                    td { @if p.connected { "yes" } @else { "no" } }
                    td.muted { @match p.last_sync { Some(t) => (time(i64::try_from(t).unwrap_or(i64::MAX))), None => "never" } }
                    td.lag { (lags.get(&p.id).map_or("unknown", String::as_str)) }
                    td.wide { (p.syncs) }
                    td.msg { (p.last_error.as_deref().unwrap_or("")) }
                } } }
            },
        }
        h2 { "Remotes" }
        @if remotes.is_empty() { p.muted { "No remotes." } }
        @else { table { thead { tr { th { "Name" } th { "Ticket" } } } tbody {
            @for (name, ticket) in &remotes { tr { td { (name) } td.mono.msg { (ticket) } } }
        } } }
        h2 { "Open conflicts on " (branch) }
        @if conflicts.is_empty() { p.muted { "None." } }
        @else { table { thead { tr { th { "Path" } th { "The other version" } th { "Peer" } } } tbody {
            @for c in &conflicts { tr {
                td { a href=(tree_link(&c.path.to_bytes(), &branch)) { (c.path.to_string()) } }
                td { a href=(tree_link(&c.conflict_path.to_bytes(), &branch)) { (c.conflict_path.to_string()) } }
                td.mono { (c.peer) }
            } }
        } } }
        h2 { "Members" }
        @if members.is_empty() { p.muted { "No membership: every peer on the allow list may sync." } }
        @else { table { thead { tr { th { "Name" } th { "Role" } th { "Scopes" } th.wide { "Node" } th.wide { "Added" } } } tbody {
            @for (id, m) in &members { tr {
                td { (m.name) }
                td { (m.role.as_str()) }
                td.mono { @if m.scopes.is_empty() { "everywhere" } @else { (m.scopes.join(", ")) } }
                td.wide.mono.msg { (id.to_string()) }
                td.wide.muted { (secs(m.added_at_ms)) }
            } }
        } } }
        @if !refusals.is_empty() {
            p.refused { (refusals.len()) " membership changes refused" }
        }
        h2 { "Pending invitations" }
        @if invitations.is_empty() { p.muted { "None." } }
        @else { table { thead { tr { th { "Role" } th { "Scopes" } th { "Made by" } th { "Expires" } } } tbody {
            @for (_, o) in &invitations { tr {
                td { (o.role) } td.mono { (o.scopes.join(", ")) } td.mono.msg { (o.created_by) } td { (secs(o.expires_ms)) }
            } }
        } } }
        h2 { "Audit log" }
        form.filters method="get" action="/peers" {
            input name="peer" placeholder="peer id" value=(peer.unwrap_or(""));
            input name="action" placeholder="action (pull, push, connect…)" value=(action.unwrap_or(""));
            label { input type="checkbox" name="refused" value="1" checked[refused_only]; " refused only" }
            button type="submit" { "Filter" }
        }
        p.muted { (total) " entries" @if total > AUDIT_MAX { ", the newest " (AUDIT_MAX) " shown" } }
        table.audit {
            thead { tr { th { "When" } th { "Action" } th { "Decision" } th { "Peer" } th { "Why" } } }
            tbody { @for e in &audit {
                tr class=[(e.decision == Decision::Refused).then_some("refused")] {
                    td.muted { (secs(e.time_ms)) }
                    td { (e.action) }
                    td { @if e.decision == Decision::Refused { "refused" } @else { "accepted" } }
                    td.mono.msg { (e.peer.as_deref().unwrap_or("")) }
                    td.msg { (e.reason)
                        @if let Some(p) = &e.path { " · " code { (p) } }
                        @if let Some(r) = &e.rule { " · rule " (r) }
                    }
                }
            } }
        }
    };
    Ok(Reply::Html(layout::page(
        "Peers and trust",
        Section::Peers,
        true,
        body,
    )))
}
