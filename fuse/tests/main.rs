//! Real FUSE mounts driven by real programs (cp, diff, mv, rm, git) and real syscalls.
#![allow(clippy::unwrap_used)]

#[path = "../examples/common/tree.rs"]
mod tree;

#[path = "conformance/cases.rs"]
mod conformance;
#[path = "drive/durability.rs"]
mod durability;
#[path = "drive/history.rs"]
mod history;
#[path = "drive/scratch.rs"]
mod scratch;

mod util {
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::time::{Duration, Instant};

    use hero_fuse::{MountHandle, MountOptions};
    use hero_store::{EntryKind, ObjectId, Repo, RepoPath, TreeEntry};

    /// Env var that makes the test binary act as a helper process.
    pub const HELPER: &str = "HERO_FUSE_TEST_HELPER";

    /// A mount that is always unmounted, even when a test fails.
    pub struct Mounted {
        pub handle: Option<MountHandle>,
        pub dir: PathBuf,
        pub repo: PathBuf,
        _tmp: tempfile::TempDir,
    }

    impl Mounted {
        pub fn new() -> Mounted {
            Self::with(|_| {})
        }

        pub fn with(adjust: impl FnOnce(&mut MountOptions)) -> Mounted {
            Self::prepared(|_| {}, adjust)
        }

        /// Mounts a repository that `prepare` fills first.
        pub fn prepared(
            prepare: impl FnOnce(&Repo),
            adjust: impl FnOnce(&mut MountOptions),
        ) -> Mounted {
            let tmp = tempfile::tempdir().unwrap();
            let repo = tmp.path().join("store.hero");
            prepare(&Repo::init(&repo).unwrap());
            std::fs::create_dir(tmp.path().join("mnt")).unwrap();
            Self::reuse(tmp, adjust)
        }

        /// Mounts `tmp/store.hero` (which must exist) on `tmp/mnt` again.
        pub fn reuse(tmp: tempfile::TempDir, adjust: impl FnOnce(&mut MountOptions)) -> Mounted {
            let repo = tmp.path().join("store.hero");
            let dir = tmp.path().join("mnt");
            let mut opts = MountOptions::new(&repo, &dir);
            opts.idle_commit = Duration::from_millis(300);
            opts.poll_interval = Duration::from_millis(50);
            opts.author = hero_fuse::Author::new("tester", "hero@localhost");
            adjust(&mut opts);
            let handle = hero_fuse::mount(opts).unwrap();
            Mounted {
                handle: Some(handle),
                dir,
                repo,
                _tmp: tmp,
            }
        }

        pub fn p(&self, rel: &str) -> PathBuf {
            self.dir.join(rel)
        }

        pub fn tmp(&self) -> &Path {
            self._tmp.path()
        }

        /// The temporary directory, for mounting its repository again (after `finish`).
        pub fn take_tmp(&mut self) -> tempfile::TempDir {
            std::mem::replace(&mut self._tmp, tempfile::tempdir().unwrap())
        }

        /// Flushes, unmounts and opens the repository.
        pub fn finish(&mut self) -> Repo {
            self.handle.take().unwrap().unmount().unwrap();
            Repo::open(&self.repo).unwrap()
        }
    }

    impl Drop for Mounted {
        fn drop(&mut self) {
            drop(self.handle.take());
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg(&self.dir)
                .stderr(std::process::Stdio::null())
                .status();
        }
    }

    /// Runs a shell command in `dir`, failing the test on a non-zero exit.
    pub fn sh(dir: &Path, script: &str) -> String {
        let out = Command::new("bash")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "`{script}` failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn entry(repo: &Repo, branch: &str, path: &str) -> Option<TreeEntry> {
        let head = repo.branch_head(branch).unwrap()?;
        repo.view()
            .unwrap()
            .entry_in_commit(&head, &RepoPath::parse(path).unwrap())
            .unwrap()
    }

    pub fn content(repo: &Repo, branch: &str, path: &str) -> Vec<u8> {
        let e = entry(repo, branch, path).unwrap_or_else(|| panic!("{path} not in {branch}"));
        assert!(e.kind.is_blob(), "{path} is a {:?}", e.kind);
        repo.view().unwrap().read_file(&e.id, 1 << 30).unwrap()
    }

    pub fn commits(repo: &Repo, branch: &str) -> Vec<ObjectId> {
        let Some(head) = repo.branch_head(branch).unwrap() else {
            return Vec::new();
        };
        repo.view()
            .unwrap()
            .log(&[head], true)
            .unwrap()
            .map(|r| r.unwrap().0)
            .collect()
    }

    pub fn kind(repo: &Repo, branch: &str, path: &str) -> Option<EntryKind> {
        entry(repo, branch, path).map(|e| e.kind)
    }

    /// Waits until `f` holds (for changes that arrive asynchronously).
    pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out waiting for: {what}");
    }

    pub fn errno<T: std::fmt::Debug>(r: std::io::Result<T>) -> i32 {
        r.expect_err("expected an error").raw_os_error().unwrap()
    }
}

mod shell {
    use std::os::unix::fs::PermissionsExt;

    use hero_store::EntryKind;

    use crate::util::*;

    /// Makes a small tree with nested dirs, an executable, a symlink, an empty dir and a
    /// binary file.
    fn make_tree(root: &std::path::Path) {
        sh(
            root,
            "mkdir -p src/a/b/c src/empty && \
             echo one > src/one.txt && \
             printf 'two\\n2\\n' > src/a/two.txt && \
             head -c 300000 /dev/urandom > src/a/b/big.bin && \
             printf '#!/bin/sh\\necho hi\\n' > src/a/run.sh && chmod +x src/a/run.sh && \
             ln -s ../one.txt src/a/link && \
             for i in $(seq 1 50); do echo $i > src/a/b/c/f$i; done",
        );
    }

    #[test]
    fn cp_diff_mv_rm_editor_save_and_log() {
        let mut m = Mounted::new();
        make_tree(m.tmp());
        // A tree in and out again.
        sh(m.tmp(), "cp -a src mnt/tree && diff -r src mnt/tree");
        sh(m.tmp(), "cp -a mnt/tree out && diff -r src out");
        assert!(
            std::fs::symlink_metadata(m.p("tree/a/link"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let mode = std::fs::metadata(m.p("tree/a/run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
        assert_eq!(sh(&m.p("tree/a"), "./run.sh"), "hi\n");
        // mv of a file over another and of a directory; rm -r.
        sh(
            &m.dir,
            "mv tree/one.txt tree/a/two.txt && mv tree/a/b tree/moved && rm -r tree/moved/c",
        );
        assert!(!m.p("tree/a/b").exists());
        assert_eq!(
            std::fs::read_to_string(m.p("tree/a/two.txt")).unwrap(),
            "one\n"
        );
        // Editor-style save: write a temp file, fsync, rename over.
        sh(
            &m.dir,
            "printf 'draft\\n' > notes.txt && printf 'final\\n' > notes.txt.new && \
             sync notes.txt.new && mv notes.txt.new notes.txt",
        );
        // Appending to a log, each line by a separate open.
        sh(
            &m.dir,
            "for i in 1 2 3 4 5; do echo line$i >> app.log; done",
        );
        assert_eq!(sh(&m.dir, "wc -l < app.log").trim(), "5");
        // chmod removes the exec bit; utimens is accepted.
        sh(
            &m.dir,
            "chmod -x tree/a/run.sh && touch -d '2020-01-01' notes.txt",
        );
        let mtime = std::fs::metadata(m.p("notes.txt"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(
            mtime
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                / 86400,
            18262
        );
        // O_TRUNC and a write at an offset.
        sh(
            &m.dir,
            "printf 'abcdef' > off.txt && printf 'XY' | dd of=off.txt bs=1 seek=2 conv=notrunc status=none",
        );
        assert_eq!(std::fs::read(m.p("off.txt")).unwrap(), b"abXYef");
        sh(&m.dir, "printf 'new' > off.txt");
        assert_eq!(std::fs::read(m.p("off.txt")).unwrap(), b"new");
        // statfs works.
        sh(&m.dir, "df . > /dev/null && stat -f . > /dev/null");

        let repo = m.finish();
        assert_eq!(content(&repo, "main", "tree/a/two.txt"), b"one\n");
        assert_eq!(kind(&repo, "main", "tree/one.txt"), None);
        assert_eq!(kind(&repo, "main", "tree/moved/c"), None);
        assert_eq!(kind(&repo, "main", "tree/a/b"), None);
        assert_eq!(kind(&repo, "main", "tree/empty"), Some(EntryKind::Dir));
        assert_eq!(
            content(&repo, "main", "tree/moved/big.bin"),
            std::fs::read(m_src(&repo).join("src/a/b/big.bin")).unwrap()
        );
        assert_eq!(kind(&repo, "main", "tree/a/link"), Some(EntryKind::Symlink));
        assert_eq!(content(&repo, "main", "tree/a/link"), b"../one.txt");
        assert_eq!(kind(&repo, "main", "tree/a/run.sh"), Some(EntryKind::File));
        assert_eq!(content(&repo, "main", "notes.txt"), b"final\n");
        assert_eq!(kind(&repo, "main", "notes.txt.new"), None);
        assert_eq!(
            content(&repo, "main", "app.log"),
            b"line1\nline2\nline3\nline4\nline5\n"
        );
        assert_eq!(content(&repo, "main", "off.txt"), b"new");
        // The fsync of the swap file made a commit before the final one.
        assert!(commits(&repo, "main").len() >= 2);
        let head = repo.branch_head("main").unwrap().unwrap();
        let c = repo.commit(&head).unwrap();
        assert_eq!(c.author.name, b"tester");
    }

    /// The source tree lives beside the repository file.
    fn m_src(repo: &hero_store::Repo) -> std::path::PathBuf {
        repo.path().parent().unwrap().to_path_buf()
    }

    /// `.git` and its aliases are names no tree the mount writes holds (a checkout elsewhere
    /// would make them a git repository's own directory): creating one is EINVAL, so `git init`
    /// inside the mount fails and nothing of it is stored.
    #[test]
    fn git_directories_cannot_be_made_inside_the_mount() {
        let mut m = Mounted::new();
        sh(
            &m.dir,
            "mkdir proj && echo 'fn main() {}' > proj/main.rs && echo x > f",
        );
        let out = sh(
            &m.dir,
            "for n in .git proj/.git proj/.GIT git~1 '.git. ' .Git; do \
               mkdir \"$n\" 2>&1 && echo \"made $n\"; touch \"$n\" 2>&1 && echo \"made $n\"; \
               mv f \"$n\" 2>&1 && echo \"made $n\"; ln -s f \"$n\" 2>&1 && echo \"made $n\"; \
             done; cd proj && git init -q 2>&1 && echo 'made a repository'; true",
        );
        assert!(!out.contains("made"), "{out}");
        assert!(out.contains("Invalid argument"), "{out}");
        // Names that only start like it are ordinary.
        sh(
            &m.dir,
            "echo target > proj/.gitignore && mkdir proj/.github && touch proj/.gitmodules",
        );
        let repo = m.finish();
        assert_eq!(content(&repo, "main", "proj/main.rs"), b"fn main() {}\n");
        assert_eq!(content(&repo, "main", "f"), b"x\n");
        assert_eq!(content(&repo, "main", "proj/.gitignore"), b"target\n");
        assert_eq!(kind(&repo, "main", "proj/.github"), Some(EntryKind::Dir));
        for p in [".git", "proj/.git", "proj/.GIT", "git~1", ".Git"] {
            assert_eq!(kind(&repo, "main", p), None, "{p}");
        }
    }
}

mod errors {
    use std::fs;
    use std::io::{Read, Write};

    use crate::util::*;

    #[test]
    fn errno_values() {
        let mut m = Mounted::new();
        fs::create_dir(m.p("d")).unwrap();
        fs::write(m.p("d/f"), b"x").unwrap();
        fs::create_dir(m.p("e")).unwrap();
        fs::write(m.p("e/g"), b"y").unwrap();
        assert_eq!(errno(fs::create_dir(m.p("d"))), libc_errno::EEXIST);
        assert_eq!(errno(fs::remove_dir(m.p("d"))), libc_errno::ENOTEMPTY);
        assert_eq!(errno(fs::rename(m.p("d"), m.p("e"))), libc_errno::ENOTEMPTY);
        assert_eq!(errno(fs::rename(m.p("d/f"), m.p("e"))), libc_errno::EISDIR);
        assert_eq!(errno(fs::rename(m.p("d"), m.p("e/g"))), libc_errno::ENOTDIR);
        assert_eq!(errno(fs::read(m.p("missing"))), libc_errno::ENOENT);
        assert_eq!(errno(fs::remove_file(m.p("d"))), libc_errno::EISDIR);
        assert_eq!(errno(fs::remove_dir(m.p("d/f"))), libc_errno::ENOTDIR);
        assert_eq!(errno(fs::File::create(m.p("d"))), libc_errno::EISDIR);
        assert_eq!(
            errno(
                fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(m.p("d/f"))
            ),
            libc_errno::EEXIST
        );
        let long = "n".repeat(256);
        assert_eq!(errno(fs::write(m.p(&long), b"")), libc_errno::ENAMETOOLONG);
        assert_eq!(errno(fs::create_dir(m.p(&long))), libc_errno::ENAMETOOLONG);
        fs::write(m.p(&"n".repeat(255)), b"ok").unwrap();
        let f = fs::OpenOptions::new().write(true).open(m.p("d/f")).unwrap();
        assert_eq!(errno(f.set_len(999_999_999_999_999)), libc_errno::EFBIG);
        drop(f);
        let out = std::process::Command::new("truncate")
            .args(["-s", "999999999999999"])
            .arg(m.p("d/f"))
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("File too large"));
        assert_eq!(
            errno(fs::write(m.p(".snapshots/x"), b"")),
            libc_errno::EROFS
        );

        // An unlinked open file stays readable and writable until closed.
        fs::write(m.p("gone"), b"still here").unwrap();
        let mut open = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(m.p("gone"))
            .unwrap();
        fs::remove_file(m.p("gone")).unwrap();
        assert!(!m.p("gone").exists());
        let mut s = String::new();
        open.read_to_string(&mut s).unwrap();
        assert_eq!(s, "still here");
        open.write_all(b"!").unwrap();
        assert_eq!(open.metadata().unwrap().len(), 11);
        drop(open);

        let repo = m.finish();
        assert_eq!(kind(&repo, "main", "gone"), None);
        assert_eq!(content(&repo, "main", "d/f"), b"x");
        assert_eq!(content(&repo, "main", &"n".repeat(255)), b"ok");
    }

    #[test]
    fn read_only_mount_refuses_writes() {
        let mut m = Mounted::with(|o| o.read_only = true);
        assert_eq!(errno(fs::write(m.p("x"), b"")), libc_errno::EROFS);
        assert_eq!(errno(fs::create_dir(m.p("y"))), libc_errno::EROFS);
        let repo = m.finish();
        assert!(commits(&repo, "main").is_empty());
    }

    /// errno numbers on Linux.
    mod libc_errno {
        pub const ENOENT: i32 = 2;
        pub const EEXIST: i32 = 17;
        pub const ENOTDIR: i32 = 20;
        pub const EISDIR: i32 = 21;
        pub const EFBIG: i32 = 27;
        pub const EROFS: i32 = 30;
        pub const ENAMETOOLONG: i32 = 36;
        pub const ENOTEMPTY: i32 = 39;
    }
}

mod live {
    use std::fs;
    use std::io::Read;
    use std::process::Command;

    use hero_store::{CommitMeta, EntryKind, Expect, Repo, RepoPath, Signature};

    use crate::util::*;

    /// Commits as another writer would (the helper process's signature).
    fn commit_as_other(cs: hero_store::ChangeSet<'_>, message: &str) {
        let sig = Signature {
            name: b"other".to_vec(),
            email: b"o@example.com".to_vec(),
            time: 1,
            tz_offset_minutes: 0,
        };
        cs.commit(CommitMeta::new(sig, message), Expect::Latest)
            .unwrap();
    }

    /// Not a test on its own: the body of the helper process the other tests spawn.
    #[test]
    fn helper_process() {
        let Ok(mode) = std::env::var(HELPER) else {
            return;
        };
        let repo_path = std::env::var("HERO_FUSE_TEST_REPO").unwrap();
        match mode.as_str() {
            "commit" => {
                let repo = Repo::open(&repo_path).unwrap();
                let mut cs = repo.change_set("main").unwrap();
                cs.put_bytes(
                    &RepoPath::parse("doc.txt").unwrap(),
                    EntryKind::File,
                    b"v3 from elsewhere\n",
                )
                .unwrap();
                cs.put_bytes(
                    &RepoPath::parse("new/ext.txt").unwrap(),
                    EntryKind::File,
                    b"external\n",
                )
                .unwrap();
                cs.delete(&RepoPath::parse("old.txt").unwrap()).unwrap();
                commit_as_other(cs, "external");
            }
            "commit-w" => {
                let repo = Repo::open(&repo_path).unwrap();
                let mut cs = repo.change_set("main").unwrap();
                cs.put_bytes(
                    &RepoPath::parse("w.txt").unwrap(),
                    EntryKind::File,
                    b"theirs\n",
                )
                .unwrap();
                commit_as_other(cs, "external w");
            }
            "commit-cached" => {
                let repo = Repo::open(&repo_path).unwrap();
                let mut cs = repo.change_set("main").unwrap();
                cs.put_bytes(
                    &RepoPath::parse("d/grow.txt").unwrap(),
                    EntryKind::File,
                    b"grown by another process\n",
                )
                .unwrap();
                cs.set_meta(
                    &RepoPath::parse("d/mode.txt").unwrap(),
                    hero_store::EntryMeta {
                        mode: Some(0o600),
                        ..hero_store::EntryMeta::NONE
                    },
                )
                .unwrap();
                cs.delete(&RepoPath::parse("d/gone.txt").unwrap()).unwrap();
                cs.put_bytes(
                    &RepoPath::parse("d/added.txt").unwrap(),
                    EntryKind::File,
                    b"added\n",
                )
                .unwrap();
                commit_as_other(cs, "external, on cached entries");
            }
            "commit-late" => {
                let repo = Repo::open(&repo_path).unwrap();
                let mut cs = repo.change_set("main").unwrap();
                for p in ["late.txt", "d/late.txt"] {
                    cs.put_bytes(&RepoPath::parse(p).unwrap(), EntryKind::File, b"late\n")
                        .unwrap();
                }
                commit_as_other(cs, "external, on names looked up as missing");
            }
            "hold-write" => {
                // Holds the repository's write transaction until a line arrives on stdin.
                let repo = Repo::open(&repo_path).unwrap();
                repo.batch(|_| {
                    println!("\nholding");
                    std::io::Write::flush(&mut std::io::stdout()).unwrap();
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line).unwrap();
                    Ok(())
                })
                .unwrap();
            }
            "mount-and-die" => {
                let dir = std::env::var("HERO_FUSE_TEST_DIR").unwrap();
                let h = hero_fuse::mount(hero_fuse::MountOptions::new(&repo_path, &dir)).unwrap();
                std::mem::forget(h);
                println!("mounted");
                std::process::abort();
            }
            other => panic!("unknown helper mode {other}"),
        }
    }

    pub(crate) fn helper(mode: &str, repo: &std::path::Path, dir: Option<&std::path::Path>) {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "live::helper_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER, mode)
        .env("HERO_FUSE_TEST_REPO", repo);
        if let Some(d) = dir {
            cmd.env("HERO_FUSE_TEST_DIR", d);
        }
        let out = cmd.output().unwrap();
        if mode.starts_with("commit") {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Another process's commit shows at once although the mount's watcher never polls: the
    /// repository file's change wakes it (the 15 s deadline is a quarter of the poll here).
    #[test]
    fn a_commit_of_another_process_wakes_a_mount_that_does_not_poll() {
        let m = Mounted::with(|o| o.poll_interval = std::time::Duration::from_secs(60));
        fs::write(m.p("doc.txt"), b"v1\n").unwrap();
        fs::write(m.p("old.txt"), b"old\n").unwrap();
        fs::File::open(m.p("doc.txt")).unwrap().sync_all().unwrap();
        assert_eq!(fs::read(m.p("doc.txt")).unwrap(), b"v1\n");
        helper("commit", &m.repo, None);
        eventually("the external commit shows in the mount", || {
            fs::read(m.p("doc.txt")).ok().as_deref() == Some(b"v3 from elsewhere\n".as_slice())
        });
        assert_eq!(fs::read(m.p("new/ext.txt")).unwrap(), b"external\n");
    }

    /// What the kernel caches for a minute (attributes from `stat`, names and attributes
    /// from a listing by readdirplus) is invalidated when another process commits: a file
    /// grown, a mode changed, a file removed and one added in the listed directory all show
    /// through the cache.
    #[test]
    fn a_commit_elsewhere_reaches_past_cached_stats_and_listings() {
        use std::os::unix::fs::PermissionsExt;
        let m = Mounted::with(|o| o.poll_interval = std::time::Duration::from_secs(60));
        fs::create_dir(m.p("d")).unwrap();
        fs::write(m.p("d/grow.txt"), b"1\n").unwrap();
        fs::write(m.p("d/mode.txt"), b"m\n").unwrap();
        fs::set_permissions(m.p("d/mode.txt"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(m.p("d/gone.txt"), b"g\n").unwrap();
        fs::File::open(m.p("d")).unwrap().sync_all().unwrap();
        let list = || {
            let mut names = fs::read_dir(m.p("d"))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect::<Vec<_>>();
            names.sort();
            names
        };
        // Cached: each file's attributes, and the listing (readdirplus: names and
        // attributes).
        assert_eq!(fs::metadata(m.p("d/grow.txt")).unwrap().len(), 2);
        let mode = |p| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(m.p("d/mode.txt")), 0o644);
        assert!(m.p("d/gone.txt").exists());
        assert_eq!(list(), ["gone.txt", "grow.txt", "mode.txt"]);
        helper("commit-cached", &m.repo, None);
        eventually("the grown file's size", || {
            fs::metadata(m.p("d/grow.txt")).is_ok_and(|md| md.len() == 25)
        });
        assert_eq!(
            fs::read(m.p("d/grow.txt")).unwrap(),
            b"grown by another process\n"
        );
        eventually("the changed mode", || mode(m.p("d/mode.txt")) == 0o600);
        eventually("the removed file gone", || !m.p("d/gone.txt").exists());
        eventually("the listing", || {
            list() == ["added.txt", "grow.txt", "mode.txt"]
        });
        assert_eq!(fs::read(m.p("d/added.txt")).unwrap(), b"added\n");
    }

    /// A name looked up and not found is cached by the kernel as missing (a negative entry,
    /// for a minute); another process's commit that adds it invalidates that, in the root
    /// and in a subdirectory.
    #[test]
    fn a_name_cached_as_missing_appears_when_committed_elsewhere() {
        let m = Mounted::with(|o| o.poll_interval = std::time::Duration::from_secs(60));
        fs::create_dir(m.p("d")).unwrap();
        fs::write(m.p("d/x.txt"), b"x\n").unwrap();
        fs::File::open(m.p("d")).unwrap().sync_all().unwrap();
        assert!(!m.p("late.txt").exists());
        assert!(!m.p("d/late.txt").exists());
        helper("commit-late", &m.repo, None);
        eventually("the root's new name", || m.p("late.txt").exists());
        eventually("the subdirectory's new name", || m.p("d/late.txt").exists());
        assert_eq!(fs::read(m.p("d/late.txt")).unwrap(), b"late\n");
    }

    /// The mount's commit is kept off the path of the kernel's requests: while it waits for
    /// the repository (another process holds the write transaction: a pull, a large commit),
    /// creates and listings are answered.
    #[test]
    fn a_commit_waiting_for_the_repository_holds_up_no_create_or_listing() {
        use std::io::{BufRead, Write};
        let m = Mounted::with(|o| {
            o.idle_commit = std::time::Duration::from_secs(60);
            o.max_commit_delay = std::time::Duration::from_millis(100);
        });
        assert_eq!(fs::read_dir(&m.dir).unwrap().count(), 0);
        let mut holder = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "live::helper_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(HELPER, "hold-write")
            .env("HERO_FUSE_TEST_REPO", &m.repo)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(holder.stdout.take().unwrap());
        let mut line = String::new();
        while line.trim() != "holding" {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "the holder ended");
        }
        // A change, due for a commit after `max_commit_delay`: the commit waits for the
        // holder's lock (fcntl(2), syscall 72, on the repository file).
        fs::write(m.p("first.txt"), b"1\n").unwrap();
        let repo_file = fs::canonicalize(&m.repo).unwrap();
        eventually("the commit waiting for the repository", || {
            fs::read_dir("/proc/self/task").unwrap().any(|t| {
                let t = t.unwrap().path();
                let Ok(call) = fs::read_to_string(t.join("syscall")) else {
                    return false;
                };
                let mut f = call.split_whitespace();
                f.next() == Some("72")
                    && f.next()
                        .and_then(|fd| u64::from_str_radix(fd.trim_start_matches("0x"), 16).ok())
                        .and_then(|fd| fs::read_link(format!("/proc/self/fd/{fd}")).ok())
                        .is_some_and(|p| p == repo_file)
            })
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let dir = m.dir.clone();
        std::thread::spawn(move || {
            for i in 0..50 {
                fs::write(dir.join(format!("new{i}.txt")), b"new\n").unwrap();
            }
            let _ = tx.send(fs::read_dir(&dir).unwrap().count());
        });
        let listed = rx.recv_timeout(std::time::Duration::from_secs(10));
        holder.stdin.take().unwrap().write_all(b"go\n").unwrap();
        assert!(holder.wait().unwrap().success());
        assert_eq!(
            listed.ok(),
            Some(51),
            "creates and a listing answered while another process writes"
        );
    }

    /// With `close_commit`, a file written and closed is committed without the idle wait (a
    /// minute here, four times the deadline).
    #[test]
    fn a_written_file_is_committed_when_closed() {
        let m = Mounted::with(|o| {
            o.idle_commit = std::time::Duration::from_secs(60);
            o.max_commit_delay = std::time::Duration::from_secs(60);
            o.close_commit = Some(std::time::Duration::from_millis(10));
        });
        let repo = Repo::open(&m.repo).unwrap();
        fs::write(m.p("saved.txt"), b"saved\n").unwrap();
        eventually("the commit after close", || {
            entry(&repo, "main", "saved.txt").is_some()
        });
        assert_eq!(content(&repo, "main", "saved.txt"), b"saved\n");
        // A file created and written but still open waits for its close; then one commit.
        let mut open = fs::File::create(m.p("open.txt")).unwrap();
        std::io::Write::write_all(&mut open, b"partial").unwrap();
        let heads = commits(&repo, "main").len();
        // Then closed: committed like the first.
        drop(open);
        eventually("the commit after the second close", || {
            entry(&repo, "main", "open.txt").is_some()
        });
        assert_eq!(commits(&repo, "main").len(), heads + 1);
        assert_eq!(content(&repo, "main", "open.txt"), b"partial");
    }

    #[test]
    fn snapshots_and_commits_from_elsewhere() {
        let mut m = Mounted::new();
        fs::write(m.p("doc.txt"), b"v1\n").unwrap();
        fs::write(m.p("old.txt"), b"old\n").unwrap();
        fs::File::open(m.p("doc.txt")).unwrap().sync_all().unwrap();
        fs::write(m.p("doc.txt"), b"v2\n").unwrap();
        fs::File::open(m.p("doc.txt")).unwrap().sync_all().unwrap();
        // Old versions under .snapshots, by branch ancestry and by commit id.
        assert_eq!(fs::read(m.p(".snapshots/main~1/doc.txt")).unwrap(), b"v1\n");
        assert_eq!(fs::read(m.p(".snapshots/main/doc.txt")).unwrap(), b"v2\n");
        let repo = Repo::open(&m.repo).unwrap();
        let first = commits(&repo, "main")[1];
        let short = first.short();
        assert_eq!(
            fs::read(m.p(&format!(".snapshots/{short}/doc.txt"))).unwrap(),
            b"v1\n"
        );
        let names = fs::read_dir(m.p(".snapshots"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect::<Vec<_>>();
        // The branch and its recent commits by short id.
        assert!(names.contains(&"main".to_string()), "{names:?}");
        assert!(names.contains(&short), "{names:?}");
        assert!(fs::write(m.p(".snapshots/main/doc.txt"), b"no").is_err());
        // .snapshots is reachable by name but not listed in the root.
        assert!(
            !fs::read_dir(&m.dir)
                .unwrap()
                .any(|e| e.unwrap().file_name() == ".snapshots")
        );

        // Warm the kernel caches, keep a file open, then commit from another process.
        assert_eq!(fs::read(m.p("doc.txt")).unwrap(), b"v2\n");
        assert!(!m.p("new/ext.txt").exists());
        let mut open = fs::File::open(m.p("doc.txt")).unwrap();
        helper("commit", &m.repo, None);
        eventually("the external commit shows in the mount", || {
            fs::read(m.p("doc.txt")).ok().as_deref() == Some(b"v3 from elsewhere\n".as_slice())
        });
        assert_eq!(fs::read(m.p("new/ext.txt")).unwrap(), b"external\n");
        assert!(!m.p("old.txt").exists());
        // The file opened before keeps reading its version.
        let mut s = String::new();
        open.read_to_string(&mut s).unwrap();
        assert_eq!(s, "v2\n");
        drop(open);

        // Local writes keep working on top of the external commit.
        fs::write(m.p("new/local.txt"), b"local\n").unwrap();
        // The idle window commits it without fsync or unmount.
        eventually("the idle commit", || {
            entry(&repo, "main", "new/local.txt").is_some()
        });
        drop(repo);
        let repo = m.finish();
        assert_eq!(content(&repo, "main", "new/local.txt"), b"local\n");
        assert_eq!(content(&repo, "main", "new/ext.txt"), b"external\n");
        assert_eq!(content(&repo, "main", "doc.txt"), b"v3 from elsewhere\n");
    }

    #[test]
    fn stale_mount_is_detected() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("r.hero");
        Repo::init(&repo).unwrap();
        let dir = tmp.path().join("mnt");
        fs::create_dir(&dir).unwrap();
        assert_eq!(hero_fuse::stale_mount_hint(&dir), None);
        // A process that mounts and dies leaves a stale mount.
        helper("mount-and-die", &repo, Some(&dir));
        let hint = hero_fuse::stale_mount_hint(&dir);
        let cleanup = || {
            let _ = Command::new("fusermount3").arg("-u").arg(&dir).status();
        };
        let Some(hint) = hint else {
            cleanup();
            panic!("no stale mount detected");
        };
        assert!(
            hint.contains(&format!("fusermount3 -u {}", dir.display())),
            "{hint}"
        );
        let err = hero_fuse::mount(hero_fuse::MountOptions::new(&repo, &dir));
        assert!(matches!(err, Err(hero_fuse::MountError::StaleMount { .. })));
        cleanup();
        assert_eq!(hero_fuse::stale_mount_hint(&dir), None);
    }
}

mod large {
    use std::fs;
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    use std::time::Instant;

    use crate::tree;
    use crate::util::*;

    fn count_find(dir: &std::path::Path) -> usize {
        // `.snapshots` (listed in the root when shown) is another copy of the tree: left out.
        sh(dir, "find . -path ./.snapshots -prune -o -print | wc -l")
            .trim()
            .parse()
            .unwrap()
    }

    /// Asks the kernel to drop unused dentries and inodes (it then sends FUSE forgets).
    fn drop_kernel_caches() {
        fs::write("/proc/sys/vm/drop_caches", b"2\n").unwrap();
    }

    #[test]
    fn hundred_thousand_files_mount_lazily() {
        let built = Instant::now();
        let m = Mounted::prepared(
            |repo| {
                tree::build(repo, "main", 100, 1000).unwrap();
            },
            |o| o.read_only = true,
        );
        eprintln!("built and mounted in {:?}", built.elapsed());
        let h = m.handle.as_ref().unwrap();
        // Nothing is loaded up front: just the root and .snapshots.
        assert!(h.inode_count() <= 2, "{} inodes at mount", h.inode_count());
        // A deep file: only the directories on its path are loaded.
        assert_eq!(fs::read(m.p(tree::DEEP_PATH)).unwrap(), tree::DEEP_CONTENT);
        let loaded = h.inode_count();
        assert!(loaded < 200, "{loaded} inodes after reading one deep file");
        assert_eq!(
            fs::read_to_string(m.p("d0042/f00777")).unwrap(),
            tree::content(42, 777)
        );
        assert_eq!(fs::read_dir(m.p("d0099")).unwrap().count(), 1000);
        // 100 directories and the deep chain's first (`.snapshots` is not listed).
        assert_eq!(fs::read_dir(m.p("")).unwrap().count(), 101);
        // Everything: 100 x 1000 files, 100 directories, the deep chain (8 dirs + 1 file)
        // and the root.
        assert_eq!(count_find(&m.dir), 100_000 + 100 + 9 + 1);
    }

    #[test]
    fn forgotten_inodes_are_dropped_and_reloaded() {
        let mut m = Mounted::prepared(
            |repo| {
                tree::build(repo, "main", 20, 1000).unwrap();
            },
            |_| {},
        );
        // A directory changed and committed here becomes evictable like the others.
        fs::create_dir(m.p("local")).unwrap();
        fs::write(m.p("local/new.txt"), b"made here\n").unwrap();
        m.handle.as_ref().unwrap().flush().unwrap();
        // A file kept open keeps its inode (number and content) through eviction.
        let mut held = fs::File::open(m.p("d0003/f00030")).unwrap();
        let held_ino = held.metadata().unwrap().ino();

        assert_eq!(count_find(&m.dir), 20_000 + 20 + 9 + 2 + 1);
        // A snapshot's inodes go the same way.
        assert_eq!(count_find(&m.p(".snapshots/main")), 20_000 + 20 + 9 + 2 + 1);
        let h = m.handle.as_ref().unwrap();
        let full = h.inode_count();
        assert!(full > 40_000, "{full} inodes after two finds");

        drop_kernel_caches();
        // What stays: the root's entries, and the 1,000 entries of d0003, whose open file
        // keeps its directory loaded.
        eventually("the inode table to shrink after the kernel forgot", || {
            h.inode_count() < 1_100
        });
        let after = h.inode_count();
        eprintln!("inodes: {full} after find, {after} after drop_caches");

        // The open file: same inode number by path and by handle, same content.
        assert_eq!(fs::metadata(m.p("d0003/f00030")).unwrap().ino(), held_ino);
        let mut s = String::new();
        held.read_to_string(&mut s).unwrap();
        assert_eq!(s, tree::content(3, 30));
        drop(held);

        // Evicted files and directories load again on demand.
        assert_eq!(fs::read(m.p(tree::DEEP_PATH)).unwrap(), tree::DEEP_CONTENT);
        assert_eq!(
            fs::read_to_string(m.p("d0019/f00999")).unwrap(),
            tree::content(19, 999)
        );
        assert_eq!(fs::read(m.p("local/new.txt")).unwrap(), b"made here\n");
        assert_eq!(
            fs::read_to_string(m.p(".snapshots/main/d0001/f00001")).unwrap(),
            tree::content(1, 1)
        );
        assert_eq!(fs::read_dir(m.p("d0011")).unwrap().count(), 1000);
        // And writing still works after eviction.
        fs::write(m.p("d0005/f00005"), b"changed\n").unwrap();
        let repo = m.finish();
        assert_eq!(content(&repo, "main", "d0005/f00005"), b"changed\n");
        assert_eq!(
            content(&repo, "main", "d0006/f00006"),
            tree::content(6, 6).as_bytes()
        );
        assert_eq!(content(&repo, "main", "local/new.txt"), b"made here\n");
    }

    #[test]
    fn a_walk_of_a_large_tree_and_its_snapshots_leaves_the_inode_table_bounded() {
        let m = Mounted::prepared(
            |repo| {
                tree::build(repo, "main", 30, 1000).unwrap();
            },
            |o| {
                o.max_inodes = 5_000;
                o.show_snapshots = true;
            },
        );
        let h = m.handle.as_ref().unwrap();
        // `find` over everything, `.snapshots` included: the tree twice, 60,000+ entries,
        // and the kernel forgets none of them by itself.
        let walked: usize = sh(&m.dir, "find . | wc -l").trim().parse().unwrap();
        assert!(walked > 60_000, "{walked} entries walked");
        // The mount asked the kernel to forget the directories used longest ago, and
        // unloaded them once it did.
        eventually("the inode table back under its bound", || {
            h.inode_count() <= 5_000
        });
        // What was let go loads again, the snapshot too.
        assert_eq!(
            fs::read_to_string(m.p("d0000/f00000")).unwrap(),
            tree::content(0, 0)
        );
        assert_eq!(
            fs::read_to_string(m.p(".snapshots/main/d0001/f00001")).unwrap(),
            tree::content(1, 1)
        );
        assert_eq!(fs::read_dir(m.p("d0029")).unwrap().count(), 1000);
        assert_eq!(count_find(&m.dir), 30_000 + 30 + 9 + 1);
    }
}

mod reads {
    use std::fs;
    use std::io::Read;
    use std::os::unix::fs::FileExt;

    use hero_store::{CommitMeta, EntryKind, Expect, RepoPath, Signature};
    use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};

    use crate::util::*;

    /// Deterministic bytes that do not compress.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut out = vec![0u8; len];
        fastrand::Rng::with_seed(seed).fill(&mut out);
        out
    }

    /// Drops the kernel's cached pages of the file so the next reads reach the mount.
    fn uncache(f: &fs::File) {
        posix_fadvise(f, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED).unwrap();
    }

    #[test]
    fn large_file_sequential_and_random_reads() {
        // Not a multiple of the read-ahead block (4 MiB) nor of the kernel's request size.
        let data = noise((13 << 20) + 12_345, 0x9e37_79b9_7f4a_7c15);
        let m = Mounted::prepared(
            |repo| {
                let mut cs = repo.change_set("main").unwrap();
                cs.put_reader(
                    &RepoPath::parse("big.bin").unwrap(),
                    EntryKind::File,
                    &data[..],
                )
                .unwrap();
                let sig = Signature {
                    name: b"t".to_vec(),
                    email: b"t@example.com".to_vec(),
                    time: 1,
                    tz_offset_minutes: 0,
                };
                cs.commit(CommitMeta::new(sig, "big"), Expect::Latest)
                    .unwrap();
            },
            |o| o.read_only = true,
        );
        // Whole file, then again from the mount after dropping the page cache.
        assert!(fs::read(m.p("big.bin")).unwrap() == data);
        let mut f = fs::File::open(m.p("big.bin")).unwrap();
        uncache(&f);
        // Sequential reads of an odd size (they straddle the read-ahead blocks).
        let mut got = Vec::new();
        let mut buf = vec![0u8; 100_003];
        loop {
            let n = f.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got.len(), data.len());
        assert!(got == data, "sequential read differs");
        // Random reads, including a jump back to the start in the middle of a stream, the
        // last byte and past the end.
        uncache(&f);
        let spots: [(usize, usize); 8] = [
            (5 << 20, 300_000),
            (0, 4096),
            ((4 << 20) - 10, 20),
            (9_999_999, 1_000_000),
            (data.len() - 1, 10),
            (data.len() + 5, 10),
            (123, 1),
            ((8 << 20) + 77, 3 << 20),
        ];
        for (off, len) in spots {
            let mut b = vec![0u8; len];
            let mut done = 0;
            while done < len {
                let n = f.read_at(&mut b[done..], (off + done) as u64).unwrap();
                if n == 0 {
                    break;
                }
                done += n;
            }
            let want = &data[off.min(data.len())..(off + len).min(data.len())];
            assert!(&b[..done] == want, "read_at({off}, {len}) differs");
        }
    }

    /// More files read at once than the mount's read-ahead budget holds: the ones left
    /// without read-ahead read directly, and every byte is right.
    #[test]
    fn many_large_files_read_at_once_share_the_read_ahead_budget() {
        // Over one read-ahead block each (4 MiB), so each starts a read-ahead of its own.
        let files: Vec<Vec<u8>> = (0..6u64).map(|i| noise((6 << 20) + 777, i + 1)).collect();
        let m = Mounted::prepared(
            |repo| {
                let mut cs = repo.change_set("main").unwrap();
                for (i, data) in files.iter().enumerate() {
                    let p = RepoPath::parse(format!("f{i}.bin")).unwrap();
                    cs.put_reader(&p, EntryKind::File, &data[..]).unwrap();
                }
                let sig = Signature {
                    name: b"t".to_vec(),
                    email: b"t@example.com".to_vec(),
                    time: 1,
                    tz_offset_minutes: 0,
                };
                cs.commit(CommitMeta::new(sig, "six"), Expect::Latest)
                    .unwrap();
            },
            |o| o.read_only = true,
        );
        std::thread::scope(|s| {
            for (i, data) in files.iter().enumerate() {
                let path = m.p(&format!("f{i}.bin"));
                s.spawn(move || {
                    let mut f = fs::File::open(path).unwrap();
                    uncache(&f);
                    let mut got = Vec::new();
                    f.read_to_end(&mut got).unwrap();
                    assert!(got == *data, "file {i} differs");
                });
            }
        });
    }
}

mod requests {
    //! What each operation costs in FUSE requests: the kernel's round trips are most of a
    //! metadata operation's time, so the count per operation is pinned.
    use std::collections::HashMap;
    use std::fs;

    use crate::util::*;

    fn counts(m: &Mounted) -> HashMap<&'static str, u64> {
        m.handle
            .as_ref()
            .unwrap()
            .request_stats()
            .into_iter()
            .map(|c| (c.name, c.count))
            .collect()
    }

    /// The requests received since `before`, by kind.
    fn since(m: &Mounted, before: &HashMap<&'static str, u64>) -> HashMap<&'static str, u64> {
        counts(m)
            .into_iter()
            .map(|(k, n)| (k, n - before.get(k).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    #[test]
    fn a_create_is_a_lookup_a_create_and_a_release_and_cached_names_cost_nothing() {
        let m = Mounted::new();
        fs::create_dir(m.p("d")).unwrap();
        // The first close is answered "no FLUSH" once; the kernel sends none after it.
        fs::File::create(m.p("d/first")).unwrap();
        eventually("the first file released", || {
            counts(&m).get("RELEASE").copied() == Some(1)
        });
        let n = 20u64;
        let before = counts(&m);
        for i in 0..n {
            fs::File::create(m.p(&format!("d/f{i}"))).unwrap();
        }
        // RELEASE is sent without waiting for its answer.
        eventually("the files released", || {
            since(&m, &before).get("RELEASE").copied() == Some(n)
        });
        let created = since(&m, &before);
        assert_eq!(
            created,
            HashMap::from([("LOOKUP", n), ("CREATE", n), ("RELEASE", n)]),
            "requests for {n} creates"
        );

        // The entries and attributes of the created files stay in the kernel's cache.
        let before = counts(&m);
        for _ in 0..2 {
            for i in 0..n {
                assert_eq!(fs::metadata(m.p(&format!("d/f{i}"))).unwrap().len(), 0);
            }
        }
        assert_eq!(
            since(&m, &before),
            HashMap::new(),
            "requests for cached stats"
        );

        // A missing name is looked up once, then cached as missing.
        let before = counts(&m);
        for _ in 0..2 {
            for i in 0..n {
                assert!(fs::metadata(m.p(&format!("d/missing{i}"))).is_err());
            }
        }
        assert_eq!(
            since(&m, &before),
            HashMap::from([("LOOKUP", n)]),
            "requests for missing names stat'ed twice"
        );
    }
}

mod files {
    use std::fs;
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use crate::live::helper;
    use crate::util::*;

    /// What `SEEK_DATA`, `SEEK_HOLE` and `st_blocks` say of a file with 4 KiB written at
    /// 64 MiB: (data from 0, hole from 0, hole from the data, data past the end, bytes in
    /// blocks).
    fn holes_of(p: &std::path::Path) -> (i64, i64, i64, String, u64) {
        use nix::unistd::{Whence, lseek};
        let f = fs::File::open(p).unwrap();
        let end = f.metadata().unwrap().len() as i64;
        let past = match lseek(&f, end, Whence::SeekData) {
            Ok(p) => p.to_string(),
            Err(e) => format!("{e:?}"),
        };
        (
            lseek(&f, 0, Whence::SeekData).unwrap(),
            lseek(&f, 0, Whence::SeekHole).unwrap(),
            lseek(&f, 64 << 20, Whence::SeekHole).unwrap(),
            past,
            f.metadata().unwrap().blocks() * 512,
        )
    }

    fn write_at_64_mib(p: &std::path::Path) {
        let mut f = fs::File::create(p).unwrap();
        f.seek(std::io::SeekFrom::Start(64 << 20)).unwrap();
        f.write_all(&[7u8; 4096]).unwrap();
        f.sync_all().unwrap();
    }

    /// A hole answers `SEEK_DATA`/`SEEK_HOLE` and costs no blocks, like tmpfs: while being
    /// written (the spill file) and once stored (from the chunk list), after a remount too.
    #[test]
    fn holes_are_found_by_seek_data_and_cost_no_blocks() {
        let reference = tempfile::tempdir_in("/dev/shm").unwrap();
        write_at_64_mib(&reference.path().join("sparse"));
        let want = holes_of(&reference.path().join("sparse"));
        assert_eq!(want.0, 64 << 20);
        let mut m = Mounted::new();
        write_at_64_mib(&m.p("sparse"));
        let check = |got: (i64, i64, i64, String, u64), when: &str| {
            assert_eq!(
                (got.0, got.1, got.2, &got.3),
                (want.0, want.1, want.2, &want.3),
                "{when}"
            );
            assert!(got.4 <= 1 << 20, "{} bytes of blocks {when}", got.4);
        };
        check(holes_of(&m.p("sparse")), "in the mount");
        m.handle.as_ref().unwrap().flush().unwrap();
        m.finish();
        let again = Mounted::reuse(m.take_tmp(), |_| {});
        let got = holes_of(&again.p("sparse"));
        check(got.clone(), "stored, after a remount");
        assert_eq!(got.4, 4096, "only the written chunk counts");
        let mut back = vec![0u8; 4096];
        let f = fs::File::open(again.p("sparse")).unwrap();
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut back, 64 << 20).unwrap();
        assert_eq!(back, [7u8; 4096]);
    }

    /// What a file with 4 KiB of `data` at `at` must look like: its size, its hole found by
    /// `SEEK_DATA`/`SEEK_HOLE`, reading as zeros and costing no blocks, the data in place.
    fn check_far_write(p: &std::path::Path, at: u64, data: &[u8], when: &str) {
        use nix::unistd::{Whence, lseek};
        use std::os::unix::fs::FileExt;
        let f = fs::File::open(p).unwrap();
        let meta = f.metadata().unwrap();
        assert_eq!(meta.len(), at + 4096, "{when}");
        assert!(
            meta.blocks() * 512 <= 64 << 10,
            "{} blocks {when}",
            meta.blocks()
        );
        let at_i = at as i64;
        assert_eq!(lseek(&f, 0, Whence::SeekData).unwrap(), at_i, "{when}");
        assert_eq!(lseek(&f, 0, Whence::SeekHole).unwrap(), 0, "{when}");
        assert_eq!(
            lseek(&f, at_i, Whence::SeekHole).unwrap(),
            at_i + 4096,
            "{when}"
        );
        assert_eq!(
            lseek(&f, at_i - 1, Whence::SeekData).unwrap(),
            at_i,
            "{when}"
        );
        let mut back = vec![1u8; 4096];
        f.read_exact_at(&mut back, at).unwrap();
        assert!(back == data, "the data differs {when}");
        f.read_exact_at(&mut back, at / 2).unwrap();
        assert!(back.iter().all(|&b| b == 0), "the hole is not zeros {when}");
    }

    /// 4 KiB written at 16 GiB and at 16 TiB then fsynced: the files keep their size, their
    /// holes read as zeros, cost no blocks and are found by `SEEK_DATA`/`SEEK_HOLE` in the
    /// mount, once stored and after a remount; the commit's manifests hold the holes, so the
    /// repository grows by about the data. (The spill directory is on tmpfs: ext4 stops short
    /// of 16 TiB.)
    #[test]
    fn a_write_far_past_the_end_stores_a_hole_not_zeros() {
        use std::os::unix::fs::FileExt;
        let spill = tempfile::tempdir_in("/dev/shm").unwrap();
        let spill_dir = spill.path().to_path_buf();
        let spill_again = spill_dir.clone();
        let mut m = Mounted::with(|o| o.spill_dir = Some(spill_dir));
        m.handle.as_ref().unwrap().flush().unwrap();
        let before = fs::metadata(&m.repo).unwrap().len();
        let data: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 1) as u8).collect();
        let files = [("g16", 16u64 << 30), ("t16", 16u64 << 40)];
        for (name, at) in files {
            let f = fs::File::create(m.p(name)).unwrap();
            f.write_all_at(&data, at).unwrap();
            f.sync_all().unwrap();
        }
        for (name, at) in files {
            check_far_write(&m.p(name), at, &data, "in the mount");
        }
        m.handle.as_ref().unwrap().flush().unwrap();
        for (name, at) in files {
            check_far_write(&m.p(name), at, &data, "stored");
        }
        let repo = m.finish();
        for (name, at) in files {
            let e = entry(&repo, "main", name).unwrap();
            assert_eq!(e.size, at + 4096);
            let ext = repo.view().unwrap().file_extents(&e.id).unwrap();
            assert_eq!(ext.len(), 2, "{ext:?}");
            assert!(!ext[0].data && ext[0].len == at, "{ext:?}");
        }
        drop(repo);
        let grown = fs::metadata(&m.repo).unwrap().len().saturating_sub(before);
        assert!(grown < 16 << 20, "the repository grew by {grown} bytes");
        let again = Mounted::reuse(m.take_tmp(), |o| o.spill_dir = Some(spill_again));
        for (name, at) in files {
            check_far_write(&again.p(name), at, &data, "after a remount");
        }
    }

    /// `RENAME_EXCHANGE` swaps a file and a directory across directories; the commit and a
    /// remount show them swapped, with no trace of the swap.
    #[test]
    fn rename_exchange_swaps_entries_in_the_commit() {
        let mut m = Mounted::new();
        sh(
            &m.dir,
            "mkdir -p x y/d && echo a > x/a && echo inner > y/d/inner",
        );
        m.handle.as_ref().unwrap().flush().unwrap();
        nix::fcntl::renameat2(
            nix::fcntl::AT_FDCWD,
            &m.p("x/a"),
            nix::fcntl::AT_FDCWD,
            &m.p("y/d"),
            nix::fcntl::RenameFlags::RENAME_EXCHANGE,
        )
        .unwrap();
        assert_eq!(fs::read_to_string(m.p("y/d")).unwrap(), "a\n");
        assert_eq!(fs::read_to_string(m.p("x/a/inner")).unwrap(), "inner\n");
        let repo = m.finish();
        assert_eq!(content(&repo, "main", "y/d"), b"a\n");
        assert_eq!(content(&repo, "main", "x/a/inner"), b"inner\n");
        drop(repo);
        let again = Mounted::reuse(m.take_tmp(), |_| {});
        assert_eq!(
            sh(&again.dir, "find . | sort"),
            ".\n./x\n./x/a\n./x/a/inner\n./y\n./y/d\n"
        );
    }

    fn read_from_start(f: &mut fs::File) -> String {
        f.rewind().unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        s
    }

    /// New and truncated files get no scratch file until written to; every handle of the
    /// file sees the same content throughout.
    #[test]
    fn empty_new_and_truncated_files() {
        let mut m = Mounted::new();
        // Created, opened for writing and reading, nothing written yet.
        let mut w = fs::File::create(m.p("new.txt")).unwrap();
        let mut r = fs::File::open(m.p("new.txt")).unwrap();
        assert_eq!(read_from_start(&mut r), "");
        assert_eq!(fs::metadata(m.p("new.txt")).unwrap().len(), 0);
        // The first write shows through the other handle.
        w.write_all(b"first\n").unwrap();
        assert_eq!(read_from_start(&mut r), "first\n");
        drop((w, r));
        // Several files created and closed without a write.
        for i in 0..50 {
            fs::File::create(m.p(&format!("e{i:02}"))).unwrap();
        }
        fs::write(m.p("kept.txt"), b"stored content\n").unwrap();
        m.handle.as_ref().unwrap().flush().unwrap();

        // A stored file truncated by open(O_TRUNC) while a reader has it open.
        let mut r = fs::File::open(m.p("kept.txt")).unwrap();
        assert_eq!(read_from_start(&mut r), "stored content\n");
        let mut w = fs::File::create(m.p("kept.txt")).unwrap();
        assert_eq!(fs::metadata(m.p("kept.txt")).unwrap().len(), 0);
        assert_eq!(read_from_start(&mut r), "");
        w.write_all(b"new").unwrap();
        assert_eq!(read_from_start(&mut r), "new");
        drop((w, r));
        // And by truncate(2) to zero, then extended.
        fs::write(m.p("t.txt"), b"0123456789").unwrap();
        m.handle.as_ref().unwrap().flush().unwrap();
        let f = fs::OpenOptions::new()
            .write(true)
            .open(m.p("t.txt"))
            .unwrap();
        f.set_len(0).unwrap();
        assert_eq!(fs::read(m.p("t.txt")).unwrap(), b"");
        f.set_len(3).unwrap();
        assert_eq!(fs::read(m.p("t.txt")).unwrap(), b"\0\0\0");
        drop(f);
        fs::write(m.p("z.txt"), b"zzz").unwrap();
        m.handle.as_ref().unwrap().flush().unwrap();
        fs::OpenOptions::new()
            .write(true)
            .open(m.p("z.txt"))
            .unwrap()
            .set_len(0)
            .unwrap();

        let repo = m.finish();
        assert_eq!(content(&repo, "main", "new.txt"), b"first\n");
        for i in 0..50 {
            assert_eq!(content(&repo, "main", &format!("e{i:02}")), b"");
        }
        assert_eq!(content(&repo, "main", "kept.txt"), b"new");
        assert_eq!(content(&repo, "main", "t.txt"), b"\0\0\0");
        assert_eq!(content(&repo, "main", "z.txt"), b"");
    }

    /// A file open for writing here wins over a change made elsewhere meanwhile, also while
    /// it is still empty (before it has a scratch file), like a written file does.
    #[test]
    fn file_open_for_writing_wins_over_a_change_elsewhere() {
        let mut m = Mounted::new();
        let mut w = fs::File::create(m.p("w.txt")).unwrap();
        m.handle.as_ref().unwrap().flush().unwrap();
        let repo = hero_store::Repo::open(&m.repo).unwrap();
        let before = commits(&repo, "main").len();
        helper("commit-w", &m.repo, None);
        // The mount notices the external commit and commits its own version on top.
        eventually(
            "the mount commits its open file over the external change",
            || {
                let c = commits(&repo, "main");
                c.len() >= before + 2 && content(&repo, "main", "w.txt").is_empty()
            },
        );
        w.write_all(b"mine\n").unwrap();
        drop(w);
        drop(repo);
        let repo = m.finish();
        assert_eq!(content(&repo, "main", "w.txt"), b"mine\n");
    }

    /// Permissions are checked by the mount (no `default_permissions`): access(2) and exec
    /// follow the mode bits, and only the owner's own ids can be given to chown.
    #[test]
    fn permissions_follow_the_mode_bits() {
        let m = Mounted::new();
        fs::write(m.p("plain"), b"#!/bin/sh\necho hi\n").unwrap();
        fs::write(m.p("script"), b"#!/bin/sh\necho hi\n").unwrap();
        fs::set_permissions(m.p("script"), fs::Permissions::from_mode(0o755)).unwrap();
        let access = |p: &str, mode: nix::unistd::AccessFlags| nix::unistd::access(&m.p(p), mode);
        use nix::unistd::AccessFlags as A;
        assert_eq!(access("plain", A::X_OK), Err(nix::errno::Errno::EACCES));
        assert_eq!(access("plain", A::R_OK | A::W_OK), Ok(()));
        assert_eq!(access("script", A::X_OK), Ok(()));
        assert_eq!(access("", A::W_OK | A::X_OK), Ok(()));
        let err = std::process::Command::new(m.p("plain"))
            .status()
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
        let out = std::process::Command::new(m.p("script")).output().unwrap();
        assert_eq!(out.stdout, b"hi\n");
        // Giving the file its own owner and group is allowed.
        let meta = fs::metadata(m.p("plain")).unwrap();
        std::os::unix::fs::chown(m.p("plain"), Some(meta.uid()), Some(meta.gid())).unwrap();
    }
}

/// What a disk keeps beyond contents: every permission bit, owner and group, modification
/// time; through the mount, a remount, a checkout and a second process.
mod metadata {
    use std::fs;
    use std::os::unix::fs::MetadataExt;
    use std::process::Command;
    use std::time::{Duration, SystemTime};

    use hero_store::{CheckoutOptions, Owner, Timestamp};

    use crate::util::*;

    fn mode(p: &std::path::Path) -> u32 {
        fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    /// chmod, chown and touch -d report success only when kept: the stored entry, a remount
    /// and a checkout all show them.
    #[test]
    fn modes_owners_and_times_survive_a_remount_and_a_checkout() {
        let mut m = Mounted::new();
        sh(
            &m.dir,
            "mkdir -p etc shared drop && echo 'k = 1' > etc/secrets.toml && echo x > none \
             && echo '#!/bin/sh' > run && echo s > sticky-file \
             && chmod 600 etc/secrets.toml && chmod 000 none && chmod 111 run \
             && chmod 2775 shared && chmod 1777 drop && chmod 4755 sticky-file \
             && chown 1234:5678 etc/secrets.toml \
             && touch -h -d '2020-01-01 12:00:00.123456789 UTC' etc/secrets.toml",
        );
        let expect = [
            ("etc/secrets.toml", 0o600),
            ("none", 0o000),
            ("run", 0o111),
            ("shared", 0o2775),
            ("drop", 0o1777),
            ("sticky-file", 0o4755),
        ];
        let check = |root: &std::path::Path, when: &str| {
            for (p, want) in expect {
                assert_eq!(mode(&root.join(p)), want, "{p} {when}");
            }
            let s = fs::metadata(root.join("etc/secrets.toml")).unwrap();
            assert_eq!((s.uid(), s.gid()), (1234, 5678), "owner {when}");
            assert_eq!(
                (s.mtime(), s.mtime_nsec()),
                (1_577_880_000, 123_456_789),
                "time {when}"
            );
        };
        check(&m.dir, "in the mount");
        // A file created in a setgid directory takes its group.
        sh(
            &m.dir,
            "chgrp 4242 shared && touch shared/inherits && mkdir shared/sub",
        );
        assert_eq!(fs::metadata(m.p("shared/inherits")).unwrap().gid(), 4242);
        assert_eq!(mode(&m.p("shared/sub")) & 0o2000, 0o2000);

        let repo = m.finish();
        let e = entry(&repo, "main", "etc/secrets.toml").unwrap();
        assert_eq!(e.meta.mode, Some(0o600));
        assert_eq!(
            e.meta.owner,
            Some(Owner {
                uid: 1234,
                gid: 5678
            })
        );
        assert_eq!(
            e.meta.mtime,
            Some(Timestamp {
                secs: 1_577_880_000,
                nanos: 123_456_789
            })
        );
        assert_eq!(
            kind(&repo, "main", "run"),
            Some(hero_store::EntryKind::Executable)
        );

        // Checked out (as root, owners too).
        let out = m.tmp().join("checkout");
        let head = repo.branch_head("main").unwrap().unwrap();
        repo.checkout(&head, &out, &CheckoutOptions::default())
            .unwrap();
        check(&out, "after checkout");
        drop(repo);

        // Mounted again.
        let again = Mounted::with(|o| o.repo = m.repo.clone());
        check(&again.dir, "after a remount");
    }

    /// FIFOs, sockets and device nodes made with mknod are stored as what they are (with the
    /// device's number), and an access time set with `touch -a` is kept; both survive the
    /// unmount and show again after a remount.
    #[test]
    fn special_files_and_access_times_are_stored_and_survive_a_remount() {
        use std::os::unix::fs::FileTypeExt;
        let mut m = Mounted::new();
        sh(
            &m.dir,
            "mkfifo -m 600 pipe && mknod null c 1 3 && mknod -m 660 disk b 8 1 \
             && python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); s.bind(\"sock\")' \
             && echo x > f && touch -a -d '2001-09-09 01:46:40.5 UTC' f \
             && chown 33:44 pipe",
        );
        let check = |root: &std::path::Path, when: &str| {
            let t = |p: &str| fs::symlink_metadata(root.join(p)).unwrap();
            assert!(t("pipe").file_type().is_fifo(), "{when}");
            assert_eq!(t("pipe").mode() & 0o7777, 0o600, "{when}");
            assert_eq!((t("pipe").uid(), t("pipe").gid()), (33, 44), "{when}");
            assert!(t("null").file_type().is_char_device(), "{when}");
            assert_eq!(t("null").rdev(), nix::sys::stat::makedev(1, 3), "{when}");
            assert!(t("disk").file_type().is_block_device(), "{when}");
            assert_eq!(t("disk").rdev(), nix::sys::stat::makedev(8, 1), "{when}");
            assert_eq!(t("disk").mode() & 0o7777, 0o660, "{when}");
            assert!(t("sock").file_type().is_socket(), "{when}");
            assert_eq!(
                (t("f").atime(), t("f").atime_nsec()),
                (1_000_000_000, 500_000_000),
                "{when}"
            );
            // Reads leave it (the mount is noatime).
            assert_eq!(fs::read(root.join("f")).unwrap(), b"x\n");
            assert_eq!(
                t("f").atime(),
                1_000_000_000,
                "{when}: read moved the atime"
            );
        };
        check(&m.dir, "in the mount");
        let repo = m.finish();
        let e = |p: &str| entry(&repo, "main", p).unwrap();
        assert_eq!(e("pipe").kind, hero_store::EntryKind::Fifo);
        assert_eq!(e("sock").kind, hero_store::EntryKind::Socket);
        assert_eq!(e("null").kind, hero_store::EntryKind::CharDevice);
        assert_eq!(e("null").meta.rdev, Some(nix::sys::stat::makedev(1, 3)));
        assert_eq!(e("disk").kind, hero_store::EntryKind::BlockDevice);
        assert_eq!(
            e("f").meta.atime,
            Some(Timestamp {
                secs: 1_000_000_000,
                nanos: 500_000_000
            })
        );
        // A checkout leaves the special files out and says so.
        let out = m.tmp().join("checkout");
        let head = repo.branch_head("main").unwrap().unwrap();
        let report = repo
            .checkout(&head, &out, &CheckoutOptions::default())
            .unwrap();
        let skipped: Vec<String> = report
            .skipped_special
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(skipped, ["disk", "null", "pipe", "sock"]);
        drop(repo);
        let again = Mounted::with(|o| o.repo = m.repo.clone());
        check(&again.dir, "after a remount");
    }

    /// Hard links: names in different directories are one inode in the store (one link
    /// group, one content) and, after a remount, again one inode with its link count, whichever
    /// name is looked up first; a write through one name is committed to all.
    #[test]
    fn hard_links_are_one_inode_across_a_remount() {
        let mut m = Mounted::new();
        sh(
            &m.dir,
            "mkdir -p x y && echo one > x/a && ln x/a y/b && ln y/b c && ln -s a x/s \
             && ln x/s y/s2 && echo solo > solo",
        );
        let repo = m.finish();
        let e = |p: &str| entry(&repo, "main", p).unwrap();
        let (a, b, c) = (e("x/a"), e("y/b"), e("c"));
        assert!(a.meta.link.is_some());
        assert_eq!((a.id, a.meta), (b.id, b.meta));
        assert_eq!((a.id, a.meta), (c.id, c.meta));
        assert_eq!(e("x/s").meta.link, e("y/s2").meta.link);
        assert!(e("x/s").meta.link.is_some());
        assert_ne!(e("x/s").meta.link, a.meta.link);
        assert_eq!(e("solo").meta.link, None);
        drop(repo);

        let mut again = Mounted::reuse(m.take_tmp(), |_| {});
        let st = |p: &str| fs::symlink_metadata(again.p(p)).unwrap();
        // The second name first: the others are found with it.
        assert_eq!(st("y/b").nlink(), 3);
        assert_eq!(st("y/b").ino(), st("x/a").ino());
        assert_eq!(st("c").ino(), st("x/a").ino());
        assert_eq!(st("y/s2").ino(), st("x/s").ino());
        assert_eq!(st("solo").nlink(), 1);
        fs::write(again.p("c"), "changed through c\n").unwrap();
        assert_eq!(fs::read(again.p("x/a")).unwrap(), b"changed through c\n");
        fs::remove_file(again.p("x/a")).unwrap();
        assert_eq!(st("y/b").nlink(), 2);
        let repo = again.finish();
        assert!(entry(&repo, "main", "x/a").is_none());
        let (b, c) = (
            entry(&repo, "main", "y/b").unwrap(),
            entry(&repo, "main", "c").unwrap(),
        );
        assert_eq!((b.id, b.meta), (c.id, c.meta));
        assert_eq!(content(&repo, "main", "y/b"), b"changed through c\n");
    }

    /// `cp -a src/. mnt/` gives the mount's root the source's mode, owner and times; they are
    /// kept in the commit and shown again after a remount, and later changes in the root
    /// keep the mode and owner.
    #[test]
    fn cp_a_into_the_root_sets_its_mode_owner_and_time_across_a_remount() {
        let mut m = Mounted::with(|o| o.allow_other = true);
        sh(
            m.tmp(),
            "mkdir src && echo x > src/f && chmod 2750 src && chown 1234:5678 src \
             && touch -d '2020-01-01 12:00:00.5 UTC' src",
        );
        sh(m.tmp(), "cp -a src/. mnt/");
        let check = |dir: &std::path::Path, when: &str| {
            let s = fs::metadata(dir).unwrap();
            assert_eq!(s.mode() & 0o7777, 0o2750, "mode {when}");
            assert_eq!((s.uid(), s.gid()), (1234, 5678), "owner {when}");
            assert_eq!(
                (s.mtime(), s.mtime_nsec()),
                (1_577_880_000, 500_000_000),
                "time {when}"
            );
        };
        check(&m.dir, "in the mount");
        let repo = m.finish();
        let head = repo.branch_head("main").unwrap().unwrap();
        let meta = repo.commit(&head).unwrap().root_meta();
        assert_eq!(meta.mode, Some(0o2750));
        assert_eq!(
            meta.owner,
            Some(Owner {
                uid: 1234,
                gid: 5678
            })
        );
        // Every change went in: nothing was skipped for the root.
        assert_eq!(content(&repo, "main", "f"), b"x\n");
        drop(repo);
        let mut again = Mounted::reuse(m.take_tmp(), |o| o.allow_other = true);
        check(&again.dir, "after a remount");
        // A new file in the root changes its time, not its mode or owner; a commit made
        // elsewhere keeps them too.
        sh(&again.dir, "echo y > g");
        let repo = again.finish();
        let head = repo.branch_head("main").unwrap().unwrap();
        let meta = repo.commit(&head).unwrap().root_meta();
        assert_eq!(meta.mode, Some(0o2750));
        assert_eq!(
            meta.owner,
            Some(Owner {
                uid: 1234,
                gid: 5678
            })
        );
        assert_ne!(meta.mtime.map(|t| t.secs), Some(1_577_880_000));
        let mut cs = repo.change_set("main").unwrap();
        cs.put_bytes(
            &hero_store::RepoPath::parse("h").unwrap(),
            hero_store::EntryKind::File,
            b"h",
        )
        .unwrap();
        let done = cs
            .commit(
                hero_fuse::Author::new("t", "t@localhost").commit_meta("h\n"),
                hero_store::Expect::Latest,
            )
            .unwrap();
        assert_eq!(repo.commit(&done.id).unwrap().root_meta().owner, meta.owner);
    }

    /// With `--allow-other` the kernel checks other users against the stored modes and
    /// owners: a service account reads a 0644 file and not a 0600 one, and cannot write
    /// either; without it the mount stays private to its owner.
    #[test]
    fn another_user_reads_what_the_modes_allow_through_an_allow_other_mount() {
        let m = Mounted::with(|o| o.allow_other = true);
        sh(
            &m.dir,
            "echo public > public.toml && echo secret > secret.toml && chmod 600 secret.toml",
        );
        let as_nobody = |args: &[&str]| {
            Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .args(args)
                .current_dir(&m.dir)
                .output()
                .unwrap()
        };
        let ok = as_nobody(&["cat", "public.toml"]);
        assert!(ok.status.success(), "{ok:?}");
        assert_eq!(ok.stdout, b"public\n");
        let refused = as_nobody(&["cat", "secret.toml"]);
        assert!(!refused.status.success(), "{refused:?}");
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("Permission denied"),
            "{refused:?}"
        );
        let write = as_nobody(&["sh", "-c", "echo x >> public.toml"]);
        assert!(!write.status.success(), "{write:?}");
        assert_eq!(fs::read(m.p("public.toml")).unwrap(), b"public\n");

        let private = Mounted::new();
        fs::write(private.p("f"), b"x").unwrap();
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg("cat")
            .arg(private.p("f"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "a private mount let another user in");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
            "{out:?}"
        );
    }

    /// `.hero/` (the daemon's configuration) is changed only by the mount's own account, even
    /// where the modes let others write; with `config_writable` off, by nobody (ADR 0022).
    #[test]
    fn only_the_mounts_account_changes_the_configuration_directory() {
        let writable = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let m = {
            let w = writable.clone();
            Mounted::with(move |o| {
                o.allow_other = true;
                o.config_writable = w;
            })
        };
        sh(
            &m.dir,
            "chmod 777 . && mkdir -m 777 .hero pub && echo a > .hero/daemon.toml && \
             chmod 666 .hero/daemon.toml",
        );
        let as_nobody = |script: &str| {
            Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .args(["sh", "-c", script])
                .current_dir(&m.dir)
                .output()
                .unwrap()
        };
        // What the modes allow elsewhere works for the other account.
        let out = as_nobody("echo x > pub/x && mkdir pub/d && mv pub/x pub/d/y");
        assert!(out.status.success(), "{out:?}");
        for script in [
            "echo x > .hero/x",
            "echo x >> .hero/daemon.toml",
            "echo x > .hero/daemon.toml",
            "truncate -s 0 .hero/daemon.toml",
            "touch .hero/daemon.toml",
            "rm .hero/daemon.toml",
            "mkdir .hero/d",
            "ln -s daemon.toml .hero/l",
            "mv pub/d/y .hero/y",
            "mv .hero/daemon.toml pub/z",
            "mv .hero hidden",
            "mkdir pub/h && mv pub/h .hero",
        ] {
            let out = as_nobody(script);
            assert!(!out.status.success(), "{script}: {out:?}");
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
                "{script}: {out:?}"
            );
        }
        assert_eq!(fs::read(m.p(".hero/daemon.toml")).unwrap(), b"a\n");
        assert_eq!(
            fs::read_dir(m.p(".hero")).unwrap().count(),
            1,
            "nothing added to .hero"
        );
        // The mount's own account may.
        sh(&m.dir, "echo b > .hero/daemon.toml && mkdir .hero/d");
        // Switched off: nobody may, the mount's account included; elsewhere is unchanged.
        writable.store(false, std::sync::atomic::Ordering::Relaxed);
        for op in [
            fs::write(m.p(".hero/daemon.toml"), b"c"),
            fs::write(m.p(".hero/new"), b"c"),
            fs::remove_dir(m.p(".hero/d")),
            fs::rename(m.p(".hero"), m.p("h")),
        ] {
            assert_eq!(errno(op), libc_eacces());
        }
        fs::write(m.p("pub/ok"), b"ok").unwrap();
        assert_eq!(fs::read(m.p(".hero/daemon.toml")).unwrap(), b"b\n");
    }

    fn libc_eacces() -> i32 {
        13
    }

    /// Times survive a remount even when the content changed before it: rsync and make see
    /// unchanged files as unchanged.
    #[test]
    fn a_written_file_keeps_its_modification_time_across_a_remount() {
        let mut m = Mounted::new();
        fs::write(m.p("a.txt"), b"a").unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_600_000_000, 42);
        fs::File::options()
            .write(true)
            .open(m.p("a.txt"))
            .unwrap()
            .set_modified(t)
            .unwrap();
        let before = fs::metadata(m.p("a.txt")).unwrap().modified().unwrap();
        assert_eq!(before, t);
        drop(m.finish());
        let again = Mounted::with(|o| o.repo = m.repo.clone());
        assert_eq!(
            fs::metadata(again.p("a.txt")).unwrap().modified().unwrap(),
            t
        );
    }
}
