//! The default branch: recorded, or guessed from the branches there are.

use hero_store::{CommitMeta, EntryKind, Expect, Repo, RepoPath, Signature};

fn commit_on(repo: &Repo, branch: &str) -> hero_store::ObjectId {
    let mut cs = repo.change_set(branch).unwrap();
    cs.put_bytes(
        &RepoPath::parse("f").unwrap(),
        EntryKind::File,
        branch.as_bytes(),
    )
    .unwrap();
    let sig = Signature {
        name: b"t".to_vec(),
        email: b"t@example.com".to_vec(),
        time: 1,
        tz_offset_minutes: 0,
    };
    cs.commit(CommitMeta::new(sig, "c"), Expect::Latest)
        .unwrap()
        .id
}

#[test]
fn the_default_branch_is_the_recorded_one_else_main_else_master_else_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::init(dir.path().join("r.hero")).unwrap();
    assert_eq!(repo.default_branch().unwrap(), "main");
    assert!(repo.view().unwrap().resolve("HEAD").is_err());
    let zeta = commit_on(&repo, "zeta");
    let beta = commit_on(&repo, "beta");
    assert_eq!(repo.default_branch().unwrap(), "beta");
    assert_eq!(repo.resolve("HEAD").unwrap(), beta);
    let master = commit_on(&repo, "master");
    assert_eq!(repo.default_branch().unwrap(), "master");
    assert_eq!(repo.resolve("HEAD~0").unwrap(), master);
    commit_on(&repo, "main");
    assert_eq!(repo.default_branch().unwrap(), "main");
    assert!(!repo.has_default_branch().unwrap());
    repo.set_default_branch("zeta").unwrap();
    assert!(repo.has_default_branch().unwrap());
    assert_eq!(repo.default_branch().unwrap(), "zeta");
    assert_eq!(repo.resolve("HEAD").unwrap(), zeta);
    assert!(repo.set_default_branch("a..b").is_err());
    // Recorded, it survives reopening.
    drop(repo);
    let repo = Repo::open(dir.path().join("r.hero")).unwrap();
    assert_eq!(repo.default_branch().unwrap(), "zeta");
}
