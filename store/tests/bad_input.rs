//! Corruption is found and named; wrong data is never returned; a full disk loses nothing.

use std::process::Command;

use hero_store::{EntryKind, Error, Expect, Repo, RepoPath};

use crate::common::{meta, new_repo, pseudo_random};

#[test]
fn a_flipped_byte_is_reported_by_reads_and_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("repo.hero");
    let content = pseudo_random(99, 8000); // incompressible: stored as is
    let id;
    {
        let repo = new_repo(tmp.path());
        let mut cs = repo.change_set("main").unwrap();
        let stored = cs
            .put_bytes(
                &RepoPath::parse("etc/secret.bin").unwrap(),
                EntryKind::File,
                &content,
            )
            .unwrap();
        id = stored.id;
        cs.commit(meta("c"), Expect::Latest).unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(64)
        .position(|w| w == &content[1000..1064])
        .expect("content stored verbatim");
    bytes[at + 10] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    let repo = Repo::open(&path).unwrap();
    let err = repo.view().unwrap().read_file(&id, 1 << 20).unwrap_err();
    match err {
        Error::Corrupt { id: bad, .. } => assert_eq!(bad, id),
        other => panic!("expected a corrupt-object error, got {other}"),
    }
    let report = repo.verify(None).unwrap();
    assert!(!report.is_ok());
    let c = report
        .corrupt
        .iter()
        .find(|c| c.id == id)
        .expect("verify names the object");
    assert!(
        c.used_by
            .iter()
            .any(|(_, p)| p.to_string() == "etc/secret.bin"),
        "{:?}",
        c.used_by
    );
}

#[test]
fn garbage_is_not_a_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("junk.hero");
    std::fs::write(&p, pseudo_random(1, 100_000)).unwrap();
    assert!(Repo::open(&p).is_err());
    assert!(matches!(
        Repo::open(tmp.path().join("none")),
        Err(Error::NoRepository(_))
    ));
    let good = tmp.path().join("good.hero");
    Repo::init(&good).unwrap();
    assert!(matches!(Repo::init(&good), Err(Error::RepositoryExists(_))));
}

/// Mounts a small tmpfs (we run as root in CI), fills it with a commit, and checks that the
/// commit fails with a clear error and the repository still holds the previous commit.
#[test]
fn a_full_disk_fails_the_commit_and_keeps_the_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=6m", "tmpfs"])
        .arg(&mnt)
        .status()
        .expect("run mount");
    assert!(
        status.success(),
        "mounting a tmpfs needs root (CI runs as root)"
    );
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    let path = mnt.join("repo.hero");
    let first;
    let last;
    {
        let repo = Repo::init(&path).unwrap();
        let mut cs = repo.change_set("main").unwrap();
        cs.put_bytes(
            &RepoPath::parse("keep.txt").unwrap(),
            EntryKind::File,
            b"precious\n",
        )
        .unwrap();
        first = cs.commit(meta("first"), Expect::Latest).unwrap().id;
        let before = std::fs::metadata(&path).unwrap().len();
        let mut cs = repo.change_set("main").unwrap();
        let big = pseudo_random(5, 32 << 20);
        let res = cs
            .put_reader(
                &RepoPath::parse("big.bin").unwrap(),
                EntryKind::File,
                big.as_slice(),
            )
            .and_then(|_| cs.commit(meta("too big"), Expect::Latest));
        let err = res.expect_err("the disk is too small for this commit");
        assert!(err.is_disk_full(), "a clear disk-full error, got: {err}");
        // The space the failed commit took is given back at once: the disk has room again
        // (redb may keep a sparse tail: what counts is the blocks the file occupies), and the
        // same handle keeps working.
        use std::os::unix::fs::MetadataExt;
        let on_disk = std::fs::metadata(&path).unwrap().blocks() * 512;
        assert!(
            on_disk <= before + (512 << 10),
            "the file occupies {on_disk} bytes after the failed commit, {before} before"
        );
        let mut cs = repo.change_set("main").unwrap();
        cs.put_bytes(
            &RepoPath::parse("small.txt").unwrap(),
            EntryKind::File,
            &pseudo_random(6, 100_000),
        )
        .unwrap();
        cs.commit(meta("fits"), Expect::Latest).unwrap();
        let mut cs = repo.change_set("main").unwrap();
        cs.delete(&RepoPath::parse("small.txt").unwrap()).unwrap();
        last = cs.commit(meta("back"), Expect::Latest).unwrap().id;
    }
    let repo = Repo::open(&path).unwrap();
    assert_eq!(repo.branch_head("main").unwrap(), Some(last));
    let e = repo
        .view()
        .unwrap()
        .entry_in_commit(&first, &RepoPath::parse("keep.txt").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        repo.view().unwrap().read_file(&e.id, 100).unwrap(),
        b"precious\n"
    );
    assert!(repo.verify(None).unwrap().is_ok());
}
