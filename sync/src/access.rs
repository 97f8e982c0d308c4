//! What a repository remembers about its peers, in its settings: who may connect
//! (`sync/allow/<id>`), the saved remotes (`remote/<name>`), and the id of the repository it
//! replicates (`sync/repo-id`, set by a clone).
//!
//! The allow list lives in [`crate::allow`] (re-exported here): it fails only as the store
//! does ([`hero_store::Error`]), so the membership code, which upgrades a repository from it,
//! reads it without reaching [`SyncError`].

use std::net::SocketAddr;

use hero_store::{ObjectId, Repo};
use iroh::EndpointId;

pub use crate::allow::{Access, access_of, allow, allowed, disallow};
use crate::error::{Result, SyncError};
use crate::ticket::Ticket;

const REMOTE_PREFIX: &str = "remote/";
const REPO_ID_KEY: &str = "sync/repo-id";

/// Saves a remote.
pub fn add_remote(repo: &Repo, name: &str, ticket: &Ticket) -> Result<()> {
    if name.is_empty() || name.contains('/') || name.contains(char::is_whitespace) {
        return Err(SyncError::UnknownRemote(name.to_owned()));
    }
    repo.set_setting(
        &format!("{REMOTE_PREFIX}{name}"),
        Some(ticket.to_string().as_bytes()),
    )?;
    Ok(())
}

/// Forgets a remote; whether it was saved.
pub fn remove_remote(repo: &Repo, name: &str) -> Result<bool> {
    let key = format!("{REMOTE_PREFIX}{name}");
    let was = repo.setting(&key)?.is_some();
    repo.set_setting(&key, None)?;
    Ok(was)
}

/// The saved remotes, by name.
pub fn remotes(repo: &Repo) -> Result<Vec<(String, String)>> {
    Ok(repo
        .settings_with_prefix(REMOTE_PREFIX)?
        .into_iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(REMOTE_PREFIX)
                .map(|n| (n.to_owned(), String::from_utf8_lossy(&v).into_owned()))
        })
        .collect())
}

/// Saved remotes are peers by id: when `peer` was last reached at addresses (`now`) its saved
/// ticket does not name (it restarted on another port or moved), every saved remote of it is
/// brought up to date, so the next `heroctl sync REMOTE` dials it there first. Returns the
/// names of the remotes updated.
pub fn follow_remotes(repo: &Repo, peer: &EndpointId, now: &[SocketAddr]) -> Result<Vec<String>> {
    let mut moved = Vec::new();
    for (name, text) in remotes(repo)? {
        let Ok(ticket) = text.parse::<Ticket>() else {
            continue;
        };
        if ticket.id() != *peer {
            continue;
        }
        if let Some(updated) = ticket.moved_to(now) {
            add_remote(repo, &name, &updated)?;
            moved.push(name);
        }
    }
    Ok(moved)
}

/// A saved remote's name or a ticket, resolved to a ticket.
pub fn resolve_remote(repo: &Repo, name_or_ticket: &str) -> Result<Ticket> {
    if let Some(v) = repo.setting(&format!("{REMOTE_PREFIX}{name_or_ticket}"))? {
        return String::from_utf8_lossy(&v).parse();
    }
    match name_or_ticket.parse::<Ticket>() {
        Ok(t) => Ok(t),
        Err(_) if !name_or_ticket.contains('@') && name_or_ticket.len() < 40 => {
            Err(SyncError::UnknownRemote(name_or_ticket.to_owned()))
        }
        Err(e) => Err(e),
    }
}

/// The id of the repository this one replicates: the one it was cloned from, else its own.
pub fn sync_repo_id(repo: &Repo) -> Result<ObjectId> {
    if let Some(v) = repo.setting(REPO_ID_KEY)?
        && let Some(id) = ObjectId::from_hex(&String::from_utf8_lossy(&v))
    {
        return Ok(id);
    }
    Ok(repo.repo_id()?)
}

/// Adopts another repository's id (a clone into an empty repository).
pub fn adopt_repo_id(repo: &Repo, id: &ObjectId) -> Result<()> {
    repo.set_setting(REPO_ID_KEY, Some(id.to_hex().as_bytes()))?;
    Ok(())
}
