//! # hero-tests
//!
//! Cross-crate and multi-process tests; the tests live in `tests/tests/`. What several test
//! binaries need is here: running `heroctl` against a repository ([`Heroctl`]), waiting for
//! what another process does ([`wait_for`], [`wait_until`]), FUSE mounts ([`require_fuse`],
//! [`mounted`]), git repositories ([`git`], [`git_with_input`]) and seeded bytes ([`noise`]).
//!
//! Every helper panics on failure: each is a test's assertion.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use hero_store::{CommitMeta, EntryKind, Expect, Repo, RepoPath, Signature};
use hero_sync::SecretKey;
use hero_sync::commitsig::{CommitSig, Kind};

/// One `heroctl` binary, run the way the end-to-end tests run it: against a repository
/// (`-R`), as the author `Tester <t@example.com>`, never told of a service manager
/// (`NOTIFY_SOCKET` removed), and unless made with [`Heroctl::default_net`], with peers on
/// 127.0.0.1 only (`HERO_NET=local`).
///
/// The binary is the caller's: `Heroctl::local(env!("CARGO_BIN_EXE_heroctl"))` in a test of the
/// crate that builds it, so the tests run what cargo just built.
#[derive(Debug, Clone)]
pub struct Heroctl {
    bin: PathBuf,
    local_net: bool,
}

impl Heroctl {
    /// `bin`, its peers on 127.0.0.1 only.
    pub fn local(bin: impl Into<PathBuf>) -> Self {
        Heroctl {
            bin: bin.into(),
            local_net: true,
        }
    }

    /// `bin` with the network it chooses by default.
    pub fn default_net(bin: impl Into<PathBuf>) -> Self {
        Heroctl {
            bin: bin.into(),
            local_net: false,
        }
    }

    /// The binary.
    pub fn path(&self) -> &Path {
        &self.bin
    }

    /// `heroctl -R repo args`, not started.
    pub fn cmd(&self, repo: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("-R")
            .arg(repo)
            .args(args)
            .env("HERO_AUTHOR_NAME", "Tester")
            .env("HERO_AUTHOR_EMAIL", "t@example.com")
            .env_remove("NOTIFY_SOCKET");
        if self.local_net {
            c.env("HERO_NET", "local");
        }
        c
    }

    /// Runs `heroctl -R repo args` to its end.
    pub fn run(&self, repo: &Path, args: &[&str]) -> Output {
        self.cmd(repo, args).output().unwrap()
    }

    /// Runs `heroctl -R repo args`, which must succeed; its stdout.
    pub fn ok(&self, repo: &Path, args: &[&str]) -> String {
        let out = self.run(repo, args);
        assert!(
            out.status.success(),
            "heroctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs `heroctl -R repo --json args`, which must succeed; its output parsed.
    pub fn json(&self, repo: &Path, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.ok(repo, &a)).unwrap()
    }
}

/// Polls `f` (a state another process makes) every 20 ms until it returns `Some`; fails the
/// test when `secs` seconds pass first.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `f` until it holds, for up to 30 s.
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    wait_for(30, what, || f().then_some(()));
}

/// Sends `sig` (`-TERM`, `-HUP`, …) to the process `child` with kill(1); the signal must be
/// delivered.
pub fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill")
        .arg(sig)
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success(), "kill {sig} {}", child.id());
}

/// Fails the test unless FUSE mounts can be made here (`/dev/fuse` and `fusermount3`).
pub fn require_fuse() {
    assert!(
        Path::new("/dev/fuse").exists(),
        "these tests mount with FUSE: /dev/fuse is missing"
    );
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("fusermount3").exists()))
        .unwrap_or(false);
    assert!(
        found,
        "these tests need fusermount3 (apt-get install fuse3)"
    );
}

/// Whether something is mounted at `dir` (this process's mount table).
pub fn mounted(dir: &Path) -> bool {
    let want = dir.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want))
}

/// Runs `git -C dir args` as the author and committer `Ann <ann@example.com>`, no system
/// configuration; it must succeed. Its stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_cmd(dir, args).output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Makes a git repository at `dir` (created if missing) on branch `branch`, with `files` in one
/// commit of message `msg`.
pub fn git_repo_with<C: AsRef<[u8]>>(dir: &Path, branch: &str, files: &[(&str, C)], msg: &str) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", branch]);
    write_files(dir, files);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", msg]);
}

/// [`git`] with `input` on its stdin; its stdout, trimmed.
pub fn git_with_input(dir: &Path, args: &[&str], input: &str) -> String {
    let mut child = git_cmd(dir, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the git CLI is needed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn git_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("git");
    c.arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Ann")
        .env("GIT_AUTHOR_EMAIL", "ann@example.com")
        .env("GIT_COMMITTER_NAME", "Ann")
        .env("GIT_COMMITTER_EMAIL", "ann@example.com");
    c
}

/// Writes `files` (path relative to `dir`, content) under `dir`, making directories on the way.
pub fn write_files<C: AsRef<[u8]>>(dir: &Path, files: &[(&str, C)]) {
    for (path, content) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
}

/// `len` pseudo-random bytes, the same for the same `seed` (incompressible: no compressor
/// shrinks them, and no two seeds share a run).
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    fastrand::Rng::with_seed(seed).fill(&mut out);
    out
}

/// Commits `files` onto `branch` of the repository at `repo` as the node of `key` and signs
/// the commit, the way a modified client would: no check of its own on the way in. The
/// commit's id in hex.
///
pub fn commit_signed_as(
    repo: &Path,
    key: &SecretKey,
    branch: &str,
    files: &[(&str, &[u8])],
) -> String {
    let r = Repo::open(repo).unwrap();
    let m = hero_sync::gate::membership_of(&r).unwrap();
    let mut cs = r.change_set(branch).unwrap();
    for (p, c) in files {
        cs.put_bytes(&RepoPath::parse(p).unwrap(), EntryKind::File, c)
            .unwrap();
    }
    let mut meta = CommitMeta::new(
        Signature {
            name: b"modified client".to_vec(),
            email: Vec::new(),
            time: 1_800_000_000,
            tz_offset_minutes: 0,
        },
        "planted".to_owned(),
    );
    meta.extra.push(hero_sync::peer_header(&key.public()));
    let id = cs.commit(meta, Expect::Latest).unwrap().id;
    let sig = CommitSig::sign(key, Kind::Made, &id, m.heads());
    assert_eq!(hero_sync::commitsig::store(&r, &[(id, sig)]).unwrap(), 1);
    id.to_hex()
}
