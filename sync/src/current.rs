//! The membership in force in a repository, kept per process while its branch has not moved:
//! what the gate, commit signatures and the authority over `.hero/` decide with.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use hero_store::{ObjectId, Repo};

use crate::error::Result;
use crate::membership::{self, Membership};

/// The membership last loaded in this process, by repository file, membership head and pinned
/// genesis: loading verifies every change's signature (about 76 ms for 1,000 changes, ADR
/// 0017), and a server decides every session.
type Cached = (
    PathBuf,
    Option<ObjectId>,
    Option<automerge::ChangeHash>,
    Arc<Membership>,
);
static CACHE: Mutex<Vec<Cached>> = Mutex::new(Vec::new());
/// Repositories whose membership the cache keeps.
const CACHE_SLOTS: usize = 4;

/// The membership in force in `repo` (from the cache when its branch has not moved).
pub fn membership_of(repo: &Repo) -> Result<Arc<Membership>> {
    let head = repo.branch_head(membership::BRANCH)?;
    let pinned = membership::pinned(repo)?;
    let path = repo.path().to_path_buf();
    if let Ok(c) = CACHE.lock()
        && let Some((_, _, _, m)) = c
            .iter()
            .find(|(p, h, g, _)| *p == path && *h == head && *g == pinned)
    {
        return Ok(m.clone());
    }
    let (m, _) = membership::load(repo)?;
    let m = Arc::new(m);
    if let Ok(mut c) = CACHE.lock() {
        c.retain(|(p, _, _, _)| *p != path);
        if c.len() >= CACHE_SLOTS {
            c.remove(0);
        }
        c.push((path, head, pinned, m.clone()));
    }
    Ok(m)
}
