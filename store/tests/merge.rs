//! Merge tests: real repositories in a temporary directory, built through the store API.
#![allow(clippy::unwrap_used)]

use std::cell::Cell;
use std::collections::BTreeMap;

use hero_store::merge::{
    CONFLICT_HEADER, MERGE_AUTHOR, MergeKind, MergeOutcome, conflict_name, converge, merge,
    merge_base, merge_bases, merge_text, open_conflicts,
};
use hero_store::{
    CommitMeta, EntryKind, EntryMeta, Expect, ObjectId, Owner, PEER_HEADER, Repo, RepoPath,
    SMALL_FILE_MAX, Signature, Timestamp,
};

/// One edit of a test commit.
enum Ed<'a> {
    Put(&'a str, &'a [u8]),
    Exec(&'a str, &'a [u8]),
    Link(&'a str, &'a [u8]),
    Del(&'a str),
    Meta(&'a str, EntryMeta),
}

struct T {
    _dir: tempfile::TempDir,
    repo: Repo,
    n: Cell<u32>,
}

const PEER_A: &str = "aaaaaaaa1111";
const PEER_B: &str = "bbbbbbbb2222";

fn p(s: &str) -> RepoPath {
    RepoPath::parse(s).unwrap()
}

fn sig(time: i64) -> Signature {
    Signature {
        name: b"tester".to_vec(),
        email: b"t@example.com".to_vec(),
        time,
        tz_offset_minutes: 60,
    }
}

impl T {
    fn new() -> T {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::init(dir.path().join("r.hero")).unwrap();
        T {
            _dir: dir,
            repo,
            n: Cell::new(0),
        }
    }

    /// A commit on top of `parent` (or a root commit), made on a fresh branch.
    fn commit(&self, parent: Option<ObjectId>, time: i64, peer: &str, edits: &[Ed]) -> ObjectId {
        self.n.set(self.n.get() + 1);
        let branch = format!("t{}", self.n.get());
        if let Some(parent) = parent {
            self.repo
                .force_branch(&branch, Some(parent), "test")
                .unwrap();
        }
        let mut cs = self.repo.change_set(&branch).unwrap();
        for e in edits {
            match e {
                Ed::Put(path, c) => {
                    cs.put_bytes(&p(path), EntryKind::File, c).unwrap();
                }
                Ed::Exec(path, c) => {
                    cs.put_bytes(&p(path), EntryKind::Executable, c).unwrap();
                }
                Ed::Link(path, c) => {
                    cs.put_bytes(&p(path), EntryKind::Symlink, c).unwrap();
                }
                Ed::Del(path) => cs.delete(&p(path)).unwrap(),
                Ed::Meta(path, m) => cs.set_meta(&p(path), *m).unwrap(),
            }
        }
        let mut meta = CommitMeta::new(sig(time), format!("commit {}", self.n.get()));
        meta.extra
            .push((PEER_HEADER.to_vec(), peer.as_bytes().to_vec()));
        let done = cs.commit(meta, Expect::Base).unwrap();
        assert!(done.created);
        done.id
    }

    /// Every path in a commit: (kind, content) for files, (Dir, empty) for directories.
    fn files(&self, commit: ObjectId) -> BTreeMap<String, (EntryKind, Vec<u8>)> {
        let view = self.repo.view().unwrap();
        let mut out = BTreeMap::new();
        let mut stack = vec![(String::new(), view.commit(&commit).unwrap().tree)];
        while let Some((prefix, tree)) = stack.pop() {
            for e in view.tree(&tree).unwrap().entries {
                let name = format!("{prefix}{}", String::from_utf8_lossy(&e.name));
                if e.kind == EntryKind::Dir {
                    stack.push((format!("{name}/"), e.id));
                    out.insert(name, (EntryKind::Dir, Vec::new()));
                } else {
                    let content = view.read_file(&e.id, u64::MAX).unwrap();
                    assert_eq!(content.len() as u64, e.size, "{name}: size");
                    out.insert(name, (e.kind, content));
                }
            }
        }
        out
    }

    fn file(&self, commit: ObjectId, path: &str) -> Option<Vec<u8>> {
        let view = self.repo.view().unwrap();
        let e = view.entry_in_commit(&commit, &p(path)).unwrap()?;
        Some(view.read_file(&e.id, u64::MAX).unwrap())
    }

    /// Merges both ways, checks both give the same merge commit, and returns the outcome.
    fn merge_both(&self, a: ObjectId, b: ObjectId) -> MergeOutcome {
        let ab = merge(&self.repo, a, b).unwrap();
        let ba = merge(&self.repo, b, a).unwrap();
        assert_eq!(ab.commit, ba.commit, "merge is not symmetric");
        assert_eq!(ab.conflicts, ba.conflicts);
        assert_eq!(ab.kind, MergeKind::Merged);
        check_merge_commit(self, &ab, a, b);
        ab
    }
}

fn check_merge_commit(t: &T, out: &MergeOutcome, a: ObjectId, b: ObjectId) {
    let view = t.repo.view().unwrap();
    let c = view.commit(&out.commit).unwrap();
    let mut parents = vec![a, b];
    parents.sort();
    assert_eq!(c.parents, parents);
    assert_eq!(c.author.name, MERGE_AUTHOR);
    assert_eq!(c.committer, c.author);
    assert!(c.author.email.is_empty());
    let ta = view.commit(&a).unwrap().committer.time;
    let tb = view.commit(&b).unwrap().committer.time;
    assert_eq!(c.committer.time, ta.max(tb));
    assert!(c.header(PEER_HEADER).is_none());
    let recorded = c.extra.iter().filter(|(k, _)| k == CONFLICT_HEADER).count();
    assert_eq!(recorded, out.conflicts.len());
    for conflict in &out.conflicts {
        assert_eq!(conflict.recorded_in, out.commit);
    }
}

fn lines(n: usize, tag: &str) -> Vec<String> {
    (0..n).map(|i| format!("{tag} line {i}\n")).collect()
}

fn join(l: &[String]) -> Vec<u8> {
    l.concat().into_bytes()
}

#[test]
fn disjoint_files_merge_cleanly() {
    let t = T::new();
    let base = t.commit(
        None,
        100,
        PEER_A,
        &[
            Ed::Put("a.txt", b"a\n"),
            Ed::Put("b.txt", b"b\n"),
            Ed::Put("dir/gone.txt", b"old\n"),
            Ed::Put("dir/keep.txt", b"keep\n"),
        ],
    );
    let a = t.commit(
        Some(base),
        200,
        PEER_A,
        &[Ed::Put("a.txt", b"a2\n"), Ed::Put("dir/new-a.txt", b"na\n")],
    );
    let b = t.commit(
        Some(base),
        150,
        PEER_B,
        &[Ed::Put("b.txt", b"b2\n"), Ed::Del("dir/gone.txt")],
    );
    let out = t.merge_both(a, b);
    assert!(out.conflicts.is_empty());
    let files = t.files(out.commit);
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["a.txt", "b.txt", "dir", "dir/keep.txt", "dir/new-a.txt"]
    );
    assert_eq!(files["a.txt"].1, b"a2\n");
    assert_eq!(files["b.txt"].1, b"b2\n");
    assert_eq!(files["dir/new-a.txt"].1, b"na\n");
    assert_eq!(
        merge_base(&t.repo.view().unwrap(), a, b).unwrap(),
        Some(base)
    );
    // The merge commit is plain data: the message names both heads in id order.
    let c = t.repo.commit(&out.commit).unwrap();
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    assert_eq!(
        c.message,
        format!("merge {} and {}\n", lo.short(), hi.short()).into_bytes()
    );
    // Merging the merge with either head is up to date; each head fast-forwards to it.
    let again = merge(&t.repo, out.commit, a).unwrap();
    assert_eq!(
        (again.kind, again.commit),
        (MergeKind::UpToDate, out.commit)
    );
    let ff = merge(&t.repo, b, out.commit).unwrap();
    assert_eq!((ff.kind, ff.commit), (MergeKind::FastForward, out.commit));
}

#[test]
fn same_text_file_different_regions_merges_lines() {
    let t = T::new();
    let base_lines = lines(20, "base");
    let base = t.commit(None, 100, PEER_A, &[Ed::Put("f.txt", &join(&base_lines))]);
    let mut la = base_lines.clone();
    la[2] = "changed by a\n".to_owned();
    la.insert(10, "inserted by a\n".to_owned());
    let mut lb = base_lines.clone();
    lb[15] = "changed by b\n".to_owned();
    lb.push("appended by b\n".to_owned());
    let a = t.commit(Some(base), 200, PEER_A, &[Ed::Put("f.txt", &join(&la))]);
    let b = t.commit(Some(base), 300, PEER_B, &[Ed::Put("f.txt", &join(&lb))]);
    let out = t.merge_both(a, b);
    assert!(out.conflicts.is_empty());
    let mut want = base_lines.clone();
    want[2] = "changed by a\n".to_owned();
    want[15] = "changed by b\n".to_owned();
    want.insert(10, "inserted by a\n".to_owned());
    want.push("appended by b\n".to_owned());
    assert_eq!(t.file(out.commit, "f.txt").unwrap(), join(&want));
    assert_eq!(t.files(out.commit).len(), 1);
}

#[test]
fn merge_text_rules() {
    let base = b"1\n2\n3\n4\n5\n6\n7\n";
    // Identical changes on both sides merge.
    let same = b"1\n2\nX\n4\n5\n6\n7\n";
    assert_eq!(merge_text(base, same, same).unwrap(), same);
    // Separate regions merge, whichever side is first.
    let a = b"1\nA\n3\n4\n5\n6\n7\n";
    let b = b"1\n2\n3\n4\n5\nB\n7\n";
    let want = b"1\nA\n3\n4\n5\nB\n7\n".to_vec();
    assert_eq!(merge_text(base, a, b).unwrap(), want);
    assert_eq!(merge_text(base, b, a).unwrap(), want);
    // Overlapping or touching changes conflict.
    assert!(merge_text(base, b"1\nA\n3\n4\n5\n6\n7\n", b"1\nB\n3\n4\n5\n6\n7\n").is_none());
    assert!(merge_text(base, b"1\nA\n3\n4\n5\n6\n7\n", b"1\n2\nB\n4\n5\n6\n7\n").is_none());
    // Both sides adding different files from nothing conflict; no trailing newline is kept.
    assert!(merge_text(b"", b"x", b"y").is_none());
    assert_eq!(merge_text(b"a\nb", b"A\nb", b"a\nb").unwrap(), b"A\nb");
    // A file rewritten beyond the line-merge budget conflicts whole (the diff would be slow).
    let long = join(&lines(20_000, "x"));
    let rewritten = join(&lines(20_000, "y"));
    let mut one = lines(20_000, "x");
    one[0] = "first\n".to_owned();
    assert!(merge_text(&long, &rewritten, &join(&one)).is_none());
    // Deletions on one side and edits elsewhere on the other.
    assert_eq!(
        merge_text(base, b"1\n2\n3\n4\n5\n6\n7\n8\n", b"1\n4\n5\n6\n7\n").unwrap(),
        b"1\n4\n5\n6\n7\n8\n"
    );
}

#[test]
fn same_region_conflict_keeps_both_versions_until_resolved() {
    let t = T::new();
    let base_lines = lines(10, "base");
    let base = t.commit(
        None,
        100,
        PEER_A,
        &[
            Ed::Put("docs/f.txt", &join(&base_lines)),
            Ed::Put("other", b"o\n"),
        ],
    );
    let mut la = base_lines.clone();
    la[5] = "a's version\n".to_owned();
    let mut lb = base_lines.clone();
    lb[5] = "b's version\n".to_owned();
    let (ca, cb) = (join(&la), join(&lb));
    // b is later, so b keeps the plain name and a's version moves aside.
    let a = t.commit(Some(base), 200, PEER_A, &[Ed::Put("docs/f.txt", &ca)]);
    let b = t.commit(Some(base), 300, PEER_B, &[Ed::Put("docs/f.txt", &cb)]);
    let out = t.merge_both(a, b);
    assert_eq!(out.conflicts.len(), 1);
    let c = &out.conflicts[0];
    let aside_name =
        String::from_utf8(conflict_name(b"f.txt", "aaaaaaaa", &ObjectId::of(&ca))).unwrap();
    assert_eq!(
        aside_name,
        format!("f.txt.conflict-aaaaaaaa-{}", ObjectId::of(&ca).short())
    );
    assert_eq!(c.path, p("docs/f.txt"));
    assert_eq!(c.conflict_path, p(&format!("docs/{aside_name}")));
    assert_eq!((c.kept_from, c.moved_aside_from), (b, a));
    assert_eq!(c.peer, "aaaaaaaa");
    let files = t.files(out.commit);
    assert_eq!(files.len(), 4, "{:?}", files.keys());
    assert_eq!(files["docs/f.txt"].1, cb);
    assert_eq!(files[&format!("docs/{aside_name}")].1, ca);
    // No conflict markers anywhere.
    assert!(
        !files
            .values()
            .any(|(_, c)| c.windows(7).any(|w| w == b"<<<<<<<"))
    );
    let msg = String::from_utf8(t.repo.commit(&out.commit).unwrap().message).unwrap();
    assert!(
        msg.contains(&format!("docs/f.txt -> docs/{aside_name}")),
        "{msg}"
    );

    // The branch takes the merge: the conflict is open.
    t.repo
        .force_branch("main", Some(out.commit), "merge")
        .unwrap();
    let open = open_conflicts(&t.repo, "main").unwrap();
    assert_eq!(open, out.conflicts);
    // An unrelated commit leaves it open.
    let mut cs = t.repo.change_set("main").unwrap();
    cs.put_bytes(&p("other"), EntryKind::File, b"o2\n").unwrap();
    cs.commit(CommitMeta::new(sig(400), "other"), Expect::Base)
        .unwrap();
    assert_eq!(open_conflicts(&t.repo, "main").unwrap().len(), 1);
    // A later merge with more work from b (which never saw the conflict) keeps it open.
    let b3 = t.commit(Some(b), 450, PEER_B, &[Ed::Put("more", b"m\n")]);
    let head = t.repo.branch_head("main").unwrap().unwrap();
    let out2 = t.merge_both(head, b3);
    assert!(out2.conflicts.is_empty());
    t.repo
        .update_branch("main", Some(head), Some(out2.commit), "merge")
        .unwrap();
    let still = open_conflicts(&t.repo, "main").unwrap();
    assert_eq!(still.len(), 1);
    assert_eq!(still[0].recorded_in, out.commit);
    // Deleting the copy resolves it.
    let mut cs = t.repo.change_set("main").unwrap();
    cs.delete(&c.conflict_path).unwrap();
    cs.commit(CommitMeta::new(sig(500), "resolve"), Expect::Base)
        .unwrap();
    assert!(open_conflicts(&t.repo, "main").unwrap().is_empty());
    assert!(open_conflicts(&t.repo, "no-such-branch").is_err());
}

#[test]
fn equal_times_break_ties_by_larger_commit_id() {
    let t = T::new();
    let base = t.commit(None, 100, PEER_A, &[Ed::Put("f", b"base\n")]);
    let a = t.commit(Some(base), 200, PEER_A, &[Ed::Put("f", b"from a\n")]);
    let b = t.commit(Some(base), 200, PEER_B, &[Ed::Put("f", b"from b\n")]);
    let out = t.merge_both(a, b);
    let (winner, loser) = if a > b { (a, b) } else { (b, a) };
    assert_eq!(out.conflicts[0].kept_from, winner);
    assert_eq!(out.conflicts[0].moved_aside_from, loser);
    let want: &[u8] = if winner == a {
        b"from a\n"
    } else {
        b"from b\n"
    };
    assert_eq!(t.file(out.commit, "f").unwrap(), want);
    assert_eq!(t.files(out.commit).len(), 2);
}

#[test]
fn delete_versus_modify_keeps_the_modified_file() {
    let t = T::new();
    let base = t.commit(
        None,
        100,
        PEER_A,
        &[
            Ed::Put("f", b"base\n"),
            Ed::Put("g", b"g\n"),
            Ed::Put("d/x", b"x\n"),
            Ed::Put("d/y", b"y\n"),
        ],
    );
    // a deletes f and the whole of d; b modifies f and d/y, and leaves g alone while a deletes it.
    let a = t.commit(
        Some(base),
        300,
        PEER_A,
        &[Ed::Del("f"), Ed::Del("d"), Ed::Del("g")],
    );
    let b = t.commit(
        Some(base),
        200,
        PEER_B,
        &[Ed::Put("f", b"modified\n"), Ed::Put("d/y", b"y2\n")],
    );
    let out = t.merge_both(a, b);
    assert!(out.conflicts.is_empty());
    let files = t.files(out.commit);
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(names, ["d", "d/y", "f"]);
    assert_eq!(files["f"].1, b"modified\n");
    assert_eq!(files["d/y"].1, b"y2\n");
}

#[test]
fn file_versus_directory_keeps_both() {
    let t = T::new();
    let base = t.commit(None, 100, PEER_A, &[Ed::Put("keep", b"k\n")]);
    // The file side is later, but a directory always keeps the plain name.
    let a = t.commit(Some(base), 300, PEER_A, &[Ed::Put("x", b"a file\n")]);
    let b = t.commit(
        Some(base),
        200,
        PEER_B,
        &[Ed::Put("x/inner", b"in a dir\n")],
    );
    let out = t.merge_both(a, b);
    assert_eq!(out.conflicts.len(), 1);
    let c = &out.conflicts[0];
    assert_eq!(c.path, p("x"));
    assert_eq!((c.kept_from, c.moved_aside_from), (b, a));
    let files = t.files(out.commit);
    assert_eq!(files["x"].0, EntryKind::Dir);
    assert_eq!(files["x/inner"].1, b"in a dir\n");
    assert_eq!(files[&c.conflict_path.to_string()].1, b"a file\n");
    assert!(
        c.conflict_path
            .to_string()
            .starts_with("x.conflict-aaaaaaaa-")
    );
    assert_eq!(files.len(), 4);
}

#[test]
fn executable_bit_merges_with_a_content_change() {
    let t = T::new();
    let base = t.commit(
        None,
        100,
        PEER_A,
        &[Ed::Put("run.sh", b"echo 1\n"), Ed::Link("link", b"target")],
    );
    let a = t.commit(Some(base), 200, PEER_A, &[Ed::Exec("run.sh", b"echo 1\n")]);
    let b = t.commit(
        Some(base),
        300,
        PEER_B,
        &[
            Ed::Put("run.sh", b"echo 2\n"),
            Ed::Link("link", b"elsewhere"),
        ],
    );
    let out = t.merge_both(a, b);
    assert!(out.conflicts.is_empty());
    let files = t.files(out.commit);
    assert_eq!(
        files["run.sh"],
        (EntryKind::Executable, b"echo 2\n".to_vec())
    );
    assert_eq!(files["link"], (EntryKind::Symlink, b"elsewhere".to_vec()));

    // The bit and a line merge together.
    let text = join(&lines(10, "s"));
    let base2 = t.commit(None, 100, PEER_A, &[Ed::Put("tool", &text)]);
    let mut la = lines(10, "s");
    la[0] = "#!/bin/sh\n".to_owned();
    let mut lb = lines(10, "s");
    lb[8] = "changed\n".to_owned();
    let a2 = t.commit(Some(base2), 200, PEER_A, &[Ed::Exec("tool", &join(&la))]);
    let b2 = t.commit(Some(base2), 300, PEER_B, &[Ed::Put("tool", &join(&lb))]);
    let out2 = t.merge_both(a2, b2);
    assert!(out2.conflicts.is_empty());
    let mut want = la.clone();
    want[8] = "changed\n".to_owned();
    assert_eq!(
        t.files(out2.commit)["tool"],
        (EntryKind::Executable, join(&want))
    );

    // Two different symlink targets conflict; both links are kept.
    let c = t.commit(Some(base), 400, PEER_A, &[Ed::Link("link", b"third")]);
    let out = t.merge_both(b, c);
    assert_eq!(out.conflicts.len(), 1);
    let files = t.files(out.commit);
    assert_eq!(files["link"], (EntryKind::Symlink, b"third".to_vec()));
    let aside = &files[&out.conflicts[0].conflict_path.to_string()];
    assert_eq!(aside, &(EntryKind::Symlink, b"elsewhere".to_vec()));
}

#[test]
fn binary_and_large_files_conflict_whole() {
    let t = T::new();
    let bin = |tag: u8| -> Vec<u8> { (0..4000u32).map(|i| (i % 7) as u8 * tag).collect() };
    let big = |tag: &str| -> Vec<u8> {
        let mut v = join(&lines(SMALL_FILE_MAX / 8, "big"));
        v.extend_from_slice(tag.as_bytes());
        v
    };
    let base = t.commit(
        None,
        100,
        PEER_A,
        &[
            Ed::Put("img.bin", &bin(1)),
            Ed::Put("big.txt", &big("base")),
        ],
    );
    let mut big_a = big("base");
    big_a[..5].copy_from_slice(b"AAAAA");
    let a = t.commit(
        Some(base),
        300,
        PEER_A,
        &[Ed::Put("img.bin", &bin(2)), Ed::Put("big.txt", &big_a)],
    );
    let b = t.commit(
        Some(base),
        200,
        PEER_B,
        &[
            Ed::Put("img.bin", &bin(3)),
            Ed::Put("big.txt", &big("end b")),
        ],
    );
    let out = t.merge_both(a, b);
    // The two sides changed different lines of big.txt, but it is over the line-merge cap.
    assert_eq!(out.conflicts.len(), 2);
    let files = t.files(out.commit);
    assert_eq!(files["img.bin"].1, bin(2));
    assert_eq!(files["big.txt"].1, big_a);
    let view = t.repo.view().unwrap();
    for c in &out.conflicts {
        assert_eq!(
            (c.kept_from, c.moved_aside_from, c.peer.as_str()),
            (a, b, "bbbbbbbb")
        );
        // The moved-aside copy is the other side's entry, by id.
        let aside = view
            .entry_in_commit(&out.commit, &c.conflict_path)
            .unwrap()
            .unwrap();
        let theirs = view.entry_in_commit(&b, &c.path).unwrap().unwrap();
        assert_eq!(
            (aside.kind, aside.id, aside.size),
            (theirs.kind, theirs.id, theirs.size)
        );
    }
    assert_eq!(files.len(), 4);
}

#[test]
fn fast_forward_and_up_to_date_create_nothing() {
    let t = T::new();
    let base = t.commit(None, 100, PEER_A, &[Ed::Put("f", b"1\n")]);
    let child = t.commit(Some(base), 200, PEER_A, &[Ed::Put("f", b"2\n")]);
    let grandchild = t.commit(Some(child), 300, PEER_B, &[Ed::Put("g", b"3\n")]);
    let gen0 = t.repo.generation().unwrap();
    let ff = merge(&t.repo, base, grandchild).unwrap();
    assert_eq!((ff.kind, ff.commit), (MergeKind::FastForward, grandchild));
    let up = merge(&t.repo, grandchild, base).unwrap();
    assert_eq!((up.kind, up.commit), (MergeKind::UpToDate, grandchild));
    let same = merge(&t.repo, child, child).unwrap();
    assert_eq!((same.kind, same.commit), (MergeKind::UpToDate, child));
    assert!(ff.conflicts.is_empty() && up.conflicts.is_empty());
    assert_eq!(t.repo.generation().unwrap(), gen0, "nothing may be written");
    let view = t.repo.view().unwrap();
    assert_eq!(merge_bases(&view, base, grandchild).unwrap(), vec![base]);
}

/// Three peers' edits met in different orders on different peers: the merges hold the same
/// edits and the same content. Peers keeping a branch in step agree on one of them instead of
/// merging the merges (which every other peer would merge again); a side with an edit of its
/// own is merged as always.
#[test]
fn heads_holding_the_same_edits_converge_without_a_merge_of_merges() {
    let t = T::new();
    let base = t.commit(None, 100, PEER_A, &[Ed::Put("base", b"0\n")]);
    let a = t.commit(Some(base), 200, PEER_A, &[Ed::Put("a", b"a\n")]);
    let b = t.commit(Some(base), 210, PEER_B, &[Ed::Put("b", b"b\n")]);
    let c = t.commit(Some(base), 220, PEER_B, &[Ed::Put("c", b"c\n")]);
    // One peer met a and b first, another a and c.
    let ab = merge(&t.repo, a, b).unwrap().commit;
    let ac = merge(&t.repo, a, c).unwrap().commit;
    let abc = merge(&t.repo, ab, c).unwrap().commit;
    let acb = merge(&t.repo, ac, b).unwrap().commit;
    assert_ne!(abc, acb, "two merge orders, two merge commits");
    assert_eq!(t.files(abc), t.files(acb));

    // Both hold the same edits: every peer keeps the larger id.
    let (small, large) = if abc < acb { (abc, acb) } else { (acb, abc) };
    let up = converge(&t.repo, large, small).unwrap();
    assert_eq!((up.kind, up.commit), (MergeKind::UpToDate, large));
    let adopted = converge(&t.repo, small, large).unwrap();
    assert_eq!((adopted.kind, adopted.commit), (MergeKind::Adopted, large));
    // A head with fewer edits whose own commit is a merge brings nothing to one with more.
    let kept = converge(&t.repo, abc, ac).unwrap();
    assert_eq!((kept.kind, kept.commit), (MergeKind::UpToDate, abc));
    let taken = converge(&t.repo, ac, abc).unwrap();
    assert_eq!((taken.kind, taken.commit), (MergeKind::Adopted, abc));
    // Branch-level answers are the same as merge's for ancestors.
    let ff = converge(&t.repo, ab, abc).unwrap();
    assert_eq!((ff.kind, ff.commit), (MergeKind::FastForward, abc));

    // An edit on one side: that side's head is kept by both, and no merge is made.
    let d = t.commit(Some(small), 300, PEER_A, &[Ed::Put("d", b"d\n")]);
    let kept = converge(&t.repo, d, large).unwrap();
    assert_eq!((kept.kind, kept.commit), (MergeKind::UpToDate, d));
    let taken = converge(&t.repo, large, d).unwrap();
    assert_eq!((taken.kind, taken.commit), (MergeKind::Adopted, d));
    // An edit on each side: a real merge, which keeps both.
    let e = t.commit(Some(large), 310, PEER_B, &[Ed::Put("e", b"e\n")]);
    let merged = converge(&t.repo, d, e).unwrap();
    assert_eq!(merged.kind, MergeKind::Merged);
    assert_eq!(merged.commit, merge(&t.repo, d, e).unwrap().commit);
    assert_eq!(t.file(merged.commit, "d").as_deref(), Some(&b"d\n"[..]));
    assert_eq!(t.file(merged.commit, "e").as_deref(), Some(&b"e\n"[..]));

    // A person's own merge (it names its peer) is that person's choice: it is never dropped.
    let tree = t.repo.view().unwrap().commit(&small).unwrap().tree;
    let own = hero_store::Commit {
        tree,
        parents: vec![small, a],
        author: sig(400),
        committer: sig(400),
        message: b"my merge\n".to_vec(),
        extra: vec![(PEER_HEADER.to_vec(), PEER_A.as_bytes().to_vec())],
    };
    let signed = t.repo.batch(|w| w.put_commit(&own)).unwrap();
    let out = converge(&t.repo, signed, large).unwrap();
    assert_ne!(out.commit, large, "a person's merge is not given up");
}

#[test]
fn unrelated_histories_merge_against_nothing() {
    let t = T::new();
    let a = t.commit(
        None,
        100,
        PEER_A,
        &[Ed::Put("same", b"s\n"), Ed::Put("a", b"a\n")],
    );
    let b = t.commit(
        None,
        200,
        PEER_B,
        &[Ed::Put("same", b"s\n"), Ed::Put("b", b"b\n")],
    );
    assert_eq!(merge_base(&t.repo.view().unwrap(), a, b).unwrap(), None);
    let out = t.merge_both(a, b);
    assert!(out.conflicts.is_empty());
    assert_eq!(t.files(out.commit).len(), 3);
}

#[test]
fn criss_cross_history_merges_the_same_from_both_sides() {
    let t = T::new();
    let base = t.commit(
        None,
        100,
        PEER_A,
        &[
            Ed::Put("f", &join(&lines(12, "base"))),
            Ed::Put("g", b"g\n"),
        ],
    );
    let a1 = t.commit(Some(base), 200, PEER_A, &[Ed::Put("a1", b"a1\n")]);
    let b1 = t.commit(Some(base), 210, PEER_B, &[Ed::Put("b1", b"b1\n")]);
    // Two different hand-made merges of a1 and b1, one on each peer.
    let hand_merge = |first: ObjectId, second: ObjectId, time: i64, extra: &str| {
        t.repo.force_branch("hand", Some(first), "test").unwrap();
        let mut cs = t.repo.change_set("hand").unwrap();
        cs.add_parent(second);
        cs.put_bytes(&p("a1"), EntryKind::File, b"a1\n").unwrap();
        cs.put_bytes(&p("b1"), EntryKind::File, b"b1\n").unwrap();
        cs.put_bytes(&p(extra), EntryKind::File, b"hand\n").unwrap();
        cs.commit(CommitMeta::new(sig(time), "hand merge"), Expect::Base)
            .unwrap()
            .id
    };
    let x = hand_merge(a1, b1, 300, "x");
    let y = hand_merge(b1, a1, 310, "y");
    let mut fa = lines(12, "base");
    fa[1] = "a2\n".to_owned();
    let mut fb = lines(12, "base");
    fb[9] = "b2\n".to_owned();
    let a2 = t.commit(Some(x), 400, PEER_A, &[Ed::Put("f", &join(&fa))]);
    let b2 = t.commit(
        Some(y),
        410,
        PEER_B,
        &[Ed::Put("f", &join(&fb)), Ed::Del("g")],
    );
    let view = t.repo.view().unwrap();
    let mut want_bases = vec![a1, b1];
    want_bases.sort();
    assert_eq!(merge_bases(&view, a2, b2).unwrap(), want_bases);
    assert_eq!(merge_bases(&view, b2, a2).unwrap(), want_bases);
    assert_eq!(merge_base(&view, a2, b2).unwrap(), Some(want_bases[0]));
    drop(view);
    let out = t.merge_both(a2, b2);
    assert!(out.conflicts.is_empty(), "{:?}", out.conflicts);
    let files = t.files(out.commit);
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(names, ["a1", "b1", "f", "x", "y"]);
    let mut want = lines(12, "base");
    want[1] = "a2\n".to_owned();
    want[9] = "b2\n".to_owned();
    assert_eq!(files["f"].1, join(&want));
}

/// Each peer appends to a log of its own while both merge each other's work at the same time:
/// the next merge has two best common ancestors, each holding one log one line behind. Against
/// either of them alone, that log changed on both sides and would conflict; against their
/// merge, only its writer changed it.
#[test]
fn a_file_one_peer_alone_edits_never_conflicts_in_a_criss_cross_history() {
    let t = T::new();
    let base = t.commit(
        None,
        100,
        PEER_A,
        &[Ed::Put("log-a", b"1\n"), Ed::Put("log-b", b"1\n")],
    );
    let a1 = t.commit(Some(base), 200, PEER_A, &[Ed::Put("log-a", b"1\n2\n")]);
    let b1 = t.commit(Some(base), 210, PEER_B, &[Ed::Put("log-b", b"1\n2\n")]);
    // Each peer merges the other's first edit (the merges differ by their time and parents'
    // order, so they are two commits).
    let cross = |first: ObjectId, second: ObjectId, time: i64| {
        t.repo.force_branch("cross", Some(first), "test").unwrap();
        let mut cs = t.repo.change_set("cross").unwrap();
        cs.add_parent(second);
        cs.put_bytes(&p("log-a"), EntryKind::File, b"1\n2\n")
            .unwrap();
        cs.put_bytes(&p("log-b"), EntryKind::File, b"1\n2\n")
            .unwrap();
        cs.commit(CommitMeta::new(sig(time), "merge"), Expect::Base)
            .unwrap()
            .id
    };
    let x = cross(a1, b1, 300);
    let y = cross(b1, a1, 310);
    assert_ne!(x, y);
    let a2 = t.commit(Some(x), 400, PEER_A, &[Ed::Put("log-a", b"1\n2\n3\n")]);
    let b2 = t.commit(Some(y), 410, PEER_B, &[Ed::Put("log-b", b"1\n2\n3\n")]);
    assert_eq!(
        merge_bases(&t.repo.view().unwrap(), a2, b2).unwrap().len(),
        2
    );

    let out = t.merge_both(a2, b2);
    assert!(out.conflicts.is_empty(), "{:?}", out.conflicts);
    let files = t.files(out.commit);
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(names, ["log-a", "log-b"]);
    assert_eq!(files["log-a"].1, b"1\n2\n3\n");
    assert_eq!(files["log-b"].1, b"1\n2\n3\n");
}

/// A conflict copy that one side holds survives a merge against a merge of the bases: the
/// bases' merge conflicts the same way the real merge did (and would make a copy of the same
/// name), but it must not, or the side that resolved the conflict by hand would look as if it
/// had deleted the copy.
/// Ten peers merging each other at once leave more best common ancestors than a merge may
/// fold into a virtual base ([`hero_store::merge::VIRTUAL_MERGE_BUDGET`]); the merge then
/// compares against the smallest of them. A file one peer alone appends to must still not
/// conflict: one side holds a version that one of the best ancestors has, so only the other
/// side changed it.
#[test]
fn a_single_writers_file_merges_without_a_copy_when_the_bases_are_too_many_to_fold() {
    let t = T::new();
    let root = t.commit(None, 100, PEER_A, &[Ed::Put("log", b"1\n")]);
    let logged = t.commit(Some(root), 150, PEER_A, &[Ed::Put("log", b"1\n2\n")]);
    let n = hero_store::merge::VIRTUAL_MERGE_BUDGET + 2;
    // Independent edits, the last one on top of the log's second line.
    let edits: Vec<ObjectId> = (0..n)
        .map(|i| {
            let parent = if i + 1 == n { logged } else { root };
            let name = format!("f{i}");
            t.commit(
                Some(parent),
                200 + i as i64,
                PEER_B,
                &[Ed::Put(&name, b"x\n")],
            )
        })
        .collect();
    // Two peers merge them all, in opposite orders: no merge of one is a merge of the other.
    let fold = |order: &mut dyn Iterator<Item = &ObjectId>| {
        let first = *order.next().unwrap();
        order.fold(first, |acc, e| merge(&t.repo, acc, *e).unwrap().commit)
    };
    let a = fold(&mut edits.iter());
    let b = fold(&mut edits.iter().rev());
    assert_eq!(t.file(a, "log").unwrap(), b"1\n2\n");
    // The log's writer goes on, on b's side.
    let b2 = t.commit(Some(b), 500, PEER_A, &[Ed::Put("log", b"1\n2\n3\n")]);
    let bases = merge_bases(&t.repo.view().unwrap(), a, b2).unwrap();
    assert_eq!(bases.len(), n, "every edit is a best common ancestor");
    // The smallest base holds the log's first version: both sides look changed against it.
    let smallest = *bases.iter().min().unwrap();
    assert_eq!(t.file(smallest, "log").unwrap(), b"1\n");

    let out = t.merge_both(a, b2);
    assert!(out.conflicts.is_empty(), "{:?}", out.conflicts);
    assert_eq!(t.file(out.commit, "log").unwrap(), b"1\n2\n3\n");
    assert_eq!(t.files(out.commit).len(), n + 1);
}

/// Two peers edit one file at once: the plain name keeps the later edit (by its modification
/// time), whichever head carries it. A head made later by other work does not make its older
/// version of the file win, so merges of the same versions in any order agree.
#[test]
fn the_later_edit_of_a_file_keeps_its_name_whichever_head_is_later() {
    let t = T::new();
    let base = t.commit(None, 100, PEER_A, &[Ed::Put("f", b"0\n")]);
    let older = t.commit(
        Some(base),
        300,
        PEER_A,
        &[Ed::Put("f", b"older\n"), Ed::Meta("f", meta(0o644, 1, 300))],
    );
    // Side A goes on with other work: its head is the later one.
    let a = t.commit(Some(older), 900, PEER_A, &[Ed::Put("g", b"g\n")]);
    let b = t.commit(
        Some(base),
        400,
        PEER_B,
        &[Ed::Put("f", b"newer\n"), Ed::Meta("f", meta(0o644, 1, 400))],
    );
    let out = t.merge_both(a, b);
    assert_eq!(out.conflicts.len(), 1);
    assert_eq!(t.file(out.commit, "f").unwrap(), b"newer\n");
    let copy = out.conflicts[0].conflict_path.to_string();
    assert_eq!(t.file(out.commit, &copy).unwrap(), b"older\n");
}

/// A version already kept beside a name, under the name one peer gave it, is not copied again
/// under another: a merge that meets it once more (through a head that names another peer)
/// adds nothing, and every version is there once.
#[test]
fn a_version_already_kept_beside_the_name_is_not_copied_again() {
    let t = T::new();
    let copy = conflict_name(b"f", "aaaaaaaa", &ObjectId::of(b"a\n"));
    let copy = String::from_utf8(copy).unwrap();
    // One history: f is b's version, a's version kept beside it.
    let p = t.commit(
        None,
        100,
        PEER_B,
        &[
            Ed::Put("f", b"b\n"),
            Ed::Meta("f", meta(0o644, 1, 200)),
            Ed::Put(&copy, b"a\n"),
            Ed::Meta(&copy, meta(0o644, 1, 100)),
        ],
    );
    // An unrelated one, whose head is a merge (it names no peer), holding a's version at f.
    let q1 = t.commit(
        None,
        110,
        PEER_A,
        &[Ed::Put("f", b"a\n"), Ed::Meta("f", meta(0o644, 1, 100))],
    );
    let q2 = t.commit(None, 120, PEER_A, &[Ed::Put("other", b"o\n")]);
    let q = merge(&t.repo, q1, q2).unwrap().commit;
    let out = t.merge_both(p, q);
    assert!(out.conflicts.is_empty(), "{:?}", out.conflicts);
    let files = t.files(out.commit);
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(names, ["f", copy.as_str(), "other"]);
    assert_eq!(files["f"].1, b"b\n");
}

#[test]
fn a_conflict_copy_survives_a_merge_against_merged_bases() {
    let t = T::new();
    let base = t.commit(None, 100, PEER_A, &[Ed::Put("f", b"x\n")]);
    let a1 = t.commit(Some(base), 200, PEER_A, &[Ed::Put("f", b"a\n")]);
    let b1 = t.commit(Some(base), 210, PEER_B, &[Ed::Put("f", b"b\n")]);
    let real = merge(&t.repo, a1, b1).unwrap();
    assert_eq!(real.conflicts.len(), 1);
    let copy = real.conflicts[0].conflict_path.to_string();
    // One peer builds on the merge with its copy; the other resolved the same conflict by
    // hand, keeping the plain name's version and no copy.
    let x = t.commit(Some(real.commit), 300, PEER_A, &[Ed::Put("g", b"g\n")]);
    t.repo.force_branch("hand", Some(b1), "test").unwrap();
    let mut cs = t.repo.change_set("hand").unwrap();
    cs.add_parent(a1);
    let kept = t.files(real.commit)["f"].1.clone();
    cs.put_bytes(&p("f"), EntryKind::File, &kept).unwrap();
    let y = cs
        .commit(CommitMeta::new(sig(310), "resolved by hand"), Expect::Base)
        .unwrap()
        .id;
    assert_eq!(merge_bases(&t.repo.view().unwrap(), x, y).unwrap().len(), 2);

    let out = t.merge_both(x, y);
    let files = t.files(out.commit);
    assert!(files.contains_key(&copy), "{copy} lost: {:?}", files.keys());
    assert_eq!(files["f"].1, kept);
    assert_eq!(files["g"].1, b"g\n");
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const NAMES: [&str; 8] = ["a", "b", "c", "d/e", "d/f", "g/h/i", "g/j", "k"];

fn random_edits(
    rng: &mut Rng,
    side: &str,
    base: &BTreeMap<String, Vec<u8>>,
) -> Vec<(String, Option<Vec<u8>>, bool)> {
    let mut edits = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        match rng.below(6) {
            0 => edits.push((name.to_string(), None, false)),
            1 | 2 => {
                // Change one or two lines of the base version (or write a new file).
                let mut l: Vec<String> = match base.get(*name) {
                    Some(c) => String::from_utf8(c.clone())
                        .unwrap()
                        .split_inclusive('\n')
                        .map(str::to_owned)
                        .collect(),
                    None => Vec::new(),
                };
                for _ in 0..=rng.below(2) {
                    let at = rng.below(l.len() as u64 + 1) as usize;
                    let line = format!("{side} {i} {}\n", rng.below(1000));
                    if at < l.len() && rng.below(2) == 0 {
                        l[at] = line;
                    } else {
                        l.insert(at, line);
                    }
                }
                edits.push((
                    name.to_string(),
                    Some(l.concat().into_bytes()),
                    rng.below(4) == 0,
                ));
            }
            _ => {}
        }
    }
    edits
}

#[test]
fn random_merges_are_symmetric_and_lose_nothing() {
    for seed in 0..40u64 {
        let t = T::new();
        let mut rng = Rng(seed);
        let mut base_files = BTreeMap::new();
        let mut base_edits = Vec::new();
        for name in NAMES {
            if rng.below(4) != 0 {
                let content = join(&lines(rng.below(12) as usize + 1, name));
                base_files.insert(name.to_owned(), content);
            }
        }
        base_files.insert("anchor".to_owned(), b"anchor\n".to_vec());
        for (name, content) in &base_files {
            base_edits.push(Ed::Put(name, content));
        }
        let base = t.commit(None, 100, PEER_A, &base_edits);
        let mut heads = Vec::new();
        for (side, peer, time) in [("A", PEER_A, 200 + rng.below(3) as i64), ("B", PEER_B, 201)] {
            let edits = random_edits(&mut rng, side, &base_files);
            let eds: Vec<Ed> = edits
                .iter()
                .map(|(name, content, exec)| match (content, exec) {
                    (None, _) => Ed::Del(name),
                    (Some(c), false) => Ed::Put(name, c),
                    (Some(c), true) => Ed::Exec(name, c),
                })
                .filter(|e| !matches!(e, Ed::Del(n) if !base_files.contains_key(*n)))
                .collect();
            let eds = if eds.is_empty() {
                vec![Ed::Put("anchor", side.as_bytes())]
            } else {
                eds
            };
            heads.push(t.commit(Some(base), time, peer, &eds));
        }
        let (a, b) = (heads[0], heads[1]);
        let ab = merge(&t.repo, a, b).unwrap();
        let ba = merge(&t.repo, b, a).unwrap();
        assert_eq!(ab.commit, ba.commit, "seed {seed}: not symmetric");
        assert_eq!(ab.conflicts, ba.conflicts, "seed {seed}");
        let merged = t.files(ab.commit);
        let contents: Vec<&Vec<u8>> = merged.values().map(|(_, c)| c).collect();
        for head in [a, b] {
            for (path, (kind, content)) in t.files(head) {
                if kind == EntryKind::Dir || base_files.get(&path) == Some(&content) {
                    continue;
                }
                // Changed on this side: kept whole somewhere, or line-merged at its path
                // with every line it added.
                if contents.contains(&&content) {
                    continue;
                }
                let (_, there) = merged
                    .get(&path)
                    .unwrap_or_else(|| panic!("seed {seed}: {path} lost"));
                let there = String::from_utf8_lossy(there).into_owned();
                let base_text =
                    String::from_utf8_lossy(base_files.get(&path).map_or(&[][..], |v| v))
                        .into_owned();
                for line in String::from_utf8_lossy(&content).lines() {
                    if !base_text.lines().any(|l| l == line) {
                        assert!(
                            there.lines().any(|l| l == line),
                            "seed {seed}: {path} lost {line:?}"
                        );
                    }
                }
            }
        }
        // Every recorded conflict's two versions are there.
        for c in &ab.conflicts {
            assert!(merged.contains_key(&c.path.to_string()), "seed {seed}");
            assert!(
                merged.contains_key(&c.conflict_path.to_string()),
                "seed {seed}"
            );
        }
    }
}

#[test]
fn malformed_conflict_headers_are_ignored() {
    let t = T::new();
    let mut cs = t.repo.change_set("main").unwrap();
    cs.put_bytes(&p("f"), EntryKind::File, b"f\n").unwrap();
    let mut meta = CommitMeta::new(sig(100), "odd");
    for bad in [&b"garbage"[..], b"f\0f\0zz\0zz", b"\0\0\0", b"../x\0f\0"] {
        meta.extra.push((CONFLICT_HEADER.to_vec(), bad.to_vec()));
    }
    cs.commit(meta, Expect::Base).unwrap();
    assert!(open_conflicts(&t.repo, "main").unwrap().is_empty());
}

fn meta(mode: u32, uid: u32, secs: i64) -> EntryMeta {
    EntryMeta {
        mode: Some(mode),
        owner: Some(Owner { uid, gid: uid }),
        mtime: Some(Timestamp { secs, nanos: 0 }),
        ..EntryMeta::NONE
    }
}

fn entry_meta(t: &T, commit: ObjectId, path: &str) -> EntryMeta {
    let view = t.repo.view().unwrap();
    view.entry_in_commit(&commit, &p(path))
        .unwrap()
        .unwrap()
        .meta
}

/// A metadata change on one side and a content change on the other both survive, with no
/// conflict; a metadata-only change never makes a conflict copy.
#[test]
fn a_mode_change_here_and_an_edit_there_both_survive() {
    let t = T::new();
    let base = t.commit(
        None,
        100,
        PEER_A,
        &[
            Ed::Put("etc/secret.toml", b"key = 1\n"),
            Ed::Meta("etc/secret.toml", meta(0o644, 0, 100)),
            Ed::Meta("etc", meta(0o755, 0, 100)),
        ],
    );
    let a = t.commit(
        Some(base),
        200,
        PEER_A,
        &[
            Ed::Meta("etc/secret.toml", meta(0o600, 33, 100)),
            Ed::Meta("etc", meta(0o2750, 0, 100)),
        ],
    );
    let b = t.commit(
        Some(base),
        300,
        PEER_B,
        &[Ed::Put("etc/secret.toml", b"key = 2\n")],
    );
    // The edit kept mode and owner and dropped the time (content changed: its commit's time).
    assert_eq!(
        entry_meta(&t, b, "etc/secret.toml"),
        EntryMeta {
            mtime: None,
            ..meta(0o644, 0, 0)
        }
    );
    let out = t.merge_both(a, b);
    assert!(out.conflicts.is_empty(), "{:?}", out.conflicts);
    assert_eq!(t.file(out.commit, "etc/secret.toml").unwrap(), b"key = 2\n");
    assert_eq!(
        entry_meta(&t, out.commit, "etc/secret.toml"),
        EntryMeta {
            mtime: None,
            ..meta(0o600, 33, 0)
        },
        "mode and owner from one side; content and its time (none kept: the commit's) from \
         the other"
    );
    assert_eq!(entry_meta(&t, out.commit, "etc"), meta(0o2750, 0, 100));
}

/// Both sides change the same file's metadata differently: the later time wins, mode and owner
/// come from one side by the merge's usual rule, the same whichever way the merge runs, and
/// the file is not copied aside.
#[test]
fn concurrent_metadata_changes_merge_without_a_conflict_copy() {
    let t = T::new();
    let base = t.commit(None, 100, PEER_A, &[Ed::Put("a.sh", b"x\n")]);
    let a = t.commit(
        Some(base),
        200,
        PEER_A,
        &[Ed::Meta("a.sh", meta(0o600, 1, 500))],
    );
    let b = t.commit(
        Some(base),
        300,
        PEER_B,
        &[
            Ed::Exec("a.sh", b"x\n"),
            Ed::Meta("a.sh", meta(0o750, 2, 400)),
        ],
    );
    let out = t.merge_both(a, b);
    assert!(out.conflicts.is_empty(), "{:?}", out.conflicts);
    let files = t.files(out.commit);
    assert_eq!(files.len(), 1, "{files:?}");
    let m = entry_meta(&t, out.commit, "a.sh");
    assert_eq!(
        m.mtime,
        Some(Timestamp {
            secs: 500,
            nanos: 0
        })
    );
    let kind = files["a.sh"].0;
    // The kind came from the only side that changed it; the mode was made to agree with it.
    assert_eq!(kind, EntryKind::Executable);
    assert!(m.fits(kind), "{m:?} does not fit {kind:?}");
    assert!(
        m.mode == Some(0o700) || m.mode == Some(0o750),
        "mode {:?}",
        m.mode
    );
}
