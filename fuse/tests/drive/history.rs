//! `.snapshots/`: recent commits, tags, dates; directory link counts.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hero_store::{CommitMeta, EntryKind, Expect, Repo, RepoPath, Signature};

use crate::util::*;

fn sig(time: i64) -> Signature {
    Signature {
        name: b"past".to_vec(),
        email: b"p@example.com".to_vec(),
        time,
        tz_offset_minutes: 0,
    }
}

fn commit_at(repo: &Repo, time: i64, text: &[u8]) {
    let mut cs = repo.change_set("main").unwrap();
    cs.put_bytes(&RepoPath::parse("v.txt").unwrap(), EntryKind::File, text)
        .unwrap();
    cs.commit(CommitMeta::new(sig(time), "past\n"), Expect::Latest)
        .unwrap();
}

fn ls(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn utc(t: i64) -> String {
    sh(
        std::path::Path::new("/"),
        &format!("date -u -d @{t} +%Y-%m-%dT%H:%M:%S"),
    )
    .trim()
    .to_owned()
}

/// The newest move time of `main` in the reflog.
fn last_move(repo: &Repo) -> i64 {
    repo.reflog("refs/heads/main").unwrap().last().unwrap().time
}

#[test]
fn snapshots_list_commits_and_tags_and_take_ids_and_dates() {
    // Two commits from the past (commit times 2020 and 2022), made before the mount.
    let m = Mounted::prepared(
        |repo| {
            commit_at(repo, 1_577_836_800, b"2020\n"); // 2020-01-01
            commit_at(repo, 1_640_995_200, b"2022\n"); // 2022-01-01
        },
        |o| {
            o.idle_commit = Duration::from_secs(3600);
            o.max_commit_delay = Duration::from_secs(3600);
        },
    );
    let repo = Repo::open(&m.repo).unwrap();
    let old = commits(&repo, "main");
    repo.create_tag("v1", old[1], None).unwrap();

    // A commit through the mount, then one in a later second of the clock.
    fs::write(m.p("v.txt"), b"a\n").unwrap();
    fs::File::open(m.p("v.txt")).unwrap().sync_all().unwrap();
    let a_time = last_move(&repo);
    let a = repo.branch_head("main").unwrap().unwrap();
    eventually("the clock to pass the first commit's second", || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            > a_time
    });
    fs::write(m.p("v.txt"), b"b\n").unwrap();
    fs::File::open(m.p("v.txt")).unwrap().sync_all().unwrap();
    let b = repo.branch_head("main").unwrap().unwrap();
    assert_ne!(a, b);

    // .snapshots lists branches, tags and recent commits by short id.
    let names = ls(&m.p(".snapshots"));
    for want in [
        "main",
        "v1",
        &a.short(),
        &b.short(),
        &old[0].short(),
        &old[1].short(),
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    let read = |name: &str| fs::read(m.p(&format!(".snapshots/{name}/v.txt"))).unwrap();
    assert_eq!(read(&a.short()), b"a\n");
    assert_eq!(read(&a.to_hex()), b"a\n");
    assert_eq!(read(&a.to_hex()[..7]), b"a\n");
    assert_eq!(read("v1"), b"2020\n");
    assert_eq!(read("main"), b"b\n");
    // By date: within the reflog, where the branch was then.
    assert_eq!(read(&format!("@{}", utc(a_time))), b"a\n");
    assert_eq!(read(&format!("main@{}Z", utc(a_time))), b"a\n");
    // Before the reflog began: by commit times.
    assert_eq!(read("@2021-06-01"), b"2020\n");
    assert_eq!(read("@2023-01-01T00:00"), b"2022\n");
    // Before anything: no such directory.
    assert!(!m.p(".snapshots/@2019-01-01").exists());
    assert!(!m.p(".snapshots/@2019-13-01").exists());
}

#[test]
fn directory_link_counts_count_subdirectories() {
    let mut m = Mounted::new();
    sh(
        &m.dir,
        "mkdir -p d/a d/b/x d/c && touch d/f1 d/f2 && ln -s a d/l",
    );
    let nlink = |p: &str| fs::metadata(m.p(p)).unwrap().nlink();
    assert_eq!(nlink("d"), 5);
    assert_eq!(nlink("d/b"), 3);
    assert_eq!(nlink("d/a"), 2);
    // The root: d (.snapshots is not listed there); .snapshots: what it lists.
    assert_eq!(nlink(""), 3);
    m.handle.as_ref().unwrap().flush().unwrap();
    let listed = fs::read_dir(m.p(".snapshots")).unwrap().count() as u64;
    assert_eq!(listed, 2, "main and its one commit");
    assert_eq!(nlink(".snapshots"), 2 + listed);
    sh(&m.dir, "rmdir d/c && mv d/a d/b/");
    assert_eq!(nlink("d"), 3);
    assert_eq!(nlink("d/b"), 4);
    // Stored directories not loaded yet (a fresh mount, a `stat` without listing).
    m.finish();
    let m2 = Mounted::reuse(m.take_tmp(), |_| {});
    let nlink = |p: &str| fs::metadata(m2.p(p)).unwrap().nlink();
    assert_eq!(nlink("d/b"), 4);
    assert_eq!(nlink("d"), 3);
    assert_eq!(nlink(".snapshots/main/d/b"), 4);
    // `find` relies on link counts to skip leaves: it must still see every directory.
    assert_eq!(
        sh(&m2.dir, "find d -type d | sort"),
        "d\nd/b\nd/b/a\nd/b/x\n"
    );
}

#[test]
fn snapshots_are_hidden_from_walkers_but_reachable_by_name() {
    let mut m = Mounted::new();
    sh(&m.dir, "mkdir d && echo one > d/f");
    m.handle.as_ref().unwrap().flush().unwrap();
    sh(&m.dir, "echo two > d/f");
    m.handle.as_ref().unwrap().flush().unwrap();
    // Walkers see the branch once: no .snapshots in `ls -a`, `find`, `du -a`, `grep -r`.
    assert_eq!(sh(&m.dir, "ls -a"), ".\n..\nd\n");
    assert_eq!(sh(&m.dir, "find . | sort"), ".\n./d\n./d/f\n");
    assert!(!sh(&m.dir, "du -a .").contains("snapshots"));
    assert_eq!(sh(&m.dir, "grep -r . . | sort"), "./d/f:two\n");
    // By name it is all there.
    assert_eq!(sh(&m.dir, "cat .snapshots/main~1/d/f"), "one\n");
    assert_eq!(sh(&m.dir, "ls .snapshots/main/"), "d\n");
    assert!(ls(&m.p(".snapshots")).iter().any(|n| n == "main"));
    assert!(fs::metadata(m.p(".snapshots")).unwrap().is_dir());
    m.finish();

    // Shown on request: listed in the root and counted in its link count.
    let m = Mounted::reuse(m.take_tmp(), |o| o.show_snapshots = true);
    assert_eq!(sh(&m.dir, "ls -a"), ".\n..\n.snapshots\nd\n");
    assert_eq!(fs::metadata(&m.dir).unwrap().nlink(), 4);
    assert_eq!(sh(&m.dir, "cat .snapshots/main~1/d/f"), "one\n");
}
