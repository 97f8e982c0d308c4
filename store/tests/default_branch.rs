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

/// `hero/` branches are written only by the code that owns them: the ordinary write APIs refuse
/// to create, move or delete one; the `*_reserved` variants (the membership's) may.
#[test]
fn reserved_branches_are_refused_by_the_ordinary_write_apis() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::init(dir.path().join("r.hero")).unwrap();
    let main = commit_on(&repo, "main");
    let reserved = |r: hero_store::Result<()>| {
        assert!(
            matches!(r, Err(hero_store::Error::ReservedBranch(ref b)) if b.starts_with("hero/")),
            "{r:?}"
        );
    };
    reserved(repo.change_set("hero/membership").map(|_| ()));
    reserved(repo.update_branch("hero/x", None, Some(main), "t"));
    reserved(repo.force_branch("hero/x", Some(main), "t"));
    reserved(repo.set_default_branch("hero/membership"));
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let sig = Signature {
        name: b"t".to_vec(),
        email: Vec::new(),
        time: 1,
        tz_offset_minutes: 0,
    };
    reserved(
        repo.snapshot(
            &src,
            "hero/x",
            CommitMeta::new(sig, "s"),
            &Default::default(),
        )
        .map(|_| ()),
    );
    assert!(repo.branch_head("hero/x").unwrap().is_none());
    assert!(repo.branch_head("hero/membership").unwrap().is_none());

    // The owner's variants.
    let mut cs = repo.change_set_reserved("hero/membership").unwrap();
    cs.put_bytes(
        &RepoPath::parse("changes/a").unwrap(),
        EntryKind::File,
        b"a",
    )
    .unwrap();
    let sig = Signature {
        name: b"t".to_vec(),
        email: Vec::new(),
        time: 2,
        tz_offset_minutes: 0,
    };
    let m = cs
        .commit(CommitMeta::new(sig, "m"), Expect::Latest)
        .unwrap()
        .id;
    reserved(repo.update_branch("hero/membership", Some(m), None, "t"));
    repo.update_branch_reserved("hero/x", None, Some(m), "t")
        .unwrap();
    repo.force_branch_reserved("hero/x", None, "t").unwrap();
    assert_eq!(repo.branch_head("hero/membership").unwrap(), Some(m));
    assert!(repo.branch_head("hero/x").unwrap().is_none());
    // Ordinary branches are unaffected.
    repo.update_branch("feature", None, Some(main), "t")
        .unwrap();
}
