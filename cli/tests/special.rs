//! Format-3 entries through `heroctl`: special files and hard-link groups listed and diffed
//! as what they are, refused by git export (naming the path), and replicated to a clone.

use std::path::Path;

use hero_store::{CommitMeta, EntryKind, EntryMeta, Expect, LinkGroup, Repo, RepoPath, Signature};

use crate::cli::{ok, run};
use crate::sync::{first_commit, id, serve};

/// makedev(1, 3), /dev/null's device number.
const NULL_DEV: u64 = (1 << 8) | 3;

fn meta(msg: &str) -> CommitMeta {
    CommitMeta::new(
        Signature {
            name: b"t".to_vec(),
            email: b"t@example.com".to_vec(),
            time: 1_700_000_000,
            tz_offset_minutes: 0,
        },
        msg,
    )
}

/// Adds a FIFO, /dev/null's twin and a second name of `a.txt` (one link group) to main.
fn add_format_3_entries(repo: &Path) -> LinkGroup {
    let r = Repo::open(repo).unwrap();
    let v = r.view().unwrap();
    let head = r.branch_head("main").unwrap().unwrap();
    let p = |s: &str| RepoPath::parse(s).unwrap();
    let a = v.entry_in_commit(&head, &p("a.txt")).unwrap().unwrap();
    let group = LinkGroup::from_seed(b"a.txt and sub/b.txt");
    let mut cs = r.change_set("main").unwrap();
    cs.put_special(&p("run/pipe"), EntryKind::Fifo).unwrap();
    cs.put_special(&p("dev/null"), EntryKind::CharDevice)
        .unwrap();
    cs.set_meta(
        &p("dev/null"),
        EntryMeta {
            mode: Some(0o666),
            rdev: Some(NULL_DEV),
            ..EntryMeta::NONE
        },
    )
    .unwrap();
    let linked = EntryMeta {
        link: Some(group),
        ..a.meta
    };
    cs.set_meta(&p("a.txt"), linked).unwrap();
    cs.put_entry(&p("sub/b.txt"), a.kind, a.id, a.size).unwrap();
    cs.set_meta(&p("sub/b.txt"), linked).unwrap();
    cs.commit(meta("special files and a hard link"), Expect::Latest)
        .unwrap();
    group
}

#[test]
fn special_files_and_hard_links_are_listed_diffed_refused_by_git_and_replicated() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.hero"), tmp.path().join("b.hero"));
    first_commit(&a, &[("a.txt", b"shared content\n")]);
    let group = add_format_3_entries(&a);

    let ls = ok(&a, &["ls", "-r", "main"]);
    assert!(
        ls.lines()
            .any(|l| l.starts_with("chardev") && l.contains(" 1,3 ") && l.ends_with("dev/null")),
        "{ls}"
    );
    assert!(
        ls.lines()
            .any(|l| l.starts_with("fifo") && l.ends_with("run/pipe")),
        "{ls}"
    );
    let hex = format!("{:016x}", group.0);
    assert_eq!(
        ls.lines().filter(|l| l.contains(&hex)).count(),
        2,
        "both names show their group: {ls}"
    );
    let diff = ok(&a, &["diff", "main~1", "main"]);
    assert!(diff.contains("nothing -> chardev 1,3"), "{diff}");
    assert!(diff.contains("nothing -> fifo"), "{diff}");

    // git cannot hold a FIFO: refused (exit 4), naming it, nothing half-written claimed.
    let out_dir = tmp.path().join("exported");
    let out = run(&a, &["export", "git", out_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dev/null") || err.contains("run/pipe"),
        "the error names the special file: {err}"
    );

    // A clone holds the same entries: kinds, device number, one link group.
    let sa = serve(&a, None);
    ok(&a, &["allow", "add", &id(&b)]);
    ok(&b, &["clone", &sa.ticket]);
    let rb = Repo::open(&b).unwrap();
    assert_eq!(rb.format().unwrap(), 4);
    let v = rb.view().unwrap();
    let head = rb.branch_head("main").unwrap().unwrap();
    let e = |s: &str| {
        v.entry_in_commit(&head, &RepoPath::parse(s).unwrap())
            .unwrap()
            .unwrap()
    };
    assert_eq!(e("run/pipe").kind, EntryKind::Fifo);
    assert_eq!(e("dev/null").kind, EntryKind::CharDevice);
    assert_eq!(e("dev/null").meta.rdev, Some(NULL_DEV));
    assert_eq!(e("a.txt").meta.link, Some(group));
    assert_eq!(
        (e("a.txt").id, e("a.txt").meta),
        (e("sub/b.txt").id, e("sub/b.txt").meta)
    );
    assert!(ok(&b, &["verify"]).starts_with("ok:"));
}
