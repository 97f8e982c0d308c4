//! Object ids: BLAKE3 hashes.

use std::fmt;
use std::str::FromStr;

/// The id of every stored object: the BLAKE3 hash of its content.
///
/// For a file this is the hash of the file's whole content, the value `b3sum` prints, whatever
/// way the store splits or compresses it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ObjectId(pub [u8; 32]);

impl ObjectId {
    /// Length of an id in bytes.
    pub const LEN: usize = 32;

    /// All zeros: the id of entries that name no object (special files).
    pub const ZERO: ObjectId = ObjectId([0; 32]);

    /// The id of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        ObjectId(*blake3::hash(bytes).as_bytes())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Full lower-case hex form (64 characters).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 12 hex characters, for display.
    pub fn short(&self) -> String {
        let mut s = self.to_hex();
        s.truncate(12);
        s
    }

    /// Parses a full 64-character hex id.
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut arr = [0u8; 32];
        hex::decode_to_slice(s, &mut arr).ok()?;
        Some(ObjectId(arr))
    }
}

/// Decodes an even-length hex string into bytes; `None` for anything else.
pub(crate) fn hex_prefix(s: &str) -> Option<Vec<u8>> {
    hex::decode(s).ok()
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.short())
    }
}

/// Error for a string that is not a 64-digit hex id.
#[derive(Debug, thiserror::Error)]
#[error("not an object id (64 hex digits): {0:?}")]
pub struct ParseIdError(pub String);

impl FromStr for ObjectId {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ObjectId::from_hex(s).ok_or_else(|| ParseIdError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id = ObjectId::of(b"hello");
        assert_eq!(ObjectId::from_hex(&id.to_hex()), Some(id));
        // BLAKE3("hello"), as b3sum prints it.
        assert_eq!(
            id.to_hex(),
            "ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"
        );
        assert!(ObjectId::from_hex("zz").is_none());
        assert!(ObjectId::from_hex(&id.to_hex()[..62]).is_none());
    }
}

/// Hashes object ids for hash maps: ids are already uniform, so eight of their bytes, mixed
/// with keys chosen once per process (a peer cannot grind ids that collide in a table whose
/// mixing it does not know), replace SipHash over all 32 bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdHasher {
    state: u64,
    keys: (u64, u64),
}

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // The id's bytes arrive in one call (after a length prefix, which lands in write_usize).
        let mut a = [0u8; 8];
        let n = bytes.len().min(8);
        a[..n].copy_from_slice(&bytes[..n]);
        self.state = self.state.rotate_left(29) ^ u64::from_le_bytes(a);
    }
    fn write_usize(&mut self, _: usize) {}
    fn finish(&self) -> u64 {
        (self.state ^ self.keys.0).wrapping_mul(self.keys.1 | 1)
    }
}

/// Builds [`IdHasher`]s with this process's keys.
#[derive(Debug, Clone, Copy)]
pub struct IdBuildHasher((u64, u64));

impl Default for IdBuildHasher {
    fn default() -> Self {
        static KEYS: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();
        IdBuildHasher(*KEYS.get_or_init(|| {
            use std::hash::{BuildHasher, Hasher};
            let s = std::collections::hash_map::RandomState::new();
            let mut a = s.build_hasher();
            a.write_u64(1);
            let mut b = s.build_hasher();
            b.write_u64(2);
            (a.finish(), b.finish())
        }))
    }
}

impl std::hash::BuildHasher for IdBuildHasher {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher {
            state: 0,
            keys: self.0,
        }
    }
}

/// A hash map keyed by object id.
pub type IdMap<V> = std::collections::HashMap<ObjectId, V, IdBuildHasher>;
/// A hash set of object ids.
pub type IdSet = std::collections::HashSet<ObjectId, IdBuildHasher>;
