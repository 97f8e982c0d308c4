//! Holes: long runs of zeros in a large file are manifest entries with nothing stored.

use std::io::Read;
use std::os::unix::fs::FileExt;

use hero_store::{EntryKind, Expect, Extent, ObjType, ObjectId, Repo, RepoPath, object_links};

use crate::common::{meta, new_repo, pseudo_random};

/// 2 MiB of data, 3 MiB and 100 bytes of zeros, 1 MiB of data.
fn with_a_hole() -> Vec<u8> {
    let mut v = pseudo_random(1, 2 << 20);
    v.extend(std::iter::repeat_n(0u8, (3 << 20) + 100));
    v.extend(pseudo_random(2, 1 << 20));
    v
}

fn extents(repo: &Repo, id: &ObjectId) -> Vec<Extent> {
    repo.view().unwrap().file_extents(id).unwrap()
}

fn read_all(repo: &Repo, id: &ObjectId) -> Vec<u8> {
    let mut back = Vec::new();
    repo.open_file(id).unwrap().read_to_end(&mut back).unwrap();
    back
}

#[test]
fn a_long_run_of_zeros_is_a_hole_that_reads_back_as_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path());
    let content = with_a_hole();
    let stored = repo.write_file(&content[..], None).unwrap();
    assert_eq!(stored.size, content.len() as u64);
    // The hole covers the whole zero blocks: the block holding the last 100 zeros also
    // holds data, so it stays data.
    let hole_end = 5u64 << 20;
    assert_eq!(
        extents(&repo, &stored.id),
        vec![
            Extent {
                start: 0,
                len: 2 << 20,
                data: true
            },
            Extent {
                start: 2 << 20,
                len: hole_end - (2 << 20),
                data: false
            },
            Extent {
                start: hole_end,
                len: content.len() as u64 - hole_end,
                data: true
            },
        ]
    );
    assert!(read_all(&repo, &stored.id) == content, "content differs");
    let mut r = repo.open_file(&stored.id).unwrap();
    let mut buf = vec![1u8; 8192];
    let n = r.read_at((4 << 20) + 5, &mut buf).unwrap();
    assert!(
        n > 0 && buf[..n].iter().all(|&b| b == 0),
        "the hole reads as zeros"
    );
    assert_eq!(r.content_id().unwrap(), stored.id);
    // Nothing of the hole is stored: about the data only.
    let stats = repo.stats().unwrap();
    assert!(
        stats.chunk_bytes < (3 << 20) + (1 << 20),
        "{}",
        stats.chunk_bytes
    );
    assert!(repo.verify(None).unwrap().is_ok());
}

#[test]
fn short_zero_runs_stay_data_and_the_id_is_the_content_hash() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path());
    let mut content = pseudo_random(3, 2 << 20);
    content[(1 << 20)..(1 << 20) + (60 << 10)].fill(0);
    let stored = repo.write_file(&content[..], None).unwrap();
    assert_eq!(stored.id, ObjectId::of(&content));
    assert!(extents(&repo, &stored.id).iter().all(|e| e.data));
}

/// A file on disk whose zeros are partly real holes and partly written zeros.
fn sparse_file(dir: &std::path::Path, content: &[u8]) -> std::fs::File {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(dir.join("sparse"))
        .unwrap();
    f.set_len(content.len() as u64).unwrap();
    // Write the data and the first 12 KiB of each zero run; leave the rest a hole.
    let mut i = 0;
    while i < content.len() {
        let end = (i + 4096).min(content.len());
        let zero = content[i..end].iter().all(|&b| b == 0);
        let after_data = i == 0 || content[i.saturating_sub(12288)..i].iter().any(|&b| b != 0);
        if !zero || after_data {
            f.write_all_at(&content[i..end], i as u64).unwrap();
        }
        i = end;
    }
    f
}

#[test]
fn a_sparse_file_on_disk_is_stored_as_the_same_content_from_a_stream() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path());
    let mut content = with_a_hole();
    content.extend(std::iter::repeat_n(0u8, 200_000));
    let f = sparse_file(dir.path(), &content);
    let from_disk = repo
        .write_file_from(&f, content.len() as u64, None)
        .unwrap();
    let from_stream = repo.write_file(&content[..], None).unwrap();
    assert_eq!(from_disk, from_stream);
    assert!(
        !extents(&repo, &from_disk.id).last().unwrap().data,
        "ends in a hole"
    );
    assert!(read_all(&repo, &from_disk.id) == content);
}

#[test]
fn a_hole_of_15_tib_is_stored_and_read_without_touching_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path());
    let at = 15u64 << 40;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(dir.path().join("huge"))
        .unwrap();
    let data = pseudo_random(4, 4096);
    f.write_all_at(&data, at).unwrap();
    let stored = repo.write_file_from(&f, at + 4096, None).unwrap();
    assert_eq!(stored.size, at + 4096);
    assert_eq!(
        extents(&repo, &stored.id),
        vec![
            Extent {
                start: 0,
                len: at,
                data: false
            },
            Extent {
                start: at,
                len: 4096,
                data: true
            },
        ]
    );
    let mut r = repo.open_file(&stored.id).unwrap();
    let mut buf = vec![1u8; 4096];
    assert_eq!(r.read_at(at, &mut buf).unwrap(), 4096);
    assert_eq!(buf, data);
    assert_eq!(r.read_at(1 << 40, &mut buf).unwrap(), 4096);
    assert!(buf.iter().all(|&b| b == 0));
    assert_eq!(r.content_id().unwrap(), stored.id);
    // Commit, check and copy it to another repository object by object.
    let path = RepoPath::parse("disk.img").unwrap();
    let mut cs = repo.change_set("main").unwrap();
    cs.put_entry(&path, EntryKind::File, stored.id, stored.size)
        .unwrap();
    let head = cs.commit(meta("huge"), Expect::Latest).unwrap().id;
    assert!(repo.verify(None).unwrap().is_ok());
    std::fs::create_dir_all(dir.path().join("d")).unwrap();
    let mut dst = new_repo(&dir.path().join("d"));
    let mut order = Vec::new();
    post_order(&repo, head, &mut order);
    let view = repo.view().unwrap();
    dst.batch(|b| {
        for (ty, id) in &order {
            let (_, raw) = view.raw_object(id)?.unwrap();
            assert!(b.put_raw(*ty, id, &raw, None)?);
        }
        Ok(())
    })
    .unwrap();
    dst.update_branch("main", None, Some(head), "copy").unwrap();
    assert!(dst.verify(None).unwrap().is_ok());
    dst.gc(0, false).unwrap();
    assert_eq!(
        dst.open_file(&stored.id)
            .unwrap()
            .read_at(at, &mut buf)
            .unwrap(),
        4096
    );
    assert_eq!(buf, data);
    // Repair keeps the file: its id checks out without reading the hole.
    let src_path = repo.path().to_path_buf();
    drop(repo);
    let fixed = dir.path().join("fixed.hero");
    let report = hero_store::repair::repair(&src_path, &fixed).unwrap();
    assert!(report.objects_dropped.is_empty(), "{report:?}");
    let fixed = Repo::open(&fixed).unwrap();
    let mut r = fixed.open_file(&stored.id).unwrap();
    assert_eq!(r.read_at(at, &mut buf).unwrap(), 4096);
    assert_eq!(buf, data);
}

/// Every object reachable from `root`, children before parents.
fn post_order(src: &Repo, root: ObjectId, out: &mut Vec<(ObjType, ObjectId)>) {
    let view = src.view().unwrap();
    let (t, raw) = view.raw_object(&root).unwrap().unwrap();
    for (_, link) in object_links(t, &raw).unwrap() {
        if !out.iter().any(|(_, id)| *id == link) {
            post_order(src, link, out);
        }
    }
    if !out.iter().any(|(_, id)| *id == root) {
        out.push((t, root));
    }
}

/// `heroctl commit`'s path: a directory holding a file with a hole of 4 TiB is committed, found
/// unchanged by status and checked out again, each without touching the hole's bytes; the
/// checked-out file is sparse too.
#[test]
fn a_sparse_file_is_committed_compared_and_checked_out_sparse() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("r")).unwrap();
    let repo = new_repo(&dir.path().join("r"));
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let at = 4u64 << 40;
    let data = pseudo_random(5, 5000);
    let f = std::fs::File::create(src.join("disk.img")).unwrap();
    f.write_all_at(&data, at).unwrap();
    drop(f);
    let done = repo
        .snapshot(
            &src,
            "main",
            meta("image"),
            &hero_store::SnapshotOptions::default(),
        )
        .unwrap();
    let e = repo
        .view()
        .unwrap()
        .entry_in_commit(&done.committed.id, &RepoPath::parse("disk.img").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(e.size, at + 5000);
    assert!(!extents(&repo, &e.id)[0].data);
    let st = repo.status(&src, Some(done.committed.id)).unwrap();
    assert!(st.is_empty(), "{st:?}");
    let out = dir.path().join("out");
    repo.checkout(
        &done.committed.id,
        &out,
        &hero_store::CheckoutOptions::default(),
    )
    .unwrap();
    let back = std::fs::File::open(out.join("disk.img")).unwrap();
    let m = back.metadata().unwrap();
    assert_eq!(m.len(), at + 5000);
    assert!(m.blocks() * 512 <= 64 << 10, "{} blocks", m.blocks());
    let mut buf = vec![0u8; 5000];
    back.read_exact_at(&mut buf, at).unwrap();
    assert_eq!(buf, data);
}
