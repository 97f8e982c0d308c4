//! What heroctl never writes, end to end through the built heroctl,
//! the real git CLI, a real FUSE mount and a real WebDAV share: hero's own `hero/` branches,
//! and the paths git itself refuses (`.git` and its aliases, `..`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use hero_store::{CommitMeta, EntryKind, Expect, Repo, RepoPath, Signature};

use hero_tests::{git_with_input, mounted, signal, wait_until};

use crate::cli::{bin, git, heroctl, ok, run};

/// The commits of [`unsafe_git_repo`].
struct UnsafeGit {
    dir: PathBuf,
    /// The safe first commit (branch `clean`).
    clean: String,
    /// Its child, whose tree holds `.git/hooks/x`, `.GIT/config` and `../x` (tag `v1`).
    bad: String,
}

/// A git repository whose history holds `.git/hooks/x`, `.GIT/config` and `../x`, made with
/// plumbing (git's porcelain refuses them): `clean` → `bad` (tagged `v1`) → a safe child
/// (`main`).
fn unsafe_git_repo(parent: &Path) -> UnsafeGit {
    let dir = parent.join("unsafe-git");
    std::fs::create_dir_all(&dir).unwrap();
    git(&dir, &["init", "-q", "-b", "main"]);
    let blob = |s: &str| git_with_input(&dir, &["hash-object", "-w", "--stdin"], s);
    let tree = |s: &str| git_with_input(&dir, &["mktree"], s);
    let (hook, config, ok_txt) = (
        blob("#!/bin/sh\necho owned\n"),
        blob("[core]\n"),
        blob("ok\n"),
    );
    let hooks = tree(&format!("100755 blob {hook}\tx\n"));
    let dot_git = tree(&format!("040000 tree {hooks}\thooks\n"));
    let upper = tree(&format!("100644 blob {config}\tconfig\n"));
    let dotdot = tree(&format!("100755 blob {hook}\tx\n"));
    let bad_tree = tree(&format!(
        "040000 tree {dot_git}\t.git\n040000 tree {upper}\t.GIT\n040000 tree {dotdot}\t..\n\
         100644 blob {ok_txt}\tok.txt\n100644 blob {config}\t.gitignore\n"
    ));
    // git itself would not take it.
    let fsck = Command::new("git")
        .arg("-C")
        .arg(&dir)
        .args(["fsck", "--strict", &bad_tree])
        .output()
        .unwrap();
    assert!(!fsck.status.success(), "git fsck accepted the unsafe tree");
    let clean_tree = tree(&format!("100644 blob {ok_txt}\tok.txt\n"));
    let clean = git_with_input(&dir, &["commit-tree", &clean_tree, "-m", "clean"], "");
    let bad = git_with_input(
        &dir,
        &["commit-tree", &bad_tree, "-p", &clean, "-m", "bad"],
        "",
    );
    let new_txt = blob("new\n");
    let after_tree = tree(&format!(
        "100644 blob {new_txt}\tnew.txt\n100644 blob {ok_txt}\tok.txt\n"
    ));
    let after = git_with_input(
        &dir,
        &["commit-tree", &after_tree, "-p", &bad, "-m", "after"],
        "",
    );
    git(&dir, &["update-ref", "refs/heads/main", &after]);
    git(&dir, &["update-ref", "refs/heads/clean", &clean]);
    git(&dir, &["tag", "-a", "-m", "the bad one", "v1", &bad]);
    UnsafeGit { dir, clean, bad }
}

/// Every path under `dir` (relative), sorted.
fn tree_of(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            if p.symlink_metadata().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// What a mount at `dir` shows outside `.snapshots/`.
fn mount_tree(dir: &Path) -> Vec<String> {
    let mut t = tree_of(dir);
    t.retain(|p| !p.starts_with(".snapshots"));
    t
}

/// Fails when any name under `dir` is `.git` or an alias of it.
fn assert_no_git_dir(dir: &Path) {
    for p in tree_of(dir) {
        for name in Path::new(&p).iter() {
            assert!(
                !hero_store::is_git_unsafe(name.as_encoded_bytes()),
                "{p} written under {}",
                dir.display()
            );
        }
    }
}

fn exit_code(out: &Output) -> Option<i32> {
    out.status.code()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `heroctl ARGS` that must be refused (exit 4); its stderr.
fn refused(repo: &Path, args: &[&str]) -> String {
    let out = run(repo, args);
    assert_eq!(
        exit_code(&out),
        Some(4),
        "heroctl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    stderr(&out)
}

fn json(repo: &Path, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    serde_json::from_str(&ok(repo, &a)).unwrap()
}

/// A running `heroctl mount`; stopped with SIGTERM (committing what it has) by [`Mount::stop`].
struct Mount {
    child: Child,
    dir: PathBuf,
}

impl Mount {
    fn start(repo: &Path, dir: &Path, extra: &[&str]) -> Mount {
        assert!(
            Path::new("/dev/fuse").exists(),
            "FUSE (/dev/fuse) is needed for this test"
        );
        std::fs::create_dir_all(dir).unwrap();
        let child = bin()
            .cmd(
                repo,
                &["mount", "--idle-ms", "60000", "--max-delay-ms", "60000"],
            )
            .args(extra)
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut m = Mount {
            child,
            dir: dir.to_path_buf(),
        };
        wait_until("heroctl mount", || {
            if let Ok(Some(st)) = m.child.try_wait() {
                panic!("heroctl mount ended: {st}");
            }
            mounted(&m.dir)
        });
        m
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn stop(self) {
        signal(&self.child, "-TERM");
        let out = self.child.wait_with_output().unwrap();
        assert!(out.status.success(), "heroctl mount: {}", stderr(&out));
        assert!(!mounted(&self.dir));
    }
}

/// A running `heroctl serve dav` on a free loopback port.
/// The share's token in these tests (`HERO_DAV_TOKEN`).
const SHARE_TOKEN: &str = "refusals-test-token";

struct Share {
    child: Child,
    addr: String,
}

impl Share {
    fn start(repo: &Path, branch: &str) -> Share {
        Share::start_logged(repo, branch, Stdio::inherit())
    }

    /// [`Share::start`] with its standard error (its log) sent to `log`.
    fn start_logged(repo: &Path, branch: &str, log: Stdio) -> Share {
        let mut child = Command::new(heroctl())
            .arg("-R")
            .arg(repo)
            .args(["serve", "dav", "--addr", "127.0.0.1:0", "--branch", branch])
            .env("HERO_DAV_TOKEN", SHARE_TOKEN)
            .env("HERO_AUTHOR_NAME", "Tester")
            .env("HERO_AUTHOR_EMAIL", "t@example.com")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        // It says where it listens once it does.
        let mut stdout = child.stdout.take().unwrap();
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\n") {
            assert_eq!(stdout.read(&mut byte).unwrap(), 1, "serve dav ended");
            line.push(byte[0]);
        }
        let line = String::from_utf8(line).unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        Share { child, addr }
    }

    /// One HTTP/1.1 request; the status code and the body.
    fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {SHARE_TOKEN}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            body.len()
        )
        .unwrap();
        s.write_all(body).unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).unwrap();
        let resp = String::from_utf8_lossy(&resp).into_owned();
        let code = resp
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status in {resp:?}"));
        (code, resp)
    }

    fn stop(mut self) {
        signal(&self.child, "-TERM");
        self.child.wait().unwrap();
    }
}

const EINVAL: i32 = 22;

/// A share run outside the daemon checks what it lets in against the repository's schemas
/// and logs each problem, as the daemon does (the mount runs the same watcher); the save
/// itself lands.
#[test]
fn a_standalone_share_logs_a_save_that_breaks_a_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, _) = crate::cli::repo_with(
        tmp.path(),
        &[
            (
                ".hero/schemas/etc.toml",
                "[[rule]]\nglob = \"etc/*.toml\"\nranges = { \"port\" = { min = 1, max = 65535 } }\n",
            ),
            ("etc/app.toml", "port = 80\n"),
        ],
        "first",
    );
    let log = tmp.path().join("share.log");
    let share = Share::start_logged(
        &repo,
        "main",
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    let (code, _) = share.request("PUT", "/etc/app.toml", b"\nport = 70000\n");
    assert!((200..300).contains(&code), "PUT answered {code}");
    hero_tests::wait_until("the share's log names the problem", || {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("etc/app.toml:2:8: `port` is 70000, must be between 1 and 65535")
    });
    share.stop();
    assert_eq!(ok(&repo, &["get", "main:etc/app.toml", "port"]), "70000\n");
}

mod unsafe_paths {
    use super::*;

    #[test]
    fn an_import_of_a_history_holding_paths_git_refuses_fails_naming_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let src = unsafe_git_repo(tmp.path());
        let repo = tmp.path().join("r.hero");
        ok(&repo, &["init"]);
        let out = run(
            &repo,
            &["--json", "import", "git", src.dir.to_str().unwrap()],
        );
        assert_eq!(exit_code(&out), Some(4), "{}", stderr(&out));
        let err: serde_json::Value = serde_json::from_str(&stderr(&out)).unwrap();
        assert_eq!(err["error"]["kind"], "refused", "{err}");
        let causes = err["error"]["causes"].to_string();
        assert!(causes.contains("unsafe path"), "{causes}");
        assert!(causes.contains(&src.bad), "{causes}");
        assert!(
            [r#"\"..\""#, r#"\".git\""#, r#"\".GIT\""#]
                .iter()
                .any(|p| causes.contains(p)),
            "{causes}"
        );
        assert!(
            err["error"]["hint"]
                .as_str()
                .unwrap()
                .contains("--skip-unsafe-paths"),
            "{err}"
        );
        // Nothing of it is a branch here.
        assert_eq!(json(&repo, &["branch"]), serde_json::json!([]));
    }

    #[test]
    fn skipping_unsafe_paths_imports_the_rest_lists_what_it_dropped_and_writes_none_of_it() {
        let tmp = tempfile::tempdir().unwrap();
        let src = unsafe_git_repo(tmp.path());
        let repo = tmp.path().join("r.hero");
        ok(&repo, &["init"]);
        let v = json(
            &repo,
            &[
                "import",
                "git",
                src.dir.to_str().unwrap(),
                "--skip-unsafe-paths",
            ],
        );
        assert_eq!(v["commits"], 3, "{v}");
        let dropped: Vec<(String, String)> = v["dropped"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["path"].as_str().unwrap().to_owned(),
                    d["commit"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = ["..", ".GIT", ".git"]
            .iter()
            .map(|p| (p.to_string(), src.bad.clone()))
            .collect();
        assert_eq!(dropped, want, "{v}");
        // The bad commit, its child and the tag on it lose their git ids.
        assert_eq!(v["rewritten"], 3, "{v}");
        let text = ok(&repo, &["ls", "main~1"]);
        assert!(
            text.contains("ok.txt") && text.contains(".gitignore"),
            "{text}"
        );
        for name in [".git", ".GIT", ".."] {
            assert!(
                !text.lines().any(|l| l.ends_with(&format!(" {name}"))),
                "{text}"
            );
        }
        // A second run finds nothing new (and moves nothing); what it dropped is no difference.
        let again = json(
            &repo,
            &[
                "import",
                "git",
                src.dir.to_str().unwrap(),
                "--skip-unsafe-paths",
                "--verify",
            ],
        );
        assert_eq!(again["commits"], 0, "{again}");
        assert_eq!(again["verify"]["commits"], 3, "{again}");
        assert_eq!(
            again["verify"]["differences"],
            serde_json::json!([]),
            "{again}"
        );
        assert_eq!(again["refs_unchanged"], 3, "{again}");

        // A checkout writes only what it holds, into the target.
        let work = tmp.path().join("work");
        std::fs::create_dir(&work).unwrap();
        let out = work.join("out");
        let c = json(&repo, &["checkout", "v1", out.to_str().unwrap()]);
        assert_eq!(c["skipped_unsafe"], serde_json::json!([]), "{c}");
        assert_eq!(
            tree_of(&work),
            ["out", "out/.gitignore", "out/.herocheckout", "out/ok.txt"]
        );
        assert!(!tmp.path().join("x").exists());

        // So does a mount; and it makes none.
        let m = Mount::start(&repo, &tmp.path().join("mnt"), &[]);
        assert_eq!(mount_tree(&m.dir), ["new.txt", "ok.txt"]);
        // History too (`.snapshots/` shows the bad commit without them).
        assert!(m.p(".snapshots/v1/ok.txt").exists());
        assert_no_git_dir(&m.dir);
        for name in [".git", ".GIT", "sub/.Git"] {
            if name.starts_with("sub/") {
                std::fs::create_dir_all(m.p("sub")).unwrap();
            }
            let e = std::fs::create_dir(m.p(name)).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(EINVAL), "mkdir {name}: {e}");
            let e = std::fs::File::create(m.p(name)).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(EINVAL), "touch {name}: {e}");
        }
        std::fs::write(m.p("f"), "f\n").unwrap();
        let e = std::fs::rename(m.p("f"), m.p("git~1")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(EINVAL), "mv f git~1: {e}");
        let mnt = m.dir.clone();
        assert_no_git_dir(&mnt);
        m.stop();
        assert_eq!(tree_of(&mnt), Vec::<String>::new());
        let ls = ok(&repo, &["ls", "-r", "main"]);
        assert!(ls.contains("sub") && ls.contains(" f\n"), "{ls}");
        assert!(!ls.to_lowercase().contains(".git "), "{ls}");

        // Export: every history that held nothing unsafe keeps its git ids, git takes all of
        // it, and the rewritten commits hold no unsafe path.
        let exported = tmp.path().join("out.git");
        ok(&repo, &["export", "git", exported.to_str().unwrap()]);
        git(&exported, &["fsck", "--strict", "--no-progress"]);
        assert_eq!(
            git(&exported, &["rev-parse", "refs/heads/clean"]).trim(),
            src.clean
        );
        let bad_again = git(&exported, &["rev-parse", "v1^{commit}"]);
        assert_ne!(bad_again.trim(), src.bad);
        let files = git(&exported, &["ls-tree", "-r", "--name-only", "v1"]);
        assert_eq!(files, ".gitignore\nok.txt\n");
    }

    /// A tree holding `.git` that reached the store another way (a peer, or a `commit DIR`
    /// before they were refused) is never written: checkout skips and lists it, the mount and
    /// the share do not show it, and neither makes one.
    #[test]
    fn a_git_directory_already_in_a_tree_is_never_written_by_checkout_mount_or_share() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("r.hero");
        ok(&repo, &["init"]);
        {
            let r = Repo::open(&repo).unwrap();
            let mut cs = r.change_set("planted").unwrap();
            for (p, kind) in [
                (".git/hooks/post-checkout", EntryKind::Executable),
                (".GIT/config", EntryKind::File),
                ("sub/git~1/config", EntryKind::File),
                ("sub/ok.txt", EntryKind::File),
                (".github/ci.yml", EntryKind::File),
            ] {
                cs.put_bytes(
                    &RepoPath::parse(p).unwrap(),
                    kind,
                    b"#!/bin/sh\necho owned\n",
                )
                .unwrap();
            }
            let sig = Signature {
                name: b"t".to_vec(),
                email: Vec::new(),
                time: 1_700_000_000,
                tz_offset_minutes: 0,
            };
            cs.commit(CommitMeta::new(sig, "planted"), Expect::Base)
                .unwrap();
        }
        let out = tmp.path().join("out");
        let c = json(&repo, &["checkout", "planted", out.to_str().unwrap()]);
        assert_eq!(
            c["skipped_unsafe"],
            serde_json::json!([".GIT", ".git", "sub/git~1"]),
            "{c}"
        );
        assert_eq!(
            tree_of(&out),
            [
                ".github",
                ".github/ci.yml",
                ".herocheckout",
                "sub",
                "sub/ok.txt"
            ]
        );
        // `update` of that directory removes nothing it did not write.
        std::fs::create_dir_all(out.join(".git")).unwrap();
        std::fs::write(out.join(".git/HEAD"), "mine\n").unwrap();
        ok(&repo, &["update", out.to_str().unwrap()]);
        assert_eq!(
            std::fs::read_to_string(out.join(".git/HEAD")).unwrap(),
            "mine\n"
        );
        // `status` and `commit DIR` leave the directory's own `.git` out, and keep the
        // branch's as they are.
        std::fs::write(out.join("sub/ok.txt"), "changed\n").unwrap();
        let st = ok(&repo, &["status", out.to_str().unwrap()]);
        assert_eq!(st.trim(), "M sub/ok.txt");
        ok(&repo, &["commit", out.to_str().unwrap(), "-m", "edit"]);
        assert_eq!(ok(&repo, &["cat", "planted:sub/ok.txt"]), "changed\n");
        let cat = run(&repo, &["cat", "planted:.git/HEAD"]);
        assert_eq!(exit_code(&cat), Some(3), "{}", stderr(&cat));
        assert_eq!(
            ok(&repo, &["cat", "planted:sub/git~1/config"]),
            "#!/bin/sh\necho owned\n"
        );

        let m = Mount::start(&repo, &tmp.path().join("mnt"), &["--branch", "planted"]);
        assert_eq!(
            mount_tree(&m.dir),
            [".github", ".github/ci.yml", "sub", "sub/ok.txt"]
        );
        assert!(m.p(".snapshots/planted/sub/ok.txt").exists());
        assert_no_git_dir(&m.dir);
        let e = std::fs::metadata(m.p(".git")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
        let e = std::fs::create_dir(m.p(".git")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(EINVAL), "{e}");
        m.stop();

        let before = ok(&repo, &["ls", "-r", "planted"]);
        let share = Share::start(&repo, "planted");
        let (code, _) = share.request("GET", "/sub/ok.txt", b"");
        assert_eq!(code, 200);
        let (code, _) = share.request("GET", "/.git/hooks/post-checkout", b"");
        assert_eq!(code, 404);
        let (code, body) = share.request("PROPFIND", "/", b"");
        assert_eq!(code, 207, "{body}");
        assert!(
            body.contains(".github") && !body.contains(".git/"),
            "{body}"
        );
        assert!(!body.contains(".GIT"), "{body}");
        for path in ["/.git/config", "/.GIT", "/sub/.Git", "/git~1"] {
            let (code, body) = share.request("PUT", path, b"[core]\n");
            assert_eq!(code, 403, "PUT {path}: {body}");
        }
        let (code, body) = share.request("MKCOL", "/.git", b"");
        assert_eq!(code, 403, "{body}");
        let (code, _) = share.request("PUT", "/new.txt", b"new\n");
        assert!(code == 201 || code == 204, "{code}");
        share.stop();
        // The share made new.txt, and nothing else.
        let after = ok(&repo, &["ls", "-r", "planted"]);
        let added: Vec<&str> = after.lines().filter(|l| !before.contains(l)).collect();
        assert_eq!(added.len(), 1, "{before}\n{after}");
        assert!(added[0].ends_with(" new.txt"), "{after}");
        assert!(
            before.lines().all(|l| after.contains(l)),
            "{before}\n{after}"
        );
    }
}

mod reserved {
    use super::*;

    /// Every command that would create, move or delete a `hero/` branch is refused (exit 4)
    /// and says why; reading it stays allowed; the membership never moves.
    #[test]
    fn heros_own_branches_are_read_only_to_every_command() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("r.hero");
        let src = tmp.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("a.txt"), "a\n").unwrap();
        ok(&repo, &["init"]);
        ok(&repo, &["commit", src.to_str().unwrap(), "-m", "one"]);
        let head = || {
            json(&repo, &["log", "-n", "1", "hero/membership"])[0]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let before = head();
        let s = src.to_str().unwrap();
        for args in [
            &["commit", s, "--branch", "hero/membership", "--replace"][..],
            &["commit", s, "--branch", "hero/x"],
            &["branch", "hero/x"],
            &["branch", "-d", "hero/membership"],
            &["branch", "--default", "hero/membership"],
            &["undo", "--branch", "hero/membership"],
            &["revert", "main", "--branch", "hero/membership"],
            &[
                "restore",
                "a.txt",
                "--rev",
                "main",
                "--branch",
                "hero/membership",
            ],
            &[
                "serve",
                "dav",
                "--addr",
                "127.0.0.1:0",
                "--branch",
                "hero/membership",
            ],
        ] {
            let err = refused(&repo, args);
            assert!(err.contains("reserved"), "{args:?}: {err}");
        }
        let mnt = tmp.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let err = refused(
            &repo,
            &[
                "mount",
                "--branch",
                "hero/membership",
                mnt.to_str().unwrap(),
            ],
        );
        assert!(err.contains("reserved"), "{err}");
        assert!(!mounted(&mnt));

        // Reading: log, ls, cat, a checkout (whose `commit DIR` is refused), a read-only
        // mount (whose writes are refused).
        let ls = json(&repo, &["ls", "-r", "hero/membership"]);
        let change = ls
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "file")
            .and_then(|e| e["path"].as_str())
            .unwrap_or_else(|| panic!("{ls}"))
            .to_owned();
        let cat = run(&repo, &["cat", &format!("hero/membership:{change}")]);
        assert!(
            cat.status.success() && !cat.stdout.is_empty(),
            "{}",
            stderr(&cat)
        );
        let copy = tmp.path().join("copy");
        ok(
            &repo,
            &["checkout", "hero/membership", copy.to_str().unwrap()],
        );
        std::fs::write(copy.join("mine"), "x\n").unwrap();
        let err = refused(&repo, &["commit", copy.to_str().unwrap()]);
        assert!(err.contains("reserved"), "{err}");
        let m = Mount::start(&repo, &mnt, &["--read-only", "--branch", "hero/membership"]);
        assert!(m.p(&change).exists());
        let e = std::fs::write(m.p("mine"), "x\n").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ReadOnlyFilesystem, "{e}");
        m.stop();

        assert_eq!(head(), before);
        assert_eq!(json(&repo, &["branch"]).as_array().unwrap().len(), 1);
    }
}
