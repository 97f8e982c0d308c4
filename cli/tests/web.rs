//! The web face end to end in a real browser: `heroctl ui` serving a repository, headless
//! Chromium driven by chromedriver over the W3C WebDriver protocol (plain HTTP and JSON), and
//! commits made by other `heroctl` processes.
//!
//! Needs Debian's `chromium` and `chromium-driver` (scripts/deps.sh installs them); without
//! them the test fails and says so. With `HERO_WEB_SCREENSHOTS=DIR` it saves screenshots of
//! the main pages there (docs/screenshots/ holds the ones of the last run that did).
#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const TOKEN: &str = "browser-test-token-42";

fn heroctl() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_heroctl"))
}

fn ok(repo: &Path, args: &[&str]) -> String {
    let out = Command::new(heroctl())
        .arg("-R")
        .arg(repo)
        .args(args)
        .env("HERO_AUTHOR_NAME", "Tester <t>")
        .env("HERO_AUTHOR_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "heroctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A child process killed when the test ends, passing or not.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` and waits (up to 30 s) for a line of its `stdout` or `stderr` (`from_stderr`)
/// holding `marker`; returns the process and that line.
fn start_until(mut cmd: Command, marker: &str, from_stderr: bool) -> (Killed, String) {
    if from_stderr {
        cmd.stderr(Stdio::piped()).stdout(Stdio::null());
    } else {
        cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot start {:?}: {e} (install chromium and chromium-driver: scripts/deps.sh)",
            cmd.get_program()
        )
    });
    let out: Box<dyn std::io::Read + Send> = if from_stderr {
        Box::new(child.stderr.take().unwrap())
    } else {
        Box::new(child.stdout.take().unwrap())
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let marker = marker.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if line.contains(&marker) {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the process said it was ready");
    (Killed(child), line)
}

/// A free loopback port (bound, then released for chromedriver to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A WebDriver session.
struct Browser {
    agent: ureq::Agent,
    base: String,
    _driver: Killed,
}

impl Browser {
    fn start(profile: &Path) -> Browser {
        let port = free_port();
        let mut cmd = Command::new("chromedriver");
        cmd.arg(format!("--port={port}"));
        let (driver, _) = start_until(cmd, "started successfully", false);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1100,800",
                         format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let mut b = Browser {
            agent,
            base: format!("http://127.0.0.1:{port}"),
            _driver: driver,
        };
        let v = b.call("POST", "/session", Some(caps));
        let id = v["sessionId"].as_str().expect("a session").to_owned();
        b.base = format!("{}/session/{id}", b.base);
        b
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let mut r = match method {
            "GET" => self.agent.get(&url).call(),
            "DELETE" => self.agent.delete(&url).call(),
            _ => self
                .agent
                .post(&url)
                .header("content-type", "application/json")
                .send(body.unwrap_or(json!({})).to_string()),
        }
        .unwrap();
        let status = r.status().as_u16();
        let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        assert_eq!(status, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    fn go(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url})));
    }

    fn url(&self) -> String {
        self.call("GET", "/url", None).as_str().unwrap().to_owned()
    }

    fn run(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    fn text(&self, css: &str) -> String {
        self.run(&format!(
            "var e = document.querySelector({}); return e ? e.textContent : null;",
            Value::String(css.into())
        ))
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    fn click(&self, css: &str) {
        let e = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        let id = e["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {e}"))
            .to_owned();
        self.call("POST", &format!("/element/{id}/click"), None);
    }

    /// Waits (up to `limit`) until `script` returns true.
    fn wait_for(&self, script: &str, limit: Duration) -> Duration {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.run(script) == Value::Bool(true) {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("not true within {limit:?}: {script}");
    }

    fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("HERO_WEB_SCREENSHOTS") else {
            return;
        };
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD
            .decode(self.call("GET", "/screenshot", None).as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(Path::new(&dir).join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.agent.delete(&self.base).call();
    }
}

#[test]
fn the_web_face_in_a_real_browser_follows_history_and_shows_a_new_commit_live() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("r.hero");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("etc")).unwrap();
    std::fs::create_dir_all(src.join("docs/adr")).unwrap();
    std::fs::write(
        src.join("etc/app.toml"),
        "port = 80\n[server]\nhost = \"a\"\n",
    )
    .unwrap();
    std::fs::write(
        src.join("docs/adr/0001-use-toml.md"),
        "# Use TOML\n\nStatus: proposed\n\nConfiguration is TOML.\n",
    )
    .unwrap();
    std::fs::write(src.join("README.md"), "# Hello\n\nThe *store*.\n").unwrap();
    std::fs::write(src.join("<i>hostile.txt"), "x\n").unwrap();
    ok(&repo, &["init"]);
    let s = src.to_str().unwrap();
    ok(
        &repo,
        &["commit", s, "-m", "<script>alert(1)</script> first"],
    );
    std::fs::write(
        src.join("etc/app.toml"),
        "port = 8080\n[server]\nhost = \"a\"\n",
    )
    .unwrap();
    std::fs::write(
        src.join("docs/adr/0001-use-toml.md"),
        "# Use TOML\n\nStatus: accepted\n\nConfiguration is TOML.\n",
    )
    .unwrap();
    ok(&repo, &["commit", s, "-m", "move to 8080"]);

    let mut ui = Command::new(heroctl());
    ui.arg("-R")
        .arg(&repo)
        .args(["ui", "--addr", "127.0.0.1:0"])
        .env("HERO_UI_TOKEN", TOKEN);
    let (_ui, line) = start_until(ui, "serving the web face at", false);
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap()
        .to_owned();
    let site = format!("http://{addr}");

    let profile = tmp.path().join("profile");
    let b = Browser::start(&profile);
    // Signing in sets the cookie and lands on the timeline.
    b.go(&format!("{site}/login?token={TOKEN}"));
    assert_eq!(b.url(), format!("{site}/"));
    assert_eq!(b.text("h1"), "Timeline");
    let rows = b.run("return document.querySelectorAll('tr.commit').length;");
    assert_eq!(rows, json!(2));
    // The hostile message is text: no script ran, no element was made from it.
    assert_eq!(
        b.run("return document.querySelectorAll('main script').length;"),
        json!(0)
    );
    assert!(b.text("main").contains("<script>alert(1)</script> first"));
    b.screenshot("timeline");

    // Follow the newest commit to its diff.
    b.click("tr.commit td.msg a");
    assert!(
        b.url().starts_with(&format!("{site}/commit/")),
        "{}",
        b.url()
    );
    let diff = b.text("main");
    assert!(
        diff.contains("-port = 80") && diff.contains("+port = 8080"),
        "{diff}"
    );
    b.screenshot("commit");

    // A file at an old revision.
    b.go(&format!("{site}/tree/etc/app.toml?rev=main~1"));
    assert!(
        b.text("pre.code").contains("port = 80\n"),
        "{}",
        b.text("pre.code")
    );
    assert_eq!(b.text("pre.code span.n"), "80");
    b.screenshot("file");
    b.go(&format!("{site}/tree/"));
    assert!(b.text("main").contains("<i>hostile.txt"));
    b.screenshot("browse");

    // The decision records with their status history.
    b.go(&format!("{site}/adr"));
    let adr = b.text("table.adr");
    assert!(
        adr.contains("0001-use-toml.md") && adr.contains("proposed → accepted"),
        "{adr}"
    );
    b.screenshot("decisions");
    b.go(&format!("{site}/peers"));
    assert!(b.text("h1").contains("Peers"));
    b.screenshot("peers");

    // A commit made by another process appears on the open timeline without a reload.
    b.go(&format!("{site}/"));
    b.run("window.heroMarker = 'same page'; return true;");
    // The page's event stream is open before the commit is made.
    b.wait_for(
        "return document.getElementById('main').hasAttribute('data-live-open');",
        Duration::from_secs(10),
    );
    std::fs::write(
        src.join("etc/app.toml"),
        "port = 9090\n[server]\nhost = \"a\"\n",
    )
    .unwrap();
    let committed = Instant::now();
    ok(&repo, &["commit", s, "-m", "made by another process"]);
    let shown = b.wait_for(
        "return document.getElementById('main').textContent.indexOf('made by another process') >= 0;",
        Duration::from_secs(10),
    );
    let since_commit = committed.elapsed();
    assert_eq!(
        b.run("return window.heroMarker || null;"),
        json!("same page")
    );
    assert_eq!(
        b.run("return document.querySelectorAll('tr.commit').length;"),
        json!(3)
    );
    eprintln!(
        "a commit by another process shown {shown:?} after the commit command returned ({since_commit:?} after it started)"
    );
    assert!(shown < Duration::from_secs(1), "shown after {shown:?}");

    // An open file follows its branch too.
    b.go(&format!("{site}/tree/etc/app.toml"));
    b.run("window.heroMarker = 'file page'; return true;");
    b.wait_for(
        "return document.getElementById('main').hasAttribute('data-live-open');",
        Duration::from_secs(10),
    );
    std::fs::write(
        src.join("etc/app.toml"),
        "port = 7070\n[server]\nhost = \"a\"\n",
    )
    .unwrap();
    ok(&repo, &["commit", s, "-m", "again"]);
    b.wait_for(
        "return document.querySelector('pre.code').textContent.indexOf('7070') >= 0;",
        Duration::from_secs(10),
    );
    assert_eq!(
        b.run("return window.heroMarker || null;"),
        json!("file page")
    );

    // Readable on a phone: at 390 CSS pixels wide no page scrolls sideways.
    b.call(
        "POST",
        "/window/rect",
        Some(json!({"width": 390, "height": 844})),
    );
    let pages = [
        ("/", "phone-timeline"),
        ("/tree/etc/app.toml", "phone-file"),
        ("/commit/main", ""),
        ("/adr", ""),
        ("/peers", ""),
    ];
    for (page, shot) in pages {
        b.go(&format!("{site}{page}"));
        assert_eq!(b.run("return window.innerWidth <= 400;"), json!(true));
        let fits = b.run(
            "return document.documentElement.scrollWidth <= document.documentElement.clientWidth;",
        );
        assert_eq!(fits, json!(true), "{page} scrolls sideways on a phone");
        if !shot.is_empty() {
            b.screenshot(shot);
        }
    }
}
