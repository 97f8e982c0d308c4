//! How the git <-> store mapping is kept in the store, as binary cross-references
//! ([`hero_store::Repo::xref`]); every key starts with `git/` and a one-letter table:
//!
//! - `git/g` + 20-byte git id → [`Mapped`]: the store object a git commit or tag became (kind
//!   byte, 32-byte store id, varint size). Trees and blobs are mapped only where export needs
//!   them (below a tree kept raw, or the tree of a commit kept raw): an import finds unchanged
//!   trees and files by comparing each commit with its first parent instead, so the mapping
//!   stays one entry per commit.
//! - `git/s` + the first 8 bytes of a store id → the 20-byte git id a store commit or tag came
//!   from. The short key halves the entry; a lookup confirms the answer through `git/g`, so
//!   two store ids sharing a prefix can never be confused.
//! - `git/r` + 32-byte store id → the original git bytes of a commit or tag that git's
//!   canonical writer would not reproduce bit for bit (odd time zones, header order, ...).
//!   Export writes these bytes instead of re-serialising. Such a commit or tag also gets a
//!   `hero-git-id` extra header in the store, so two git objects that differ only in what the
//!   store does not model never share a store object.
//! - `git/t` + 20-byte git id → the raw bytes of a git tree that cannot be rebuilt from its
//!   store tree (non-canonical itself or above such a tree).
//! - `git/a` + 32-byte store id → the 20-byte git id of a commit or tag imported without its
//!   git id (`--skip-unsafe-paths` dropped a path from it, from an ancestor or from its
//!   target): it has no `git/s` entry (an export gives it a new id), but it is imported
//!   history all the same (a later import may move a branch off it).

use hero_store::codec::{ByteReader, put_varint};
use hero_store::{ObjectId, Repo};

use crate::gitfmt::GitId;

/// Prefix of every mapping key.
pub const PREFIX: &[u8] = b"git/";
/// Prefix of git → store entries.
pub const G2S: &[u8] = b"git/g";
/// Prefix of store → git entries.
pub const S2G: &[u8] = b"git/s";
/// Prefix of kept raw git commits and tags, keyed by store id.
pub const RAW: &[u8] = b"git/r";
/// Prefix of kept raw git trees, keyed by git id.
pub const RAW_TREE: &[u8] = b"git/t";
/// Prefix of commits and tags imported without their git id, keyed by store id.
pub const ALTERED: &[u8] = b"git/a";

fn key(prefix: &[u8], id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + id.len());
    k.extend_from_slice(prefix);
    k.extend_from_slice(id);
    k
}

/// The header added to a store commit or tag whose git bytes are kept raw, so that it cannot
/// collide with the store object of a similar git object.
pub const GIT_ID_HEADER: &[u8] = b"hero-git-id";

/// The key of a raw git tree.
pub fn raw_tree_key(id: &GitId) -> Vec<u8> {
    key(RAW_TREE, &id.0)
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
    /// Encodes to 33 bytes and a varint.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(43);
        v.push(match self.kind {
            MappedKind::Commit => b'c',
            MappedKind::Tree => b't',
            MappedKind::RawTree => b'T',
            MappedKind::Blob => b'b',
            MappedKind::Tag => b'g',
        });
        v.extend_from_slice(&self.id.0);
        put_varint(&mut v, self.size);
        v
    }
    /// Decodes what [`Mapped::encode`] wrote.
    pub fn decode(b: &[u8]) -> Option<Mapped> {
        if b.len() < 34 || b.len() > 43 {
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
        let mut r = ByteReader::new(&b[33..]);
        let size = r.varint().ok()?;
        r.is_empty().then_some(Mapped { kind, id, size })
    }
}

/// The key of a git id's mapping.
pub fn g2s_key(id: &GitId) -> Vec<u8> {
    key(G2S, &id.0)
}

/// Bytes of a store id kept in a `git/s` key.
const S2G_ID_BYTES: usize = 8;

/// The key of a store id's git id.
pub fn s2g_key(id: &ObjectId) -> Vec<u8> {
    key(S2G, &id.0[..S2G_ID_BYTES])
}

/// The key of a commit or tag imported without its git id.
pub fn altered_key(id: &ObjectId) -> Vec<u8> {
    key(ALTERED, &id.0)
}

/// The key of a store object's raw git bytes.
pub fn raw_key(id: &ObjectId) -> Vec<u8> {
    key(RAW, &id.0)
}

/// Looks up what a git object became in the store.
pub fn lookup_git(repo: &Repo, id: &GitId) -> Result<Option<Mapped>, hero_store::Error> {
    Ok(repo.xref(&g2s_key(id))?.and_then(|v| Mapped::decode(&v)))
}

/// Looks up the git id a store object came from.
pub fn lookup_store(repo: &Repo, id: &ObjectId) -> Result<Option<GitId>, hero_store::Error> {
    let Some(git) = repo.xref(&s2g_key(id))?.and_then(|v| GitId::from_bytes(&v)) else {
        return Ok(None);
    };
    // The key holds only a prefix of the store id: confirm through the other direction.
    Ok(lookup_git(repo, &git)?.filter(|m| m.id == *id).map(|_| git))
}
