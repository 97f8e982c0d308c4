//! Scratch files stay local: the default ignore list, `.heroignore` and its `!` overrides.

use std::collections::BTreeSet;
use std::fs;
use std::time::Duration;

use hero_store::{EntryKind, ObjectId, Repo};

use crate::util::*;

/// Every path in any commit of `main`.
fn every_path_ever(repo: &Repo) -> BTreeSet<String> {
    let view = repo.view().unwrap();
    let mut out = BTreeSet::new();
    for c in commits(repo, "main") {
        let tree = view.commit(&c).unwrap().tree;
        let mut stack: Vec<(String, ObjectId)> = vec![(String::new(), tree)];
        while let Some((prefix, t)) = stack.pop() {
            for e in view.tree(&t).unwrap().entries {
                let p = format!("{prefix}{}", String::from_utf8_lossy(&e.name));
                if e.kind == EntryKind::Dir {
                    stack.push((format!("{p}/"), e.id));
                }
                out.insert(p);
            }
        }
    }
    out
}

/// Real editors and databases: vim (swap file, fsync on write) and sqlite3 (rollback
/// journal, fsync'd) save while their scratch files exist; none of those reach a commit, and
/// the files work in the mount meanwhile.
#[test]
fn editor_and_database_scratch_files_never_reach_a_commit() {
    let mut m = Mounted::with(|o| {
        o.idle_commit = Duration::from_millis(200);
    });
    fs::write(m.p("readme.md"), b"old line\n").unwrap();
    sh(
        &m.dir,
        "vim -u NONE -i NONE -N -Es -c '%s/old/new/' -c 'wq' readme.md",
    );
    assert_eq!(fs::read(m.p("readme.md")).unwrap(), b"new line\n");
    sh(
        &m.dir,
        "sqlite3 test.db 'create table t(x); begin; insert into t values(1); insert into t values(2); commit;' && \
         test \"$(sqlite3 test.db 'select sum(x) from t')\" = 3",
    );
    // Scratch files made by hand work as files, and survive commits.
    sh(
        &m.dir,
        "mkdir -p d && echo a > .readme.md.swp && echo b > notes~ && echo c > 4913 && \
         echo d > .#lock && echo e > d/.x.tmp && echo f > app-wal && echo g > app-shm && \
         echo real > d/real.txt && sync d/real.txt",
    );
    let repo = Repo::open(&m.repo).unwrap();
    eventually("the idle commit of readme.md and test.db", || {
        entry(&repo, "main", "readme.md")
            .is_some_and(|_| content(&repo, "main", "readme.md") == b"new line\n")
            && entry(&repo, "main", "test.db").is_some()
    });
    assert_eq!(fs::read(m.p("notes~")).unwrap(), b"b\n");
    assert_eq!(fs::read(m.p("d/.x.tmp")).unwrap(), b"e\n");
    let ls = sh(&m.dir, "ls -a . d");
    for n in [
        ".readme.md.swp",
        "notes~",
        "4913",
        ".#lock",
        ".x.tmp",
        "app-wal",
    ] {
        assert!(ls.contains(n), "{n} not listed: {ls}");
    }
    let ever = every_path_ever(&repo);
    for bad in ever.iter() {
        assert!(
            !(bad.ends_with(".swp")
                || bad.ends_with('~')
                || bad.ends_with("-journal")
                || bad.ends_with("-wal")
                || bad.ends_with("-shm")
                || bad.ends_with("4913")
                || bad.contains(".#")
                || bad.ends_with(".tmp")),
            "{bad} was committed; all: {ever:?}"
        );
    }
    assert!(ever.contains("d/real.txt"));
    drop(repo);
    // Local scratch is gone after unmount (docs/durability.md).
    let repo = m.finish();
    assert_eq!(kind(&repo, "main", "notes~"), None);
    let m2 = Mounted::reuse(m.take_tmp(), |_| {});
    assert!(!m2.p("notes~").exists());
    assert_eq!(fs::read(m2.p("d/real.txt")).unwrap(), b"real\n");
}

/// `.heroignore` (gitignore syntax) adds patterns, and `!` brings a default one back; a
/// scratch file renamed to a real name is committed, a committed file renamed to a scratch
/// name leaves the branch.
#[test]
fn heroignore_adds_and_overrides_and_renames_cross_the_line() {
    let mut m = Mounted::new();
    fs::write(m.p(".heroignore"), b"build/\n*.log\n!keep.swp\n").unwrap();
    sh(
        &m.dir,
        "mkdir -p build/sub src && echo o > build/sub/out.o && echo l > run.log && \
         echo k > keep.swp && echo s > other.swp && echo code > src/main.rs && \
         echo draft > .a.txt.tmp && mv .a.txt.tmp a.txt && \
         echo b > b.txt && sync b.txt && mv b.txt b.txt~ && \
         mkdir -p build/pkg && echo p > build/pkg/p.txt && echo x > build/pkg/x.log && mv build/pkg pkg && \
         mkdir -p travel-journal 'old~' && echo d > travel-journal/day1.txt && echo o > 'old~/f' && \
         echo s > travel-journal/.day1.txt.swp",
    );
    let repo = m.finish();
    assert_eq!(
        content(&repo, "main", ".heroignore"),
        b"build/\n*.log\n!keep.swp\n"
    );
    assert_eq!(content(&repo, "main", "keep.swp"), b"k\n");
    assert_eq!(content(&repo, "main", "src/main.rs"), b"code\n");
    assert_eq!(content(&repo, "main", "a.txt"), b"draft\n");
    assert_eq!(kind(&repo, "main", "build"), None);
    assert_eq!(kind(&repo, "main", "run.log"), None);
    assert_eq!(kind(&repo, "main", "other.swp"), None);
    assert_eq!(kind(&repo, "main", "b.txt"), None);
    assert_eq!(kind(&repo, "main", "b.txt~"), None);
    // A directory moved out of an ignored one joins the branch, minus what is ignored in it.
    assert_eq!(content(&repo, "main", "pkg/p.txt"), b"p\n");
    assert_eq!(kind(&repo, "main", "pkg/x.log"), None);
    // Default patterns are for files: directories with such names are not scratch.
    assert_eq!(content(&repo, "main", "travel-journal/day1.txt"), b"d\n");
    assert_eq!(content(&repo, "main", "old~/f"), b"o\n");
    assert_eq!(kind(&repo, "main", "travel-journal/.day1.txt.swp"), None);
    // b.txt had been committed (sync) before it was renamed away.
    assert!(every_path_ever(&repo).contains("b.txt"));
}

/// A `.heroignore` that arrives with a commit made elsewhere applies from then on.
#[test]
fn heroignore_from_elsewhere_applies() {
    let mut m = Mounted::new();
    fs::write(m.p("a.bak"), b"tracked\n").unwrap();
    m.handle.as_ref().unwrap().flush().unwrap();
    {
        let repo = Repo::open(&m.repo).unwrap();
        let mut cs = repo.change_set("main").unwrap();
        cs.put_bytes(
            &hero_store::RepoPath::parse(".heroignore").unwrap(),
            EntryKind::File,
            b"*.bak\n",
        )
        .unwrap();
        let sig = hero_store::Signature {
            name: b"other".to_vec(),
            email: b"o@example.com".to_vec(),
            time: 1,
            tz_offset_minutes: 0,
        };
        cs.commit(
            hero_store::CommitMeta::new(sig, "ignore backups\n"),
            hero_store::Expect::Latest,
        )
        .unwrap();
    }
    eventually("the new .heroignore in the mount", || {
        m.p(".heroignore").exists()
    });
    fs::write(m.p("b.bak"), b"local\n").unwrap();
    fs::write(m.p("c.txt"), b"c\n").unwrap();
    let repo = m.finish();
    assert_eq!(kind(&repo, "main", "b.bak"), None);
    assert_eq!(content(&repo, "main", "c.txt"), b"c\n");
    // Already in the branch: stays (rules apply to new names).
    assert_eq!(content(&repo, "main", "a.bak"), b"tracked\n");
}
