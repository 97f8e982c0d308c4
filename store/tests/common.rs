use std::path::Path;

use hero_store::{CommitMeta, Repo, Signature};

pub fn sig(time: i64) -> Signature {
    Signature {
        name: b"Test".to_vec(),
        email: b"test@example.com".to_vec(),
        time,
        tz_offset_minutes: 60,
    }
}

pub fn meta(msg: &str) -> CommitMeta {
    CommitMeta::new(sig(1_700_000_000), msg)
}

pub fn new_repo(dir: &Path) -> Repo {
    Repo::init(dir.join("repo.hero")).unwrap()
}

/// Deterministic pseudo-random bytes (xorshift). Pinned: the chunker test records the cut
/// points of these exact bytes, so this generator must not change.
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
