//! The format number, reading a format-1 repository as it is, `Repo::upgrade`, and large
//! records stored in pieces (format 2).

use std::path::{Path, PathBuf};

use hero_store::{EntryKind, Error, Expect, Repo, RepoPath};

use crate::common::{meta, new_repo, pseudo_random};

/// The fixture made by the format-1 heroctl (`fixtures/make-format1.sh`), copied so the test
/// can change it.
fn fixture_copy(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format1.hero");
    let dst = dir.join("format1.hero");
    std::fs::copy(&src, &dst).unwrap();
    dst
}

/// What the fixture's script put in `large.txt` (chunked: over 1 MiB).
fn fixture_large() -> Vec<u8> {
    (0..60_000)
        .flat_map(|i| format!("large file line {i}\n").into_bytes())
        .collect()
}

fn file_at(repo: &Repo, rev: &str, path: &str) -> Vec<u8> {
    let v = repo.view().unwrap();
    let commit = v.resolve(rev).unwrap();
    let entry = v
        .entry_in_commit(&commit, &RepoPath::parse(path).unwrap())
        .unwrap()
        .unwrap();
    v.read_file(&entry.id, u64::MAX).unwrap()
}

fn check_fixture_content(repo: &Repo) {
    assert_eq!(file_at(repo, "main", "large.txt"), fixture_large());
    assert_eq!(file_at(repo, "main", "third.txt"), b"third\n");
    assert_eq!(
        file_at(repo, "v1", "README.md"),
        b"first line\nsecond line\n"
    );
    assert_eq!(
        file_at(repo, "feature~1", "README.md"),
        b"first line\n",
        "the first commit's version (stored as a delta)"
    );
    let names: Vec<String> = repo.branches().unwrap().into_iter().map(|b| b.0).collect();
    assert_eq!(names, ["feature", "main"]);
    assert_eq!(repo.tags().unwrap().len(), 2);
    assert!(repo.reflog("refs/heads/main").unwrap().len() >= 3);
}

#[test]
fn a_format_1_repository_is_read_as_it_is_then_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_copy(dir.path());
    {
        let repo = Repo::open(&path).unwrap();
        assert_eq!(repo.format().unwrap(), 1);
        let report = repo.verify(None).unwrap();
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(report.objects, 27);
        check_fixture_content(&repo);
    }
    // Reading changed nothing: the repository is still format 1.
    assert_eq!(Repo::open(&path).unwrap().format().unwrap(), 1);

    let mut repo = Repo::open(&path).unwrap();
    let up = repo.upgrade().unwrap();
    assert_eq!((up.from, up.to), (1, 4));
    assert!(
        up.records_converted >= 1,
        "the large file's chunks move to pieces: {up:?}"
    );
    assert!(
        up.records_packed >= 1,
        "small records go into segments: {up:?}"
    );
    assert!(up.file_bytes_after <= up.file_bytes_before, "{up:?}");
    assert_eq!(repo.format().unwrap(), 4);
    let pieces = repo.file_usage().unwrap();
    let pieces = pieces.tables.iter().find(|t| t.name == "pieces-2").unwrap();
    assert!(pieces.entries >= up.records_converted);
    drop(repo);

    let mut repo = Repo::open(&path).unwrap();
    let report = repo.verify(None).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.objects, 27);
    check_fixture_content(&repo);
    // Upgrading again converts nothing.
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
}

#[test]
fn the_first_write_to_a_format_1_repository_records_the_current_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_copy(dir.path());
    let repo = Repo::open(&path).unwrap();
    let mut cs = repo.change_set("main").unwrap();
    let big = pseudo_random(7, 300_000);
    cs.put_bytes(&RepoPath::parse("big.bin").unwrap(), EntryKind::File, &big)
        .unwrap();
    cs.commit(meta("new"), Expect::Latest).unwrap();
    assert_eq!(repo.format().unwrap(), 4);
    assert_eq!(file_at(&repo, "main", "big.bin"), big);
    check_fixture_content(&repo);
    assert!(repo.verify(None).unwrap().is_ok());
}

/// Writes `format` into a repository's meta table with redb itself, as a newer (or broken)
/// build would.
fn set_format(path: &Path, format: &[u8]) {
    let meta: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta-1");
    let mut b = redb::Database::builder();
    b.set_concurrency_mode(redb::ConcurrencyMode::MultiWriter);
    let db = b.open(path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(meta)
        .unwrap()
        .insert("format", format)
        .unwrap();
    txn.commit().unwrap();
}

#[test]
fn a_newer_or_unknown_format_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path());
    let path = repo.path().to_path_buf();
    assert_eq!(repo.format().unwrap(), 4);
    drop(repo);
    set_format(&path, &5u32.to_le_bytes());
    match Repo::open(&path) {
        Err(
            e @ Error::FormatTooNew {
                found: 5,
                supported: 4,
            },
        ) => {
            assert!(e.to_string().contains("newer"), "{e}");
        }
        other => panic!("expected FormatTooNew, got {other:?}"),
    }
    set_format(&path, &0u32.to_le_bytes());
    assert!(matches!(
        Repo::open(&path),
        Err(Error::NotARepository { .. })
    ));
}

/// Incompressible files: their chunks are stored in pieces that fill their pages, so the file
/// holds them with little more than their size, and they read back intact.
#[test]
fn large_records_are_stored_in_pieces_without_power_of_two_waste() {
    let dir = tempfile::tempdir().unwrap();
    let mut repo = new_repo(dir.path());
    let mut files = Vec::new();
    for i in 0..6u64 {
        // Sizes that are not powers of two, from one chunk to several.
        let data = pseudo_random(100 + i, 700_000 + 913_337 * i as usize);
        let mut cs = repo.change_set("main").unwrap();
        let path = RepoPath::parse(format!("f{i}.bin")).unwrap();
        cs.put_reader(&path, EntryKind::File, data.as_slice())
            .unwrap();
        cs.commit(meta("add"), Expect::Latest).unwrap();
        files.push((path, data));
    }
    repo.compact().unwrap();
    for (p, data) in &files {
        assert_eq!(&file_at(&repo, "main", &p.to_string()), data);
    }
    assert!(repo.verify(None).unwrap().is_ok());
    let usage = repo.file_usage().unwrap();
    let pieces = usage.tables.iter().find(|t| t.name == "pieces-2").unwrap();
    let held: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
    // The pages of the pieces table: what they hold, redb's own bytes, and what is unused.
    let pages = pieces.stored_bytes + pieces.metadata_bytes + pieces.fragmented_bytes;
    assert!(
        pages as f64 <= 1.01 * pieces.value_bytes as f64,
        "pieces take {pages} bytes of pages for {} bytes",
        pieces.value_bytes
    );
    assert!(
        usage.file_bytes as f64 <= 1.03 * held as f64,
        "file {} for {held} bytes of files",
        usage.file_bytes
    );
}

/// A large record re-stored as a delta gives its pieces back.
#[test]
fn a_record_replaced_by_a_delta_leaves_no_pieces_behind() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path());
    let path = RepoPath::parse("doc.bin").unwrap();
    let v1 = pseudo_random(5, 200_000);
    let mut v2 = v1.clone();
    v2[100_000] ^= 0xff;
    for data in [&v1, &v2] {
        let mut cs = repo.change_set("main").unwrap();
        cs.put_bytes(&path, EntryKind::File, data).unwrap();
        cs.commit(meta("edit"), Expect::Latest).unwrap();
    }
    let s = repo.stats().unwrap();
    assert_eq!(s.delta_objects, 1, "v1 is stored as a delta against v2");
    let usage = repo.file_usage().unwrap();
    let pieces = usage.tables.iter().find(|t| t.name == "pieces-2").unwrap();
    // Only v2's record is in pieces; v1's delta is a few bytes.
    assert!(
        pieces.value_bytes <= 200_100,
        "pieces hold {} bytes",
        pieces.value_bytes
    );
    assert_eq!(file_at(&repo, "main~1", "doc.bin"), v1);
    assert_eq!(file_at(&repo, "main", "doc.bin"), v2);
    assert!(repo.verify(None).unwrap().is_ok());
}
