//! `Repo::gc`: what no ref or recent reflog entry reaches goes, after its grace period; what
//! a writer is about to use stays.

use hero_store::{EntryKind, Expect, ObjectId, Repo, RepoPath};

use crate::common::{meta, new_repo, pseudo_random};

/// A branch `tmp` with a large file of its own, then deleted: its objects are reachable only
/// from the reflog. Returns the file's content id.
fn deleted_branch_with_big_file(repo: &Repo) -> ObjectId {
    let head = repo.branch_head("main").unwrap();
    repo.update_branch("tmp", None, head, "branch").unwrap();
    let mut cs = repo.change_set("tmp").unwrap();
    let big = pseudo_random(77, 5 << 20);
    let f = cs
        .put_reader(
            &RepoPath::parse("big.bin").unwrap(),
            EntryKind::File,
            big.as_slice(),
        )
        .unwrap();
    let c = cs.commit(meta("big"), Expect::Latest).unwrap().id;
    repo.update_branch("tmp", Some(c), None, "delete").unwrap();
    f.id
}

fn main_with_files(repo: &Repo) {
    for i in 0..5u32 {
        let mut cs = repo.change_set("main").unwrap();
        cs.put_bytes(
            &RepoPath::parse(format!("f{i}.txt")).unwrap(),
            EntryKind::File,
            format!("file {i}\n").repeat(100).as_bytes(),
        )
        .unwrap();
        cs.commit(meta("c"), Expect::Latest).unwrap();
    }
}

#[test]
fn gc_removes_what_nothing_reaches_and_gives_the_space_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut repo = new_repo(dir.path());
    main_with_files(&repo);
    let big = deleted_branch_with_big_file(&repo);
    let objects_before = repo.verify(None).unwrap().objects;

    // Within the grace period the reflog entry keeps the deleted branch's objects.
    let kept = repo.gc(3600, false).unwrap();
    assert_eq!(kept.removed, 0, "{kept:?}");
    assert!(repo.has_object(&big).unwrap());

    // A dry run with no grace says what would go and changes nothing.
    let dry = repo.gc(0, true).unwrap();
    assert!(
        dry.removed >= 30,
        "the big file's chunks, its manifest, tree, commit: {dry:?}"
    );
    assert!(dry.removed_bytes >= 5 << 20);
    assert_eq!(repo.verify(None).unwrap().objects, objects_before);
    assert!(repo.has_object(&big).unwrap());

    let done = repo.gc(0, false).unwrap();
    assert_eq!(
        (done.removed, done.removed_bytes),
        (dry.removed, dry.removed_bytes)
    );
    assert!(!repo.has_object(&big).unwrap());
    assert!(
        done.file_bytes_after + (4 << 20) <= done.file_bytes_before,
        "the space came back: {done:?}"
    );
    let report = repo.verify(None).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.objects, objects_before - done.removed);
    // Everything main reaches is intact.
    let v = repo.view().unwrap();
    let head = v.branch_head("main").unwrap().unwrap();
    for i in 0..5u32 {
        let e = v
            .entry_in_commit(&head, &RepoPath::parse(format!("f{i}.txt")).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(
            v.read_file(&e.id, 1 << 20).unwrap(),
            format!("file {i}\n").repeat(100).as_bytes()
        );
    }
    // Old versions reached through history (stored as deltas) stay too.
    assert_eq!(v.log(&[head], false).unwrap().count(), 5);
}

#[test]
fn an_unreachable_object_is_listed_first_and_a_writer_reusing_it_takes_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut repo = new_repo(dir.path());
    main_with_files(&repo);
    // A blob written by a writer that has not committed yet (as a large file's chunks are).
    let orphan = b"written ahead of its commit\n".repeat(50);
    let id = repo.batch(|b| b.put_blob(&orphan, None)).unwrap();
    let first = repo.gc(3600, false).unwrap();
    assert_eq!(first.removed, 0);
    assert_eq!(first.listed, 1, "{first:?}");
    assert_eq!(repo.gc_listed().unwrap(), 1);
    // The writer now commits a file with that content: the store finds it stored, takes it
    // off the list, and the commit references it.
    let mut cs = repo.change_set("main").unwrap();
    cs.put_bytes(
        &RepoPath::parse("late.txt").unwrap(),
        EntryKind::File,
        &orphan,
    )
    .unwrap();
    cs.commit(meta("late"), Expect::Latest).unwrap();
    assert_eq!(repo.gc_listed().unwrap(), 0);
    let again = repo.gc(0, false).unwrap();
    assert_eq!(again.removed, 0, "{again:?}");
    assert!(repo.has_object(&id).unwrap());
    assert!(repo.verify(None).unwrap().is_ok());
}

/// Another handle commits (large files, whose chunks land in transactions before their
/// commit) while this one collects over and over with a grace period of 2 s, longer than any
/// one commit takes: every commit keeps everything it references, and the garbage made
/// before goes once its grace period is over.
#[test]
fn gc_while_another_writer_commits_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path());
    main_with_files(&repo);
    let garbage = deleted_branch_with_big_file(&repo);
    let path = repo.path().to_path_buf();
    let writer = std::thread::spawn(move || {
        for i in 0..12u64 {
            let mut cs = repo.change_set("main").unwrap();
            let data = pseudo_random(500 + i, 1_500_000);
            cs.put_reader(
                &RepoPath::parse(format!("big{i}.bin")).unwrap(),
                EntryKind::File,
                data.as_slice(),
            )
            .unwrap();
            cs.put_bytes(
                &RepoPath::parse(format!("small{i}.txt")).unwrap(),
                EntryKind::File,
                format!("small {i}\n").as_bytes(),
            )
            .unwrap();
            cs.commit(meta("w"), Expect::Latest).unwrap();
        }
        repo
    });
    let mut collector = Repo::open(&path).unwrap();
    let mut runs = 0;
    while !writer.is_finished() {
        collector.gc(2, false).unwrap();
        runs += 1;
    }
    let repo = writer.join().unwrap();
    assert!(runs >= 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while collector.has_object(&garbage).unwrap() {
        assert!(
            std::time::Instant::now() < deadline,
            "the garbage never went"
        );
        collector.gc(2, false).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let report = repo.verify(None).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert!(report.missing.is_empty());
    let v = repo.view().unwrap();
    let head = v.branch_head("main").unwrap().unwrap();
    for i in 0..12u64 {
        let e = v
            .entry_in_commit(&head, &RepoPath::parse(format!("big{i}.bin")).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(
            v.read_file(&e.id, 1 << 30).unwrap(),
            pseudo_random(500 + i, 1_500_000)
        );
    }
}
