//! # hero-tests
//!
//! Cross-crate and multi-process tests; the tests live in `tests/tests/`. What several test
//! binaries need is here.
#![forbid(unsafe_code)]

use std::path::Path;

use hero_store::{CommitMeta, EntryKind, Expect, Repo, RepoPath, Signature};
use hero_sync::SecretKey;
use hero_sync::commitsig::{CommitSig, Kind};

/// `len` pseudo-random bytes, the same for the same `seed` (incompressible: no compressor
/// shrinks them, and no two seeds share a run).
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    fastrand::Rng::with_seed(seed).fill(&mut out);
    out
}

/// Commits `files` onto `branch` of the repository at `repo` as the node of `key` and signs
/// the commit, the way a modified client would: no check of its own on the way in. The
/// commit's id in hex.
///
/// # Panics
/// When the repository cannot be opened or written (a test's failure).
#[allow(clippy::unwrap_used)]
pub fn commit_signed_as(
    repo: &Path,
    key: &SecretKey,
    branch: &str,
    files: &[(&str, &[u8])],
) -> String {
    let r = Repo::open(repo).unwrap();
    let m = hero_sync::gate::membership_of(&r).unwrap();
    let mut cs = r.change_set(branch).unwrap();
    for (p, c) in files {
        cs.put_bytes(&RepoPath::parse(p).unwrap(), EntryKind::File, c)
            .unwrap();
    }
    let mut meta = CommitMeta::new(
        Signature {
            name: b"modified client".to_vec(),
            email: Vec::new(),
            time: 1_800_000_000,
            tz_offset_minutes: 0,
        },
        "planted".to_owned(),
    );
    meta.extra.push(hero_sync::peer_header(&key.public()));
    let id = cs.commit(meta, Expect::Latest).unwrap().id;
    let sig = CommitSig::sign(key, Kind::Made, &id, m.heads());
    assert_eq!(hero_sync::commitsig::store(&r, &[(id, sig)]).unwrap(), 1);
    id.to_hex()
}
