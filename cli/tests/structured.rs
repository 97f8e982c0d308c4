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
