//! Who a repository is on the network: an ed25519 key kept beside the repository file, its
//! public half the endpoint id peers allow and commits record.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use iroh::{EndpointId, SecretKey};

use crate::error::{Result, SyncError};

/// The key file of a repository: `<repository file>.key`.
pub fn key_path(repo_path: &Path) -> PathBuf {
    let mut s = repo_path.as_os_str().to_owned();
    s.push(".key");
    PathBuf::from(s)
}

/// Loads the repository's secret key, creating it (mode 0600) on first use.
pub fn load_or_create_key(repo_path: &Path) -> Result<SecretKey> {
    let path = key_path(repo_path);
    let err = |reason: String| SyncError::Key {
        path: path.clone(),
        reason,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let meta = std::fs::metadata(&path).map_err(|e| err(e.to_string()))?;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    "key file {} was readable by others; setting its mode to 0600",
                    path.display()
                );
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| err(e.to_string()))?;
            }
            parse_secret(text.trim()).ok_or_else(|| err("not a secret key".to_owned()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path);
            match &mut f {
                Ok(f) => {
                    writeln!(f, "{}", hex(&key.to_bytes())).map_err(|e| err(e.to_string()))?;
                    f.sync_all().map_err(|e| err(e.to_string()))?;
                    Ok(key)
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    load_or_create_key(repo_path)
                }
                Err(e) => Err(err(e.to_string())),
            }
        }
        Err(e) => Err(err(e.to_string())),
    }
}

/// The endpoint id of a repository (creating its key on first use).
pub fn endpoint_id(repo_path: &Path) -> Result<EndpointId> {
    Ok(load_or_create_key(repo_path)?.public())
}

/// The extra commit header that records the peer that made a commit:
/// `(hero_store::PEER_HEADER, endpoint id in hex)`.
pub fn peer_header(id: &EndpointId) -> (Vec<u8>, Vec<u8>) {
    (
        hero_store::PEER_HEADER.to_vec(),
        id.to_string().into_bytes(),
    )
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
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(SecretKey::from_bytes(&out))
}

pub(crate) fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}
