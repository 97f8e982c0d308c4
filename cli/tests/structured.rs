//! End-to-end runs of `heroctl check`, schemas at commit, and `heroctl script`.

use crate::cli::{ok, repo_with, run};

const SCHEMA: &str = r#"
[[rule]]
glob = "etc/**/*.toml"
required = ["server.port"]
types = { "server.port" = "integer" }
ranges = { "server.port" = { min = 1, max = 65535 } }
"#;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn check_names_every_file_that_does_not_parse_or_keep_its_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, _) = repo_with(
        tmp.path(),
        &[
            ("etc/app.toml", "[server]\nport = 8080\n"),
            ("notes/readme.md", "# Notes\n"),
        ],
        "good",
    );
    let out = ok(&repo, &["check"]);
    assert_eq!(out, "", "a valid tree prints no problem");

    let tmp = tempfile::tempdir().unwrap();
    let (repo, _) = repo_with(
        tmp.path(),
        &[
            (
                ".hero/schemas/etc.toml",
                "[[rule]]\nglob = \"etc/*.toml\"\nmode = \"warn\"\nrequired = [\"server.port\"]\n",
            ),
            ("etc/app.toml", "[server]\nhost = \"a\"\n"),
            ("etc/broken.toml", "[server]\nport = \n"),
            ("infra/nodes.hero", "!!node.define name:a\n"),
        ],
        "warned",
    );
    let out = run(&repo, &["check", "main"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("etc/app.toml:1:1: warning: `server.port` is required"),
        "{text}"
    );
    assert!(text.contains("etc/broken.toml:2:"), "{text}");
    assert!(
        stderr(&out).contains("1 problem(s) in main"),
        "{}",
        stderr(&out)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&run(&repo, &["--json", "check"]).stdout).unwrap();
    assert_eq!(v["valid"], false);
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2);
    assert_eq!(problems[1]["path"], "etc/broken.toml");
    assert_eq!(problems[1]["line"], 2);
    assert_eq!(problems[1]["severity"], "error");
}

#[test]
fn a_refusing_schema_refuses_the_commit_and_nothing_moves() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, src) = repo_with(
        tmp.path(),
        &[
            (".hero/schemas/etc.toml", SCHEMA),
            ("etc/app.toml", "[server]\nport = 8080\n"),
        ],
        "first",
    );
    let head = ok(&repo, &["--json", "log"]);
    std::fs::write(src.join("etc/app.toml"), "[server]\nport = 70000\n").unwrap();
    let out = run(&repo, &["commit", src.to_str().unwrap(), "-m", "bad port"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("etc/app.toml:2:8: `server.port` is 70000, must be between 1 and 65535"),
        "{err}"
    );
    assert!(err.contains("nothing was committed"), "{err}");
    assert_eq!(
        ok(&repo, &["--json", "log"]),
        head,
        "the branch did not move"
    );
    // The directory still holds the edit: fixed, it commits.
    std::fs::write(src.join("etc/app.toml"), "[server]\nport = 8443\n").unwrap();
    ok(&repo, &["commit", src.to_str().unwrap(), "-m", "good port"]);
    assert_eq!(
        ok(&repo, &["get", "main:etc/app.toml", "server.port"]),
        "8443\n"
    );

    // A warning rule lets the change through and says why.
    std::fs::write(
        src.join(".hero/schemas/etc.toml"),
        SCHEMA.replace("required", "mode = \"warn\"\nrequired"),
    )
    .unwrap();
    std::fs::write(src.join("etc/app.toml"), "[server]\nport = \"80\"\n").unwrap();
    let out = run(&repo, &["commit", src.to_str().unwrap(), "-m", "warned"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("etc/app.toml:2:8: warning: `server.port` is \"80\", not an integer"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_script_with_an_unknown_parameter_runs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, _) = repo_with(
        tmp.path(),
        &[("etc/app.toml", "[server]\nport = 8080\n")],
        "first",
    );
    let script = tmp.path().join("s.hero");
    std::fs::write(
        &script,
        "!!hero.tag name:v1\n!!hero.branch name:dev\n    strat:v1\n!!hero.nope\n",
    )
    .unwrap();
    let out = run(&repo, &["script", script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("s.hero:3:5: unknown parameter `strat` of `hero.branch`"),
        "{err}"
    );
    assert!(
        err.contains("s.hero:4:1: unknown action `hero.nope`"),
        "{err}"
    );
    assert!(err.contains("nothing ran"), "{err}");
    assert_eq!(stdout(&out), "");
    assert_eq!(ok(&repo, &["tag"]), "", "the tag of line 1 was not made");
    assert!(!ok(&repo, &["branch"]).contains("dev"));
}

#[test]
fn a_script_prints_one_json_line_per_action_and_stops_at_the_first_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, _) = repo_with(
        tmp.path(),
        &[("etc/app.toml", "[server]\nport = 8080\n")],
        "first",
    );
    let script = tmp.path().join("s.hero");
    std::fs::write(
        &script,
        "// release\n\
         !!hero.tag name:v1 message:'first release'\n\
         !!hero.get path:'v1:etc/app.toml' key:server.port\n\
         !!hero.branch name:dev start:v1\n\
         !!hero.query rev:dev expr:server.port\n\
         !!hero.get path:'main:etc/app.toml' key:server.prt\n\
         !!hero.tag name:v2\n",
    )
    .unwrap();
    let out = run(&repo, &["script", script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(lines[0]["action"], "hero.tag");
    assert_eq!(lines[0]["line"], 2);
    assert_eq!(lines[0]["result"]["name"], "v1");
    assert_eq!(lines[1]["result"], 8080);
    assert_eq!(lines[2]["result"]["name"], "dev");
    assert_eq!(
        lines[3]["result"],
        serde_json::json!([{"path": "etc/app.toml", "value": 8080}])
    );
    assert_eq!(lines[4]["ok"], false);
    assert_eq!(lines[4]["error"]["exit_code"], 3);
    assert!(
        lines[4]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server.port"),
        "the nearest key is named: {}",
        lines[4]
    );
    let tags = ok(&repo, &["tag"]);
    assert!(tags.contains("v1") && !tags.contains("v2"), "{tags}");
}

#[test]
fn commit_prefix_restore_and_revert_keep_the_schemas_too() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, src) = repo_with(
        tmp.path(),
        &[("etc/app.toml", "[server]\nport = 70000\n")],
        "before any rule",
    );
    std::fs::write(src.join("etc/app.toml"), "[server]\nport = 80\n").unwrap();
    ok(
        &repo,
        &["commit", src.to_str().unwrap(), "-m", "a good port"],
    );
    std::fs::create_dir_all(src.join(".hero/schemas")).unwrap();
    std::fs::write(src.join(".hero/schemas/etc.toml"), SCHEMA).unwrap();
    ok(&repo, &["commit", src.to_str().unwrap(), "-m", "the rule"]);
    let head = ok(&repo, &["--json", "log"]);

    // --prefix: the directory becomes etc/; its bad file refuses the commit.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("app.toml"), "[server]\nport = 0\n").unwrap();
    let out = run(
        &repo,
        &[
            "commit",
            other.to_str().unwrap(),
            "--prefix",
            "etc",
            "-m",
            "p",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("etc/app.toml:2:8: `server.port` is 0, must be between 1 and 65535"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        ok(&repo, &["--json", "log"]),
        head,
        "the branch did not move"
    );

    // Restoring the old, now invalid, version and reverting the fix are refused alike.
    let out = run(&repo, &["restore", "--rev", "main~2", "etc/app.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = run(&repo, &["revert", "main~1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        ok(&repo, &["--json", "log"]),
        head,
        "the branch did not move"
    );

    // A good file goes through --prefix.
    std::fs::write(other.join("app.toml"), "[server]\nport = 8080\n").unwrap();
    ok(
        &repo,
        &[
            "commit",
            other.to_str().unwrap(),
            "--prefix",
            "etc",
            "-m",
            "p",
        ],
    );
    assert_eq!(
        ok(&repo, &["get", "main:etc/app.toml", "server.port"]),
        "8080\n"
    );
}

#[test]
fn a_binary_hero_file_is_a_repository_and_no_script() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, src) = repo_with(
        tmp.path(),
        &[(
            "infra/nodes.hero",
            "!!node.define name:n1 ipaddr:10.0.0.1\n",
        )],
        "nodes",
    );
    // A copy of a real repository file kept in the tree, under the same extension.
    std::fs::create_dir_all(src.join("backup")).unwrap();
    std::fs::copy(&repo, src.join("backup/old.hero")).unwrap();
    ok(&repo, &["commit", src.to_str().unwrap(), "-m", "backup"]);
    assert_eq!(ok(&repo, &["check"]), "");
    assert_eq!(
        ok(&repo, &["query", "main", "node.define[*].ipaddr"]),
        "infra/nodes.hero\t10.0.0.1\n"
    );
    let out = run(&repo, &["get", "main:backup/old.hero", "x"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// Two directories commit onto the same branch from the same base: the second commit merges.
/// Every structured command reads the merged result, and key history walks the first
/// parents, so each change shows once, at the merge or at its own commit.
#[test]
fn get_query_log_key_and_semantic_diff_read_through_a_merge() {
    let tmp = tempfile::tempdir().unwrap();
    // Keys far apart, so the two line edits merge cleanly.
    let base = "[server]\nport = 80\n\n# ---\n# ---\n# ---\n\n[log]\nlevel = \"info\"\n";
    let (repo, a) = repo_with(
        tmp.path(),
        &[
            ("etc/app.toml", base),
            ("docs/adr/0001-x.md", "# X\n\nStatus: Proposed\n"),
            ("old/gone.toml", "x = 1\n"),
        ],
        "base",
    );
    let b = tmp.path().join("b");
    ok(&repo, &["checkout", "main", b.to_str().unwrap()]);

    std::fs::write(
        a.join("etc/app.toml"),
        base.replace("port = 80", "port = 81"),
    )
    .unwrap();
    std::fs::remove_dir_all(a.join("old")).unwrap();
    let first: serde_json::Value = serde_json::from_str(&ok(
        &repo,
        &[
            "--json",
            "commit",
            a.to_str().unwrap(),
            "-m",
            "port; old gone",
        ],
    ))
    .unwrap();
    let first = first["commit"].as_str().unwrap().to_string();

    std::fs::write(
        b.join("etc/app.toml"),
        base.replace("\"info\"", "\"debug\""),
    )
    .unwrap();
    std::fs::write(b.join("docs/adr/0001-x.md"), "# X\n\nStatus: Accepted\n").unwrap();
    let out = ok(
        &repo,
        &[
            "--json",
            "commit",
            b.to_str().unwrap(),
            "-m",
            "debug; accepted",
        ],
    );
    assert!(out.contains("merged"), "{out}");

    assert_eq!(
        ok(&repo, &["get", "main:etc/app.toml", "server.port"]),
        "81\n"
    );
    assert_eq!(
        ok(&repo, &["get", "main:etc/app.toml", "log.level"]),
        "debug\n"
    );
    assert_eq!(
        ok(&repo, &["get", "main:docs/adr/0001-x.md", "Status"]),
        "Accepted\n"
    );
    assert_eq!(
        ok(&repo, &["query", "main", "docs", "status"]),
        "docs/adr/0001-x.md\tAccepted\n"
    );
    assert_eq!(
        run(&repo, &["get", "main:old/gone.toml", "x"])
            .status
            .code(),
        Some(3)
    );

    let level = ok(&repo, &["log", "--key", "etc/app.toml:log.level"]);
    let lines: Vec<&str> = level.lines().collect();
    assert_eq!(lines.len(), 2, "{level}");
    assert!(lines[0].ends_with(" info -> debug"), "{level}");
    let port = ok(&repo, &["log", "--key", "etc/app.toml:server.port"]);
    let lines: Vec<&str> = port.lines().collect();
    assert_eq!(lines.len(), 2, "{port}");
    assert!(lines[0].ends_with(" 80 -> 81"), "{port}");
    // The deleted file's key: created, then deleted.
    let gone = ok(&repo, &["log", "--key", "old/gone.toml:x"]);
    assert_eq!(gone.lines().count(), 2, "{gone}");

    // The merge against the side committed first: what the other side brought. (Which
    // parent comes first is the deterministic merge's choice, not the order of commits.)
    let diff = ok(&repo, &["diff", "--semantic", &first, "main"]);
    assert!(diff.contains("log.level: \"info\" -> \"debug\""), "{diff}");
    assert!(!diff.contains("server.port"), "{diff}");
    assert!(diff.contains("docs/adr/0001-x.md"), "{diff}");
}
