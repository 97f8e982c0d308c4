//! Subscribers hear commits: their own handle's at once, another handle's (as another process
//! would write) through the watched file.

use std::sync::mpsc;
use std::time::Duration;

use hero_store::{EntryKind, Expect, Repo, RepoPath};

use crate::common::{meta, new_repo};

/// Long enough for a loaded machine; a commit that is heard returns at once.
const HEARD_WITHIN: Duration = Duration::from_secs(10);

fn commit(repo: &Repo, name: &str) {
    let mut cs = repo.change_set("main").unwrap();
    cs.put_bytes(&RepoPath::parse(name).unwrap(), EntryKind::File, b"x\n")
        .unwrap();
    cs.commit(meta(name), Expect::Latest).unwrap();
}

fn drain(rx: &mpsc::Receiver<()>) {
    while rx.try_recv().is_ok() {}
}

#[test]
fn a_commit_of_another_handle_wakes_a_subscriber_through_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path());
    let other = Repo::open(dir.path().join("repo.hero")).unwrap();
    let (tx, rx) = mpsc::channel();
    let sub = repo.subscribe(move || {
        let _ = tx.send(());
    });
    assert!(sub.watched(), "inotify is available here");
    let before = repo.generation().unwrap();
    commit(&other, "a.txt");
    rx.recv_timeout(HEARD_WITHIN)
        .expect("the other handle's commit was heard");
    // Whatever woke it, the commit is readable by the time the last call comes.
    let deadline = std::time::Instant::now() + HEARD_WITHIN;
    while repo.generation().unwrap() == before {
        rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .expect("a call after the commit was published");
    }
    assert!(repo.branch_head("main").unwrap().is_some());
}

#[test]
fn a_commit_of_the_same_handle_calls_before_it_returns_and_a_dropped_subscription_is_silent() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path());
    let (tx, rx) = mpsc::channel();
    let sub = repo.subscribe(move || {
        let _ = tx.send(());
    });
    commit(&repo, "a.txt");
    rx.try_recv().expect("called on the committing thread");
    drop(sub);
    drain(&rx);
    commit(&repo, "b.txt");
    // The sender went with the subscription: nothing more can arrive.
    assert_eq!(
        rx.recv_timeout(HEARD_WITHIN),
        Err(mpsc::RecvTimeoutError::Disconnected)
    );
}

#[test]
fn reads_alone_wake_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path());
    commit(&repo, "a.txt");
    let other = Repo::open(dir.path().join("repo.hero")).unwrap();
    let (tx, rx) = mpsc::channel();
    let _sub = repo.subscribe(move || {
        let _ = tx.send(());
    });
    for _ in 0..50 {
        other.generation().unwrap();
        repo.generation().unwrap();
        other.branch_head("main").unwrap();
    }
    // Absence cannot be awaited: a read's event would have been queued by now, and the
    // watch thread calls within microseconds of an event.
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(300)),
        Err(mpsc::RecvTimeoutError::Timeout),
        "reads woke a subscriber"
    );
    commit(&other, "b.txt");
    rx.recv_timeout(HEARD_WITHIN).expect("the commit was heard");
}
