//! Delta chains reconstruct every version exactly; the newest version is stored whole.

use hero_store::{EntryKind, Expect, ObjType, RepoPath};

use crate::common::{meta, new_repo, pseudo_random};

fn markdown(version: usize) -> Vec<u8> {
    let mut s = String::new();
    for line in 0..200 {
        if line == version % 200 {
            s.push_str(&format!("line {line} edited in version {version}\n"));
        } else {
            s.push_str(&format!(
                "line {line}: the quick brown fox jumps over the lazy dog\n"
            ));
        }
    }
    s.into_bytes()
}

#[test]
fn every_version_of_an_edited_file_reads_back() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = new_repo(tmp.path());
    let path = RepoPath::parse("docs/adr.md").unwrap();
    let mut commits = Vec::new();
    for v in 0..300 {
        let mut cs = repo.change_set("main").unwrap();
        cs.put_bytes(&path, EntryKind::File, &markdown(v)).unwrap();
        commits.push(
            cs.commit(meta(&format!("v{v}")), Expect::Latest)
                .unwrap()
                .id,
        );
    }
    let view = repo.view().unwrap();
    for (v, c) in commits.iter().enumerate() {
        let e = view.entry_in_commit(c, &path).unwrap().unwrap();
        assert_eq!(
            view.read_file(&e.id, 1 << 20).unwrap(),
            markdown(v),
            "version {v}"
        );
    }
    let stats = repo.stats().unwrap();
    assert!(
        stats.delta_objects >= 250,
        "old versions are deltas: {}",
        stats.delta_objects
    );
    // Total stored for the blobs is a small multiple of one compressed copy.
    assert!(repo.verify(None).unwrap().is_ok());
}

#[test]
fn large_file_edit_stores_little_and_reads_back() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = new_repo(tmp.path());
    let path = RepoPath::parse("big.bin").unwrap();
    let mut data = pseudo_random(7, 12 << 20);
    let mut cs = repo.change_set("main").unwrap();
    cs.put_reader(&path, EntryKind::File, data.as_slice())
        .unwrap();
    let c1 = cs.commit(meta("v1"), Expect::Latest).unwrap().id;
    let before = repo.stats().unwrap().stored_bytes;
    for b in &mut data[6 << 20..(6 << 20) + 1024] {
        *b ^= 0x5a;
    }
    let mut cs = repo.change_set("main").unwrap();
    let stored = cs
        .put_reader(&path, EntryKind::File, data.as_slice())
        .unwrap();
    let c2 = cs.commit(meta("v2"), Expect::Latest).unwrap().id;
    let after = repo.stats().unwrap().stored_bytes;
    assert!(
        after - before < 64 << 10,
        "second version added {} bytes",
        after - before
    );
    assert_eq!(stored.id, hero_store::ObjectId::of(&data));
    let view = repo.view().unwrap();
    let e1 = view.entry_in_commit(&c1, &path).unwrap().unwrap();
    let e2 = view.entry_in_commit(&c2, &path).unwrap().unwrap();
    assert_eq!(view.object_type(&e2.id).unwrap(), Some(ObjType::Manifest));
    assert_eq!(view.read_file(&e2.id, 1 << 30).unwrap(), data);
    let mut old = data.clone();
    for b in &mut old[6 << 20..(6 << 20) + 1024] {
        *b ^= 0x5a;
    }
    assert_eq!(view.read_file(&e1.id, 1 << 30).unwrap(), old);
    // Random access through the chunk tree.
    let mut r = view.open_file(&e2.id).unwrap();
    let mut buf = vec![0u8; 4096];
    let pos = (6 << 20) - 100;
    let n = r.read_at(pos, &mut buf).unwrap();
    assert!(n > 0);
    assert_eq!(&buf[..n], &data[pos as usize..pos as usize + n]);
    assert!(repo.verify(None).unwrap().is_ok());
}

#[test]
fn a_file_id_is_the_blake3_of_its_content() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = new_repo(tmp.path());
    for len in [0usize, 1, 1 << 20, (1 << 20) + 1, 5 << 20] {
        let data = pseudo_random(len as u64, len);
        let stored = repo.write_file(data.as_slice(), None).unwrap();
        assert_eq!(stored.id.0, *blake3::hash(&data).as_bytes(), "len {len}");
        assert_eq!(stored.size, len as u64);
    }
}
