//! The allow list of a repository in its settings (`sync/allow/<id>`): who may connect and
//! what it may do, in a repository that has no membership yet. It fails only as the store
//! does, and depends on no other module of this crate.

use hero_store::Repo;
use iroh::EndpointId;

const ALLOW_PREFIX: &str = "sync/allow/";

/// What an allowed peer may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Pull only.
    ReadOnly,
    /// Pull and push.
    ReadWrite,
}

impl Access {
    fn as_bytes(self) -> &'static [u8] {
        match self {
            Access::ReadOnly => b"read-only",
            Access::ReadWrite => b"read-write",
        }
    }
}

/// Allows a peer (replacing its previous access).
pub fn allow(repo: &Repo, id: &EndpointId, access: Access) -> hero_store::Result<()> {
    repo.set_setting(&format!("{ALLOW_PREFIX}{id}"), Some(access.as_bytes()))?;
    Ok(())
}

/// Removes a peer from the allow list; whether it was there.
pub fn disallow(repo: &Repo, id: &EndpointId) -> hero_store::Result<bool> {
    let key = format!("{ALLOW_PREFIX}{id}");
    let was = repo.setting(&key)?.is_some();
    repo.set_setting(&key, None)?;
    Ok(was)
}

/// A peer's access, `None` when it is not allowed.
pub fn access_of(repo: &Repo, id: &EndpointId) -> hero_store::Result<Option<Access>> {
    Ok(repo
        .setting(&format!("{ALLOW_PREFIX}{id}"))?
        .map(|v| parse_access(&v)))
}

fn parse_access(v: &[u8]) -> Access {
    if v == Access::ReadWrite.as_bytes() {
        Access::ReadWrite
    } else {
        Access::ReadOnly
    }
}

/// The allow list.
pub fn allowed(repo: &Repo) -> hero_store::Result<Vec<(String, Access)>> {
    Ok(repo
        .settings_with_prefix(ALLOW_PREFIX)?
        .into_iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(ALLOW_PREFIX)
                .map(|id| (id.to_owned(), parse_access(&v)))
        })
        .collect())
}
