//! How the git <-> store mapping is kept in the store's settings.
//!
//! - `git/g2s/<git hex>` → [`Mapped`]: the store object a git object became (kind byte, 32-byte
//!   store id, 8-byte little-endian size: content length for blobs, entry count for trees).
//! - `git/s2g/<store hex>` → the 20-byte git id a store object came from (commits, trees,
//!   blobs, tags).
//! - `git/raw/<store hex>` → the original git bytes of a commit, tree or tag that git's
//!   canonical writer would not reproduce bit for bit (odd time zones, header order, non
//!   canonical modes, ...). Export writes these bytes instead of re-serialising. Such a
//!   commit or tag also gets a `hero-git-id` extra header in the store, so two git objects
//!   that differ only in what the store does not model never share a store object.
//! - `git/rawt/<git hex>` → the raw bytes of a git tree that cannot be rebuilt from its store
//!   tree (non-canonical itself or above such a tree). Several git trees may share one store
//!   tree; only the canonical one is recorded in `git/s2g/`.

use hero_store::{ObjectId, Repo};

use crate::gitfmt::GitId;

/// Prefix of git → store entries.
pub const G2S: &str = "git/g2s/";
/// Prefix of store → git entries.
pub const S2G: &str = "git/s2g/";
/// Prefix of kept raw git objects.
pub const RAW: &str = "git/raw/";

/// Prefix of kept raw git trees, keyed by git id.
pub const RAW_TREE: &str = "git/rawt/";

/// The header added to a store commit or tag whose git bytes are kept raw, so that it cannot
/// collide with the store object of a similar git object.
pub const GIT_ID_HEADER: &[u8] = b"hero-git-id";

/// The settings key of a raw git tree.
pub fn raw_tree_key(id: &GitId) -> String {
    format!("{RAW_TREE}{}", id.to_hex())
}

/// What kind of object a mapping names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappedKind {
    /// A commit.
    Commit,
    /// A tree whose canonical re-serialisation gives back its git id.
    Tree,
    /// A tree git's canonical writer would not reproduce (odd modes or order, or such a tree
    /// below it); its raw bytes are kept under [`RAW_TREE`].
    RawTree,
    /// File content.
    Blob,
    /// An annotated tag.
    Tag,
}

/// A git object's store counterpart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapped {
    /// Its kind.
    pub kind: MappedKind,
    /// The store id.
    pub id: ObjectId,
    /// Content length (blobs), entry count (trees), 0 otherwise.
    pub size: u64,
}

impl Mapped {
    /// Encodes to 41 bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(41);
        v.push(match self.kind {
            MappedKind::Commit => b'c',
            MappedKind::Tree => b't',
            MappedKind::RawTree => b'T',
            MappedKind::Blob => b'b',
            MappedKind::Tag => b'g',
        });
        v.extend_from_slice(&self.id.0);
        v.extend_from_slice(&self.size.to_le_bytes());
        v
    }
    /// Decodes what [`Mapped::encode`] wrote.
    pub fn decode(b: &[u8]) -> Option<Mapped> {
        if b.len() != 41 {
            return None;
        }
        let kind = match b[0] {
            b'c' => MappedKind::Commit,
            b't' => MappedKind::Tree,
            b'T' => MappedKind::RawTree,
            b'b' => MappedKind::Blob,
            b'g' => MappedKind::Tag,
            _ => return None,
        };
        let id = ObjectId(b[1..33].try_into().ok()?);
        let size = u64::from_le_bytes(b[33..41].try_into().ok()?);
        Some(Mapped { kind, id, size })
    }
}

/// The settings key of a git id's mapping.
pub fn g2s_key(id: &GitId) -> String {
    format!("{G2S}{}", id.to_hex())
}

/// The settings key of a store id's git id.
pub fn s2g_key(id: &ObjectId) -> String {
    format!("{S2G}{}", id.to_hex())
}

/// The settings key of a store object's raw git bytes.
pub fn raw_key(id: &ObjectId) -> String {
    format!("{RAW}{}", id.to_hex())
}

/// Looks up what a git object became in the store.
pub fn lookup_git(repo: &Repo, id: &GitId) -> Result<Option<Mapped>, hero_store::Error> {
    Ok(repo.setting(&g2s_key(id))?.and_then(|v| Mapped::decode(&v)))
}

/// Looks up the git id a store object came from.
pub fn lookup_store(repo: &Repo, id: &ObjectId) -> Result<Option<GitId>, hero_store::Error> {
    Ok(repo
        .setting(&s2g_key(id))?
        .and_then(|v| GitId::from_bytes(&v)))
}
