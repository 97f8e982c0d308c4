//! `heroctl mount` as a real process: killed with SIGKILL mid-work, the next `heroctl mount`
//! commits what it had not (docs/durability.md).

use std::path::Path;
use std::process::{Child, Command, Stdio};

use hero_tests::{mounted, signal, wait_until};

use crate::cli::{bin, ok};

fn mount(repo: &Path, dir: &Path) -> Child {
    let child = bin()
        .cmd(
            repo,
            &["mount", "--idle-ms", "60000", "--max-delay-ms", "60000"],
        )
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("heroctl mount", || mounted(dir));
    child
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
