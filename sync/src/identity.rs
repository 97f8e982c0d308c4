//! Who a repository is on the network: an ed25519 key kept beside the repository file, its
//! public half the endpoint id peers allow and commits record.

use std::path::{Path, PathBuf};

use hero_store::private::WriteNew;
use iroh::{EndpointId, SecretKey};

pub use crate::error::KeyError;
use crate::error::{Result, SyncError};
pub use crate::peer::peer_header;

/// The key file of a repository: `<repository file>.key`.
pub fn key_path(repo_path: &Path) -> PathBuf {
    let mut s = repo_path.as_os_str().to_owned();
    s.push(".key");
    PathBuf::from(s)
}

/// Loads the repository's secret key, creating it on first use.
///
/// The key file is created atomically (ADR 0022): the key is written to a temporary file
/// (mode 0600) beside it, synced, and hard-linked to the key file's name, which never
/// replaces a file; so processes racing on a first run all end with the one key that won,
/// and none ever reads a key file half-written. An existing key file whose mode lets other
/// accounts read it is tightened to 0600. An empty or unreadable key file is an error
/// ([`KeyError::Empty`], [`KeyError::Invalid`]), never replaced: deleting it, which makes a
/// new identity, is left to the owner.
pub fn load_or_create_key(repo_path: &Path) -> Result<SecretKey> {
    let path = key_path(repo_path);
    let io = |source| KeyError::Io {
        path: path.clone(),
        source,
    };
    // Twice at most: a file that vanished between the link and the read (deleted by hand)
    // is made again once.
    for _ in 0..2 {
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                hero_store::private::tighten_logged(&path, "the key file");
                let text = text.trim();
                if text.is_empty() {
                    return Err(KeyError::Empty { path }.into());
                }
                return parse_secret(text).ok_or_else(|| KeyError::Invalid { path }.into());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = SecretKey::generate();
                let text = format!("{}\n", hex(&key.to_bytes()));
                match hero_store::private::write_new_atomically(&path, text.as_bytes())
                    .map_err(io)?
                {
                    WriteNew::Created => {
                        tracing::info!(path = %path.display(), "created the node key");
                        return Ok(key);
                    }
                    // Another process created it first: use theirs.
                    WriteNew::Exists => continue,
                }
            }
            Err(e) => return Err(io(e).into()),
        }
    }
    Err(io(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "it keeps disappearing",
    ))
    .into())
}

/// The endpoint id of a repository (creating its key on first use).
pub fn endpoint_id(repo_path: &Path) -> Result<EndpointId> {
    Ok(load_or_create_key(repo_path)?.public())
}

/// The peer header for commits made in the repository at `repo_path` (its key is created on
/// first use): what `heroctl commit`, mounts and shares add to `Commit::extra`.
pub fn peer_header_for(repo_path: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    Ok(peer_header(&endpoint_id(repo_path)?))
}

/// Parses an endpoint id (64 hex digits, or iroh's base32 form).
pub fn parse_endpoint_id(s: &str) -> Result<EndpointId> {
    s.trim()
        .parse::<EndpointId>()
        .map_err(|_| SyncError::BadId(s.to_owned()))
}

fn parse_secret(s: &str) -> Option<SecretKey> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(SecretKey::from_bytes(&out))
}

pub(crate) fn hex(b: &[u8]) -> String {
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn racing_first_runs_agree_on_one_key() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let repo = dir.path().join("r.hero");
        let ids = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|_| s.spawn(|| endpoint_id(&repo).map(|id| id.to_string())))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().map_err(|_| "a thread panicked"))
                .collect::<std::result::Result<Vec<_>, _>>()
        })?;
        let ids = ids.into_iter().collect::<Result<Vec<_>>>()?;
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
        let path = key_path(&repo);
        let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Only the key file: no temporary file left.
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 1);
        Ok(())
    }

    #[test]
    fn an_empty_or_corrupt_key_file_is_refused_not_replaced()
    -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let repo = dir.path().join("r.hero");
        let path = key_path(&repo);
        std::fs::write(&path, b"")?;
        assert!(matches!(
            load_or_create_key(&repo),
            Err(SyncError::Key(KeyError::Empty { .. }))
        ));
        std::fs::write(&path, b"not a key\n")?;
        assert!(matches!(
            load_or_create_key(&repo),
            Err(SyncError::Key(KeyError::Invalid { .. }))
        ));
        assert_eq!(std::fs::read(&path)?, b"not a key\n");
        Ok(())
    }
}
