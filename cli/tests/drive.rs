//! `heroctl mount` as a real process: killed with SIGKILL mid-work, the next `heroctl mount`
//! commits what it had not (docs/durability.md).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{heroctl, ok};

pub(crate) fn mounted(dir: &Path) -> bool {
    let want = dir.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want))
}

pub(crate) fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mount(repo: &Path, dir: &Path) -> Child {
    mount_with(repo, dir, &[])
}

fn mount_with(repo: &Path, dir: &Path, extra: &[&str]) -> Child {
    let child = Command::new(heroctl())
        .arg("-R")
        .arg(repo)
        .args(["mount", "--idle-ms", "60000", "--max-delay-ms", "60000"])
        .args(extra)
        .arg(dir)
        .env("HERO_AUTHOR_NAME", "Tester")
        .env("HERO_AUTHOR_EMAIL", "t@example.com")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("heroctl mount", || mounted(dir));
    child
}

pub(crate) fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill")
        .arg(sig)
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

fn sh(dir: &Path, script: &str) {
    let st = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(st.success(), "{script}");
}

#[test]
fn heroctl_mount_killed_after_cp_loses_nothing_and_leaves_no_spill() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("r.hero");
    ok(&repo, &["init"]);
    let dir = tmp.path().join("mnt");
    std::fs::create_dir(&dir).unwrap();
    sh(
        tmp.path(),
        "mkdir -p src/sub && for i in $(seq 1 27); do echo $i > src/f$i; done && \
         head -c 2000000 /dev/urandom > src/sub/big",
    );
    let mut m = mount(&repo, &dir);
    sh(tmp.path(), "cp -r src mnt/tree");
    signal(&m, "-KILL");
    m.wait().unwrap();
    let _ = Command::new("fusermount3").arg("-u").arg(&dir).status();
    let spill = tmp.path().join("r.hero.spill");
    assert!(spill.exists());

    // The next mount recovers; a clean stop (SIGTERM) unmounts.
    let m2 = mount(&repo, &dir);
    sh(tmp.path(), "diff -r src mnt/tree");
    signal(&m2, "-TERM");
    let out = m2.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(!spill.exists(), "spill data left behind");
    assert!(ok(&repo, &["log"]).contains("mount: recovery of"));
    let out = tmp.path().join("out");
    ok(&repo, &["checkout", "main", out.to_str().unwrap()]);
    sh(tmp.path(), "diff -r src out/tree");
}

#[test]
fn heroctl_mount_exits_committing_pending_writes_when_unmounted_from_outside() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("r.hero");
    ok(&repo, &["init"]);
    let dir = tmp.path().join("mnt");
    std::fs::create_dir(&dir).unwrap();
    for cmd in ["umount", "fusermount3 -u"] {
        let m = mount(&repo, &dir);
        let name = cmd.replace(' ', "_");
        sh(tmp.path(), &format!("echo {name} > mnt/{name}.txt"));
        sh(tmp.path(), &format!("{cmd} mnt"));
        // No signal: the process notices its mount is gone, commits and exits cleanly.
        let out = m.wait_with_output().unwrap();
        assert!(out.status.success(), "after {cmd}");
        assert!(!mounted(&dir));
        assert_eq!(
            ok(&repo, &["cat", &format!("{name}.txt")]),
            format!("{name}\n")
        );
    }
    assert!(!tmp.path().join("r.hero.spill").exists());
}

#[test]
fn heroctl_mount_lists_snapshots_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("r.hero");
    ok(&repo, &["init"]);
    let dir = tmp.path().join("mnt");
    std::fs::create_dir(&dir).unwrap();
    let ls_root = || {
        let out = Command::new("ls").arg("-A").arg(&dir).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let m = mount(&repo, &dir);
    sh(tmp.path(), "echo a | dd of=mnt/a conv=fsync status=none");
    assert_eq!(ls_root(), "a\n");
    sh(
        tmp.path(),
        "test -d mnt/.snapshots/main && grep -q a mnt/.snapshots/main/a",
    );
    signal(&m, "-TERM");
    assert!(m.wait_with_output().unwrap().status.success());

    let m = mount_with(&repo, &dir, &["--show-snapshots"]);
    assert_eq!(ls_root(), ".snapshots\na\n");
    signal(&m, "-TERM");
    assert!(m.wait_with_output().unwrap().status.success());
}
