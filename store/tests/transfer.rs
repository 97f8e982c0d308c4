//! Copying objects between repositories with `raw_object` / `put_raw`.

use hero_store::{EntryKind, Error, Expect, ObjType, ObjectId, Repo, RepoPath, object_links};

use crate::common::{meta, new_repo, pseudo_random};

/// Post-order list of every object reachable from `root` (children before parents).
fn post_order(src: &Repo, root: ObjectId, ty: ObjType, out: &mut Vec<(ObjType, ObjectId)>) {
    let view = src.view().unwrap();
    let (t, raw) = view.raw_object(&root).unwrap().unwrap();
    assert!(t == ty || matches!((t, ty), (ObjType::Blob, ObjType::Manifest)));
    for (lt, link) in object_links(t, &raw).unwrap() {
        if !out.iter().any(|(_, id)| *id == link) {
            post_order(src, link, lt, out);
        }
    }
    if !out.iter().any(|(_, id)| *id == root) {
        out.push((t, root));
    }
}

fn source_repo(dir: &std::path::Path) -> (Repo, ObjectId, Vec<u8>) {
    std::fs::create_dir_all(dir).unwrap();
    let src = new_repo(dir);
    let big = pseudo_random(7, 3 << 20);
    let mut cs = src.change_set("main").unwrap();
    cs.put_bytes(
        &RepoPath::parse("a/small.txt").unwrap(),
        EntryKind::File,
        b"hello\n",
    )
    .unwrap();
    cs.put_bytes(&RepoPath::parse("big.bin").unwrap(), EntryKind::File, &big)
        .unwrap();
    let c1 = cs.commit(meta("one"), Expect::Latest).unwrap().id;
    let mut cs = src.change_set("main").unwrap();
    cs.put_bytes(
        &RepoPath::parse("a/small.txt").unwrap(),
        EntryKind::File,
        b"hello again\n",
    )
    .unwrap();
    let c2 = cs.commit(meta("two"), Expect::Latest).unwrap().id;
    assert_ne!(c1, c2);
    (src, c2, big)
}

/// The source repository of [`source_repo`], an empty one beside it, and the source's
/// objects in post order.
#[allow(clippy::type_complexity)]
fn source_and_empty(
    dir: &std::path::Path,
) -> (Repo, ObjectId, Vec<u8>, Repo, Vec<(ObjType, ObjectId)>) {
    let (src, head, big) = source_repo(&dir.join("s"));
    std::fs::create_dir_all(dir.join("d")).unwrap();
    let dst = new_repo(&dir.join("d"));
    let mut order = Vec::new();
    post_order(&src, head, ObjType::Commit, &mut order);
    (src, head, big, dst, order)
}

/// `dst` holds the source's history under `main`, the large file read back whole.
fn assert_copied(dst: &Repo, head: ObjectId, big: &[u8]) {
    dst.update_branch("main", None, Some(head), "copy").unwrap();
    let got = dst
        .view()
        .unwrap()
        .entry_in_commit(&head, &RepoPath::parse("big.bin").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(got.id, ObjectId::of(big));
    assert_eq!(
        dst.view().unwrap().read_file(&got.id, u64::MAX).unwrap(),
        big
    );
    assert!(dst.verify(None).unwrap().is_ok());
}

#[test]
fn copies_a_history_object_by_object() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, head, big, dst, order) = source_and_empty(tmp.path());
    let view = src.view().unwrap();
    dst.batch(|b| {
        for (_, id) in &order {
            let (ty, raw) = view.raw_object(id)?.unwrap();
            assert!(b.put_raw(ty, id, &raw, None)?);
        }
        Ok(())
    })
    .unwrap();
    assert_copied(&dst, head, &big);
    // Storing again is a no-op.
    dst.batch(|b| {
        let (ty, raw) = view.raw_object(&head)?.unwrap();
        assert!(!b.put_raw(ty, &head, &raw, None)?);
        Ok(())
    })
    .unwrap();
}

#[test]
fn refuses_wrong_bytes_missing_links_and_bad_types() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, head, _) = source_repo(&tmp.path().join("s"));
    std::fs::create_dir_all(tmp.path().join("d")).unwrap();
    let dst = new_repo(&tmp.path().join("d"));
    let view = src.view().unwrap();
    let (ty, raw) = view.raw_object(&head).unwrap().unwrap();

    // Bytes that do not hash to the id.
    let mut bad = raw.clone();
    bad[3] ^= 1;
    let err = dst.batch(|b| b.put_raw(ty, &head, &bad, None)).unwrap_err();
    assert!(matches!(err, Error::Refused { .. }), "{err}");

    // A commit whose tree is not there yet.
    let err = dst.batch(|b| b.put_raw(ty, &head, &raw, None)).unwrap_err();
    assert!(err.to_string().contains("not stored yet"), "{err}");

    // Garbage claiming to be a tree (its id is its own hash, so only decoding catches it).
    let garbage = b"definitely not a tree".to_vec();
    let gid = ObjectId::of(&garbage);
    let err = dst
        .batch(|b| b.put_raw(ObjType::Tree, &gid, &garbage, None))
        .unwrap_err();
    assert!(err.to_string().contains("not a valid tree"), "{err}");

    // A manifest whose chunks hash to something else than the id it claims.
    let big_entry = view
        .entry_in_commit(&head, &RepoPath::parse("big.bin").unwrap())
        .unwrap()
        .unwrap();
    let mut order = Vec::new();
    post_order(&src, big_entry.id, ObjType::Manifest, &mut order);
    let (mty, mraw) = view.raw_object(&big_entry.id).unwrap().unwrap();
    assert_eq!(mty, ObjType::Manifest);
    let liar = ObjectId::of(b"some other file");
    let err = dst
        .batch(|b| {
            for (_, id) in &order[..order.len() - 1] {
                let (ty, raw) = view.raw_object(id)?.unwrap();
                b.put_raw(ty, id, &raw, None)?;
            }
            b.put_raw(mty, &liar, &mraw, None)
        })
        .unwrap_err();
    assert!(err.to_string().contains("do not hash to its id"), "{err}");
    // The whole batch was rolled back: nothing was kept.
    assert!(dst.stats().unwrap().objects.iter().all(|(_, n)| *n == 0));
}

#[test]
fn cross_references_are_binary_keyed_and_transactional() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = new_repo(tmp.path());
    // A fresh repository has no table yet: reads say "absent".
    assert_eq!(repo.xref(b"g\x01\x02").unwrap(), None);
    repo.batch(|b| {
        b.set_xref(b"g\x01\x02", Some(b"value"))?;
        assert_eq!(b.xref(b"g\x01\x02")?.as_deref(), Some(&b"value"[..]));
        Ok(())
    })
    .unwrap();
    assert_eq!(
        repo.xref(b"g\x01\x02").unwrap().as_deref(),
        Some(&b"value"[..])
    );
    // A failing batch leaves nothing behind.
    let err = repo.batch(|b| {
        b.set_xref(b"s\x00", Some(b"x"))?;
        b.set_xref(b"g\x01\x02", None)?;
        Err::<(), _>(Error::FileTooLarge)
    });
    assert!(err.is_err());
    assert_eq!(repo.xref(b"s\x00").unwrap(), None);
    assert!(repo.xref(b"g\x01\x02").unwrap().is_some());
}

#[test]
fn compaction_gives_free_pages_back_and_keeps_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let mut repo = new_repo(tmp.path());
    let path = RepoPath::parse("data.bin").unwrap();
    let mut last = Vec::new();
    for v in 0..12u64 {
        // Each version rewrites the previous one as a delta: the old pages become free.
        last = pseudo_random(v, 600_000);
        let mut cs = repo.change_set("main").unwrap();
        cs.put_bytes(&path, EntryKind::File, &last).unwrap();
        cs.commit(meta(&format!("v{v}")), Expect::Latest).unwrap();
    }
    let head = repo.branch_head("main").unwrap().unwrap();
    let (before, after) = repo.compact().unwrap();
    assert!(after < before, "{before} -> {after}");
    assert_eq!(std::fs::metadata(repo.path()).unwrap().len(), after);
    assert!(repo.verify(None).unwrap().is_ok());
    let view = repo.view().unwrap();
    let e = view.entry_in_commit(&head, &path).unwrap().unwrap();
    assert_eq!(view.read_file(&e.id, u64::MAX).unwrap(), last);
    drop(view);
    // Still a working repository: another commit lands.
    let mut cs = repo.change_set("main").unwrap();
    cs.put_bytes(&path, EntryKind::File, b"small now").unwrap();
    cs.commit(meta("after"), Expect::Latest).unwrap();
}

/// Copies a history the way sync does: newest content first, each object in the form it is
/// stored in (deltas against objects already copied), into a batch written in key order.
#[test]
fn stored_forms_travel_as_they_are_and_decode_the_same() {
    use hero_store::{Incoming, StoredForm};
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("s")).unwrap();
    let src = new_repo(&tmp.path().join("s"));
    let path = RepoPath::parse("doc.md").unwrap();
    let mut text: Vec<u8> = (0..300)
        .flat_map(|i| format!("line {i} of a document\n").into_bytes())
        .collect();
    let mut heads = Vec::new();
    for round in 0..6 {
        text.extend_from_slice(format!("edit {round}\n").as_bytes());
        let mut cs = src.change_set("main").unwrap();
        cs.put_bytes(&path, EntryKind::File, &text).unwrap();
        heads.push(cs.commit(meta("edit"), Expect::Latest).unwrap().id);
    }
    let view = src.view().unwrap();
    // Content newest first (older versions are deltas against newer ones), commits last,
    // oldest first.
    let mut order: Vec<(ObjType, ObjectId)> = Vec::new();
    for c in heads.iter().rev() {
        let mut sub = Vec::new();
        post_order(&src, view.commit(c).unwrap().tree, ObjType::Tree, &mut sub);
        for x in sub {
            if !order.contains(&x) {
                order.push(x);
            }
        }
    }
    order.extend(heads.iter().map(|c| (ObjType::Commit, *c)));
    std::fs::create_dir_all(tmp.path().join("d")).unwrap();
    let dst = new_repo(&tmp.path().join("d"));
    let mut deltas = 0;
    dst.batch(|b| {
        let mut chains = std::collections::HashMap::new();
        let mut raws = std::collections::HashMap::new();
        for (ty, id) in &order {
            let stored = view.stored(id)?.unwrap();
            let (_, raw) = view.raw_object(id)?.unwrap();
            let r = match &stored.form {
                StoredForm::Delta { base, frame } => {
                    deltas += 1;
                    let base_raw: &Vec<u8> = &raws[base];
                    b.put_received(
                        *ty,
                        None,
                        Incoming::Delta {
                            base: *base,
                            base_raw,
                            frame,
                            raw_len: stored.raw_len,
                            chain: chains.get(base).copied(),
                            base_whole: false,
                        },
                        &|_| None,
                    )?
                }
                StoredForm::Zstd(frame) => b.put_received(
                    *ty,
                    None,
                    Incoming::Zstd {
                        frame,
                        raw_len: stored.raw_len,
                    },
                    &|_| None,
                )?,
                StoredForm::Plain(_) | StoredForm::Other => b.put_received(
                    *ty,
                    None,
                    Incoming::Raw {
                        raw: &raw,
                        plain: matches!(stored.form, StoredForm::Plain(_)),
                        previous: None,
                    },
                    &|_| None,
                )?,
            };
            assert_eq!(r.id, *id);
            assert!(r.new);
            if let Some(c) = r.chain {
                chains.insert(*id, c);
            }
            raws.insert(*id, raw);
        }
        Ok(())
    })
    .unwrap();
    assert!(deltas >= 5, "older versions are stored as deltas: {deltas}");
    let dview = dst.view().unwrap();
    for (_, id) in &order {
        assert_eq!(
            dview.stored(id).unwrap(),
            view.stored(id).unwrap(),
            "{id:?}"
        );
        assert_eq!(dview.raw_object(id).unwrap(), view.raw_object(id).unwrap());
    }
    dst.update_branch("main", None, Some(*heads.last().unwrap()), "copy")
        .unwrap();
    assert!(dst.verify(None).unwrap().is_ok());
    // A frame that does not decode is refused, and nothing of that batch is kept.
    let err = dst
        .batch(|b| {
            b.put_received(
                ObjType::Blob,
                None,
                Incoming::Zstd {
                    frame: b"not zstd at all",
                    raw_len: 5,
                },
                &|_| None,
            )
        })
        .unwrap_err();
    assert!(matches!(err, Error::Undecodable(_)), "{err}");
}

#[test]
fn prepared_objects_given_in_id_order_are_stored_in_one_pass() {
    use hero_store::Incoming;
    let tmp = tempfile::tempdir().unwrap();
    let (src, head, big, dst, order) = source_and_empty(tmp.path());
    let view = src.view().unwrap();
    let prepare_all = || {
        let dview = dst.view().unwrap();
        let mut known = std::collections::HashMap::new();
        let mut out = Vec::new();
        for (ty, id) in &order {
            let (found, raw) = view.raw_object(id).unwrap().unwrap();
            let manifest = (found == ObjType::Manifest).then_some(*id);
            let p = dview
                .prepare_received(
                    found,
                    manifest,
                    Incoming::Raw {
                        raw: &raw,
                        plain: false,
                        previous: None,
                    },
                    &|x| known.get(x).copied(),
                )
                .unwrap();
            assert_eq!(p.id, *id);
            known.insert(*id, *ty);
            out.push(p);
        }
        out
    };
    // Out of order: refused, nothing stored.
    let mut prepared = prepare_all();
    prepared.sort_unstable_by_key(|p| std::cmp::Reverse(p.id));
    let err = dst.batch(|b| b.put_prepared_sorted(prepared)).unwrap_err();
    assert!(err.to_string().contains("out of order"), "{err}");
    assert!(!dst.has_object(&head).unwrap());
    // In order: everything stored, the manifest's chunks checked once all are in.
    let mut prepared = prepare_all();
    prepared.sort_unstable_by_key(|p| p.id);
    let n = prepared.len() as u64;
    assert_eq!(dst.batch(|b| b.put_prepared_sorted(prepared)).unwrap(), n);
    assert_copied(&dst, head, &big);
    // Again: nothing new.
    let mut prepared = prepare_all();
    prepared.sort_unstable_by_key(|p| p.id);
    assert_eq!(dst.batch(|b| b.put_prepared_sorted(prepared)).unwrap(), 0);
}

#[test]
fn tree_entries_without_names_match_the_full_decode() {
    use hero_store::{Tree, TreeEntry};
    let tree = Tree {
        entries: vec![
            TreeEntry::new(b"a.txt".to_vec(), EntryKind::File, ObjectId::of(b"a"), 1),
            TreeEntry::new(b"dir".to_vec(), EntryKind::Dir, ObjectId::of(b"d"), 3),
            TreeEntry::new(
                b"run.sh".to_vec(),
                EntryKind::Executable,
                ObjectId::of(b"r"),
                1 << 30,
            ),
        ],
    };
    let raw = tree.encode();
    let light = Tree::entries_without_names(&raw).unwrap();
    let full: Vec<_> = Tree::decode(&raw)
        .unwrap()
        .entries
        .into_iter()
        .map(|e| (e.kind, e.id, e.size))
        .collect();
    assert_eq!(light, full);
    assert!(Tree::entries_without_names(&raw[..raw.len() - 1]).is_err());
    assert!(Tree::entries_without_names(b"garbage").is_err());
}
