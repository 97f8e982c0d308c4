//! Who this node is in the membership, and the refusal of a `.hero/` change this node may not
//! make: only owners write what the daemons obey (docs/security.md). Receivers refuse such a
//! change too; refusing it here gives the writer a clear error before anything moves.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;
use hero_store::{ObjectId, Repo, RepoPath};
use hero_sync::membership::Role;

use crate::error::{Kind, tagged_hint};

/// Whether this node may change `.hero/` in `repo`: a repository without a membership is its
/// own; under one, owners only.
pub fn may_write_config(repo: &Repo) -> Result<bool> {
    if !hero_sync::membership::is_enforced(repo)? {
        return Ok(true);
    }
    may_write_config_as(repo, &hero_sync::endpoint_id(repo.path())?)
}

/// [`may_write_config`] for the node `me` (a process that knows its id reads no key file).
pub fn may_write_config_as(repo: &Repo, me: &hero_sync::EndpointId) -> Result<bool> {
    if !hero_sync::membership::is_enforced(repo)? {
        return Ok(true);
    }
    Ok(hero_sync::gate::membership_of(repo)?.role_of(me) == Some(Role::Owner))
}

fn refusal(path: &str) -> anyhow::Error {
    tagged_hint(
        Kind::Refused,
        format!(
            "{path}: only owners may change {}/, the configuration the daemons obey; this \
             node is not an owner",
            hero_store::CONFIG_DIR
        ),
        "ask an owner to make the change (`heroctl member list` names them); every peer \
         refuses it from anyone else",
    )
}

/// Refuses `paths` when one lies in `.hero/` and this node may not write there.
pub fn check_paths<'a>(repo: &Repo, paths: impl IntoIterator<Item = &'a RepoPath>) -> Result<()> {
    let config: Vec<String> = paths
        .into_iter()
        .map(|p| p.to_string())
        .filter(|p| hero_store::is_config_path(p))
        .collect();
    match config.first() {
        Some(p) if !may_write_config(repo)? => Err(refusal(p)),
        _ => Ok(()),
    }
}

/// Refuses moving a branch from `old` to `new` when that changes `.hero/` and this node may
/// not write there.
pub fn check_move(repo: &Repo, old: Option<ObjectId>, new: &ObjectId) -> Result<()> {
    if old == Some(*new) {
        return Ok(());
    }
    let changed: Vec<String> = repo
        .view()?
        .diff_commits(old, new)?
        .into_iter()
        .map(|d| d.path.to_string())
        .filter(|p| hero_store::is_config_path(p))
        .collect();
    match changed.first() {
        Some(p) if !may_write_config(repo)? => Err(refusal(p)),
        _ => Ok(()),
    }
}

/// A switch for a mount or a share of the repository at `path` that says whether this node
/// may change `.hero/` ([`may_write_config`]), kept current by a thread that reads it again
/// every `every` (a membership change arrives by sync while the mount runs).
pub fn config_switch(path: &std::path::Path, every: Duration) -> Result<Arc<AtomicBool>> {
    let repo = Repo::open(path)?;
    let me = hero_sync::endpoint_id(path)?;
    let switch = Arc::new(AtomicBool::new(may_write_config_as(&repo, &me)?));
    let s = switch.clone();
    std::thread::Builder::new()
        .name("config-switch".into())
        .spawn(move || {
            // One warning for a failure that lasts, not one a tick; the last answer stays.
            let mut failing = false;
            loop {
                std::thread::sleep(every);
                match may_write_config_as(&repo, &me) {
                    Ok(v) => {
                        s.store(v, Ordering::Relaxed);
                        failing = false;
                    }
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!("reading this node's role: {e:#}");
                    }
                    Err(_) => {}
                }
            }
        })?;
    Ok(switch)
}
