//! Small records packed into segments (format 4): a collection repacks segments holding dead
//! records; a damaged segment loses only its own records, which verify and repair name.

use std::path::Path;

use hero_store::{EntryKind, Expect, ObjectId, Repo, RepoPath};

use crate::common::{meta, new_repo, pseudo_random};

/// Text-like content of about `len` bytes (compresses, as source files do).
fn text(seed: u64, len: usize) -> Vec<u8> {
    let words = ["alpha ", "beta ", "gamma ", "delta\n", "epsilon ", "zeta "];
    let r = pseudo_random(seed, len);
    let mut out = Vec::with_capacity(len + 8);
    for b in r {
        out.extend_from_slice(words[usize::from(b) % words.len()].as_bytes());
        if out.len() >= len {
            break;
        }
        out.push(b'a' + b % 26);
    }
    out
}

/// Bytes the segments take (their values and the pieces of long ones: nothing else in these
/// repositories is long enough for pieces).
fn segment_bytes(repo: &Repo) -> u64 {
    repo.file_usage()
        .unwrap()
        .tables
        .iter()
        .filter(|t| t.name == "segments-4" || t.name == "pieces-2")
        .map(|t| t.value_bytes)
        .sum()
}

fn commit_files(
    repo: &Repo,
    branch: &str,
    seed: u64,
    n: u64,
    len: usize,
) -> Vec<(RepoPath, Vec<u8>)> {
    let mut cs = repo.change_set(branch).unwrap();
    let mut files = Vec::new();
    for i in 0..n {
        let p = RepoPath::parse(format!("dir{}/file-{i}.txt", i % 7)).unwrap();
        let content = text(seed * 10_000 + i, len);
        cs.put_bytes(&p, EntryKind::File, &content).unwrap();
        files.push((p, content));
    }
    cs.commit(meta("files"), Expect::Latest).unwrap();
    files
}

fn read(repo: &Repo, rev: &str, p: &RepoPath) -> hero_store::Result<Vec<u8>> {
    let v = repo.view()?;
    let c = v.resolve(rev)?;
    let e = v.entry_in_commit(&c, p)?.unwrap();
    v.read_file(&e.id, u64::MAX)
}

#[test]
fn a_collection_repacks_segments_holding_dead_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut repo = new_repo(dir.path());
    let kept = commit_files(&repo, "main", 1, 300, 3000);
    let head = repo.branch_head("main").unwrap();
    repo.update_branch("tmp", None, head, "branch").unwrap();
    // The same paths with other content on a branch: its records sit beside main's.
    commit_files(&repo, "tmp", 2, 300, 3000);
    repo.compact().unwrap();
    let before = segment_bytes(&repo);
    assert!(before > 0);
    // A second pack has nothing to do.
    assert_eq!(repo.pack().unwrap(), hero_store::PackReport::default());

    let tip = repo.branch_head("tmp").unwrap();
    repo.update_branch("tmp", tip, None, "delete").unwrap();
    let report = repo.gc(0, false).unwrap();
    assert!(report.removed >= 300, "{report:?}");
    let after = segment_bytes(&repo);
    assert!(
        after * 4 < before * 3,
        "segments with dead records repacked: {before} -> {after} bytes"
    );
    assert_eq!(repo.pack().unwrap(), hero_store::PackReport::default());
    for (p, content) in &kept {
        assert_eq!(&read(&repo, "main", p).unwrap(), content);
    }
    assert!(repo.verify(None).unwrap().is_ok());
}

/// Reads a LEB128 varint from `b` at `*at`.
fn varint(b: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let x = b[*at];
        *at += 1;
        v |= u64::from(x & 0x7f) << shift;
        if x & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

/// Flips a byte of the content hash in segment `n`'s header, with redb itself, as a damaged
/// disk would.
fn damage_segment(path: &Path, n: u64) {
    use redb::ReadableTable as _;
    let segments: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("segments-4");
    let pieces: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("pieces-2");
    let mut b = redb::Database::builder();
    b.set_concurrency_mode(redb::ConcurrencyMode::MultiWriter);
    let db = b.open(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut st = txn.open_table(segments).unwrap();
        let mut value = st.get(n).unwrap().unwrap().value().to_vec();
        if value[0] == 0x80 {
            // Long: the header is in its first piece.
            let mut at = 1;
            let _len = varint(&value, &mut at);
            let first = varint(&value, &mut at);
            let mut pt = txn.open_table(pieces).unwrap();
            let mut piece = pt.get(first).unwrap().unwrap().value().to_vec();
            piece[5] ^= 0x40;
            pt.insert(first, piece.as_slice()).unwrap();
        } else {
            value[5] ^= 0x40;
            st.insert(n, value.as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
}

#[test]
fn a_damaged_segment_loses_only_its_records_and_repair_reports_them() {
    let dir = tempfile::tempdir().unwrap();
    let path;
    let files;
    let segs;
    {
        let mut repo = new_repo(dir.path());
        path = repo.path().to_path_buf();
        // Well over one segment of records.
        files = commit_files(&repo, "main", 3, 600, 3000);
        repo.compact().unwrap();
        segs = repo
            .file_usage()
            .unwrap()
            .tables
            .iter()
            .find(|t| t.name == "segments-4")
            .unwrap()
            .entries;
        assert!(segs >= 2, "{segs} segments");
    }
    // The last segment: blobs (commits and trees come first, in segment 0).
    let damaged = segs - 1;
    damage_segment(&path, damaged);

    let repo = Repo::open(&path).unwrap();
    let mut lost: Vec<ObjectId> = Vec::new();
    let mut readable = 0;
    for (p, content) in &files {
        match read(&repo, "main", p) {
            Ok(bytes) => {
                assert_eq!(&bytes, content);
                readable += 1;
            }
            Err(hero_store::Error::Corrupt { id, reason }) => {
                assert!(reason.contains(&format!("segment {damaged}")), "{reason}");
                lost.push(id);
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(!lost.is_empty(), "the damaged segment held some files");
    assert!(readable > 0, "files in other segments still read");
    let report = repo.verify(None).unwrap();
    let corrupt: std::collections::BTreeSet<ObjectId> =
        report.corrupt.iter().map(|c| c.id).collect();
    for id in &lost {
        assert!(corrupt.contains(id), "verify names {id:?}");
    }
    drop(repo);

    let into = dir.path().join("repaired.hero");
    let rep = hero_store::repair::repair(&path, &into).unwrap();
    let dropped: std::collections::BTreeSet<ObjectId> =
        rep.objects_dropped.iter().copied().collect();
    for id in &lost {
        assert!(dropped.contains(id), "repair reports {id:?} lost");
    }
    // Only the damaged segment's records are gone: everything else reads.
    assert_eq!(dropped, corrupt);
    let repaired = Repo::open(&into).unwrap();
    for (p, content) in &files {
        match read(&repaired, "main", p) {
            Ok(bytes) => assert_eq!(&bytes, content),
            Err(hero_store::Error::Missing(id)) => assert!(dropped.contains(&id)),
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn verify_of_a_packed_repository_names_a_missing_file_and_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path;
    let files;
    {
        let mut repo = new_repo(dir.path());
        path = repo.path().to_path_buf();
        files = commit_files(&repo, "main", 5, 200, 2000);
        commit_files(&repo, "main", 6, 50, 2000);
        repo.compact().unwrap();
        let report = repo.verify(None).unwrap();
        assert!(report.is_ok(), "{report:?}");
        assert!(report.objects > 250, "{report:?}");
    }
    // The first commit's version of a file the second commit changed: only history names it.
    let (gone_path, content) = &files[20];
    let gone = ObjectId::of(content);
    {
        let objects: redb::TableDefinition<&[u8; 32], &[u8]> =
            redb::TableDefinition::new("objects-1");
        let mut b = redb::Database::builder();
        b.set_concurrency_mode(redb::ConcurrencyMode::MultiWriter);
        let db = b.open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        assert!(
            txn.open_table(objects)
                .unwrap()
                .remove(&gone.0)
                .unwrap()
                .is_some()
        );
        txn.commit().unwrap();
    }
    let repo = Repo::open(&path).unwrap();
    let report = repo.verify(None).unwrap();
    assert!(report.corrupt.is_empty(), "{report:?}");
    assert_eq!(
        report
            .missing
            .iter()
            .map(|(id, p)| (*id, p.to_string()))
            .collect::<Vec<_>>(),
        vec![(gone, gone_path.to_string())]
    );
}
