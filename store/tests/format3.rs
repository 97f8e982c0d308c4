//! Format 3: a format-2 repository (the fixture made by the format-2 heroctl,
//! `fixtures/make-format2.sh`) read as it is, upgraded in place with everything reading the
//! same, then holding special files, access times and hard-link groups.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hero_store::{
    EntryKind, EntryMeta, Error, Expect, LinkGroup, ObjectId, Owner, Repo, RepoPath, Timestamp,
};

use crate::common::meta;

fn fixture_copy(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format2.hero");
    let dst = dir.join("format2.hero");
    std::fs::copy(&src, &dst).unwrap();
    dst
}

/// Everything a repository holds, as its readers see it: each ref and where it points, each
/// reflog, and for every commit reachable from a ref its message, parents, root metadata and
/// every entry of its tree with kind, id, size, metadata and (for files) content.
pub(crate) fn everything(repo: &Repo) -> Vec<String> {
    let v = repo.view().unwrap();
    let mut out = Vec::new();
    let mut todo = Vec::new();
    for (name, id) in repo.branches().unwrap() {
        out.push(format!("branch {name} {id:?}"));
        out.push(format!(
            "reflog {name} {:?}",
            repo.reflog(&format!("refs/heads/{name}")).unwrap()
        ));
        todo.push(id);
    }
    for (name, value) in repo.tags().unwrap() {
        out.push(format!("tag {name} {value:?}"));
        todo.push(v.peel(value).unwrap());
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut contents = BTreeMap::new();
    while let Some(c) = todo.pop() {
        if !seen.insert(c) {
            continue;
        }
        let commit = v.commit(&c).unwrap();
        out.push(format!(
            "commit {c:?} parents {:?} message {:?} root {:?}",
            commit.parents,
            commit.summary(),
            commit.root_meta()
        ));
        todo.extend(commit.parents.iter().copied());
        let mut stack = vec![(String::new(), commit.tree)];
        while let Some((at, t)) = stack.pop() {
            for e in v.tree(&t).unwrap().entries {
                let p = format!("{at}/{}", String::from_utf8_lossy(&e.name));
                out.push(format!(
                    "  {p} {} {:?} {} {:?}",
                    e.kind.as_str(),
                    e.id,
                    e.size,
                    e.meta
                ));
                if e.kind == EntryKind::Dir {
                    stack.push((p, e.id));
                } else if e.kind.is_blob() {
                    contents
                        .entry(e.id)
                        .or_insert_with(|| v.read_file(&e.id, u64::MAX).unwrap());
                }
            }
        }
    }
    for (id, bytes) in contents {
        out.push(format!("content {id:?} {}", ObjectId::of(&bytes).to_hex()));
        // A file with holes is named by its top node, not by its content's hash.
        let holes = v.file_extents(&id).unwrap().iter().any(|e| !e.data);
        assert!(holes || ObjectId::of(&bytes) == id, "{id:?}");
    }
    out
}

fn entry(repo: &Repo, rev: &str, path: &str) -> hero_store::TreeEntry {
    let v = repo.view().unwrap();
    let c = v.resolve(rev).unwrap();
    v.entry_in_commit(&c, &RepoPath::parse(path).unwrap())
        .unwrap()
        .unwrap()
}

/// What the fixture's script recorded, checked by value (not only as "unchanged").
fn check_fixture(repo: &Repo) {
    let private = entry(repo, "main", "docs/private.txt");
    assert_eq!(private.meta.mode, Some(0o600));
    assert_eq!(
        private.meta.owner,
        Some(Owner {
            uid: 1234,
            gid: 5678
        })
    );
    assert_eq!(
        private.meta.mtime,
        Some(Timestamp {
            secs: 981_173_106,
            nanos: 789_000_000
        })
    );
    assert_eq!(entry(repo, "main", "shared").meta.mode, Some(0o1777));
    assert_eq!(entry(repo, "main", "bin").meta.mode, Some(0o2755));
    let run = entry(repo, "main", "bin/run.sh");
    assert_eq!(
        (run.kind, run.meta.mode),
        (EntryKind::Executable, Some(0o750))
    );
    let link = entry(repo, "main", "link");
    assert_eq!(link.kind, EntryKind::Symlink);
    let v = repo.view().unwrap();
    assert_eq!(v.read_file(&link.id, 100).unwrap(), b"README.md");
    let large = entry(repo, "main", "large.txt");
    let want: Vec<u8> = (0..60_000)
        .flat_map(|i| format!("large file line {i}\n").into_bytes())
        .collect();
    assert_eq!(v.read_file(&large.id, u64::MAX).unwrap(), want);
    let readme = entry(repo, "v1", "README.md");
    assert_eq!(
        v.read_file(&readme.id, 100).unwrap(),
        b"first line\nsecond line\n"
    );
    let names: Vec<String> = repo.branches().unwrap().into_iter().map(|b| b.0).collect();
    assert_eq!(names, ["feature", "hero/membership", "main"]);
    assert_eq!(repo.tags().unwrap().len(), 2);
}

#[test]
fn a_format_2_repository_reads_the_same_after_the_upgrade_and_takes_format_3_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_copy(dir.path());
    let before = {
        let repo = Repo::open(&path).unwrap();
        assert_eq!(repo.format().unwrap(), 2);
        assert!(repo.verify(None).unwrap().is_ok());
        check_fixture(&repo);
        everything(&repo)
    };
    assert!(before.len() > 40, "{before:#?}");
    // Reading changed nothing.
    assert_eq!(Repo::open(&path).unwrap().format().unwrap(), 2);

    let mut repo = Repo::open(&path).unwrap();
    let up = repo.upgrade().unwrap();
    assert_eq!((up.from, up.to, up.records_converted), (2, 4, 0));
    drop(repo);

    let mut repo = Repo::open(&path).unwrap();
    assert_eq!(repo.format().unwrap(), 4);
    let report = repo.verify(None).unwrap();
    assert!(report.is_ok(), "{report:?}");
    check_fixture(&repo);
    assert_eq!(everything(&repo), before);

    // Upgrading again changes nothing.
    let again = repo.upgrade().unwrap();
    assert_eq!((again.from, again.to, again.records_converted), (4, 4, 0));
    assert_eq!(everything(&repo), before);

    // Format-3 entries work after it, beside the old ones.
    let mut cs = repo.change_set("main").unwrap();
    let p = |s: &str| RepoPath::parse(s).unwrap();
    cs.put_special(&p("dev/pipe"), EntryKind::Fifo).unwrap();
    cs.put_special(&p("dev/null"), EntryKind::CharDevice)
        .unwrap();
    cs.set_meta(
        &p("dev/null"),
        EntryMeta {
            mode: Some(0o666),
            rdev: Some((1 << 8) | 3),
            ..EntryMeta::NONE
        },
    )
    .unwrap();
    let group = LinkGroup::from_seed(b"README.md and docs/readme");
    let readme = entry(&repo, "main", "README.md");
    let linked = EntryMeta {
        link: Some(group),
        atime: Some(Timestamp {
            secs: 1_000_000_000,
            nanos: 1,
        }),
        ..readme.meta
    };
    cs.set_meta(&p("README.md"), linked).unwrap();
    cs.put_entry(&p("docs/readme"), readme.kind, readme.id, readme.size)
        .unwrap();
    cs.set_meta(&p("docs/readme"), linked).unwrap();
    cs.commit(meta("format 3 entries"), Expect::Latest).unwrap();

    drop(repo);
    let mut repo = Repo::open(&path).unwrap();
    assert!(repo.verify(None).unwrap().is_ok());
    let pipe = entry(&repo, "main", "dev/pipe");
    assert_eq!(
        (pipe.kind, pipe.id, pipe.size),
        (EntryKind::Fifo, ObjectId::ZERO, 0)
    );
    let null = entry(&repo, "main", "dev/null");
    assert_eq!(null.kind, EntryKind::CharDevice);
    assert_eq!(null.meta.rdev, Some(259));
    let a = entry(&repo, "main", "README.md");
    let b = entry(&repo, "main", "docs/readme");
    assert_eq!(a.meta.link, Some(group));
    assert_eq!((a.id, a.meta), (b.id, b.meta));
    // The old history is untouched by the new commit.
    check_fixture(&repo);
    // gc keeps every object reachable (special files reach none) and the history verifies.
    repo.gc(0, false).unwrap();
    repo.gc(0, false).unwrap();
    assert!(repo.verify(None).unwrap().is_ok());
    check_fixture(&repo);
}

#[test]
fn a_special_file_cannot_carry_content_and_a_file_kind_is_no_special_file() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::init(dir.path().join("r.hero")).unwrap();
    let mut cs = repo.change_set("main").unwrap();
    let p = RepoPath::parse("x").unwrap();
    assert!(matches!(
        cs.put_entry(&p, EntryKind::Fifo, ObjectId::of(b"x"), 1),
        Err(Error::InvalidOperation(..))
    ));
    assert!(matches!(
        cs.put_special(&p, EntryKind::File),
        Err(Error::InvalidOperation(..))
    ));
    // Metadata that does not fit (a device number on a FIFO) is refused.
    cs.put_special(&p, EntryKind::Fifo).unwrap();
    assert!(matches!(
        cs.set_meta(
            &p,
            EntryMeta {
                rdev: Some(5),
                ..EntryMeta::NONE
            },
        ),
        Err(Error::InvalidOperation(..))
    ));
}
