//! Property tests: trees survive a snapshot and checkout byte for byte; a random sequence of
//! puts, deletes, renames and commits agrees with a plain in-memory model.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hero_store::{CheckoutOptions, EntryKind, Expect, RepoPath, SnapshotOptions};
use proptest::prelude::*;

use crate::common::{meta, new_repo};

#[derive(Debug, Clone)]
enum Item {
    File(Vec<u8>, bool),
    Link(Vec<u8>),
    Dir,
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"a".to_vec()),
        Just(b"b".to_vec()),
        Just(b"long name with spaces".to_vec()),
        Just(b"caf\xc3\xa9".to_vec()),
        Just(b"\xff\xfebin".to_vec()),
        Just(b".hidden".to_vec()),
        Just(b"-dash".to_vec()),
    ]
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        (prop::collection::vec(any::<u8>(), 0..3000), any::<bool>())
            .prop_map(|(c, x)| Item::File(c, x)),
        Just(Item::File(Vec::new(), false)),
        prop::collection::vec(1u8..=255, 1..40).prop_map(|t| {
            Item::Link(
                t.into_iter()
                    .map(|b| if b == b'/' { b'x' } else { b })
                    .collect(),
            )
        }),
        Just(Item::Dir),
    ]
}

fn tree() -> impl Strategy<Value = BTreeMap<Vec<Vec<u8>>, Item>> {
    prop::collection::btree_map(prop::collection::vec(name(), 1..4), item(), 0..20)
}

/// Writes the generated tree; paths under a file are dropped.
fn materialize(root: &Path, t: &BTreeMap<Vec<Vec<u8>>, Item>) {
    for (path, it) in t {
        let mut p = root.to_path_buf();
        let mut ok = true;
        for (i, n) in path.iter().enumerate() {
            p.push(OsStr::from_bytes(n));
            if i + 1 < path.len() {
                match fs::symlink_metadata(&p) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        ok = false;
                        break;
                    }
                    Err(_) => fs::create_dir(&p).unwrap(),
                }
            }
        }
        if !ok || fs::symlink_metadata(&p).is_ok() {
            continue;
        }
        match it {
            Item::File(c, exec) => {
                fs::write(&p, c).unwrap();
                let mode = if *exec { 0o755 } else { 0o644 };
                fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
            }
            Item::Link(target) => {
                std::os::unix::fs::symlink(OsStr::from_bytes(target), &p).unwrap()
            }
            Item::Dir => fs::create_dir(&p).unwrap(),
        }
    }
}

/// Everything under `root`: path to (kind, content or target, exec bit).
fn scan(root: &Path) -> BTreeMap<Vec<u8>, (char, Vec<u8>, bool)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                out.insert(rel, ('d', Vec::new(), false));
                stack.push(p);
            } else if m.file_type().is_symlink() {
                out.insert(
                    rel,
                    (
                        'l',
                        fs::read_link(&p).unwrap().as_os_str().as_bytes().to_vec(),
                        false,
                    ),
                );
            } else {
                out.insert(
                    rel,
                    (
                        'f',
                        fs::read(&p).unwrap(),
                        m.permissions().mode() & 0o111 != 0,
                    ),
                );
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn snapshot_then_checkout_is_byte_identical(t in tree()) {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir(&src).unwrap();
        materialize(&src, &t);
        let repo = new_repo(tmp.path());
        let r = repo.snapshot(&src, "main", meta("snap"), &SnapshotOptions::default()).unwrap();
        let out = tmp.path().join("out");
        repo.checkout(&r.committed.id, &out, &CheckoutOptions::default()).unwrap();
        prop_assert_eq!(scan(&src), scan(&out));
        prop_assert!(repo.verify(None).unwrap().is_ok());
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put(usize, Vec<u8>),
    Delete(usize),
    Rename(usize, usize),
    Commit,
}

const PATHS: [&str; 6] = ["f1", "f2", "d/f1", "d/f2", "d/e/f1", "e/f3"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..PATHS.len(), prop::collection::vec(any::<u8>(), 0..200)).prop_map(|(p, c)| Op::Put(p, c)),
        2 => (0..PATHS.len()).prop_map(Op::Delete),
        2 => (0..PATHS.len(), 0..PATHS.len()).prop_map(|(a, b)| Op::Rename(a, b)),
        2 => Just(Op::Commit),
    ]
}

fn parent_dirs(p: &str) -> Vec<String> {
    let parts: Vec<&str> = p.split('/').collect();
    (1..parts.len()).map(|i| parts[..i].join("/")).collect()
}

fn check_against_model(
    repo: &hero_store::Repo,
    files: &BTreeMap<String, Vec<u8>>,
    dirs: &BTreeSet<String>,
) {
    let view = repo.view().unwrap();
    let Some(head) = view.branch_head("main").unwrap() else {
        assert!(files.is_empty());
        return;
    };
    for p in PATHS {
        let e = view
            .entry_in_commit(&head, &RepoPath::parse(p).unwrap())
            .unwrap();
        match files.get(p) {
            Some(content) => {
                let e = e.unwrap_or_else(|| panic!("{p} missing in the store"));
                assert_eq!(e.kind, EntryKind::File);
                assert_eq!(&view.read_file(&e.id, 1 << 20).unwrap(), content, "{p}");
            }
            None => assert!(e.is_none(), "{p} should not exist"),
        }
    }
    for d in ["d", "d/e", "e"] {
        let e = view
            .entry_in_commit(&head, &RepoPath::parse(d).unwrap())
            .unwrap();
        assert_eq!(e.is_some(), dirs.contains(d), "directory {d}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn change_sets_agree_with_a_model(ops in prop::collection::vec(op(), 1..40)) {
        let tmp = tempfile::tempdir().unwrap();
        let repo = new_repo(tmp.path());
        // The committed model and the pending one.
        let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut dirs: BTreeSet<String> = BTreeSet::new();
        let (mut pfiles, mut pdirs) = (files.clone(), dirs.clone());
        let mut cs = repo.change_set("main").unwrap();
        for op in ops {
            match op {
                Op::Put(i, c) => {
                    let p = PATHS[i];
                    cs.put_bytes(&RepoPath::parse(p).unwrap(), EntryKind::File, &c).unwrap();
                    pdirs.extend(parent_dirs(p));
                    pfiles.insert(p.to_owned(), c);
                }
                Op::Delete(i) => {
                    let p = PATHS[i];
                    let r = cs.delete(&RepoPath::parse(p).unwrap());
                    prop_assert_eq!(r.is_ok(), pfiles.remove(p).is_some());
                }
                Op::Rename(a, b) => {
                    let (from, to) = (PATHS[a], PATHS[b]);
                    let r = cs.rename(&RepoPath::parse(from).unwrap(), &RepoPath::parse(to).unwrap());
                    let parent_ok = parent_dirs(to).last().is_none_or(|d| pdirs.contains(d));
                    let expect_ok = pfiles.contains_key(from) && (from == to || parent_ok);
                    prop_assert_eq!(r.is_ok(), expect_ok, "rename {} -> {}: {:?}", from, to, r);
                    if expect_ok && from != to {
                        let c = pfiles.remove(from).unwrap();
                        pfiles.insert(to.to_owned(), c);
                    }
                }
                Op::Commit => {
                    cs.commit(meta("c"), Expect::Base).unwrap();
                    files = pfiles.clone();
                    dirs = pdirs.clone();
                    check_against_model(&repo, &files, &dirs);
                    cs = repo.change_set("main").unwrap();
                }
            }
        }
        cs.commit(meta("last"), Expect::Base).unwrap();
        check_against_model(&repo, &pfiles, &pdirs);
        prop_assert!(repo.verify(None).unwrap().is_ok());
    }
}

#[test]
fn latest_replays_onto_a_moved_head_and_base_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = new_repo(tmp.path());
    let mut a = repo.change_set("main").unwrap();
    let mut b = repo.change_set("main").unwrap();
    let mut c = repo.change_set("main").unwrap();
    a.put_bytes(&RepoPath::parse("x").unwrap(), EntryKind::File, b"from a")
        .unwrap();
    b.put_bytes(&RepoPath::parse("y").unwrap(), EntryKind::File, b"from b")
        .unwrap();
    c.put_bytes(&RepoPath::parse("z").unwrap(), EntryKind::File, b"from c")
        .unwrap();
    let first = a.commit(meta("a"), Expect::Latest).unwrap();
    let second = b.commit(meta("b"), Expect::Latest).unwrap();
    let view = repo.view().unwrap();
    assert_eq!(view.commit(&second.id).unwrap().parents, vec![first.id]);
    for p in ["x", "y"] {
        assert!(
            view.entry_in_commit(&second.id, &RepoPath::parse(p).unwrap())
                .unwrap()
                .is_some()
        );
    }
    let err = c.commit(meta("c"), Expect::Base).unwrap_err();
    assert!(matches!(err, hero_store::Error::RefMoved { .. }), "{err}");
    assert_eq!(repo.branch_head("main").unwrap(), Some(second.id));
}

#[test]
fn invalid_names_are_refused() {
    for bad in ["", "a//b", "a/./b", "../x", "a/\0"] {
        if bad.is_empty() {
            assert!(RepoPath::parse(bad).unwrap().is_root());
            continue;
        }
        assert!(RepoPath::parse(bad).is_err(), "{bad:?}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = new_repo(tmp.path());
    let mut cs = repo.change_set("main").unwrap();
    let err = cs
        .put_bytes(&RepoPath::root(), EntryKind::File, b"x")
        .unwrap_err();
    assert!(
        matches!(err, hero_store::Error::InvalidOperation(..)),
        "{err}"
    );
    // Any other byte string is kept exactly.
    let odd = RepoPath::from_names([b"\xff\x01 ~:*?".to_vec()]).unwrap();
    cs.put_bytes(&odd, EntryKind::File, b"odd").unwrap();
    let done = cs.commit(meta("odd"), Expect::Latest).unwrap();
    let tree = repo
        .view()
        .unwrap()
        .list_dir(&done.id, &RepoPath::root())
        .unwrap();
    assert_eq!(tree.entries[0].name, b"\xff\x01 ~:*?".to_vec());
}
