//! Several processes on one repository file.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use hero_store::{Repo, RepoPath};

const WRITER: &str = env!("CARGO_BIN_EXE_hero-writer");

#[test]
fn two_processes_committing_to_one_branch_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("repo.hero");
    Repo::init(&path).unwrap();
    let n = 150;
    let spawn = |prefix: &str| {
        Command::new(WRITER)
            .arg(&path)
            .args(["main", prefix, &n.to_string()])
            .spawn()
            .unwrap()
    };
    let mut a = spawn("alpha");
    let mut b = spawn("beta");
    // This process reads while the others write, and sees their commits.
    let repo = Repo::open(&path).unwrap();
    let mut seen_moves = 0;
    let mut last = None;
    while a.try_wait().unwrap().is_none() || b.try_wait().unwrap().is_none() {
        let head = repo.branch_head("main").unwrap();
        if head != last {
            seen_moves += 1;
            last = head;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    assert!(
        seen_moves > 1,
        "the reader saw the writers' commits as they landed"
    );
    let view = repo.view().unwrap();
    let head = view.branch_head("main").unwrap().unwrap();
    let commits: Vec<_> = view
        .log(&[head], false)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    assert_eq!(
        commits.len(),
        2 * n,
        "every commit of both writers is in the history"
    );
    for prefix in ["alpha", "beta"] {
        for i in 0..n {
            let p = RepoPath::parse(format!("{prefix}/{i}.txt")).unwrap();
            let e = view.entry_in_commit(&head, &p).unwrap();
            assert!(e.is_some(), "{p} is in the final tree");
        }
    }
    assert!(repo.verify(None).unwrap().is_ok());
}

#[test]
fn kill_9_during_a_large_commit_leaves_the_previous_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("repo.hero");
    Repo::init(&path).unwrap();
    let ok = Command::new(WRITER)
        .arg(&path)
        .args(["main", "small", "3"])
        .status()
        .unwrap();
    assert!(ok.success());
    let before = Repo::open(&path).unwrap().branch_head("main").unwrap();
    assert!(before.is_some());
    let mut child = Command::new(WRITER)
        .arg(&path)
        .args(["main", "huge", "1", "400"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "writing");
    // Once it is well into the write (two batches of its data read, the first committed in a
    // transaction of its own), kill it without warning.
    loop {
        let line = lines
            .next()
            .expect("the writer ended before it was killed")
            .unwrap();
        if line.starts_with("read ") && line != "read 64 MiB" {
            break;
        }
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the writer was killed before it finished"
    );
    let repo = Repo::open(&path).unwrap();
    assert_eq!(repo.branch_head("main").unwrap(), before);
    let report = repo.verify(None).unwrap();
    assert!(report.is_ok(), "{report:?}");
    // And it keeps working.
    let ok = Command::new(WRITER)
        .arg(&path)
        .args(["main", "after", "2"])
        .status()
        .unwrap();
    assert!(ok.success());
}
