//! Integration tests: real git repositories made with the git CLI, imported, verified,
//! exported and compared id for id.
#![allow(clippy::unwrap_used, missing_docs)]

mod util {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};

    use hero_importers::{ExportOptions, ImportOptions, VerifyOptions};

    /// Runs git in `dir` with a fixed identity and clock; returns stdout.
    pub fn git(dir: &Path, args: &[&str]) -> String {
        String::from_utf8(git_bytes(dir, args, None)).unwrap()
    }

    /// Writes raw object bytes as they are (`hash-object --literally`); returns the id.
    pub fn write_literally(dir: &Path, kind: &str, raw: &[u8]) -> String {
        let out = git_bytes(
            dir,
            &["hash-object", "-t", kind, "-w", "--stdin", "--literally"],
            Some(raw),
        );
        String::from_utf8(out).unwrap().trim().to_owned()
    }

    pub fn git_bytes(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
        let mut cmd = Command::new("git");
        cmd.current_dir(dir)
            .args(["-c", "init.defaultBranch=main", "-c", "core.autocrlf=false"])
            .args(args)
            .env("HOME", dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "A U Thor")
            .env("GIT_AUTHOR_EMAIL", "author@example.com")
            .env("GIT_AUTHOR_DATE", "1700000000 +0200")
            .env("GIT_COMMITTER_NAME", "C O Mitter")
            .env("GIT_COMMITTER_EMAIL", "committer@example.com")
            .env("GIT_COMMITTER_DATE", "1700000100 -0530")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    pub fn write(dir: &Path, name: &[u8], content: &[u8]) {
        let p = dir.join(OsStr::from_bytes(name));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn commit_all(dir: &Path, msg: &str) -> String {
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "--allow-empty", "-m", msg]);
        git(dir, &["rev-parse", "HEAD"]).trim().to_owned()
    }

    /// `refname objectname` lines for every ref, sorted.
    pub fn refs(dir: &Path) -> String {
        git(
            dir,
            &["for-each-ref", "--format=%(refname) %(objectname)", "refs/"],
        )
    }

    pub fn all_commits(dir: &Path) -> String {
        git(dir, &["rev-list", "--all", "--topo-order"])
    }

    pub use hero_tests::noise;

    pub struct Fixture {
        pub tmp: tempfile::TempDir,
    }

    impl Fixture {
        pub fn new() -> Fixture {
            Fixture {
                tmp: tempfile::tempdir().unwrap(),
            }
        }
        pub fn path(&self, name: &str) -> PathBuf {
            self.tmp.path().join(name)
        }
        pub fn init_git(&self, name: &str) -> PathBuf {
            let p = self.path(name);
            std::fs::create_dir_all(&p).unwrap();
            git(&p, &["init", "-q"]);
            p
        }
        pub fn store(&self) -> hero_store::Repo {
            hero_store::Repo::open_or_init(self.path("store.hero")).unwrap()
        }
    }

    /// Imports, verifies, exports to a fresh bare repository and checks refs and history
    /// are identical, id for id, and that `git fsck` accepts the export. Returns the export dir.
    pub fn round_trip(fx: &Fixture, repo: &hero_store::Repo, src: &Path, out: &str) -> PathBuf {
        let report = hero_importers::import_git(repo, src, &ImportOptions::default()).unwrap();
        assert!(report.skipped.is_empty(), "{:?}", report.skipped);
        let verify = hero_importers::verify_import(repo, src, &VerifyOptions::default()).unwrap();
        assert!(verify.is_ok(), "{:?}", verify.differences);
        assert!(verify.commits > 0);
        let dst = fx.path(out);
        hero_importers::export_git(repo, &dst, &ExportOptions::default()).unwrap();
        assert_eq!(refs(src), refs(&dst));
        assert_eq!(all_commits(src), all_commits(&dst));
        git(&dst, &["fsck", "--full", "--no-progress"]);
        dst
    }
}

mod rich {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use hero_importers::{ExportOptions, ImportOptions, export_git, import_git};
    use hero_store::{EntryKind, RefValue, RepoPath};

    use crate::util::*;

    /// A repository with merges, renames, tags, symlinks, executables, a non-UTF-8 name and
    /// message, a gitlink, an empty tree, a large binary file and hand-written commits.
    pub fn build(dir: &Path) {
        write(dir, b"README.md", b"hello\n");
        write(dir, b"src/main.rs", b"fn main() {}\n");
        write(dir, b"bin/run.sh", b"#!/bin/sh\necho run\n");
        let p = dir.join("bin/run.sh");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("src/main.rs", dir.join("link")).unwrap();
        write(dir, b"caf\xe9/na\xefve.txt", b"latin-1 name\n");
        commit_all(dir, "first");
        git(dir, &["tag", "light"]);
        git(dir, &["tag", "-a", "v1.0", "-m", "release 1.0\n\nnotes"]);
        // A large binary file, chunked by the store.
        write(dir, b"data/big.bin", &noise(7, 3 << 20));
        commit_all(dir, "big file");
        // A branch and a merge, with a rename on the side.
        git(dir, &["checkout", "-q", "-b", "feature"]);
        git(dir, &["mv", "src/main.rs", "src/app.rs"]);
        commit_all(dir, "rename");
        git(dir, &["checkout", "-q", "main"]);
        write(dir, b"README.md", b"hello\nworld\n");
        commit_all(dir, "readme");
        git(
            dir,
            &["merge", "-q", "--no-ff", "-m", "merge feature", "feature"],
        );
        // A gitlink (submodule entry).
        git(
            dir,
            &[
                "update-index",
                "--add",
                "--cacheinfo",
                "160000,1111111111111111111111111111111111111111,vendor/sub",
            ],
        );
        git(dir, &["commit", "-q", "-m", "submodule"]);
        // A non-UTF-8 message with an encoding header.
        std::fs::write(dir.join("msg.txt"), b"caf\xe9 cr\xe8me\n").unwrap();
        git(
            dir,
            &[
                "-c",
                "i18n.commitEncoding=ISO-8859-1",
                "commit",
                "-q",
                "--allow-empty",
                "-F",
                "msg.txt",
            ],
        );
        std::fs::remove_file(dir.join("msg.txt")).unwrap();
        // A hand-written signed-looking commit with odd but valid headers.
        let head = git(dir, &["rev-parse", "HEAD"]).trim().to_owned();
        let tree = git(dir, &["rev-parse", "HEAD^{tree}"]).trim().to_owned();
        let raw = format!(
            "tree {tree}\nparent {head}\nauthor A U Thor <author@example.com> 1700000200 +0000\n\
committer C O Mitter <committer@example.com> 1700000300 -0000\n\
gpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEzBAABCAAdFiEE\n =abcd\n -----END PGP SIGNATURE-----\n\
\nsigned commit\n"
        );
        let signed = write_literally(dir, "commit", raw.as_bytes());
        git(dir, &["update-ref", "refs/heads/signed", &signed]);
        // A commit with an empty tree, on its own branch.
        let empty = git(
            dir,
            &[
                "commit-tree",
                "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
                "-m",
                "empty",
            ],
        )
        .trim()
        .to_owned();
        git(dir, &["update-ref", "refs/heads/empty", &empty]);
        // An annotated tag on the signed commit, on a branch-like name.
        git(dir, &["tag", "-a", "release/2", "-m", "second", &signed]);
    }

    #[test]
    fn rich_repository_round_trips_id_for_id() {
        let fx = Fixture::new();
        let src = fx.init_git("src");
        build(&src);
        let repo = fx.store();
        round_trip(&fx, &repo, &src, "out.git");

        // What the store holds.
        let main = repo.branch_head("main").unwrap().unwrap();
        let v = repo.view().unwrap();
        let e = |p: &[u8]| {
            let path = RepoPath::parse(p).unwrap();
            v.entry_in_commit(&main, &path).unwrap().unwrap()
        };
        assert_eq!(e(b"bin/run.sh").kind, EntryKind::Executable);
        assert_eq!(e(b"link").kind, EntryKind::Symlink);
        assert_eq!(v.read_file(&e(b"link").id, 100).unwrap(), b"src/main.rs");
        let sub = e(b"vendor/sub");
        assert_eq!(sub.kind, EntryKind::Gitlink);
        assert_eq!(sub.size, 20);
        assert_eq!(sub.id.0[..20], [0x11; 20]);
        assert_eq!(sub.id.0[20..], [0; 12]);
        assert_eq!(e(b"caf\xe9/na\xefve.txt").kind, EntryKind::File);
        let big = e(b"data/big.bin");
        assert_eq!(big.size, 3 << 20);
        assert_eq!(v.read_file(&big.id, 4 << 20).unwrap(), noise(7, 3 << 20));
        assert!(e(b"src/app.rs").kind == EntryKind::File);
        // The merge has two parents; the encoding header and latin-1 message are verbatim.
        let head = repo.commit(&main).unwrap();
        assert_eq!(head.message, b"caf\xe9 cr\xe8me\n");
        assert_eq!(head.header(b"encoding"), Some(&b"ISO-8859-1"[..]));
        let merge = repo.commit(&repo.resolve("main~2").unwrap()).unwrap();
        assert_eq!(merge.parents.len(), 2);
        let signed = repo
            .commit(&repo.branch_head("signed").unwrap().unwrap())
            .unwrap();
        assert!(
            signed
                .header(b"gpgsig")
                .unwrap()
                .starts_with(b"-----BEGIN PGP")
        );
        let empty = repo
            .commit(&repo.branch_head("empty").unwrap().unwrap())
            .unwrap();
        assert!(repo.tree(&empty.tree).unwrap().entries.is_empty());
        // Tags: lightweight and annotated with tagger and message.
        let tags = repo.tags().unwrap();
        let get = |n: &str| tags.iter().find(|(t, _)| t == n).unwrap().1;
        assert!(matches!(get("light"), RefValue::Commit(_)));
        let RefValue::Tag(tid) = get("v1.0") else {
            panic!("v1.0 should be annotated")
        };
        let tag = v.tag(&tid).unwrap();
        assert_eq!(tag.message, b"release 1.0\n\nnotes\n");
        assert_eq!(tag.tagger.unwrap().name, b"C O Mitter");
        assert!(matches!(get("release/2"), RefValue::Tag(_)));
    }

    #[test]
    fn native_commits_export_as_valid_git() {
        let fx = Fixture::new();
        let src = fx.init_git("src");
        build(&src);
        let repo = fx.store();
        import_git(&repo, &src, &ImportOptions::default()).unwrap();
        let mut cs = repo.change_set("main").unwrap();
        cs.put_bytes(
            &RepoPath::parse("native.txt").unwrap(),
            EntryKind::File,
            b"made in hero\n",
        )
        .unwrap();
        let sig = hero_store::Signature {
            name: b"Native <Person>".to_vec(),
            email: b"n@example.com".to_vec(),
            time: 1_700_001_000,
            tz_offset_minutes: 60,
        };
        let mut meta = hero_store::CommitMeta::new(sig, "native commit");
        meta.extra.push((b"hero-peer".to_vec(), b"abc".to_vec()));
        cs.commit(meta, hero_store::Expect::Latest).unwrap();
        let dst = fx.path("out.git");
        export_git(&repo, &dst, &ExportOptions::default()).unwrap();
        git(&dst, &["fsck", "--full", "--strict"]);
        let parent = git(&dst, &["rev-parse", "main~1"]);
        assert_eq!(parent, git(&src, &["rev-parse", "main"]));
        assert_eq!(git(&dst, &["show", "main:native.txt"]), "made in hero\n");
        assert_eq!(
            git(&dst, &["log", "-1", "--format=%an|%s", "main"]),
            "Native Person|native commit\n"
        );
        // Unchanged branches keep their ids.
        assert_eq!(
            git(&dst, &["rev-parse", "signed", "empty", "v1.0", "release/2"]),
            git(&src, &["rev-parse", "signed", "empty", "v1.0", "release/2"])
        );
        // A second export into the same repository is incremental and changes nothing.
        let again = export_git(&repo, &dst, &ExportOptions::default()).unwrap();
        assert_eq!(again.commits, 0);
        assert_eq!(again.trees, 0);
    }

    /// Names of one hard-link group export as regular files with the same content (one
    /// blob); a special file cannot be expressed in git: the export is refused, naming it,
    /// and leaves the target without the branch.
    #[test]
    fn hard_links_export_as_files_and_special_files_are_refused() {
        let fx = Fixture::new();
        let repo = fx.store();
        let p = |s: &str| RepoPath::parse(s).unwrap();
        let sig = hero_store::Signature {
            name: b"t".to_vec(),
            email: b"t@example.com".to_vec(),
            time: 1_700_001_000,
            tz_offset_minutes: 0,
        };
        let linked = hero_store::EntryMeta {
            link: Some(hero_store::LinkGroup(42)),
            ..hero_store::EntryMeta::NONE
        };
        let mut cs = repo.change_set("main").unwrap();
        let f = cs
            .put_bytes(&p("a/one"), EntryKind::File, b"same\n")
            .unwrap();
        cs.set_meta(&p("a/one"), linked).unwrap();
        cs.put_entry(&p("b/two"), EntryKind::File, f.id, f.size)
            .unwrap();
        cs.set_meta(&p("b/two"), linked).unwrap();
        cs.commit(
            hero_store::CommitMeta::new(sig.clone(), "linked"),
            hero_store::Expect::Latest,
        )
        .unwrap();
        let dst = fx.path("out.git");
        export_git(&repo, &dst, &ExportOptions::default()).unwrap();
        git(&dst, &["fsck", "--full", "--strict"]);
        assert_eq!(git(&dst, &["show", "main:a/one"]), "same\n");
        assert_eq!(
            git(&dst, &["rev-parse", "main:a/one"]),
            git(&dst, &["rev-parse", "main:b/two"])
        );
        assert_eq!(git(&dst, &["ls-tree", "main", "b/two"])[..6], *"100644");

        let mut cs = repo.change_set("main").unwrap();
        cs.put_special(&p("run/pipe"), EntryKind::Fifo).unwrap();
        cs.commit(
            hero_store::CommitMeta::new(sig, "a fifo"),
            hero_store::Expect::Latest,
        )
        .unwrap();
        let before = git(&dst, &["rev-parse", "main"]);
        match export_git(&repo, &fx.path("out.git"), &ExportOptions::default()) {
            Err(hero_importers::ExportError::SpecialFile { path, kind }) => {
                assert_eq!(path, b"run/pipe");
                assert_eq!(kind, EntryKind::Fifo);
            }
            other => panic!("expected SpecialFile, got {other:?}"),
        }
        assert_eq!(
            git(&dst, &["rev-parse", "main"]),
            before,
            "main did not move"
        );
    }

    #[test]
    fn non_canonical_objects_keep_their_bytes() {
        let fx = Fixture::new();
        let src = fx.init_git("src");
        write(&src, b"a.txt", b"a\n");
        commit_all(&src, "base");
        // A tree with a group-writable mode (old git wrote these) and a commit with an odd
        // time zone and extra spaces.
        let blob = git(&src, &["rev-parse", "HEAD:a.txt"]).trim().to_owned();
        let mut tree = b"100664 a.txt\0".to_vec();
        let mut raw_id = [0u8; 20];
        for i in 0..20 {
            raw_id[i] = u8::from_str_radix(&blob[2 * i..2 * i + 2], 16).unwrap();
        }
        tree.extend_from_slice(&raw_id);
        let tree_id = write_literally(&src, "tree", &tree);
        let head = git(&src, &["rev-parse", "HEAD"]).trim().to_owned();
        let raw = format!(
            "tree {tree_id}\nparent {head}\nauthor Odd  <odd@example.com> 1700000000 +0000\n\
committer Odd <odd@example.com> 1700000000 -0000\nx-custom value\n\nodd\n"
        );
        let odd = write_literally(&src, "commit", raw.as_bytes());
        git(&src, &["update-ref", "refs/heads/odd", &odd]);
        let repo = fx.store();
        let report = import_git(&repo, &src, &ImportOptions::default()).unwrap();
        assert_eq!(report.raw_kept, 2, "{report:?}");
        let dst = fx.path("out.git");
        export_git(&repo, &dst, &ExportOptions::default()).unwrap();
        assert_eq!(refs(&src), refs(&dst));
        assert_eq!(
            git(&dst, &["cat-file", "-p", &format!("{odd}^{{tree}}")]),
            git(&src, &["cat-file", "-p", &format!("{odd}^{{tree}}")])
        );
        // The store sees an ordinary file.
        let e = repo
            .view()
            .unwrap()
            .entry_in_commit(
                &repo.branch_head("odd").unwrap().unwrap(),
                &hero_store::RepoPath::parse("a.txt").unwrap(),
            )
            .unwrap()
            .unwrap();
        assert_eq!(e.kind, EntryKind::File);
    }
}

mod incremental {
    use hero_importers::{ImportOptions, import_git};
    use hero_store::RefValue;

    use crate::util::*;

    #[test]
    fn second_import_reads_only_new_commits_and_force_push_moves_branch() {
        let fx = Fixture::new();
        let src = fx.init_git("src");
        for i in 0..5 {
            write(&src, b"f.txt", format!("v{i}\n").as_bytes());
            commit_all(&src, &format!("c{i}"));
        }
        let repo = fx.store();
        let first = import_git(&repo, &src, &ImportOptions::default()).unwrap();
        assert_eq!(first.commits, 5);
        assert_eq!(first.refs_created, 1);
        let again = import_git(&repo, &src, &ImportOptions::default()).unwrap();
        assert_eq!(again.commits, 0);
        assert_eq!(again.refs_unchanged, 1);

        for i in 5..8 {
            write(&src, b"f.txt", format!("v{i}\n").as_bytes());
            commit_all(&src, &format!("c{i}"));
        }
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let opts = ImportOptions {
            progress: Some(Box::new(move |p| s2.lock().unwrap().push(*p))),
            ..ImportOptions::default()
        };
        let third = import_git(&repo, &src, &opts).unwrap();
        assert_eq!(third.commits, 3);
        assert_eq!(third.refs_moved, 1);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[2].commits_done, 3);
        assert_eq!(seen[2].commits_total, Some(3));

        // Force-push: rewrite the last two commits.
        let old_head = repo.branch_head("main").unwrap().unwrap();
        git(&src, &["reset", "-q", "--hard", "HEAD~2"]);
        write(&src, b"f.txt", b"rewritten\n");
        commit_all(&src, "rewritten");
        let fourth = import_git(&repo, &src, &ImportOptions::default()).unwrap();
        assert_eq!(fourth.commits, 1);
        assert_eq!(fourth.refs_moved, 1);
        let new_head = repo.branch_head("main").unwrap().unwrap();
        assert_ne!(new_head, old_head);
        assert_eq!(repo.commit(&new_head).unwrap().message, b"rewritten\n");
        // Nothing is lost: the old head is in the branch's recorded moves and still readable.
        let log = repo.reflog("refs/heads/main").unwrap();
        let last = log.last().unwrap();
        assert_eq!(last.old, Some(RefValue::Commit(old_head)));
        assert_eq!(last.new, Some(RefValue::Commit(new_head)));
        assert_eq!(repo.commit(&old_head).unwrap().message, b"c7\n");
        let verify = hero_importers::verify_import(&repo, &src, &Default::default()).unwrap();
        assert!(verify.is_ok(), "{:?}", verify.differences);
    }

    #[test]
    fn prefixes_rename_branches_and_tags() {
        let fx = Fixture::new();
        let src = fx.init_git("src");
        write(&src, b"a", b"a");
        commit_all(&src, "a");
        git(&src, &["tag", "t1"]);
        let repo = fx.store();
        let opts = ImportOptions {
            branch_prefix: "git/".into(),
            tag_prefix: "git-".into(),
            ..ImportOptions::default()
        };
        import_git(&repo, &src, &opts).unwrap();
        assert!(repo.branch_head("git/main").unwrap().is_some());
        assert!(repo.branch_head("main").unwrap().is_none());
        assert_eq!(repo.tags().unwrap()[0].0, "git-t1");
        let dst = fx.path("out.git");
        let eo = hero_importers::ExportOptions {
            branch_prefix: "git/".into(),
            tag_prefix: "git-".into(),
            head: None,
        };
        hero_importers::export_git(&repo, &dst, &eo).unwrap();
        assert_eq!(refs(&src), refs(&dst));
    }
}

mod large {
    use hero_importers::{ImportOptions, import_git};

    use crate::util::*;

    /// A fast-import stream with `n` commits on main, a side branch merged every 100.
    fn stream(n: usize) -> Vec<u8> {
        let mut s = Vec::new();
        let mut mark = 0;
        let mut side_mark = 0;
        for i in 0..n {
            mark += 1;
            let content = format!("line {i}\n");
            let msg = format!("commit {i}");
            s.extend_from_slice(
                format!(
                    "commit refs/heads/main\nmark :{mark}\ncommitter C <c@example.com> {} +0000\ndata {}\n{msg}\n",
                    1_600_000_000 + i,
                    msg.len(),
                )
                .as_bytes(),
            );
            if i % 100 == 50 {
                // A side commit off the previous main commit, merged right away.
                let side = mark;
                s.extend_from_slice(
                    format!(
                        "M 644 inline dir{}/f{i}.txt\ndata {}\n{content}\n",
                        i % 7,
                        content.len()
                    )
                    .as_bytes(),
                );
                mark += 1;
                side_mark = mark;
                s.extend_from_slice(
                    format!(
                        "commit refs/heads/side\nmark :{mark}\ncommitter C <c@example.com> {} +0000\ndata 4\nside\nfrom :{side}\nM 755 inline side.sh\ndata 3\nsh\n\n",
                        1_600_000_000 + i
                    )
                    .as_bytes(),
                );
                mark += 1;
                s.extend_from_slice(
                    format!(
                        "commit refs/heads/main\nmark :{mark}\ncommitter C <c@example.com> {} +0000\ndata 5\nmerge\nfrom :{side}\nmerge :{side_mark}\n\n",
                        1_600_000_000 + i
                    )
                    .as_bytes(),
                );
            } else {
                s.extend_from_slice(
                    format!(
                        "M 644 inline dir{}/f{i}.txt\ndata {}\n{content}\n",
                        i % 7,
                        content.len()
                    )
                    .as_bytes(),
                );
            }
        }
        let _ = side_mark;
        s
    }

    #[test]
    fn thousand_commits_in_several_batches() {
        let fx = Fixture::new();
        let src = fx.init_git("src");
        git_bytes(&src, &["fast-import", "--quiet"], Some(&stream(1100)));
        let count: u64 = git(&src, &["rev-list", "--all", "--count"])
            .trim()
            .parse()
            .unwrap();
        assert!(count >= 1100);
        let repo = fx.store();
        let opts = ImportOptions {
            batch_commits: 300,
            ..ImportOptions::default()
        };
        let report = import_git(&repo, &src, &opts).unwrap();
        assert_eq!(report.commits, count);
        assert!(report.batches >= 4, "{report:?}");
        // Everything is already there: the full round trip re-imports nothing.
        round_trip(&fx, &repo, &src, "out.git");
    }
}

mod bad_input {
    use hero_importers::{ImportError, ImportOptions, import_git};

    use crate::util::*;

    #[test]
    fn corrupt_object_names_object_and_ref_and_leaves_store_unchanged() {
        let fx = Fixture::new();
        let src = fx.init_git("src");
        write(&src, b"a.txt", b"one\n");
        commit_all(&src, "one");
        let repo = fx.store();
        import_git(&repo, &src, &ImportOptions::default()).unwrap();
        let before_head = repo.branch_head("main").unwrap();
        let before_settings = repo.xrefs_with_prefix(b"git/").unwrap();

        write(&src, b"b.txt", b"two, soon corrupt\n");
        commit_all(&src, "two");
        let blob = git(&src, &["rev-parse", "HEAD:b.txt"]).trim().to_owned();
        let path = src.join(".git/objects").join(&blob[..2]).join(&blob[2..]);
        let good = std::fs::read(&path).unwrap();
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&path, perms.clone()).unwrap();
        std::fs::write(&path, b"this is not zlib").unwrap();

        let err = import_git(&repo, &src, &ImportOptions::default()).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ImportError::CorruptObject { .. }), "{err:?}");
        assert!(text.contains(&blob), "{text}");
        assert!(text.contains("refs/heads/main"), "{text}");
        assert_eq!(repo.branch_head("main").unwrap(), before_head);
        assert_eq!(repo.xrefs_with_prefix(b"git/").unwrap(), before_settings);

        // Repair and rerun: it resumes.
        std::fs::write(&path, good).unwrap();
        let report = import_git(&repo, &src, &ImportOptions::default()).unwrap();
        assert_eq!(report.commits, 1);
        let v = hero_importers::verify_import(&repo, &src, &Default::default()).unwrap();
        assert!(v.is_ok(), "{:?}", v.differences);
    }

    #[test]
    fn shallow_clone_is_refused_with_a_clear_error() {
        let fx = Fixture::new();
        let src = fx.init_git("src");
        for i in 0..3 {
            write(&src, b"f", format!("{i}").as_bytes());
            commit_all(&src, &format!("c{i}"));
        }
        let url = format!("file://{}", src.display());
        let shallow = fx.path("shallow");
        git(
            fx.tmp.path(),
            &[
                "clone",
                "-q",
                "--depth",
                "1",
                &url,
                shallow.to_str().unwrap(),
            ],
        );
        let repo = fx.store();
        let err = import_git(&repo, &shallow, &ImportOptions::default()).unwrap_err();
        assert!(matches!(err, ImportError::Shallow { .. }), "{err:?}");
        assert!(err.to_string().contains("refs/heads/main"), "{err}");
        assert!(repo.branches().unwrap().is_empty());
    }

    #[test]
    fn not_a_repository() {
        let fx = Fixture::new();
        let repo = fx.store();
        let err = import_git(&repo, &fx.path("nothing"), &ImportOptions::default()).unwrap_err();
        assert!(matches!(err, ImportError::Open { .. }), "{err:?}");
    }
}

mod own_history {
    use crate::util::*;

    #[test]
    fn project_history_round_trips() {
        let git_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.git");
        if !git_dir.join("HEAD").exists() {
            return;
        }
        let has_commits = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&git_dir)
            .args(["rev-parse", "--verify", "-q", "HEAD"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !has_commits {
            return;
        }
        let fx = Fixture::new();
        // Work on a copy so the checkout can change meanwhile.
        let copy = fx.path("copy.git");
        git(
            fx.tmp.path(),
            &[
                "clone",
                "-q",
                "--bare",
                "--no-local",
                git_dir.to_str().unwrap(),
                copy.to_str().unwrap(),
            ],
        );
        let repo = fx.store();
        round_trip(&fx, &repo, &copy, "out.git");
    }
}

mod pack {
    use std::path::{Path, PathBuf};

    use hero_importers::{ExportOptions, ExportReport, ImportOptions, export_git, import_git};

    use crate::util::*;

    /// The files of `objects/pack` with names ending in `ext`, sorted.
    fn pack_files(git_dir: &Path, ext: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(git_dir.join("objects/pack"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_str().unwrap().ends_with(ext))
            .collect();
        v.sort();
        v
    }

    /// Names in `objects/pack` that are not a `pack-*.pack` or `pack-*.idx` (temporary files).
    fn stray_files(git_dir: &Path) -> Vec<String> {
        std::fs::read_dir(git_dir.join("objects/pack"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !(n.starts_with("pack-") && (n.ends_with(".pack") || n.ends_with(".idx"))))
            .collect()
    }

    /// `git count-objects -v` as (name, value) pairs.
    fn count_objects(git_dir: &Path) -> Vec<(String, String)> {
        git(git_dir, &["count-objects", "-v"])
            .lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn count(git_dir: &Path, key: &str) -> u64 {
        count_objects(git_dir)
            .into_iter()
            .find(|(k, _)| k == key)
            .unwrap()
            .1
            .parse()
            .unwrap()
    }

    /// Objects reachable from every ref (what a pack of the repository holds).
    fn reachable_objects(git_dir: &Path) -> Vec<String> {
        // Paths may not be UTF-8: only the ids are kept.
        let out = git_bytes(git_dir, &["rev-list", "--objects", "--all"], None);
        let mut v: Vec<String> = String::from_utf8_lossy(&out)
            .lines()
            .map(|l| l[..40].to_owned())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The object ids a pack's index lists, sorted (`git show-index`).
    fn pack_objects(git_dir: &Path, idx: &Path) -> Vec<String> {
        let data = std::fs::read(idx).unwrap();
        let out = git_bytes(git_dir, &["show-index"], Some(&data));
        let mut v: Vec<String> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| l.split(' ').nth(1).unwrap().to_owned())
            .collect();
        v.sort();
        v
    }

    /// `git verify-pack -v` of one pack (which fails on any bad entry, checksum or index);
    /// returns how many of its objects are deltas.
    fn verify_pack(git_dir: &Path, pack: &Path) -> usize {
        let out = git(git_dir, &["verify-pack", "-v", pack.to_str().unwrap()]);
        assert!(out.contains(": ok"), "{out}");
        out.lines()
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                // Delta entries: id type size size-in-pack offset depth base.
                f.len() == 7 && f[0].len() == 40
            })
            .count()
    }

    /// Code-like text: `lines` lines made from a small vocabulary.
    fn text(lines: usize, seed: u64) -> Vec<String> {
        const WORDS: &[&str] = &[
            "let", "value", "self", "return", "match", "Some(x)", "None", "=>", "count", "+=",
            "1;", "fn", "map_err", "(", ")", "{", "}", "items", "iter()", "len()", "&mut",
            "buffer", "Ok(())", "if", "else", "while", "offset", "size", "index", "path",
        ];
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut next = move || rng.u64(..);
        (0..lines)
            .map(|_| {
                let indent = "    ".repeat((next() % 4) as usize);
                let n = 3 + next() % 8;
                let words: Vec<&str> = (0..n)
                    .map(|_| WORDS[(next() % WORDS.len() as u64) as usize])
                    .collect();
                format!("{indent}{}", words.join(" "))
            })
            .collect()
    }

    /// A history of small edits to a few files (each edit: a line changed, added or
    /// removed), on two branches, with tags: the kind of history deltas are for.
    fn build_edits(dir: &Path, commits: usize) {
        let names = [
            "src/lib.rs",
            "src/pack/delta.rs",
            "README.md",
            "docs/notes.txt",
        ];
        let mut files: Vec<Vec<String>> = (0..names.len())
            .map(|i| text(250 + 80 * i, 11 + i as u64))
            .collect();
        let mut rng = fastrand::Rng::with_seed(0x2545_F491_4F6C_DD1D);
        let mut next = move || rng.u64(..);
        let save = |files: &Vec<Vec<String>>| {
            for (name, lines) in names.iter().zip(files) {
                write(dir, name.as_bytes(), (lines.join("\n") + "\n").as_bytes());
            }
        };
        for c in 0..commits {
            if c == commits * 2 / 3 {
                git(dir, &["checkout", "-q", "-b", "side"]);
            }
            let f = (next() % names.len() as u64) as usize;
            for _ in 0..1 + next() % 3 {
                let lines = &mut files[f];
                let at = (next() % lines.len() as u64) as usize;
                match next() % 3 {
                    0 => lines[at] = text(1, next())[0].clone(),
                    1 => lines.insert(at, text(1, next())[0].clone()),
                    _ if lines.len() > 10 => {
                        lines.remove(at);
                    }
                    _ => {}
                }
            }
            save(&files);
            commit_all(dir, &format!("edit {c} of {}", names[f]));
            if c % 25 == 0 {
                git(dir, &["tag", "-a", &format!("v0.{c}"), "-m", "release"]);
            }
        }
        git(dir, &["checkout", "-q", "main"]);
        for c in 0..5 {
            files[0].push(format!("// main again {c}"));
            save(&files);
            commit_all(dir, &format!("main {c}"));
        }
    }

    /// A fixture whose git repository `src` holds [`build_edits`] of `commits` commits, and its
    /// store with that history imported.
    fn imported_edits(commits: usize) -> (Fixture, PathBuf, hero_store::Repo) {
        let fx = Fixture::new();
        let src = fx.init_git("src");
        build_edits(&src, commits);
        let repo = fx.store();
        import_git(&repo, &src, &ImportOptions::default()).unwrap();
        (fx, src, repo)
    }

    fn export(repo: &hero_store::Repo, dst: &Path) -> ExportReport {
        export_git(repo, dst, &ExportOptions::default()).unwrap()
    }

    #[test]
    fn export_writes_exactly_one_verified_pack() {
        let fx = Fixture::new();
        let src = fx.init_git("src");
        crate::rich::build(&src);
        // More edits, branches and tags on top of the rich history.
        git(&src, &["checkout", "-q", "-b", "topic", "main~3"]);
        for i in 0..12 {
            let mut content = text(120, 5).join("\n");
            content.push_str(&format!("\nedit {i}\n"));
            write(&src, b"src/topic.rs", content.as_bytes());
            write(&src, b"README.md", format!("hello\nround {i}\n").as_bytes());
            commit_all(&src, &format!("topic {i}"));
        }
        git(&src, &["tag", "-a", "topic-done", "-m", "topic done"]);
        git(&src, &["checkout", "-q", "main"]);
        let repo = fx.store();
        let dst = round_trip(&fx, &repo, &src, "out.git");
        git(&dst, &["fsck", "--strict", "--no-progress"]);
        assert_eq!(
            git(&dst, &["symbolic-ref", "HEAD"]),
            git(&src, &["symbolic-ref", "HEAD"])
        );
        assert_eq!(
            git(
                &dst,
                &["rev-parse", "HEAD", "topic-done", "v1.0^{}", "release/2"]
            ),
            git(
                &src,
                &["rev-parse", "HEAD", "topic-done", "v1.0^{}", "release/2"]
            )
        );

        // One pack with its index, nothing loose, nothing temporary left.
        let packs = pack_files(&dst, ".pack");
        assert_eq!(packs.len(), 1, "{packs:?}");
        assert_eq!(pack_files(&dst, ".idx").len(), 1);
        assert!(stray_files(&dst).is_empty(), "{:?}", stray_files(&dst));
        assert_eq!(count(&dst, "count"), 0, "loose objects");
        assert_eq!(count(&dst, "packs"), 1);
        // The pack holds exactly the objects the source reaches, under the same ids.
        let idx = pack_files(&dst, ".idx").remove(0);
        assert_eq!(pack_objects(&dst, &idx), reachable_objects(&src));
        assert_eq!(reachable_objects(&dst), reachable_objects(&src));
        // git reads every entry, including the deltas.
        let deltas = verify_pack(&dst, &packs[0]);
        assert!(deltas > 0, "no delta in the pack");
        // The pack is named after its trailer, as git names packs.
        let bytes = std::fs::read(&packs[0]).unwrap();
        let trailer: String = bytes[bytes.len() - 20..]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            packs[0].file_name().unwrap().to_str().unwrap(),
            format!("pack-{trailer}.pack")
        );
    }

    #[test]
    fn export_pack_is_no_larger_than_git_gc() {
        let (fx, src, repo) = imported_edits(150);
        let dst = fx.path("out.git");
        let report = export(&repo, &dst);
        git(&dst, &["fsck", "--strict", "--no-progress"]);
        assert_eq!(refs(&src), refs(&dst));
        let ours = pack_files(&dst, ".pack");
        assert_eq!(ours.len(), 1);
        let ours_len = std::fs::metadata(&ours[0]).unwrap().len();
        assert_eq!(report.pack_bytes, ours_len);
        assert_eq!(report.pack.as_deref(), Some(ours[0].as_path()));
        let deltas = verify_pack(&dst, &ours[0]);
        assert_eq!(report.deltas, deltas as u64);

        // git's own pack of the same objects: `git gc` (window 10, depth 50).
        git(&src, &["gc", "-q", "--prune=now"]);
        let theirs = pack_files(&src.join(".git"), ".pack");
        assert_eq!(theirs.len(), 1);
        let theirs_len = std::fs::metadata(&theirs[0]).unwrap().len();
        let theirs_idx = pack_files(&src.join(".git"), ".idx").remove(0);
        let ours_idx = pack_files(&dst, ".idx").remove(0);
        assert_eq!(
            pack_objects(&dst, &ours_idx),
            pack_objects(&src, &theirs_idx),
            "the two packs hold different objects"
        );
        let git_deltas = verify_pack(&src, &theirs[0]);
        eprintln!(
            "pack bytes: ours {ours_len} ({deltas} deltas), git gc {theirs_len} ({git_deltas} deltas)"
        );
        assert!(
            ours_len <= theirs_len,
            "our pack ({ours_len} bytes) is larger than git gc's ({theirs_len} bytes)"
        );
    }

    #[test]
    fn rerun_writes_a_second_pack_of_only_the_new_objects() {
        let (fx, src, repo) = imported_edits(40);
        let dst = fx.path("out.git");
        let first = export(&repo, &dst);
        let first_pack = first.pack.clone().unwrap();
        let first_bytes = std::fs::read(&first_pack).unwrap();
        let before = reachable_objects(&dst);

        // Nothing new: no pack.
        let again = export(&repo, &dst);
        assert_eq!(again.pack, None);
        assert_eq!((again.commits, again.trees, again.blobs), (0, 0, 0));
        assert_eq!(pack_files(&dst, ".pack").len(), 1);

        // New commits on both branches and a new tag.
        for i in 0..6 {
            write(
                &src,
                b"src/lib.rs",
                format!("{}\nnew {i}\n", text(300, 11).join("\n")).as_bytes(),
            );
            write(
                &src,
                format!("new/{i}.txt").as_bytes(),
                text(40, i).join("\n").as_bytes(),
            );
            commit_all(&src, &format!("new {i}"));
        }
        git(&src, &["tag", "-a", "v2", "-m", "two"]);
        git(&src, &["checkout", "-q", "side"]);
        write(&src, b"README.md", b"side changes\n");
        commit_all(&src, "side new");
        git(&src, &["checkout", "-q", "main"]);
        import_git(&repo, &src, &ImportOptions::default()).unwrap();
        let second = export(&repo, &dst);
        assert_eq!(refs(&src), refs(&dst));
        assert_eq!(all_commits(&src), all_commits(&dst));
        git(&dst, &["fsck", "--strict", "--no-progress"]);
        assert_eq!(second.commits, 7);
        assert_eq!(second.tags, 1);

        let packs = pack_files(&dst, ".pack");
        assert_eq!(packs.len(), 2, "{packs:?}");
        assert!(stray_files(&dst).is_empty(), "{:?}", stray_files(&dst));
        assert_eq!(count(&dst, "count"), 0, "loose objects");
        // The first pack is untouched; the second holds exactly the new objects, and is a
        // whole pack: every delta base is in it (verify-pack would fail otherwise).
        assert_eq!(std::fs::read(&first_pack).unwrap(), first_bytes);
        let second_pack = second.pack.clone().unwrap();
        assert!(packs.contains(&second_pack));
        let new: Vec<String> = {
            let now = reachable_objects(&dst);
            now.into_iter()
                .filter(|o| before.binary_search(o).is_err())
                .collect()
        };
        let second_idx = second_pack.with_extension("idx");
        assert_eq!(pack_objects(&dst, &second_idx), new);
        assert_eq!(
            second.commits + second.trees + second.blobs + second.tags,
            new.len() as u64
        );
        verify_pack(&dst, &second_pack);

        // A target git has repacked itself: what its pack holds is not written again.
        git(&dst, &["gc", "-q", "--prune=now"]);
        write(&src, b"src/lib.rs", b"after gc\n");
        commit_all(&src, "after gc");
        import_git(&repo, &src, &ImportOptions::default()).unwrap();
        let third = export(&repo, &dst);
        assert_eq!((third.commits, third.trees, third.blobs), (1, 2, 1));
        let third_idx = third.pack.unwrap().with_extension("idx");
        assert_eq!(pack_objects(&dst, &third_idx).len(), 4);
        git(&dst, &["fsck", "--strict", "--no-progress"]);
        assert_eq!(refs(&src), refs(&dst));
    }
}
