//! Format 4: a format-3 repository (the fixture made by the format-3 heroctl,
//! `fixtures/make-format3.sh`) read as it is, upgraded in place — its small records packed
//! into segments — with everything reading the same; a second upgrade does nothing.

use std::path::{Path, PathBuf};

use hero_store::{EntryKind, Expect, Repo, RepoPath};

use crate::common::meta;
use crate::format3::everything;

fn fixture_copy(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format3.hero");
    let dst = dir.join("format3.hero");
    std::fs::copy(&src, &dst).unwrap();
    dst
}

fn table_entries(repo: &Repo, name: &str) -> u64 {
    repo.file_usage()
        .unwrap()
        .tables
        .iter()
        .find(|t| t.name == name)
        .map_or(0, |t| t.entries)
}

fn read(repo: &Repo, rev: &str, path: &str) -> Vec<u8> {
    let v = repo.view().unwrap();
    let c = v.resolve(rev).unwrap();
    let e = v
        .entry_in_commit(&c, &RepoPath::parse(path).unwrap())
        .unwrap()
        .unwrap();
    v.read_file(&e.id, u64::MAX).unwrap()
}

/// What the fixture's script recorded, checked by value.
fn check_fixture(repo: &Repo) {
    assert_eq!(
        read(repo, "main", "README.md"),
        b"first line\nsecond line\n"
    );
    assert_eq!(read(repo, "main", "third.txt"), b"third\n");
    assert_eq!(read(repo, "v1", "README.md"), b"first line\nsecond line\n");
    let config = String::from_utf8(read(repo, "main", "docs/config.toml")).unwrap();
    assert!(config.starts_with("config line 0 = value 0\n"), "{config}");
    assert!(config.ends_with("config line changed 11\n"), "{config}");
    for n in 0..12 {
        assert_eq!(
            read(repo, "main", &format!("docs/note-{n}.md")),
            format!("note {n}\n").into_bytes()
        );
    }
    assert_eq!(read(repo, "main", "docs/a.txt"), b"linked\n");
    let mut large = Vec::new();
    for i in 0..40_000 {
        large.extend_from_slice(format!("large file line {i}\n").as_bytes());
    }
    large.resize(large.len() + 64 * 4096, 0);
    for i in 0..20_000 {
        large.extend_from_slice(format!("after the hole {i}\n").as_bytes());
    }
    assert_eq!(read(repo, "main", "large.txt"), large);
    let names: Vec<String> = repo.branches().unwrap().into_iter().map(|b| b.0).collect();
    assert_eq!(names, ["feature", "hero/membership", "main"]);
    assert_eq!(repo.tags().unwrap().len(), 2);
}

#[test]
fn a_format_3_repository_reads_the_same_after_the_upgrade_to_format_4() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_copy(dir.path());
    let before = {
        let repo = Repo::open(&path).unwrap();
        assert_eq!(repo.format().unwrap(), 3);
        assert!(repo.verify(None).unwrap().is_ok());
        assert_eq!(table_entries(&repo, "segments-4"), 0);
        check_fixture(&repo);
        everything(&repo)
    };
    let depths = table_entries(&Repo::open(&path).unwrap(), "chains-1");
    assert!(depths > 0, "the fixture has deltas");
    assert!(before.len() > 60, "{before:#?}");
    // Reading changed nothing.
    assert_eq!(Repo::open(&path).unwrap().format().unwrap(), 3);

    let mut repo = Repo::open(&path).unwrap();
    let up = repo.upgrade().unwrap();
    assert_eq!((up.from, up.to, up.records_converted), (3, 4, 0));
    assert!(up.records_packed > 50, "{up:?}");
    assert!(up.file_bytes_after <= up.file_bytes_before, "{up:?}");
    drop(repo);

    let mut repo = Repo::open(&path).unwrap();
    assert_eq!(repo.format().unwrap(), 4);
    assert!(table_entries(&repo, "segments-4") >= 1);
    // Chain depths moved under id prefixes.
    assert_eq!(table_entries(&repo, "chains-1"), 0);
    assert_eq!(table_entries(&repo, "chains-4"), depths);
    let report = repo.verify(None).unwrap();
    assert!(report.is_ok(), "{report:?}");
    check_fixture(&repo);
    assert_eq!(everything(&repo), before);

    // Upgrading again changes nothing.
    let size = std::fs::metadata(&path).unwrap().len();
    let again = repo.upgrade().unwrap();
    assert_eq!(
        (
            again.from,
            again.to,
            again.records_converted,
            again.records_packed
        ),
        (4, 4, 0, 0)
    );
    assert!(std::fs::metadata(&path).unwrap().len() <= size);
    assert_eq!(everything(&repo), before);

    // New records are written loose beside the segments, read the same, and a collection
    // packs them too.
    let mut cs = repo.change_set("main").unwrap();
    for n in 0..20 {
        let p = RepoPath::parse(format!("new/file-{n}.txt")).unwrap();
        cs.put_bytes(&p, EntryKind::File, format!("new file {n}\n").as_bytes())
            .unwrap();
    }
    cs.commit(meta("after the upgrade"), Expect::Latest)
        .unwrap();
    assert_eq!(read(&repo, "main", "new/file-7.txt"), b"new file 7\n");
    repo.gc(0, false).unwrap();
    assert_eq!(read(&repo, "main", "new/file-7.txt"), b"new file 7\n");
    check_fixture(&repo);
    assert!(repo.verify(None).unwrap().is_ok());
    drop(repo);
    let repo = Repo::open(&path).unwrap();
    check_fixture(&repo);
    assert!(repo.verify(None).unwrap().is_ok());
}
