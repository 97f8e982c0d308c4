//! `Repo::compact`: never a larger file, nothing left beside it.

use hero_store::{EntryKind, Expect, Repo, RepoPath};

use crate::common::{meta, new_repo, pseudo_random};

fn len(repo: &Repo) -> u64 {
    std::fs::metadata(repo.path()).unwrap().len()
}

/// The case that grew a file from 13 MB to 68 MB: a repository holding a large file, then
/// many small objects written in hash order (an import), then compaction.
#[test]
fn compaction_never_makes_the_file_larger() {
    let dir = tempfile::tempdir().unwrap();
    let mut repo = new_repo(dir.path());
    let mut cs = repo.change_set("main").unwrap();
    let big = pseudo_random(3, 3 << 20);
    cs.put_reader(
        &RepoPath::parse("big.bin").unwrap(),
        EntryKind::File,
        big.as_slice(),
    )
    .unwrap();
    cs.commit(meta("big"), Expect::Latest).unwrap();
    let (b0, a0) = repo.compact().unwrap();
    assert!(a0 <= b0, "{b0} -> {a0}");
    for round in 0..3u64 {
        repo.batch(|b| {
            for i in 0..4000u64 {
                let text = format!("object {round} {i} {}\n", "x".repeat((i % 300) as usize));
                b.put_blob(text.as_bytes(), None)?;
            }
            Ok(())
        })
        .unwrap();
        let (before, after) = repo.compact().unwrap();
        assert!(after <= before, "round {round}: {before} -> {after}");
        assert_eq!(len(&repo), after);
        // Compacting a compact file changes nothing.
        let (b2, a2) = repo.compact().unwrap();
        assert!(a2 <= b2, "round {round} again: {b2} -> {a2}");
    }
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["repo.hero"], "nothing left beside the repository");
    assert!(repo.verify(None).unwrap().is_ok());
}

/// A scratch file left by an older build killed midway is removed by the next compaction.
#[test]
fn a_stale_scratch_file_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut repo = new_repo(dir.path());
    let stale = dir.path().join("repo.compact-scratch");
    std::fs::write(&stale, b"left by a killed compaction").unwrap();
    repo.compact().unwrap();
    assert!(!stale.exists());
}
