//! `heroctl` as a Unix citizen: quiet on a closed pipe, exit codes a script can branch on,
//! errors as JSON with `--json`, shell completions and a man page.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use hero_store::{
    BRANCH_PREFIX, CommitMeta, EntryKind, Expect, RefValue, Repo, RepoPath, Signature, TAG_PREFIX,
};

use crate::cli::{heroctl, ok, run};

fn sig() -> Signature {
    Signature {
        name: b"Tester".to_vec(),
        email: b"t@example.com".to_vec(),
        time: 1_700_000_000,
        tz_offset_minutes: 0,
    }
}

/// A repository whose every listing prints far more than a pipe holds (64 KiB), so a writer
/// still has output left when its reader goes away: 300 commits with long messages, 3,000
/// files, 3,000 branches and tags, 600 remotes, 2,000 allowed peers, a 10 MB file.
fn big_repo(dir: &Path) -> PathBuf {
    let path = dir.join("big.hero");
    let repo = Repo::init(&path).unwrap();
    let mut cs = repo.change_set("main").unwrap();
    for i in 0..3000 {
        let p = format!("dir{}/{}-{i:05}.txt", i % 10, "n".repeat(60));
        cs.put_bytes(
            &RepoPath::parse(&p).unwrap(),
            EntryKind::File,
            format!("{i}\n").as_bytes(),
        )
        .unwrap();
    }
    let big: String = (0..1_000_000).map(|i| format!("{i:09}\n")).collect();
    assert_eq!(big.len(), 10_000_000);
    cs.put_bytes(
        &RepoPath::parse("big.txt").unwrap(),
        EntryKind::File,
        big.as_bytes(),
    )
    .unwrap();
    let first = cs
        .commit(CommitMeta::new(sig(), "first"), Expect::Latest)
        .unwrap()
        .id;
    for i in 0..300 {
        let mut cs = repo.change_set("main").unwrap();
        cs.put_bytes(
            &RepoPath::parse("counter").unwrap(),
            EntryKind::File,
            format!("{i}\n").as_bytes(),
        )
        .unwrap();
        let message = format!("commit {i}\n\n{}", "lorem ipsum ".repeat(80));
        cs.commit(CommitMeta::new(sig(), message), Expect::Latest)
            .unwrap();
    }
    repo.batch(|b| {
        for i in 0..3000 {
            let name = format!("{}-{i:05}", "b".repeat(80));
            let value = Some(RefValue::Commit(first));
            b.cas_ref(&format!("{BRANCH_PREFIX}{name}"), None, value, "test")?;
            b.cas_ref(&format!("{TAG_PREFIX}{name}"), None, value, "test")?;
        }
        Ok(())
    })
    .unwrap();
    let peer = hero_sync::SecretKey::generate().public();
    let ticket: hero_sync::Ticket = format!("{peer}@127.0.0.1:9").parse().unwrap();
    for i in 0..600 {
        let name = format!("{}{i:04}", "r".repeat(150));
        hero_sync::access::add_remote(&repo, &name, &ticket).unwrap();
    }
    for _ in 0..2000 {
        let id = hero_sync::SecretKey::generate().public();
        hero_sync::access::allow(&repo, &id, hero_sync::Access::ReadWrite).unwrap();
    }
    path
}

/// Runs heroctl into a pipe whose reader takes the first line and closes it.
fn first_line_then_close(repo: &Path, args: &[&str]) -> (ExitStatus, Vec<u8>, String) {
    let mut child = Command::new(heroctl())
        .arg("-R")
        .arg(repo)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = Vec::new();
    {
        let mut r = BufReader::with_capacity(256, child.stdout.take().unwrap());
        r.read_until(b'\n', &mut line).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        line,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_listing_ends_quietly_with_status_0_when_its_reader_closes_the_pipe() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = big_repo(tmp.path());
    let big: &[&[&str]] = &[
        &["log"],
        &["--json", "log"],
        &["branch"],
        &["--json", "branch"],
        &["tag"],
        &["--json", "tag"],
        &["ls", "-r"],
        &["--json", "ls", "-r"],
        &["cat", "big.txt"],
        &["remote", "list"],
        &["--json", "remote", "list"],
        &["allow", "list"],
        &["--json", "allow", "list"],
    ];
    // Short outputs: they must not fail either (nothing is left to write when the reader goes).
    let small: &[&[&str]] = &[
        &["stats"],
        &["--json", "stats"],
        &["conflicts"],
        &["--json", "conflicts"],
        &["reflog"],
        &["--json", "reflog"],
        &["log", "--", "counter"],
        &["--json", "log", "--", "counter"],
    ];
    for args in big.iter().chain(small) {
        let full = run(&repo, args);
        assert!(full.status.success(), "{args:?}");
        if big.contains(args) {
            // Twice what the pipe holds: the writer meets the closed pipe.
            assert!(
                full.stdout.len() > 128 << 10,
                "{args:?} prints only {} bytes",
                full.stdout.len()
            );
        }
        let (status, line, stderr) = first_line_then_close(&repo, args);
        assert_eq!(
            status.code(),
            Some(0),
            "{args:?}: {status:?}, stderr: {stderr}"
        );
        assert_eq!(stderr, "", "{args:?}");
        assert!(!line.is_empty(), "{args:?} printed nothing");
    }
}

#[test]
fn human_output_shows_sizes_in_units_and_counts_with_separators() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("r.hero");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..1100 {
        std::fs::write(src.join(format!("f{i}")), format!("{i}\n")).unwrap();
    }
    std::fs::write(src.join("big"), vec![b'x'; 3 << 20]).unwrap();
    ok(&repo, &["init"]);
    let out = ok(&repo, &["commit", src.to_str().unwrap()]);
    assert!(out.contains("1,101 files"), "{out}");
    assert!(out.contains("3.00 MiB"), "{out}");
    let stats = ok(&repo, &["stats"]);
    assert!(stats.contains("history bytes:    3.00 MiB"), "{stats}");
    // JSON keeps raw numbers.
    let v: serde_json::Value = serde_json::from_str(&ok(&repo, &["--json", "stats"])).unwrap();
    assert!(v["history_bytes"].as_u64().unwrap() > 3 << 20, "{v}");
}

/// Runs heroctl and returns its exit code and stderr.
fn fails(repo: &Path, args: &[&str]) -> (i32, String) {
    let out = run(repo, args);
    assert!(out.stdout.is_empty(), "{args:?} printed on stdout");
    let code = out.status.code().expect("exited, not killed");
    (code, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Runs heroctl with `--json` and returns its exit code and the JSON error it printed.
/// A repository in `dir` with one commit of one file `a`.
fn one_commit(dir: &Path) -> PathBuf {
    crate::cli::repo_with(dir, &[("a", "a\n")], "snapshot").0
}

fn fails_json(repo: &Path, args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, stderr) = fails(repo, &all);
    let v: serde_json::Value = serde_json::from_str(stderr.trim())
        .unwrap_or_else(|e| panic!("{args:?}: stderr is no JSON ({e}): {stderr}"));
    let e = &v["error"];
    assert_eq!(e["exit_code"], code, "{v}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(e["causes"].is_array(), "{v}");
    (code, v)
}

#[test]
fn a_missing_repository_exits_3_and_suggests_init() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("none.hero");
    let (code, err) = fails(&repo, &["log"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("heroctl init"), "{err}");
    let (code, v) = fails_json(&repo, &["log"]);
    assert_eq!(code, 3);
    assert_eq!(v["error"]["kind"], "not_found");
    assert!(
        v["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("heroctl init")
    );
}

#[test]
fn a_file_that_is_no_repository_exits_5_and_suggests_repair_not_init() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, content) in [
        ("garbage.hero", b"this is not a repository\n".repeat(1000)),
        ("empty.hero", Vec::new()),
    ] {
        let repo = tmp.path().join(name);
        std::fs::write(&repo, content).unwrap();
        let (code, err) = fails(&repo, &["log"]);
        assert_eq!(code, 5, "{name}: {err}");
        assert!(!err.contains("init"), "{name}: {err}");
        let (code, v) = fails_json(&repo, &["branch"]);
        assert_eq!(code, 5);
        assert_eq!(v["error"]["kind"], "corrupt");
        let hint = v["error"]["hint"].as_str().unwrap_or_default();
        assert!(
            hint.contains("heroctl repair") && !hint.contains("init"),
            "{v}"
        );
    }
}

#[test]
fn a_directory_given_as_the_repository_is_a_usage_error_without_the_init_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, err) = fails(tmp.path(), &["log"]);
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("init"), "{err}");
}

#[test]
fn unknown_revisions_paths_and_branches_exit_3() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = one_commit(tmp.path());
    for args in [
        &["log", "nosuch"][..],
        &["cat", "main:nosuch"],
        &["branch", "-d", "nosuch"],
        &["remote", "remove", "nosuch"],
    ] {
        let (code, err) = fails(&repo, args);
        assert_eq!(code, 3, "{args:?}: {err}");
        if args[0] == "cat" {
            continue; // cat has no JSON output: see usage_errors_exit_2_also_as_json
        }
        let (code, v) = fails_json(&repo, args);
        assert_eq!(code, 3);
        assert_eq!(v["error"]["kind"], "not_found", "{v}");
    }
}

#[test]
fn usage_errors_exit_2_also_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("r.hero");
    ok(&repo, &["init"]);
    let (code, err) = fails(&repo, &["lgo"]);
    assert_eq!(code, 2, "{err}");
    let (code, v) = fails_json(&repo, &["lgo"]);
    assert_eq!(code, 2);
    assert_eq!(v["error"]["kind"], "usage");
    let (code, v) = fails_json(&repo, &["remote"]);
    assert_eq!(code, 2);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("missing"),
        "{v}"
    );
    // Commands whose output is no report refuse --json instead of ignoring it.
    for args in [&["cat", "x"][..], &["completions", "bash"], &["man"]] {
        let (code, v) = fails_json(&repo, args);
        assert_eq!(code, 2, "{args:?}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("no --json output"),
            "{v}"
        );
    }
    // An invalid branch name is the caller's mistake too.
    let (code, err) = fails(&repo, &["branch", "a..b"]);
    assert!(code == 2 || code == 3, "{err}");
}

#[test]
fn creating_a_branch_that_exists_is_refused_with_4() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = one_commit(tmp.path());
    ok(&repo, &["branch", "feature"]);
    let (code, err) = fails(&repo, &["branch", "feature"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("already exists"), "{err}");
    let (code, v) = fails_json(&repo, &["branch", "main"]);
    assert_eq!(code, 4);
    assert_eq!(v["error"]["kind"], "refused");
}

#[test]
fn pulling_from_a_peer_that_is_not_running_exits_6() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("r.hero");
    ok(&repo, &["init"]);
    let peer = hero_sync::SecretKey::generate().public();
    // Nothing listens on the discard port of loopback.
    let ticket = format!("{peer}@127.0.0.1:9");
    let start = Instant::now();
    let out = Command::new(heroctl())
        .arg("-R")
        .arg(&repo)
        .args(["--json", "pull", &ticket, "--net", "local"])
        .output()
        .unwrap();
    let took = start.elapsed();
    assert_eq!(out.status.code(), Some(6), "{out:?}");
    // stderr is the JSON error and nothing else (the endpoint is closed, not dropped: no
    // log line from the network layer).
    let stderr = String::from_utf8_lossy(&out.stderr);
    let v: serde_json::Value = serde_json::from_str(stderr.trim())
        .unwrap_or_else(|e| panic!("stderr is not one JSON error ({e}): {stderr}"));
    assert_eq!(v["error"]["kind"], "network", "{v}");
    assert!(took < Duration::from_secs(60), "took {took:?}");
}

#[test]
fn completions_and_the_man_page_come_from_the_command_definitions() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("unused.hero");
    for shell in ["bash", "zsh", "fish"] {
        let out = ok(&repo, &["completions", shell]);
        assert!(out.contains("heroctl"), "{shell}: {out}");
        assert!(out.contains("checkout"), "{shell}");
    }
    let man = ok(&repo, &["man"]);
    assert!(
        man.starts_with('.'),
        "not roff: {}",
        &man[..man.len().min(200)]
    );
    assert!(man.contains(".TH heroctl 1"), "no title header");
    assert!(
        man.contains("Exit codes"),
        "the exit codes are in the man page"
    );
}

#[test]
fn help_lists_the_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let help = ok(&tmp.path().join("unused.hero"), &["--help"]);
    for line in [
        "2  usage",
        "3  not found",
        "4  refused",
        "5  corrupt",
        "6  network",
    ] {
        assert!(help.contains(line), "{line}: {help}");
    }
}

#[test]
fn every_command_reports_a_missing_repository_with_exit_3_and_a_json_error() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("none.hero");
    let dir = tmp.path().join("dir");
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap();
    let commands: &[&[&str]] = &[
        &["commit", d],
        &["checkout", "main", d],
        &["status", d],
        &["update", d],
        &["log"],
        &["log", "--", "a"],
        &["ls"],
        &["diff"],
        &["branch"],
        &["branch", "--default", "x"],
        &["tag"],
        &["verify"],
        &["stats"],
        &["export", "git", d],
        &["import", "git", d],
        &["reflog"],
        &["restore", "a"],
        &["revert", "HEAD"],
        &["undo"],
        &["conflicts"],
        &["remote", "list"],
        &["allow", "list"],
    ];
    for args in commands {
        let (code, v) = fails_json(&repo, args);
        assert_eq!(code, 3, "{args:?}: {v}");
        assert_eq!(v["error"]["kind"], "not_found", "{args:?}: {v}");
    }
}
