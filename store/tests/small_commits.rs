//! A one-file commit writes objects in proportion to the path's depth, not the tree's size.

use hero_store::{EntryKind, Expect, RepoPath};

use crate::common::{meta, new_repo};

#[test]
fn one_file_commit_writes_only_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = new_repo(tmp.path());
    let mut cs = repo.change_set("main").unwrap();
    for a in 0..10 {
        for b in 0..10 {
            for f in 0..30 {
                let p = RepoPath::parse(format!("d{a}/e{b}/f{f}.toml")).unwrap();
                cs.put_bytes(
                    &p,
                    EntryKind::File,
                    format!("value = {a}{b}{f}\n").as_bytes(),
                )
                .unwrap();
            }
        }
    }
    cs.commit(meta("many"), Expect::Latest).unwrap();
    let count = |repo: &hero_store::Repo| -> u64 {
        repo.stats().unwrap().objects.iter().map(|(_, n)| n).sum()
    };
    let before = count(&repo);
    let mut cs = repo.change_set("main").unwrap();
    cs.put_bytes(
        &RepoPath::parse("d3/e4/f5.toml").unwrap(),
        EntryKind::File,
        b"value = changed\n",
    )
    .unwrap();
    cs.commit(meta("one"), Expect::Latest).unwrap();
    // One blob, three trees (root, d3, d3/e4), one commit.
    assert_eq!(count(&repo) - before, 5);
}

#[test]
fn unchanged_tree_makes_no_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = new_repo(tmp.path());
    let p = RepoPath::parse("a").unwrap();
    let mut cs = repo.change_set("main").unwrap();
    cs.put_bytes(&p, EntryKind::File, b"same").unwrap();
    let first = cs.commit(meta("1"), Expect::Latest).unwrap();
    let mut cs = repo.change_set("main").unwrap();
    cs.put_bytes(&p, EntryKind::File, b"same").unwrap();
    let second = cs.commit(meta("2"), Expect::Latest).unwrap();
    assert!(first.created);
    assert!(!second.created);
    assert_eq!(first.id, second.id);
}

/// A commit written without moving its branch: the caller checks it, then moves the branch
/// from the change set's base; a branch that moved meanwhile refuses the move.
#[test]
fn an_unattached_commit_leaves_the_branch_where_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = new_repo(tmp.path());
    let path = RepoPath::parse("a.toml").unwrap();
    let mut cs = repo.change_set("main").unwrap();
    cs.put_bytes(&path, EntryKind::File, b"a = 1\n").unwrap();
    let first = cs.commit(meta("first"), Expect::Latest).unwrap().id;

    let mut cs = repo.change_set("main").unwrap();
    cs.put_bytes(&path, EntryKind::File, b"a = 2\n").unwrap();
    let base = cs.base();
    let done = cs.commit_unattached(meta("second")).unwrap();
    assert!(done.created);
    assert_eq!(repo.branch_head("main").unwrap(), Some(first));
    assert_eq!(repo.commit(&done.id).unwrap().parents, vec![first]);
    repo.update_branch("main", base, Some(done.id), "commit")
        .unwrap();
    assert_eq!(repo.branch_head("main").unwrap(), Some(done.id));

    // Nothing changed: the head itself, not created.
    let mut cs = repo.change_set("main").unwrap();
    cs.put_bytes(&path, EntryKind::File, b"a = 2\n").unwrap();
    let same = cs.commit_unattached(meta("same")).unwrap();
    assert!(!same.created);
    assert_eq!(same.id, done.id);

    // The branch moved after the change set was made: the move is refused.
    let mut cs = repo.change_set("main").unwrap();
    cs.put_bytes(&path, EntryKind::File, b"a = 3\n").unwrap();
    let stale = cs.commit_unattached(meta("third")).unwrap();
    repo.update_branch("main", Some(done.id), Some(first), "undo")
        .unwrap();
    assert!(
        repo.update_branch("main", Some(done.id), Some(stale.id), "commit")
            .is_err()
    );
    assert_eq!(repo.branch_head("main").unwrap(), Some(first));
}
