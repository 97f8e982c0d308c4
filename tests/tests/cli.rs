//! End-to-end runs of `heroctl`.

use std::path::Path;
use std::process::{Command, Output};

pub(crate) fn heroctl() -> std::path::PathBuf {
    // The test binary lives in target/<profile>/deps; heroctl in target/<profile>.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let p = dir.join("heroctl");
    assert!(
        p.exists(),
        "build heroctl first (cargo build --workspace --bins): {}",
        p.display()
    );
    p
}

pub(crate) fn run(repo: &Path, args: &[&str]) -> Output {
    Command::new(heroctl())
        .arg("-R")
        .arg(repo)
        .args(args)
        .env("HERO_AUTHOR_NAME", "Tester")
        .env("HERO_AUTHOR_EMAIL", "t@example.com")
        .output()
        .unwrap()
}

pub(crate) fn ok(repo: &Path, args: &[&str]) -> String {
    let out = run(repo, args);
    assert!(
        out.status.success(),
        "heroctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn init_commit_log_checkout_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("r.hero");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("etc")).unwrap();
    std::fs::write(src.join("etc/app.toml"), "port = 80\n").unwrap();
    std::fs::write(src.join("README.md"), "# hi\n").unwrap();
    ok(&repo, &["init"]);
    let v: serde_json::Value = serde_json::from_str(&ok(
        &repo,
        &["--json", "commit", src.to_str().unwrap(), "-m", "first"],
    ))
    .unwrap();
    assert_eq!(v["files"], 2);
    assert_eq!(v["created"], true);
    std::fs::write(src.join("etc/app.toml"), "port = 8080\n").unwrap();
    let st = ok(&repo, &["status", src.to_str().unwrap()]);
    assert!(st.contains("M etc/app.toml"), "{st}");
    ok(&repo, &["commit", src.to_str().unwrap(), "-m", "second"]);
    let log: serde_json::Value = serde_json::from_str(&ok(&repo, &["--json", "log"])).unwrap();
    assert_eq!(log.as_array().unwrap().len(), 2);
    assert_eq!(log[0]["message"], "second");
    let diff = ok(&repo, &["diff"]);
    assert!(diff.contains("-port = 80\n+port = 8080"), "{diff}");
    assert_eq!(ok(&repo, &["cat", "main~1:etc/app.toml"]), "port = 80\n");
    // The file id is what b3sum prints.
    let ls: serde_json::Value =
        serde_json::from_str(&ok(&repo, &["--json", "ls", "main", "etc"])).unwrap();
    let expected = blake3_hex(b"port = 8080\n");
    assert_eq!(ls[0]["id"], expected);
    ok(&repo, &["tag", "v1", "-m", "release one"]);
    ok(&repo, &["branch", "feature"]);
    let out = tmp.path().join("out");
    ok(&repo, &["checkout", "v1", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out.join("etc/app.toml")).unwrap(),
        "port = 8080\n"
    );
    assert!(ok(&repo, &["verify"]).starts_with("ok:"));
    let stats: serde_json::Value = serde_json::from_str(&ok(&repo, &["--json", "stats"])).unwrap();
    assert_eq!(stats["commits"], 2);
    // Errors are clear and fail.
    let bad = run(&repo, &["cat", "main:nope"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nope"));
    let bad = run(&repo, &["branch", "a..b"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid ref name"));
}

fn blake3_hex(b: &[u8]) -> String {
    let out = Command::new("b3sum")
        .arg("--no-names")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    let mut child = out.unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b).unwrap();
    let o = child.wait_with_output().unwrap();
    String::from_utf8(o.stdout).unwrap().trim().to_owned()
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Ann")
        .env("GIT_AUTHOR_EMAIL", "ann@example.com")
        .env("GIT_COMMITTER_NAME", "Ann")
        .env("GIT_COMMITTER_EMAIL", "ann@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn import_verify_export_git_through_heroctl() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    std::fs::write(src.join("a.txt"), "one\n").unwrap();
    git(&src, &["add", "-A"]);
    git(&src, &["commit", "-qm", "first"]);
    git(&src, &["tag", "-a", "v1", "-m", "release one"]);
    std::fs::write(src.join("a.txt"), "two\n").unwrap();
    git(&src, &["commit", "-qam", "second"]);

    let repo = tmp.path().join("r.hero");
    ok(&repo, &["init"]);
    let v: serde_json::Value = serde_json::from_str(&ok(
        &repo,
        &["--json", "import", "git", src.to_str().unwrap(), "--verify"],
    ))
    .unwrap();
    assert_eq!(v["commits"], 2, "{v}");
    assert_eq!(v["tags"], 1, "{v}");
    assert_eq!(v["verify"]["differences"].as_array().unwrap().len(), 0);
    assert_eq!(ok(&repo, &["cat", "main:a.txt"]), "two\n");

    // A second run finds nothing new.
    let v: serde_json::Value = serde_json::from_str(&ok(
        &repo,
        &["--json", "import", "git", src.to_str().unwrap()],
    ))
    .unwrap();
    assert_eq!(v["commits"], 0, "{v}");

    let out = tmp.path().join("out.git");
    ok(&repo, &["export", "git", out.to_str().unwrap()]);
    let refs = |d: &Path| git(d, &["for-each-ref", "--format=%(objectname) %(refname)"]);
    assert_eq!(refs(&src), refs(&out));
    git(&out, &["fsck", "--strict"]);

    // A path that is no git repository is a clear error.
    let bad = run(&repo, &["import", "git", tmp.path().to_str().unwrap()]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("importing"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn commits_record_the_peer_id_of_the_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("r.hero");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.toml"), "x = 1\n").unwrap();
    ok(&repo, &["init"]);
    ok(&repo, &["commit", src.to_str().unwrap(), "-m", "one"]);
    let id = ok(&repo, &["id"]).trim().to_owned();
    assert!(!id.is_empty());
    let log: serde_json::Value = serde_json::from_str(&ok(&repo, &["--json", "log"])).unwrap();
    assert_eq!(
        log[0]["peer"],
        serde_json::Value::String(id.clone()),
        "{log}"
    );
    // The key stays beside the repository, private to its owner, and the id is stable.
    let key = tmp.path().join("r.hero.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(ok(&repo, &["id"]).trim(), id);
}

#[test]
fn an_imported_project_whose_trunk_is_master_works_with_plain_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    git(&src, &["init", "-q", "-b", "master"]);
    std::fs::write(src.join("a.txt"), "one\n").unwrap();
    git(&src, &["add", "-A"]);
    git(&src, &["commit", "-qm", "first on master"]);
    git(&src, &["branch", "alpha"]);
    git(&src, &["checkout", "-q", "-b", "zeta"]);
    std::fs::write(src.join("a.txt"), "two\n").unwrap();
    git(&src, &["commit", "-qam", "on zeta"]);
    git(&src, &["checkout", "-q", "master"]);

    let repo = tmp.path().join("r.hero");
    ok(&repo, &["init"]);
    let v: serde_json::Value = serde_json::from_str(&ok(
        &repo,
        &["--json", "import", "git", src.to_str().unwrap()],
    ))
    .unwrap();
    assert_eq!(v["default_branch"], "master", "{v}");
    // No branch named: the default one.
    let log = ok(&repo, &["log"]);
    assert!(log.contains("first on master"), "{log}");
    assert_eq!(ok(&repo, &["cat", "a.txt"]), "one\n");
    assert!(ok(&repo, &["ls"]).contains("a.txt"));
    let branches: serde_json::Value =
        serde_json::from_str(&ok(&repo, &["--json", "branch"])).unwrap();
    let default: Vec<_> = branches
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["default"] == true)
        .map(|b| b["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(default, ["master"]);

    // Changed by hand; an unknown branch is refused.
    let bad = run(&repo, &["branch", "--default", "nope"]);
    assert!(!bad.status.success());
    ok(&repo, &["branch", "--default", "zeta"]);
    assert_eq!(ok(&repo, &["cat", "a.txt"]), "two\n");
    assert!(ok(&repo, &["log"]).contains("on zeta"));

    // The export's HEAD names it.
    let out = tmp.path().join("out.git");
    ok(&repo, &["export", "git", out.to_str().unwrap()]);
    assert_eq!(
        git(&out, &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/zeta"
    );
}
