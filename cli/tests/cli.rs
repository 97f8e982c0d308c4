//! End-to-end runs of `heroctl`.

use std::path::Path;
use std::process::{Command, Output};

use hero_tests::Heroctl;

pub(crate) use hero_tests::git;

/// The heroctl cargo built for this test run.
pub(crate) fn heroctl() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_heroctl"))
}

/// That heroctl with the network it chooses by default.
pub(crate) fn bin() -> Heroctl {
    Heroctl::default_net(heroctl())
}

pub(crate) fn run(repo: &Path, args: &[&str]) -> Output {
    bin().run(repo, args)
}

pub(crate) fn ok(repo: &Path, args: &[&str]) -> String {
    bin().ok(repo, args)
}

/// Writes `files` (path, content) into `dir/src`, creates `dir/r.hero` and commits `src` with
/// `message`; returns the repository and the source directory.
pub(crate) fn repo_with(
    dir: &Path,
    files: &[(&str, &str)],
    message: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let repo = dir.join("r.hero");
    let src = dir.join("src");
    hero_tests::write_files(&src, files);
    std::fs::create_dir_all(&src).unwrap();
    ok(&repo, &["init"]);
    ok(&repo, &["commit", src.to_str().unwrap(), "-m", message]);
    (repo, src)
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
    // Two of ours and the membership's first (`init` makes this node the first owner).
    assert_eq!(stats["commits"], 3);
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

#[test]
fn import_verify_export_git_through_heroctl() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    hero_tests::git_repo_with(&src, "main", &[("a.txt", "one\n")], "first");
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
    hero_tests::git_repo_with(&src, "master", &[("a.txt", "one\n")], "first on master");
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

/// `heroctl --json ARGS` that must fail: its stdout as JSON, and its stderr.
fn json_failing(repo: &Path, args: &[&str]) -> (serde_json::Value, String) {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let out = run(repo, &a);
    assert!(!out.status.success(), "heroctl {args:?} succeeded");
    (
        serde_json::from_slice(&out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `heroctl --json import git SRC --rename-refused git/`, its report.
fn import_renaming_refused(repo: &Path, src: &Path) -> serde_json::Value {
    let args = [
        "--json",
        "import",
        "git",
        src.to_str().unwrap(),
        "--rename-refused",
        "git/",
    ];
    serde_json::from_str(&ok(repo, &args)).unwrap()
}

#[test]
fn an_import_never_moves_a_branch_holding_work_it_does_not_contain() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    hero_tests::git_repo_with(&src, "main", &[("infra.txt", "infra\n")], "infra");
    git(&src, &["branch", "side"]);

    // The store's main holds unrelated work.
    let repo = tmp.path().join("r.hero");
    let mine = tmp.path().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("notes.md"), "mine\n").unwrap();
    ok(&repo, &["init"]);
    ok(&repo, &["commit", mine.to_str().unwrap(), "-m", "my work"]);
    let before = ok(&repo, &["log", "-n", "1", "--json"]);

    let (v, err) = json_failing(&repo, &["import", "git", src.to_str().unwrap()]);
    assert_eq!(v["refused"][0]["ref"], "refs/heads/main", "{v}");
    assert!(err.contains("refused refs/heads/main"), "{err}");
    assert!(err.contains("--rename-refused"), "{err}");
    // main did not move; the other branch came in.
    assert_eq!(ok(&repo, &["log", "-n", "1", "--json"]), before);
    assert_eq!(ok(&repo, &["cat", "side:infra.txt"]), "infra\n");
    assert_eq!(ok(&repo, &["cat", "main:notes.md"]), "mine\n");

    // Under another name on request.
    let v = import_renaming_refused(&repo, &src);
    assert_eq!(v["renamed"][0]["as"], "refs/heads/git/main", "{v}");
    assert_eq!(ok(&repo, &["cat", "git/main:infra.txt"]), "infra\n");
    assert_eq!(ok(&repo, &["cat", "main:notes.md"]), "mine\n");

    // A git branch that was force-pushed still moves: the store's side holds only imported
    // history.
    git(&src, &["checkout", "-q", "side"]);
    std::fs::write(src.join("infra.txt"), "rewritten\n").unwrap();
    git(&src, &["commit", "-q", "--amend", "-am", "rewritten"]);
    let v = import_renaming_refused(&repo, &src);
    assert_eq!(v["refs_moved"], 1, "{v}");
    assert_eq!(ok(&repo, &["cat", "side:infra.txt"]), "rewritten\n");

    // --force moves it explicitly.
    ok(&repo, &["import", "git", src.to_str().unwrap(), "--force"]);
    assert_eq!(ok(&repo, &["cat", "main:infra.txt"]), "infra\n");
    assert!(run(&repo, &["cat", "main:notes.md"]).status.code() != Some(0));
}

#[test]
fn an_import_never_writes_heros_own_branches() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    hero_tests::git_repo_with(
        &src,
        "main",
        &[("members.txt", "not a membership\n")],
        "lookalike",
    );
    git(&src, &["branch", "hero/membership"]);

    // `init` made the membership; its head must not move.
    let repo = tmp.path().join("r.hero");
    ok(&repo, &["init"]);
    // The membership's newest commit id (`branch` does not list hero's own branches).
    let head = |repo: &Path| -> serde_json::Value {
        let v: serde_json::Value =
            serde_json::from_str(&ok(repo, &["--json", "log", "-n", "1", "hero/membership"]))
                .unwrap();
        v[0]["id"].clone()
    };
    let before = head(&repo);
    assert!(!before.is_null(), "init makes the membership branch");
    let v: serde_json::Value = serde_json::from_str(&ok(
        &repo,
        &["--json", "import", "git", src.to_str().unwrap()],
    ))
    .unwrap();
    let skipped = v["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{v}");
    assert_eq!(skipped[0]["ref"], "refs/heads/hero/membership", "{v}");
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("--rename-refused"),
        "{v}"
    );
    assert_eq!(head(&repo), before);
    assert_eq!(
        ok(&repo, &["cat", "main:members.txt"]),
        "not a membership\n"
    );

    // Under another name on request; a rename into hero's space is no way around it.
    let v = import_renaming_refused(&repo, &src);
    assert_eq!(
        v["renamed"][0]["as"], "refs/heads/git/hero/membership",
        "{v}"
    );
    assert_eq!(
        ok(&repo, &["cat", "git/hero/membership:members.txt"]),
        "not a membership\n"
    );
    assert_eq!(head(&repo), before);
    let out = run(
        &repo,
        &[
            "import",
            "git",
            src.to_str().unwrap(),
            "--branch-prefix",
            "hero/",
        ],
    );
    assert!(out.status.success());
    assert_eq!(head(&repo), before);
    assert!(run(&repo, &["cat", "hero/main:members.txt"]).status.code() != Some(0));
}

#[test]
fn committing_a_file_instead_of_a_directory_is_an_error_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, src) = repo_with(
        tmp.path(),
        &[("some/file.txt", "x\n"), ("other.txt", "y\n")],
        "first",
    );
    let before = ok(&repo, &["ls", "-r"]);
    let out = run(
        &repo,
        &["commit", src.join("some/file.txt").to_str().unwrap()],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a directory"), "{err}");
    assert_eq!(ok(&repo, &["ls", "-r"]), before);
}

#[test]
fn every_earlier_state_can_be_found_and_restored() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, src) = repo_with(
        tmp.path(),
        &[("a.txt", "one\ntwo\nthree\n"), ("d/b.txt", "bee\n")],
        "first",
    );
    std::fs::write(src.join("a.txt"), "one\nTWO\nthree\n").unwrap();
    std::fs::remove_dir_all(src.join("d")).unwrap();
    ok(&repo, &["commit", src.to_str().unwrap(), "-m", "second"]);
    let second = ok(&repo, &["--json", "log", "-n", "1"]);
    let second: serde_json::Value = serde_json::from_str(&second).unwrap();
    let second = second[0]["id"].as_str().unwrap().to_owned();

    // The reflog shows both moves, newest first.
    let log: serde_json::Value = serde_json::from_str(&ok(&repo, &["--json", "reflog"])).unwrap();
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0]["new"], second.as_str());
    assert!(log[1]["old"].is_null());

    // restore: the deleted directory comes back as it was one commit ago.
    ok(&repo, &["restore", "d"]);
    assert_eq!(ok(&repo, &["cat", "d/b.txt"]), "bee\n");
    assert_eq!(ok(&repo, &["cat", "a.txt"]), "one\nTWO\nthree\n");

    // revert: the second commit's edit of a.txt is undone; d/ (restored since) stays.
    ok(&repo, &["revert", &second]);
    assert_eq!(ok(&repo, &["cat", "a.txt"]), "one\ntwo\nthree\n");
    assert_eq!(ok(&repo, &["cat", "d/b.txt"]), "bee\n");

    // undo moves the branch back before the revert; undo again redoes it.
    ok(&repo, &["undo"]);
    assert_eq!(ok(&repo, &["cat", "a.txt"]), "one\nTWO\nthree\n");
    ok(&repo, &["undo"]);
    assert_eq!(ok(&repo, &["cat", "a.txt"]), "one\ntwo\nthree\n");
    let log: serde_json::Value =
        serde_json::from_str(&ok(&repo, &["--json", "reflog", "main"])).unwrap();
    assert_eq!(log.as_array().unwrap().len(), 6);
    assert!(log[0]["reason"].as_str().unwrap().starts_with("undo"));

    // A revert whose undo overlaps later edits is refused, and nothing is committed.
    std::fs::write(src.join("a.txt"), "one\ntwo\nthree\n").unwrap();
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/b.txt"), "bee\n").unwrap();
    ok(
        &repo,
        &["commit", src.to_str().unwrap(), "-m", "same again"],
    );
    std::fs::write(src.join("a.txt"), "one\n2\nthree\n").unwrap();
    ok(&repo, &["commit", src.to_str().unwrap(), "-m", "third"]);
    let before = ok(&repo, &["--json", "log", "-n", "1"]);
    let out = run(&repo, &["revert", &second]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("a.txt"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ok(&repo, &["--json", "log", "-n", "1"]), before);
}

#[test]
fn committing_a_directory_never_checked_out_does_not_replace_a_branch_holding_other_files() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("r.hero");
    let drive = tmp.path().join("drive");
    std::fs::create_dir_all(&drive).unwrap();
    for i in 0..22 {
        std::fs::write(drive.join(format!("f{i}.toml")), format!("n = {i}\n")).unwrap();
    }
    ok(&repo, &["init"]);
    ok(
        &repo,
        &["commit", drive.to_str().unwrap(), "-m", "the drive's files"],
    );
    let conf = tmp.path().join("conf");
    std::fs::create_dir_all(conf.join("etc")).unwrap();
    std::fs::write(conf.join("etc/app.toml"), "port = 80\n").unwrap();
    let out = run(
        &repo,
        &["commit", conf.to_str().unwrap(), "-m", "first config"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("22 file(s)") && err.contains("--replace"),
        "{err}"
    );
    assert_eq!(ok(&repo, &["ls"]).lines().count(), 22);
    // Under a path of the branch: the rest stays.
    ok(
        &repo,
        &[
            "commit",
            conf.to_str().unwrap(),
            "--prefix",
            "conf",
            "-m",
            "conf",
        ],
    );
    assert_eq!(ok(&repo, &["cat", "conf/etc/app.toml"]), "port = 80\n");
    assert_eq!(ok(&repo, &["cat", "f21.toml"]), "n = 21\n");
    std::fs::remove_file(conf.join("etc/app.toml")).unwrap();
    std::fs::write(conf.join("b.toml"), "b = 1\n").unwrap();
    ok(
        &repo,
        &[
            "commit",
            conf.to_str().unwrap(),
            "--prefix",
            "conf",
            "-m",
            "conf 2",
        ],
    );
    let under = ok(&repo, &["ls", "-r", "HEAD", "conf"]);
    assert!(
        under.contains("b.toml") && !under.contains("app.toml"),
        "{under}"
    );
    assert_eq!(ok(&repo, &["ls"]).lines().count(), 23);
    std::fs::create_dir_all(conf.join("etc")).unwrap();
    std::fs::write(conf.join("etc/app.toml"), "port = 80\n").unwrap();
    // Told what is meant, it replaces.
    ok(
        &repo,
        &[
            "commit",
            conf.to_str().unwrap(),
            "--replace",
            "-m",
            "replace",
        ],
    );
    assert_eq!(ok(&repo, &["ls", "-r"]).lines().count(), 3);
}

#[test]
fn a_checked_out_directory_commits_only_its_own_changes_onto_a_branch_that_moved() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("r.hero");
    let first = tmp.path().join("first");
    std::fs::create_dir_all(&first).unwrap();
    std::fs::write(first.join("peer.toml"), "a = 1\n").unwrap();
    std::fs::write(first.join("mine.toml"), "b = 1\n").unwrap();
    ok(&repo, &["init"]);
    ok(&repo, &["commit", first.to_str().unwrap(), "-m", "first"]);
    let mine = tmp.path().join("mine");
    ok(&repo, &["checkout", "main", mine.to_str().unwrap()]);

    // Meanwhile the branch moves (another checkout, as a peer's change arriving by sync).
    std::fs::write(first.join("peer.toml"), "a = 2\n").unwrap();
    std::fs::write(first.join("new-from-peer.toml"), "c = 1\n").unwrap();
    ok(&repo, &["commit", first.to_str().unwrap(), "-m", "peer"]);

    // Here, only mine.toml changed: status says so, not the peer's edits.
    std::fs::write(mine.join("mine.toml"), "b = 2\n").unwrap();
    let st = ok(&repo, &["status", mine.to_str().unwrap()]);
    assert!(st.contains("M mine.toml"), "{st}");
    assert!(!st.contains("peer.toml"), "{st}");
    assert!(!st.contains(".herocheckout"), "{st}");

    let v: serde_json::Value = serde_json::from_str(&ok(
        &repo,
        &["--json", "commit", mine.to_str().unwrap(), "-m", "mine"],
    ))
    .unwrap();
    assert_eq!(v["how"], "merged", "{v}");
    // Nothing of the peer's was undone.
    assert_eq!(ok(&repo, &["cat", "peer.toml"]), "a = 2\n");
    assert_eq!(ok(&repo, &["cat", "new-from-peer.toml"]), "c = 1\n");
    assert_eq!(ok(&repo, &["cat", "mine.toml"]), "b = 2\n");
    assert!(!ok(&repo, &["ls"]).contains(".herocheckout"));

    // update brings the peer's changes into the directory; then it is clean.
    std::fs::remove_file(first.join("new-from-peer.toml")).unwrap();
    ok(
        &repo,
        &["commit", first.to_str().unwrap(), "-m", "peer deletes"],
    );
    ok(&repo, &["update", mine.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(mine.join("peer.toml")).unwrap(),
        "a = 2\n"
    );
    assert!(!mine.join("new-from-peer.toml").exists());
    assert_eq!(
        std::fs::read_to_string(mine.join("mine.toml")).unwrap(),
        "b = 2\n"
    );
    let st = ok(&repo, &["status", mine.to_str().unwrap()]);
    assert!(st.contains("clean"), "{st}");

    // Both sides edit the same line: the commit keeps both versions (a conflict copy).
    ok(&repo, &["update", first.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(first.join("mine.toml")).unwrap(),
        "b = 2\n"
    );
    std::fs::write(first.join("mine.toml"), "b = 3 (peer)\n").unwrap();
    ok(
        &repo,
        &["commit", first.to_str().unwrap(), "-m", "peer again"],
    );
    std::fs::write(mine.join("mine.toml"), "b = 3 (mine)\n").unwrap();
    let v: serde_json::Value = serde_json::from_str(&ok(
        &repo,
        &[
            "--json",
            "commit",
            mine.to_str().unwrap(),
            "-m",
            "mine again",
        ],
    ))
    .unwrap();
    assert_eq!(v["conflicts"], 1, "{v}");
    let ls = ok(&repo, &["ls"]);
    assert!(ls.contains("mine.toml.conflict-"), "{ls}");
}

#[test]
fn the_history_of_one_file_follows_its_renames() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, src) = repo_with(
        tmp.path(),
        &[("old/app.toml", "port = 80\n"), ("other.txt", "1\n")],
        "add app",
    );
    std::fs::write(src.join("other.txt"), "2\n").unwrap();
    ok(
        &repo,
        &["commit", src.to_str().unwrap(), "-m", "other only"],
    );
    std::fs::write(src.join("old/app.toml"), "port = 8080\n").unwrap();
    ok(&repo, &["commit", src.to_str().unwrap(), "-m", "edit app"]);
    std::fs::create_dir_all(src.join("new")).unwrap();
    std::fs::rename(src.join("old/app.toml"), src.join("new/app.toml")).unwrap();
    ok(&repo, &["commit", src.to_str().unwrap(), "-m", "move app"]);
    let log: serde_json::Value =
        serde_json::from_str(&ok(&repo, &["--json", "log", "--", "new/app.toml"])).unwrap();
    let got: Vec<(String, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["message"].as_str().unwrap().trim().to_owned(),
                c["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want = [
        ("move app", "new/app.toml"),
        ("edit app", "old/app.toml"),
        ("add app", "old/app.toml"),
    ];
    assert_eq!(
        got,
        want.map(|(m, p)| (m.to_owned(), p.to_owned())).to_vec()
    );
    let text = ok(&repo, &["log", "-n", "1", "--", "new/app.toml"]);
    assert!(
        text.contains("move app") && !text.contains("edit app"),
        "{text}"
    );
}

/// `commit DIR` keeps every permission bit, the owner and the modification time; `status`
/// tells a metadata-only change (`m`) from a content change; `checkout` writes them back.
#[test]
fn a_directory_round_trips_its_modes_owners_and_times() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let tmp = tempfile::tempdir().unwrap();
    let (repo, src) = repo_with(
        tmp.path(),
        &[("secrets.toml", "k = 1\n"), ("bin/run", "#!/bin/sh\n")],
        "first",
    );
    let set = |p: &str, mode: u32| {
        std::fs::set_permissions(src.join(p), std::fs::Permissions::from_mode(mode)).unwrap()
    };
    set("secrets.toml", 0o600);
    set("bin/run", 0o750);
    set("bin", 0o2755);
    std::os::unix::fs::chown(src.join("secrets.toml"), Some(4321), Some(8765)).unwrap();
    let when = std::time::UNIX_EPOCH + std::time::Duration::new(1_500_000_000, 7);
    std::fs::File::open(src.join("secrets.toml"))
        .unwrap()
        .set_modified(when)
        .unwrap();
    let st = ok(&repo, &["status", src.to_str().unwrap()]);
    assert!(st.contains("m secrets.toml"), "{st}");
    assert!(
        st.contains("M bin/run"),
        "an executable bit is a kind change: {st}"
    );
    ok(&repo, &["commit", src.to_str().unwrap(), "-m", "modes"]);
    let st = ok(&repo, &["status", src.to_str().unwrap()]);
    assert!(st.starts_with("clean"), "{st}");
    let names = ok(&repo, &["diff", "--name-status"]);
    assert_eq!(names, "m\tbin\nM\tbin/run\nm\tsecrets.toml\n");
    let diff = ok(&repo, &["diff"]);
    assert!(
        diff.contains("mode 0644 -> 0600, owner 0:0 -> 4321:8765, time "),
        "{diff}"
    );
    assert!(diff.contains("mode 0755 -> 2755"), "{diff}");

    let out = tmp.path().join("out");
    ok(&repo, &["checkout", "main", out.to_str().unwrap()]);
    let m = std::fs::metadata(out.join("secrets.toml")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o600);
    assert_eq!((m.uid(), m.gid()), (4321, 8765));
    assert_eq!(m.modified().unwrap(), when);
    assert_eq!(
        std::fs::metadata(out.join("bin/run")).unwrap().mode() & 0o7777,
        0o750
    );
    assert_eq!(
        std::fs::metadata(out.join("bin")).unwrap().mode() & 0o7777,
        0o2755
    );
    // The checkout is what was committed: nothing to report.
    let st = ok(&repo, &["status", out.to_str().unwrap()]);
    assert!(st.starts_with("clean"), "{st}");
    // Reverting the commit puts the old modes back.
    ok(&repo, &["revert", "main"]);
    let back = tmp.path().join("back");
    ok(&repo, &["checkout", "main", back.to_str().unwrap()]);
    assert_eq!(
        std::fs::metadata(back.join("secrets.toml")).unwrap().mode() & 0o7777,
        0o644
    );
    assert_eq!(
        std::fs::metadata(back.join("bin")).unwrap().mode() & 0o7777,
        0o755
    );
}

#[test]
fn a_corrupt_object_read_by_cat_or_checkout_exits_5_like_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let content = hero_tests::noise(7, 3_000_000);
    std::fs::write(src.join("secret.bin"), &content).unwrap();
    let repo = tmp.path().join("r.hero");
    ok(&repo, &["init"]);
    ok(&repo, &["commit", src.to_str().unwrap(), "-m", "one"]);
    let mut bytes = std::fs::read(&repo).unwrap();
    let at = bytes
        .windows(64)
        .position(|w| w == &content[2_000_000..2_000_064])
        .expect("content stored verbatim");
    bytes[at + 10] ^= 0x01;
    std::fs::write(&repo, &bytes).unwrap();

    for args in [
        vec!["cat", "main:secret.bin"],
        vec!["checkout", "main", tmp.path().join("out").to_str().unwrap()],
        vec!["verify"],
    ] {
        let out = run(&repo, &args);
        assert_eq!(
            out.status.code(),
            Some(5),
            "heroctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Nothing wrong was written out.
    let written = std::fs::read(tmp.path().join("out/secret.bin")).unwrap_or_default();
    assert_ne!(
        written.len(),
        content.len(),
        "a corrupt file is not written whole"
    );
}

#[test]
fn a_checkout_left_by_another_repository_at_the_same_path_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, _src) = repo_with(tmp.path(), &[("a.txt", "a\n")], "one");
    let work = tmp.path().join("work");
    ok(&repo, &["checkout", "main", work.to_str().unwrap()]);
    // The repository is deleted and another one made at the same path.
    std::fs::remove_file(&repo).unwrap();
    ok(&repo, &["init"]);
    std::fs::write(work.join("a.txt"), "changed\n").unwrap();
    for args in [
        vec!["commit", work.to_str().unwrap(), "-m", "two"],
        vec!["update", work.to_str().unwrap()],
    ] {
        let out = run(&repo, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "heroctl {args:?}: {err}");
        assert!(err.contains("checked out from another repository"), "{err}");
        assert!(err.contains(".herocheckout"), "{err}");
    }
    // The way out it names works.
    std::fs::remove_file(work.join(".herocheckout")).unwrap();
    ok(&repo, &["commit", work.to_str().unwrap(), "-m", "two"]);
    assert_eq!(ok(&repo, &["cat", "main:a.txt"]), "changed\n");
}

#[test]
fn get_and_query_read_structured_files_at_any_revision_without_a_checkout() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, src) = repo_with(
        tmp.path(),
        &[
            (
                "etc/app.toml",
                "[server]\nport = 80\n\n[[servers]]\nname = \"a\"\nport = 1\n",
            ),
            (
                "infra/nodes.heroscript",
                "// two nodes\n!!node.define name:n1 ipaddr:10.0.0.1\n!!node.define name:n2\n    ipaddr:'10.0.0.2'\n",
            ),
            (
                "docs/adr/0001-use-redb.md",
                "# 1. Use redb\n\nDate: 2026-01-01\n\n## Status\n\nAccepted\n\n## Context\n\nOne file.\n",
            ),
            (
                "docs/adr/0002-drop-x.md",
                "# 2. Drop x\n\nStatus: Proposed\n",
            ),
            ("notes.txt", "not structured\n"),
        ],
        "one",
    );
    // A change, a rename and a deletion.
    std::fs::write(src.join("etc/app.toml"), "[server]\nport = 8080\n").unwrap();
    std::fs::rename(
        src.join("infra/nodes.heroscript"),
        src.join("infra/fleet.heroscript"),
    )
    .unwrap();
    std::fs::remove_file(src.join("docs/adr/0002-drop-x.md")).unwrap();
    ok(&repo, &["commit", src.to_str().unwrap(), "-m", "two"]);

    assert_eq!(
        ok(&repo, &["get", "main:etc/app.toml", "server.port"]),
        "8080\n"
    );
    assert_eq!(
        ok(&repo, &["get", "main~1:etc/app.toml", "server.port"]),
        "80\n"
    );
    assert_eq!(
        ok(&repo, &["get", "main~1:etc/app.toml", "servers[0].name"]),
        "a\n"
    );
    let v: serde_json::Value = serde_json::from_str(&ok(
        &repo,
        &["--json", "get", "main:etc/app.toml", "server"],
    ))
    .unwrap();
    assert_eq!(v, serde_json::json!({"port": 8080}), "typed JSON");
    assert_eq!(
        ok(
            &repo,
            &[
                "get",
                "main:infra/fleet.heroscript",
                "node.define[name=n2].ipaddr"
            ]
        ),
        "10.0.0.2\n"
    );
    assert_eq!(
        ok(&repo, &["get", "main:docs/adr/0001-use-redb.md", "Status"]),
        "Accepted\n"
    );
    assert_eq!(
        ok(
            &repo,
            &["get", "main:docs/adr/0001-use-redb.md", "#Context"]
        ),
        "One file.\n"
    );

    // A missing key: exit 3, the nearest keys named.
    let out = run(&repo, &["get", "main:etc/app.toml", "server.prot"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.port"));
    // Not a structured file, or a missing file.
    assert_eq!(
        run(&repo, &["get", "main:notes.txt", "x"]).status.code(),
        Some(2)
    );
    assert_eq!(
        run(&repo, &["get", "main:nope.toml", "x"]).status.code(),
        Some(3)
    );

    // Query: every node's address, with its path; the renamed file under its new name.
    assert_eq!(
        ok(&repo, &["query", "main", "node.define[*].ipaddr"]),
        "infra/fleet.heroscript\t10.0.0.1\ninfra/fleet.heroscript\t10.0.0.2\n"
    );
    // At the older revision, under the old name, with the deleted record still there.
    let rows: Vec<serde_json::Value> = ok(&repo, &["--json", "query", "main~1", "docs", "status"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        rows,
        [
            serde_json::json!({"path": "docs/adr/0001-use-redb.md", "value": "Accepted"}),
            serde_json::json!({"path": "docs/adr/0002-drop-x.md", "value": "Proposed"}),
        ]
    );
    assert_eq!(
        ok(&repo, &["query", "main", "docs/**", "status"]),
        "docs/adr/0001-use-redb.md\tAccepted\n"
    );
    // A filter.
    assert_eq!(
        ok(
            &repo,
            &["query", "main~1", "node.define[?name=='n1'].ipaddr"]
        ),
        "infra/nodes.heroscript\t10.0.0.1\n"
    );
}

#[test]
fn log_key_and_a_semantic_diff_follow_values_not_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, src) = repo_with(
        tmp.path(),
        &[("etc/app.toml", "[server]\nport = 80\nhost = \"a\"\n")],
        "one",
    );
    let commit = |msg: &str| ok(&repo, &["commit", src.to_str().unwrap(), "-m", msg]);
    let app = src.join("etc/app.toml");
    std::fs::write(&app, "[server]\nport = 80\nhost = \"b\"\n").unwrap();
    commit("host only");
    std::fs::write(&app, "[server]\nhost = \"b\"\nport = 8080\n").unwrap();
    commit("port, keys reordered");
    std::fs::rename(&app, src.join("etc/web.toml")).unwrap();
    commit("renamed");
    std::fs::write(
        src.join("etc/web.toml"),
        "# the web server\n[server]\nport = 8080\nhost = \"b\"\n",
    )
    .unwrap();
    commit("reordered and commented only");

    // Only where the value changed, creation included, through the rename.
    let log = ok(&repo, &["log", "--key", "etc/web.toml:server.port"]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(lines[0].ends_with(" 80 -> 8080"), "{log}");
    assert!(lines[1].ends_with(" (none) -> 80"), "{log}");
    let v: serde_json::Value = serde_json::from_str(&ok(
        &repo,
        &["--json", "log", "--key", "etc/web.toml:server.port"],
    ))
    .unwrap();
    assert_eq!(v[0]["old"], 80);
    assert_eq!(v[0]["new"], 8080);
    assert_eq!(v[0]["path"], "etc/app.toml");
    assert_eq!(v[0]["author"]["name"], "Tester");
    assert!(v[1]["old"].is_null());
    assert_eq!(v[1]["new"], 80);
    assert_eq!(
        ok(&repo, &["log", "--key", "etc/web.toml:server.host"])
            .lines()
            .count(),
        2
    );

    // Key-level diffs: a reordered, commented table is no change.
    assert_eq!(ok(&repo, &["diff", "--semantic", "main~1", "main"]), "");
    assert_eq!(
        ok(&repo, &["diff", "--semantic", "main~4", "main~2"]),
        "M etc/app.toml\n    server.host: \"a\" -> \"b\"\n    server.port: 80 -> 8080\n"
    );
    // A line diff of the same reorder is not empty.
    assert!(!ok(&repo, &["diff", "main~1", "main"]).is_empty());
}

/// Logs go to stderr; on a full disk (here `/dev/full`, where every write fails with ENOSPC)
/// the lines are lost and the command does its work. The subscriber's own report of a failed
/// write used to panic there, in any thread that logged.
#[test]
fn a_log_that_cannot_be_written_is_lost_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("r.hero");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(heroctl())
        .args(["-R", repo.to_str().unwrap(), "init"])
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::null())
        .stderr(full)
        .status()
        .unwrap();
    assert!(out.success(), "heroctl init with a full stderr: {out:?}");
    ok(&repo, &["verify"]);
}
