//! `Repo::file_usage`: where the bytes of the repository file go.

use hero_store::{CommitMeta, EntryKind, Expect, Repo, RepoPath, Signature};

#[test]
fn file_usage_accounts_for_every_object_and_the_free_space() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::init(dir.path().join("r.hero")).unwrap();
    for i in 0..20u32 {
        let mut cs = repo.change_set("main").unwrap();
        let path = RepoPath::parse(format!("d/f{i}.txt")).unwrap();
        cs.put_bytes(
            &path,
            EntryKind::File,
            format!("file {i}\n").repeat(50).as_bytes(),
        )
        .unwrap();
        let sig = Signature {
            name: b"t".to_vec(),
            email: b"t@example.com".to_vec(),
            time: i64::from(i),
            tz_offset_minutes: 0,
        };
        cs.commit(CommitMeta::new(sig, "c"), Expect::Latest)
            .unwrap();
    }
    let s = repo.stats().unwrap();
    let f = repo.file_usage().unwrap();
    let objects = f.tables.iter().find(|t| t.name == "objects-1").unwrap();
    let total: u64 = s.objects.iter().map(|(_, n)| n).sum();
    assert_eq!(objects.entries, total);
    assert_eq!(objects.key_bytes, 32 * total);
    assert_eq!(objects.value_bytes, s.stored_bytes);
    assert!(objects.leaf_pages >= 1);
    let refs = f.tables.iter().find(|t| t.name == "refs-1").unwrap();
    assert_eq!(refs.entries, 1);
    assert_eq!(f.file_bytes, s.file_bytes);
    assert!(f.page_size >= 512);
    assert!(f.allocated_pages * f.page_size <= f.file_bytes);
    assert_eq!(f.free_bytes, f.file_bytes - f.allocated_pages * f.page_size);
}
