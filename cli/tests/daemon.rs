//! `heroctl daemon`: separate daemon processes, each with its own repository and a real FUSE
//! mount, replicating over iroh on 127.0.0.1 (`--net local`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use hero_tests::{Heroctl, require_fuse, signal, wait_for};
use serde_json::Value;

mod authority;
mod gossip_hostile;
mod lan;
mod local_accounts;
mod partitions;

/// The heroctl cargo built for this test run.
fn heroctl() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_heroctl"))
}

/// That heroctl, its peers on 127.0.0.1.
fn bin() -> Heroctl {
    Heroctl::local(heroctl())
}

fn cmd(repo: &Path, args: &[&str]) -> Command {
    bin().cmd(repo, args)
}

fn run(repo: &Path, args: &[&str]) -> Output {
    bin().run(repo, args)
}

fn ok(repo: &Path, args: &[&str]) -> String {
    bin().ok(repo, args)
}

fn json(repo: &Path, args: &[&str]) -> Value {
    bin().json(repo, args)
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Reads the piped stdout of `child` (a `serve` or a daemon) up to its `ticket: ` line and
/// returns the ticket; the rest of its stdout is read away so it never blocks on a full pipe.
/// Panics with `why()` if it exits first.
fn ticket_line(child: &mut Child, why: impl FnOnce() -> String) -> String {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ticket = loop {
        let Some(line) = lines.next() else {
            let _ = child.wait();
            panic!("{}", why());
        };
        if let Some(t) = line.unwrap().strip_prefix("ticket: ") {
            break t.to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    ticket
}

/// One node: a repository, its mount point, its port and its daemon (when running).
struct Node {
    repo: PathBuf,
    mnt: PathBuf,
    id: String,
    port: u16,
    daemon: Option<Child>,
    log: PathBuf,
}

impl Node {
    fn ticket(&self) -> String {
        format!("{}@127.0.0.1:{}", self.id, self.port)
    }

    /// Starts the daemon and waits for its `ticket:` line (printed once it is ready).
    fn start(&mut self) {
        self.start_with(None);
    }

    /// Starts the daemon, with `NOTIFY_SOCKET` set when `notify` is given.
    fn start_with(&mut self, notify: Option<&Path>) {
        self.start_env(notify, &[]);
    }

    /// Starts the daemon with `env` added to its environment.
    fn start_env(&mut self, notify: Option<&Path>, env: &[(&str, &str)]) {
        std::fs::create_dir_all(&self.mnt).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut c = cmd(
            &self.repo,
            &["daemon", "--mount", self.mnt.to_str().unwrap()],
        );
        if let Some(n) = notify {
            c.env("NOTIFY_SOCKET", n);
        }
        c.envs(env.iter().copied());
        let mut child = c
            .env("RUST_LOG", "heroctl=info,hero_fuse=warn,hero_sync=warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let ticket = ticket_line(&mut child, || {
            format!(
                "daemon exited before it was ready: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            )
        });
        assert_eq!(ticket, self.ticket(), "the daemon listens where configured");
        self.daemon = Some(child);
    }

    fn status(&self) -> Value {
        serde_json::from_str(&ok(&self.repo, &["--json", "daemon", "status"])).unwrap()
    }

    fn signal(&mut self, sig: &str) -> std::process::ExitStatus {
        let mut child = self.daemon.take().expect("daemon running");
        signal(&child, sig);
        child.wait().unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // A killed daemon leaves its mount behind.
        let _ = Command::new("fusermount3")
            .args(["-u", "-z"])
            .arg(&self.mnt)
            .stderr(Stdio::null())
            .status();
    }
}

/// The configuration of a fleet: everyone is everyone's peer, each listens on its own port.
fn fleet_config(nodes: &[Node], catch_up_secs: u64, extra: &str) -> String {
    let peers: Vec<String> = nodes
        .iter()
        .map(|n| format!("\"{}\"", n.ticket()))
        .collect();
    let mut t = format!(
        "peers = [{}]\ncatch_up_secs = {catch_up_secs}\n{extra}\n[mount]\nidle_commit_ms = 50\n\n\
         [dav]\naddr = \"127.0.0.1:0\"\n\n[ui]\naddr = \"127.0.0.1:0\"\n",
        peers.join(", ")
    );
    for n in nodes {
        t.push_str(&format!(
            "\n[node.{}]\nlisten = \"127.0.0.1:{}\"\n",
            n.id, n.port
        ));
    }
    t
}

/// `n` nodes replicating one repository, daemons running: the first is created with the
/// fleet's configuration, the others are clones of it.
fn fleet(dir: &Path, n: usize, catch_up_secs: u64) -> Vec<Node> {
    fleet_with(dir, n, catch_up_secs, "")
}

/// [`fleet`] with `extra` in the configuration's top level.
fn fleet_with(dir: &Path, n: usize, catch_up_secs: u64, extra: &str) -> Vec<Node> {
    let mut nodes = fleet_stopped(dir, n, catch_up_secs, extra);
    nodes[0].start();
    let origin = nodes[0].ticket();
    for node in nodes.iter_mut().skip(1) {
        ok(&node.repo, &["clone", &origin]);
        node.start();
    }
    nodes
}

/// The nodes of [`fleet`], only the first repository created, no daemon started.
fn fleet_stopped(dir: &Path, n: usize, catch_up_secs: u64, extra: &str) -> Vec<Node> {
    fleet_configured(dir, n, |nodes| fleet_config(nodes, catch_up_secs, extra))
}

/// `n` nodes, the first repository created with the configuration `config` makes for them.
fn fleet_configured(dir: &Path, n: usize, config: impl Fn(&[Node]) -> String) -> Vec<Node> {
    require_fuse();
    let nodes: Vec<Node> = (0..n)
        .map(|i| {
            let repo = dir.join(format!("n{i}.hero"));
            // The key (and so the id) exists before the repository.
            let id = ok(&repo, &["id"]).trim().to_owned();
            Node {
                mnt: dir.join(format!("mnt{i}")),
                log: dir.join(format!("n{i}.log")),
                repo,
                id,
                port: free_udp_port(),
                daemon: None,
            }
        })
        .collect();
    let work = dir.join("work");
    std::fs::create_dir_all(work.join(".hero")).unwrap();
    std::fs::write(work.join(".hero/daemon.toml"), config(&nodes)).unwrap();
    std::fs::write(work.join("hello.txt"), "hello\n").unwrap();
    ok(&nodes[0].repo, &["init"]);
    ok(
        &nodes[0].repo,
        &["commit", work.to_str().unwrap(), "-m", "first"],
    );
    // Peers in the configuration only say where to connect: membership is the owner's
    // explicit act. The fleet's machines are one household's, each an owner.
    for n in nodes.iter().skip(1) {
        ok(&nodes[0].repo, &["member", "add", &n.id, "--role", "owner"]);
    }
    nodes
}

#[test]
fn the_daemon_serves_the_web_face_with_its_token_and_the_peers_it_knows() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = fleet(tmp.path(), 2, 600);
    let st: Value =
        serde_json::from_str(&ok(&nodes[0].repo, &["--json", "daemon", "status"])).unwrap();
    let url = st["ui"].as_str().expect("the web face is on").to_owned();
    let token = std::fs::read_to_string(format!("{}.ui-token", nodes[0].repo.display())).unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let get = |path: &str, auth: bool| -> (u16, String) {
        let mut req = agent.get(format!("{url}{path}"));
        if auth {
            req = req.header("authorization", format!("Bearer {}", token.trim()));
        }
        let mut r = req.call().unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    };
    assert_eq!(get("tree/", false).0, 401);
    let (status, tree) = get("tree/", true);
    assert_eq!(status, 200);
    assert!(tree.contains("hello.txt"), "{tree}");
    // The peers page shows what the daemon knows of its peer: connected once it synced.
    let other = nodes[1].id.clone();
    wait_for(
        30,
        "the peer shown connected and up to date on the web face",
        || {
            let (_, page) = get("peers", true);
            (page.contains(&other)
                && page.contains("<td>yes</td>")
                && page.contains("<td class=\"lag\">0 commits</td>"))
            .then_some(())
        },
    );
    // The peer stops; two commits here: it is shown two commits behind.
    let mut nodes = nodes;
    assert!(nodes[1].signal("-TERM").success());
    let dir = tmp.path().join("co");
    ok(&nodes[0].repo, &["checkout", "main", dir.to_str().unwrap()]);
    for i in 0..2 {
        std::fs::write(dir.join("lag.txt"), format!("{i}\n")).unwrap();
        ok(
            &nodes[0].repo,
            &["commit", dir.to_str().unwrap(), "-m", "while away"],
        );
    }
    let (_, page) = get("peers", true);
    assert!(page.contains("<td class=\"lag\">2 commits</td>"), "{page}");
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn config_revision(node: &Node) -> String {
    node.status()["config"]["revision"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn edits_and_configuration_reach_every_daemon_and_a_bad_config_is_survived() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = fleet(tmp.path(), 3, 30);
    for n in &nodes {
        assert_eq!(read(&n.mnt.join("hello.txt")).as_deref(), Some("hello\n"));
    }

    // A file written into one mount is readable in the other two.
    std::fs::write(nodes[1].mnt.join("from-1.txt"), "one\n").unwrap();
    for n in [&nodes[0], &nodes[2]] {
        wait_for(30, "from-1.txt in every mount", || {
            (read(&n.mnt.join("from-1.txt")).as_deref() == Some("one\n")).then_some(())
        });
    }

    // A configuration edit saved through one mount is applied by all three.
    let before = config_revision(&nodes[0]);
    assert!(!before.is_empty());
    let text = fleet_config(&nodes, 20, "");
    std::fs::write(nodes[2].mnt.join(".hero/daemon.toml"), &text).unwrap();
    for n in &nodes {
        wait_for(30, "the new configuration applied everywhere", || {
            let r = config_revision(n);
            (r != before && !r.is_empty()).then_some(())
        });
        let s = n.status();
        assert!(s["config"]["error"].is_null(), "{s}");
        // The mount shows it at its next poll.
        wait_for(10, "the new configuration in every mount", || {
            (read(&n.mnt.join(".hero/daemon.toml")).as_deref() == Some(text.as_str())).then_some(())
        });
    }
    let good = config_revision(&nodes[0]);

    // An invalid version saved on one: every daemon keeps running on the last good one and
    // names the line and column.
    let mut bad = text.clone();
    bad.push_str("\n[mount]\nidle_commit_ms = \"soon\"\n");
    let bad_line = bad.lines().count();
    std::fs::write(nodes[0].mnt.join(".hero/daemon.toml"), &bad).unwrap();
    for n in &nodes {
        let err = wait_for(30, "the configuration error in every status", || {
            let s = n.status();
            let e = &s["config"]["error"];
            (!e.is_null()).then(|| e.clone())
        });
        assert_eq!(
            err["file"].as_str(),
            Some("main:.hero/daemon.toml"),
            "{err}"
        );
        assert!(err["line"].as_u64().is_some(), "{err}");
        assert!(err["column"].as_u64().is_some(), "{err}");
        assert_eq!(
            config_revision(n),
            good,
            "the last good configuration stays"
        );
    }
    // The duplicate table is reported on its header, a wrong type on its value: either way a
    // line of the appended part.
    let line = nodes[1].status()["config"]["error"]["line"]
        .as_u64()
        .unwrap() as usize;
    assert!(line >= bad_line - 2 && line <= bad_line, "line {line}");

    // Still running: a file still travels.
    std::fs::write(nodes[0].mnt.join("after-bad.txt"), "still\n").unwrap();
    wait_for(30, "a file after the bad configuration", || {
        (read(&nodes[2].mnt.join("after-bad.txt")).as_deref() == Some("still\n")).then_some(())
    });
    let out = run(
        &nodes[0].repo,
        &[
            "config",
            "check",
            nodes[0].mnt.join(".hero/daemon.toml").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!(":{line}:")), "{err}");
}

#[test]
fn killed_and_stopped_daemons_catch_up() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = fleet(tmp.path(), 3, 2);

    // SIGKILL, a change meanwhile, restart: it catches up.
    let st = nodes[2].signal("-KILL");
    assert!(!st.success());
    let _ = Command::new("fusermount3")
        .args(["-u", "-z"])
        .arg(&nodes[2].mnt)
        .status();
    std::fs::write(nodes[0].mnt.join("while-killed.txt"), "k\n").unwrap();
    wait_for(30, "the change on node 1", || {
        read(&nodes[1].mnt.join("while-killed.txt")).map(|_| ())
    });
    nodes[2].start();
    wait_for(30, "the killed daemon catching up", || {
        (read(&nodes[2].mnt.join("while-killed.txt")).as_deref() == Some("k\n")).then_some(())
    });

    // Stopped cleanly while the others change files: it catches up when it returns.
    let st = nodes[1].signal("-TERM");
    assert!(st.success(), "SIGTERM exits 0: {st:?}");
    std::fs::write(nodes[0].mnt.join("while-stopped.txt"), "s\n").unwrap();
    std::fs::write(nodes[2].mnt.join("while-stopped-2.txt"), "s2\n").unwrap();
    wait_for(30, "the changes between the running two", || {
        (read(&nodes[0].mnt.join("while-stopped-2.txt")).is_some()
            && read(&nodes[2].mnt.join("while-stopped.txt")).is_some())
        .then_some(())
    });
    nodes[1].start();
    for f in ["while-stopped.txt", "while-stopped-2.txt"] {
        wait_for(30, "the stopped daemon catching up", || {
            read(&nodes[1].mnt.join(f)).map(|_| ())
        });
    }
    let s = nodes[1].status();
    let peers = s["peers"].as_array().unwrap();
    assert_eq!(peers.len(), 2, "{s}");
}

#[test]
fn sigterm_commits_a_half_written_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = fleet(tmp.path(), 1, 30);
    let node = &mut nodes[0];
    let path = node.mnt.join("half.txt");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(b"first half\n").unwrap();
    // Still open: the daemon is stopped mid-write.
    let st = node.signal("-TERM");
    assert!(st.success(), "SIGTERM exits 0: {st:?}");
    drop(f);
    assert_eq!(ok(&node.repo, &["cat", "main:half.txt"]), "first half\n");
    // The mount is gone.
    assert!(!path.exists());
}

#[test]
fn a_drive_unmounted_from_outside_is_released_and_the_daemon_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = fleet(tmp.path(), 1, 30);
    let node = &mut nodes[0];
    std::fs::write(node.mnt.join("kept.txt"), "kept\n").unwrap();
    let st = Command::new("umount").arg(&node.mnt).status().unwrap();
    assert!(st.success());
    // The daemon notices, releases the mount (its pending write committed) and keeps
    // answering.
    wait_for(30, "the status to show no mount", || {
        node.status()["mount"].is_null().then_some(())
    });
    assert_eq!(ok(&node.repo, &["cat", "main:kept.txt"]), "kept\n");
    let st = node.signal("-TERM");
    assert!(st.success(), "SIGTERM exits 0: {st:?}");
}

#[test]
fn status_without_a_daemon_fails_and_with_one_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("alone.hero");
    ok(&repo, &["init"]);
    let out = run(&repo, &["daemon", "status"]);
    assert_eq!(out.status.code(), Some(3), "no daemon: not found");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no daemon is running"));
    let out = run(&repo, &["--json", "daemon", "status"]);
    assert_eq!(out.status.code(), Some(3));
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["kind"], "not_found");

    // A default configuration, checked as the daemon would.
    ok(&repo, &["daemon", "--init-config"]);
    assert!(ok(&repo, &["config", "check"]).contains("valid"));
    let refused = run(&repo, &["daemon", "--init-config"]);
    assert_eq!(
        refused.status.code(),
        Some(4),
        "an existing file is not replaced"
    );
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "peers = []\n[dav]\naddr = \"not an address\"\n").unwrap();
    let out = run(&repo, &["config", "check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.toml:3:8"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ready_is_signalled_once_mounted_and_sighup_rereads_the_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = fleet_stopped(tmp.path(), 1, 30, "");
    let sock_path = tmp.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let node = &mut nodes[0];
    node.start_with(Some(&sock_path));
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("READY=1 within a minute");
    assert_eq!(&buf[..n], b"READY=1");
    // Ready means mounted.
    assert_eq!(
        read(&node.mnt.join("hello.txt")).as_deref(),
        Some("hello\n")
    );

    let applied = node.status()["config"]["applied"].as_u64().unwrap();
    signal(node.daemon.as_ref().unwrap(), "-HUP");
    wait_for(30, "SIGHUP re-reading the configuration", || {
        (node.status()["config"]["applied"].as_u64() == Some(applied + 1)).then_some(())
    });
    assert!(node.signal("-TERM").success());
}

fn lines(path: &Path) -> Vec<String> {
    read(path)
        .map(|t| t.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

#[test]
fn a_watch_hook_runs_once_per_change_on_a_peer_and_not_when_its_check_fails() {
    let tmp = tempfile::tempdir().unwrap();
    // The check runs in the mount: it refuses a file containing "bad".
    let hooks = r#"
[[watch]]
glob = "conf/*.txt"
check = ["sh", "-c", "! grep -q bad \"$HERO_CHANGED\""]
run = ["sh", "-c", "echo \"$HERO_CHANGED\" >> \"$HERO_REPO.hits\""]
"#;
    let nodes = fleet_with(tmp.path(), 2, 30, hooks);
    let hits = |n: &Node| {
        let mut p = n.repo.clone().into_os_string();
        p.push(".hits");
        lines(Path::new(&p))
    };
    std::fs::create_dir(nodes[0].mnt.join("conf")).unwrap();
    std::fs::write(nodes[0].mnt.join("conf/a.txt"), "good 1\n").unwrap();
    wait_for(30, "the hook on the peer", || {
        (hits(&nodes[1]).len() == 1).then_some(())
    });
    assert_eq!(hits(&nodes[1]), ["conf/a.txt"]);
    // An unrelated file fires nothing; the next matching change fires once more.
    std::fs::write(nodes[0].mnt.join("other.txt"), "x\n").unwrap();
    std::fs::write(nodes[0].mnt.join("conf/a.txt"), "good 2\n").unwrap();
    wait_for(30, "the second change on the peer", || {
        (read(&nodes[1].mnt.join("conf/a.txt")).as_deref() == Some("good 2\n")
            && read(&nodes[1].mnt.join("other.txt")).is_some())
        .then_some(())
    });
    wait_for(30, "the second run", || {
        (hits(&nodes[1]).len() == 2).then_some(())
    });

    // A change the check refuses: not run, and the status says so.
    std::fs::write(nodes[0].mnt.join("conf/a.txt"), "bad\n").unwrap();
    let w = wait_for(30, "the refused check in the peer's status", || {
        let s = nodes[1].status();
        let w = s["watches"][0].clone();
        (w["checks_failed"].as_u64() == Some(1)).then_some(w)
    });
    assert_eq!(w["last_result"], "check failed", "{w}");
    assert!(w["last_error"].as_str().unwrap().contains("exited"), "{w}");
    assert_eq!(w["runs"].as_u64(), Some(2), "{w}");
    assert_eq!(hits(&nodes[1]).len(), 2, "the command did not run");
    // The node that made the changes ran its hooks too.
    assert_eq!(hits(&nodes[0]).len(), 2);
}

#[test]
fn heroctl_watch_runs_for_a_commit_from_another_process_and_not_when_the_check_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("w.hero");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(work.join("conf")).unwrap();
    std::fs::write(work.join("conf/app.conf"), "good 1\n").unwrap();
    ok(&repo, &["init"]);
    ok(&repo, &["commit", work.to_str().unwrap(), "-m", "first"]);
    let hits = tmp.path().join("hits");
    let mut child = cmd(
        &repo,
        &[
            "watch",
            "conf/*.conf",
            "--check",
            "! grep -q bad \"$HERO_CHANGED\"",
            "--",
            "sh",
            "-c",
            &format!("cat \"$HERO_CHANGED\" >> {}", hits.display()),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = stdout.next().unwrap().unwrap();
    assert!(first.starts_with("watching conf/*.conf"), "{first}");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in stdout {
            let _ = tx.send(l.unwrap());
        }
    });
    let next_line = || {
        rx.recv_timeout(Duration::from_secs(30))
            .expect("a line from watch")
    };

    std::fs::write(work.join("conf/app.conf"), "good 2\n").unwrap();
    std::fs::write(work.join("other.txt"), "x\n").unwrap();
    ok(&repo, &["commit", work.to_str().unwrap(), "-m", "second"]);
    assert_eq!(next_line(), "conf/app.conf: ok");
    assert_eq!(lines(&hits), ["good 2"]);
    std::fs::write(work.join("conf/app.conf"), "bad\n").unwrap();
    ok(&repo, &["commit", work.to_str().unwrap(), "-m", "third"]);
    let refused = next_line();
    assert!(
        refused.starts_with("conf/app.conf: check failed"),
        "{refused}"
    );
    std::fs::write(work.join("conf/app.conf"), "good 3\n").unwrap();
    ok(&repo, &["commit", work.to_str().unwrap(), "-m", "fourth"]);
    assert_eq!(next_line(), "conf/app.conf: ok");
    // The command did not run for the refused version.
    assert_eq!(lines(&hits), ["good 2", "good 3"]);
    signal(&child, "-TERM");
    assert!(child.wait().unwrap().success());
}

#[test]
fn the_local_file_names_the_repository_and_the_mount() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = fleet_stopped(tmp.path(), 1, 30, "");
    let node = &nodes[0];
    let xdg = tmp.path().join("xdg");
    std::fs::create_dir_all(xdg.join("hero")).unwrap();
    std::fs::create_dir_all(&node.mnt).unwrap();
    std::fs::write(
        xdg.join("hero/daemon.toml"),
        format!(
            "repo = \"{}\"\nmount = \"{}\"\n",
            node.repo.display(),
            node.mnt.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(heroctl())
        .args(["--net", "local", "daemon"])
        .env("XDG_CONFIG_HOME", &xdg)
        .env_remove("HERO_REPO")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ticket = ticket_line(&mut child, || "the daemon exited".to_owned());
    assert_eq!(ticket, node.ticket());
    assert_eq!(
        read(&node.mnt.join("hello.txt")).as_deref(),
        Some("hello\n")
    );
    assert_eq!(node.status()["mount"], node.mnt.display().to_string());
    signal(&child, "-TERM");
    assert!(child.wait().unwrap().success());
}

#[test]
fn an_announcement_makes_a_peer_pull_without_a_push_or_a_catch_up() {
    let tmp = tempfile::tempdir().unwrap();
    // Node 1 keeps in sync with node 0; node 0 has no peer (it only allows node 1), so nothing
    // pushes to node 1, and the catch-up is 10 minutes away: only node 0's announcement can
    // make node 1 pull.
    let mut nodes = fleet_configured(tmp.path(), 2, |nodes| {
        let mut t = format!(
            "peers = [\"{}\"]\ncatch_up_secs = 600\n[mount]\nidle_commit_ms = 50\n[dav]\nenabled = false\n",
            nodes[0].ticket()
        );
        for n in nodes {
            t.push_str(&format!(
                "[node.{}]\nlisten = \"127.0.0.1:{}\"\n",
                n.id, n.port
            ));
        }
        t
    });
    ok(&nodes[0].repo, &["allow", "add", &nodes[1].id.clone()]);
    nodes[0].start();
    let origin = nodes[0].ticket();
    ok(&nodes[1].repo, &["clone", &origin]);
    // The clone's origin is node 0 (a peer of node 1 anyway); drop it from node 0's view.
    nodes[1].start();
    assert!(nodes[0].status()["peers"].as_array().unwrap().is_empty());
    // Node 1 has synced once at start; wait until node 0 saw it join the topic (its first
    // announcement must reach it), by changing files until one arrives.
    let mut k = 0;
    wait_for(60, "an announced change on node 1", || {
        k += 1;
        let name = format!("announced-{k}.txt");
        std::fs::write(nodes[0].mnt.join(&name), "a\n").unwrap();
        let arrived = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            read(&nodes[1].mnt.join(&name)).is_some()
        });
        arrived.then_some(())
    });
    // Once joined, every change arrives.
    for i in 0..3 {
        let name = format!("then-{i}.txt");
        std::fs::write(nodes[0].mnt.join(&name), "b\n").unwrap();
        wait_for(10, "a later announced change", || {
            read(&nodes[1].mnt.join(&name)).map(|_| ())
        });
    }
}

#[test]
fn the_daemon_collects_garbage_on_its_schedule_after_the_grace_period() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = fleet_stopped(
        tmp.path(),
        1,
        600,
        "[gc]\ninterval = \"1s\"\ngrace = \"2s\"\n",
    );
    // An object nothing reaches (what an interrupted transfer or a replaced file leaves).
    let orphan = {
        let repo = hero_store::Repo::open(&nodes[0].repo).unwrap();
        repo.batch(|b| b.put_blob(b"nobody points at this\n", None))
            .unwrap()
    };
    let head = {
        let repo = hero_store::Repo::open(&nodes[0].repo).unwrap();
        repo.branch_head("main").unwrap().unwrap()
    };
    nodes[0].start();
    let has = |id| {
        hero_store::Repo::open(&nodes[0].repo)
            .unwrap()
            .has_object(&id)
            .unwrap()
    };
    // The first collection finds it and lists it: kept for the grace period.
    let first = wait_for(30, "a first collection", || {
        let g = nodes[0].status()["gc"].clone();
        (g["runs"].as_u64() >= Some(1)).then_some(g)
    });
    assert_eq!(first["enabled"], true, "{first}");
    assert_eq!(first["grace_secs"], 2, "{first}");
    assert!(first["last_error"].is_null(), "{first}");
    assert!(first["last_listed"].as_u64() >= Some(1), "{first}");
    assert_eq!(first["last_removed"], 0, "{first}");
    assert!(has(orphan), "listed, not removed yet");
    // A later one, after the grace period, removes it.
    let done = wait_for(30, "a collection that removes the orphan", || {
        let g = nodes[0].status()["gc"].clone();
        (g["last_removed"].as_u64() >= Some(1)).then_some(g)
    });
    assert!(done["runs"].as_u64().unwrap() >= 2, "{done}");
    assert!(done["last_error"].is_null(), "{done}");
    assert!(!has(orphan), "the orphan is gone");
    // Everything the branch reaches is still there, and the drive still reads.
    let repo = hero_store::Repo::open(&nodes[0].repo).unwrap();
    assert_eq!(repo.branch_head("main").unwrap(), Some(head));
    assert!(repo.verify(None).unwrap().is_ok());
    drop(repo);
    assert_eq!(read(&nodes[0].mnt.join("hello.txt")).unwrap(), "hello\n");
    // The schedule reloads live: switched off through the drive.
    let cfg_path = nodes[0].mnt.join(".hero/daemon.toml");
    let text = read(&cfg_path).unwrap().replace(
        "[gc]\ninterval = \"1s\"",
        "[gc]\nenabled = false\ninterval = \"1s\"",
    );
    std::fs::write(&cfg_path, text).unwrap();
    wait_for(30, "the schedule switched off", || {
        (nodes[0].status()["gc"]["enabled"] == false).then_some(())
    });
    let runs = nodes[0].status()["gc"]["runs"].as_u64().unwrap();
    // Stays off: no further collection while several intervals pass (polled, not slept on).
    let until = Instant::now() + Duration::from_secs(3);
    wait_for(10, "three seconds without a collection", || {
        let g = nodes[0].status()["gc"].clone();
        assert_eq!(g["runs"].as_u64().unwrap(), runs, "{g}");
        (Instant::now() >= until).then_some(())
    });
    let text = read(&tmp.path().join("n0.log")).unwrap_or_default();
    assert!(!text.contains("ERROR"), "{text}");
}

#[test]
fn a_peer_restarted_on_another_port_is_found_again_by_its_id() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = fleet(tmp.path(), 2, 1);
    // Node 0 saves node 1 as a remote, at the address it has now.
    let old_ticket = nodes[1].ticket();
    ok(&nodes[0].repo, &["remote", "add", "b", &old_ticket]);
    // Node 1 stops and, in its own copy of the configuration, moves to another port; the
    // fleet's peer list (and node 0's saved remote) still name the old one.
    assert!(nodes[1].signal("-TERM").success());
    let co = tmp.path().join("co1");
    ok(&nodes[1].repo, &["checkout", "main", co.to_str().unwrap()]);
    let cfg = co.join(".hero/daemon.toml");
    let new_port = free_udp_port();
    let text = read(&cfg).unwrap().replace(
        &format!("listen = \"127.0.0.1:{}\"", nodes[1].port),
        &format!("listen = \"127.0.0.1:{new_port}\""),
    );
    assert!(text.contains(&new_port.to_string()));
    std::fs::write(&cfg, text).unwrap();
    ok(
        &nodes[1].repo,
        &["commit", co.to_str().unwrap(), "-m", "node 1 moves"],
    );
    nodes[1].port = new_port;
    nodes[1].start();
    // Node 1 dials node 0 (its peer and origin); node 0's daemon learns where node 1 is now
    // and reaches it there: its worker for node 1 syncs again, and the saved remote follows.
    let remote_b = || {
        ok(&nodes[0].repo, &["remote", "list"])
            .lines()
            .find(|l| l.contains(&nodes[1].id))
            .unwrap_or_default()
            .to_owned()
    };
    wait_for(60, "node 0's saved remote at node 1's new port", || {
        remote_b()
            .contains(&format!("127.0.0.1:{new_port}"))
            .then_some(())
    });
    let since = nodes[0].status()["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == nodes[1].id.as_str())
        .map(|p| p["syncs"].as_u64().unwrap())
        .unwrap();
    wait_for(30, "node 0's worker syncing with node 1 again", || {
        let st = nodes[0].status();
        let p = st["peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == nodes[1].id.as_str())
            .cloned()
            .unwrap();
        (p["syncs"].as_u64().unwrap() > since + 1 && p["last_error"].is_null()).then_some(())
    });
    // A one-shot `heroctl sync b` from node 0's repository, its daemon stopped, reaches node 1
    // with no new ticket.
    assert!(nodes[0].signal("-TERM").success());
    let t0 = Instant::now();
    let out = run(&nodes[0].repo, &["sync", "b"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
}

/// A peer's `syncs` counter in a daemon's status.
fn syncs_with(node: &Node, peer: &Node) -> u64 {
    node.status()["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == peer.id.as_str())
        .and_then(|p| p["syncs"].as_u64())
        .unwrap_or(0)
}

#[test]
fn one_change_is_one_session_the_receivers_pull_of_what_was_announced() {
    let tmp = tempfile::tempdir().unwrap();
    // The catch-up is 10 minutes away: only the change makes sessions.
    let nodes = fleet(tmp.path(), 2, 600);
    let (a, b) = (&nodes[0], &nodes[1]);
    // Settled: both counters unchanged for two seconds.
    let mut last = (u64::MAX, u64::MAX);
    let mut stable_since = Instant::now();
    wait_for(60, "the start-up syncs to settle", || {
        let now = (syncs_with(a, b), syncs_with(b, a));
        if now != last {
            last = now;
            stable_since = Instant::now();
        }
        (stable_since.elapsed() > Duration::from_secs(2)).then_some(())
    });
    let (a0, b0) = last;
    std::fs::write(a.mnt.join("one.txt"), "one change\n").unwrap();
    wait_for(30, "the change on node 1", || {
        (read(&b.mnt.join("one.txt")).as_deref() == Some("one change\n")).then_some(())
    });
    // Node 1 pulled once; node 0 started no session: it heard node 1 announce the new head
    // within its one-second wait, so it pushes nothing. Watched for three seconds.
    let until = Instant::now() + Duration::from_secs(3);
    wait_for(10, "three seconds after the change arrived", || {
        assert_eq!(syncs_with(a, b), a0, "node 0 started a session");
        (Instant::now() >= until).then_some(())
    });
    assert_eq!(syncs_with(b, a), b0 + 1, "node 1 pulls once");
}

#[test]
fn a_second_daemon_on_a_taken_port_names_the_address_its_holder_and_the_way_out() {
    let tmp = tempfile::tempdir().unwrap();
    let held = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let repo = tmp.path().join("crowded.hero");
    ok(&repo, &["init"]);
    let out = run(&repo, &["daemon", "--listen", &addr]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains(&format!("UDP address {addr} is taken")),
        "{err}"
    );
    // This test process holds it, and says how to choose another.
    assert!(
        err.contains(&format!("process {}", std::process::id())),
        "{err}"
    );
    assert!(err.contains("--listen"), "{err}");
    let out = run(&repo, &["serve", "--bind", &addr]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("is taken"), "{err}");
}

#[test]
fn the_daemon_lists_files_the_mount_let_in_that_break_a_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = fleet_stopped(tmp.path(), 1, 30, "");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(work.join(".hero/schemas")).unwrap();
    std::fs::write(
        work.join(".hero/schemas/etc.toml"),
        "[[rule]]\nglob = \"etc/*.toml\"\nrequired = [\"server.port\"]\n",
    )
    .unwrap();
    let node = &mut nodes[0];
    ok(
        &node.repo,
        &["commit", work.to_str().unwrap(), "-m", "schema"],
    );
    node.start();
    assert_eq!(node.status()["invalid_files"], serde_json::json!([]));

    // The mount does not refuse (a save is not a commit command); the daemon says what broke.
    std::fs::create_dir_all(node.mnt.join("etc")).unwrap();
    std::fs::write(node.mnt.join("etc/app.toml"), "[server]\nhost = \"a\"\n").unwrap();
    let found = wait_for(30, "the invalid file in status", || {
        let v = node.status()["invalid_files"].clone();
        v.as_array().filter(|a| !a.is_empty()).cloned()
    });
    assert_eq!(found[0]["path"], "etc/app.toml");
    assert_eq!(found[0]["line"], 1);
    assert!(
        found[0]["message"]
            .as_str()
            .unwrap()
            .contains("`server.port` is required"),
        "{found:?}"
    );
    let text = ok(&node.repo, &["daemon", "status"]);
    assert!(
        text.contains("invalid: etc/app.toml:1:1: `server.port` is required"),
        "{text}"
    );
    std::fs::write(node.mnt.join("etc/app.toml"), "[server]\nport = 80\n").unwrap();
    wait_for(30, "the fixed file out of status", || {
        (node.status()["invalid_files"] == serde_json::json!([])).then_some(())
    });
}

#[test]
fn the_control_socket_runs_a_script_and_refuses_a_wrong_one_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = fleet_stopped(tmp.path(), 1, 30, "");
    let node = &mut nodes[0];
    node.start();
    let bad = tmp.path().join("bad.hero");
    std::fs::write(&bad, "!!hero.tag name:v1\n!!hero.tag name:v2 colour:red\n").unwrap();
    let out = run(&node.repo, &["script", "--daemon", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("-:2:20: unknown parameter `colour`"), "{err}");
    assert_eq!(ok(&node.repo, &["tag"]), "", "nothing ran");

    let good = tmp.path().join("good.hero");
    std::fs::write(
        &good,
        "!!hero.tag name:v1 message:'from the socket'\n!!hero.get path:'v1:hello.txt'\n",
    )
    .unwrap();
    let out = run(&node.repo, &["script", "--daemon", good.to_str().unwrap()]);
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // hello.txt is no structured file: the second action fails with its exit code.
    assert_eq!(out.status.code(), Some(2), "{lines:?}");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["result"]["name"], "v1");
    assert_eq!(lines[1]["ok"], false);
    assert!(ok(&node.repo, &["tag"]).contains("v1"));
}

/// Lines of `log` that contain `needle`.
fn count_lines(log: &Path, needle: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

#[test]
fn pull_and_push_go_through_the_daemons_open_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.hero"), tmp.path().join("b.hero"));
    let b_id = ok(&b, &["id"]).trim().to_owned();
    // The origin: a plain server whose debug log names each connection and each session.
    let work = tmp.path().join("work");
    std::fs::create_dir_all(work.join(".hero")).unwrap();
    std::fs::write(
        work.join(".hero/daemon.toml"),
        "[dav]\nenabled = false\n\n[ui]\nenabled = false\n",
    )
    .unwrap();
    std::fs::write(work.join("hello.txt"), "hello\n").unwrap();
    ok(&a, &["init"]);
    ok(&a, &["commit", work.to_str().unwrap(), "-m", "first"]);
    ok(&a, &["member", "add", &b_id, "--role", "writer"]);
    let a_log = tmp.path().join("a.log");
    let port = free_udp_port();
    let mut serve = cmd(&a, &["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "hero_sync=debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&a_log).unwrap())
        .spawn()
        .unwrap();
    let ticket = ticket_line(&mut serve, || "serve exited before it was ready".into());
    ok(&b, &["clone", &ticket]);
    let connections = || count_lines(&a_log, &format!("sync: connection from {b_id}"));
    let sessions = || count_lines(&a_log, &format!("sync: session with {b_id} done"));
    let after_clone = (connections(), sessions());

    // The daemon of the clone: its first sync opens the connection it keeps.
    let b_port = free_udp_port();
    let mut daemon = cmd(&b, &["daemon", "--listen", &format!("127.0.0.1:{b_port}")])
        .env("RUST_LOG", "heroctl=info,hero_sync=debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(tmp.path().join("b.log")).unwrap())
        .spawn()
        .unwrap();
    ticket_line(&mut daemon, || {
        "the daemon exited before it was ready".into()
    });
    let opened = wait_for(30, "the daemon's first session", || {
        (sessions() > after_clone.1).then(|| (connections(), sessions()))
    });
    assert_eq!(
        opened.0,
        after_clone.0 + 1,
        "the daemon opened one connection"
    );

    // Nothing new: the daemon's connection carries the session; no connection of its own.
    let nothing = json(&b, &["pull"]);
    assert_eq!(nothing["via"], "daemon", "{nothing}");
    assert_eq!(nothing["connection"]["reused"], true, "{nothing}");
    assert_eq!(nothing["connection"]["dials"], 1, "{nothing}");
    assert_eq!(nothing["objects"], 0, "{nothing}");
    assert_eq!(nothing["branches_updated"], 0, "{nothing}");
    wait_for(30, "the origin to log the session", || {
        (sessions() == opened.1 + 1).then_some(())
    });

    // One change on the origin: pulled over the same connection, in one session.
    std::fs::write(work.join("hello.txt"), "hello, changed\n").unwrap();
    ok(&a, &["commit", work.to_str().unwrap(), "-m", "second"]);
    let one = json(&b, &["pull"]);
    assert_eq!(one["via"], "daemon", "{one}");
    assert_eq!(one["connection"]["reused"], true, "{one}");
    assert_eq!(one["connection"]["dials"], 1, "{one}");
    assert_eq!(one["branches_updated"], 1, "{one}");
    assert_eq!(ok(&b, &["cat", "main:hello.txt"]), "hello, changed\n");
    wait_for(30, "the origin to log the session", || {
        (sessions() == opened.1 + 2).then_some(())
    });

    // A push of a change made here goes the same way.
    let co = tmp.path().join("co");
    ok(&b, &["checkout", "main", co.to_str().unwrap()]);
    std::fs::write(co.join("hello.txt"), "hello from b\n").unwrap();
    ok(&b, &["commit", co.to_str().unwrap(), "-m", "third"]);
    let pushed = json(&b, &["push", "origin", "main"]);
    assert_eq!(pushed["via"], "daemon", "{pushed}");
    assert_eq!(pushed["connection"]["dials"], 1, "{pushed}");
    assert_eq!(ok(&a, &["cat", "main:hello.txt"]), "hello from b\n");
    assert_eq!(
        connections(),
        opened.0,
        "every session on the daemon's connection"
    );

    // Without the daemon the command connects by itself.
    signal(&daemon, "-TERM");
    daemon.wait().unwrap();
    let direct = json(&b, &["pull"]);
    assert!(direct.get("via").is_none(), "{direct}");
    wait_for(30, "the direct connection at the origin", || {
        (connections() == opened.0 + 1).then_some(())
    });
    let _ = serve.kill();
    let _ = serve.wait();
}
