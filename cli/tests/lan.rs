//! Peers on a LAN, each in a network namespace of its own joined by a veth pair (loopback
//! carries no multicast, so local-network discovery needs a real segment), and a peer with no
//! network at all. Nothing here leaves the namespaces: they have no route to the machine's own
//! network.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// Network namespaces made for one test; deleted (with their links) when dropped.
struct Lan {
    ns: Vec<String>,
}

impl Lan {
    fn new(n: usize) -> Lan {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let made = NEXT.fetch_add(1, Ordering::Relaxed);
        let ns: Vec<String> = (0..n)
            .map(|i| format!("hero-test-{}-{made}-{i}", std::process::id()))
            .collect();
        let lan = Lan { ns };
        for name in &lan.ns {
            ip(&["netns", "add", name]);
            ip(&["-n", name, "link", "set", "lo", "up"]);
        }
        lan
    }

    /// One namespace with loopback only: a machine without any network.
    fn offline() -> Lan {
        Lan::new(1)
    }

    /// Two namespaces on one Ethernet segment, 10.77.0.1 and 10.77.0.2, each with its default
    /// route on it (multicast goes out on the default route's interface).
    fn pair() -> Lan {
        let lan = Lan::new(2);
        let (a, b) = (&lan.ns[0], &lan.ns[1]);
        ip(&[
            "-n", a, "link", "add", "eth1", "type", "veth", "peer", "name", "eth1", "netns", b,
        ]);
        for (i, name) in lan.ns.iter().enumerate() {
            let addr = format!("10.77.0.{}/24", i + 1);
            ip(&["-n", name, "addr", "add", &addr, "dev", "eth1"]);
            ip(&["-n", name, "link", "set", "eth1", "up"]);
            ip(&["-n", name, "route", "add", "default", "dev", "eth1"]);
        }
        lan
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for name in &self.ns {
            let _ = Command::new("ip")
                .args(["netns", "del", name])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Runs `ip ARGS`, which must succeed.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap_or_else(|e| {
        panic!("these tests need iproute2's `ip` (apt-get install iproute2): {e}")
    });
    assert!(
        out.status.success(),
        "ip {args:?}: {} (these tests make network namespaces: they run as root)",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `heroctl -R REPO ARGS` in namespace `ns`, on the default network (relays and lookups on)
/// unless ARGS say otherwise. `nsenter` enters the network namespace only (`ip netns exec`
/// would give the process a mount namespace of its own, and a mount made there would not be
/// seen here).
fn cmd_in(ns: &str, repo: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net=/run/netns/{ns}"))
        .arg("--")
        .arg(heroctl())
        .arg("-R")
        .arg(repo)
        .args(args)
        .env_remove("HERO_NET")
        .env_remove("RUST_LOG")
        .env("HERO_AUTHOR_NAME", "Tester")
        .env("HERO_AUTHOR_EMAIL", "t@example.com")
        .env_remove("NOTIFY_SOCKET");
    c
}

/// A `heroctl serve` (or daemon) running in a namespace; stopped when dropped.
struct Served {
    child: Child,
    ticket: String,
}

impl Served {
    /// Starts `heroctl -R REPO ARGS` in `ns` and waits for its ticket.
    fn start(ns: &str, repo: &Path, args: &[&str]) -> Served {
        let mut child = cmd_in(ns, repo, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let ticket = ticket_line(&mut child, || {
            format!("{args:?} in {ns} exited before printing its ticket")
        });
        Served { child, ticket }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Commits `text` as `notes.txt` on `repo`'s main branch.
fn save_notes(repo: &Path, work: &Path, text: &str) {
    std::fs::create_dir_all(work).unwrap();
    std::fs::write(work.join("notes.txt"), text).unwrap();
    ok(repo, &["commit", work.to_str().unwrap(), "-m", text.trim()]);
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_peer_restarted_on_another_port_is_found_on_the_lan_by_its_id() {
    let lan = Lan::pair();
    let (ns_a, ns_b) = (&lan.ns[0], &lan.ns[1]);
    let tmp = tempfile::tempdir().unwrap();
    let [a, b, work] = ["a.hero", "b.hero", "work"].map(|n| tmp.path().join(n));
    ok(&a, &["init"]);
    save_notes(&a, &work, "one\n");
    let b_id = ok(&b, &["id"]).trim().to_owned();
    ok(&a, &["member", "add", &b_id, "--role", "writer"]);

    // B clones A over the LAN; origin is saved with A's address of the day.
    let served = Served::start(ns_a, &a, &["serve", "--bind", "0.0.0.0:4001"]);
    assert!(
        served.ticket.contains("10.77.0.1:4001"),
        "{}",
        served.ticket
    );
    let out = cmd_in(ns_b, &b, &["clone", &served.ticket])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    drop(served);

    // A restarts on another port. Nothing tells B where: A has no remotes to dial, and the
    // namespaces reach no relay or DNS. Only local-network discovery (mDNS) can find it.
    save_notes(&a, &work, "two\n");
    let served = Served::start(ns_a, &a, &["serve", "--bind", "0.0.0.0:4002"]);
    assert!(
        served.ticket.contains("10.77.0.1:4002"),
        "{}",
        served.ticket
    );
    let out = cmd_in(ns_b, &b, &["pull"]).output().unwrap();
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("remote origin: the peer is now at 10.77.0.1:4002"),
        "{text}"
    );
    assert_eq!(ok(&b, &["cat", "main:notes.txt"]), "two\n");
    // The saved remote followed it.
    assert!(
        ok(&b, &["remote", "list"]).contains("10.77.0.1:4002"),
        "{}",
        ok(&b, &["remote", "list"])
    );
    // No warnings on the way (relays and DNS fail in here, quietly).
    assert!(
        !text.contains(" WARN ") && !text.contains(" ERROR "),
        "{text}"
    );
    drop(served);

    // `--net local` has no lookups: after A moves again the saved address is all B has.
    save_notes(&a, &work, "three\n");
    let served = Served::start(
        ns_a,
        &a,
        &["serve", "--net", "local", "--bind", "0.0.0.0:4003"],
    );
    let out = cmd_in(ns_b, &b, &["pull", "--net", "local"])
        .output()
        .unwrap();
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("unreachable"), "{text}");
    // With A's new ticket, a `--net local` client reaches a peer elsewhere on the LAN (it
    // binds beyond loopback to dial a LAN address).
    let out = cmd_in(ns_b, &b, &["pull", "--net", "local", &served.ticket])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(ok(&b, &["cat", "main:notes.txt"]), "three\n");
}

/// Starts `heroctl ARGS` in `ns` with the default network (relays and lookups on) and returns
/// how long it took to print `ticket:`, and its stderr after a further three seconds.
fn ticket_time_default_net(ns: &str, repo: &Path, args: &[&str]) -> (Duration, String) {
    let err = repo.with_extension("stderr");
    let t0 = Instant::now();
    let mut child = cmd_in(ns, repo, args)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    ticket_line(&mut child, || {
        format!("{args:?} exited: {}", read(&err).unwrap_or_default())
    });
    let took = t0.elapsed();
    // Poll until three seconds passed, watching that it keeps running.
    let until = Instant::now() + Duration::from_secs(3);
    wait_for(10, "three seconds of running", || {
        assert!(child.try_wait().unwrap().is_none(), "{args:?} exited");
        (Instant::now() >= until).then_some(())
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
    (took, read(&err).unwrap_or_default())
}

#[test]
fn serve_and_daemon_start_at_once_without_any_network_and_say_so_once() {
    let lan = Lan::offline();
    let ns = &lan.ns[0];
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("a.hero");
    ok(&repo, &["init"]);
    let (took, stderr) = ticket_time_default_net(ns, &repo, &["serve"]);
    assert!(
        took < Duration::from_secs(3),
        "serve: ticket after {took:?}"
    );
    // One line says how it runs; no warnings or errors while it runs, none at exit: not
    // from relays, DNS or local-network discovery, all of which fail here.
    let noisy = |stderr: &str| -> Vec<String> {
        stderr
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .map(str::to_owned)
            .collect()
    };
    assert!(noisy(&stderr).is_empty(), "serve: {stderr}");
    assert!(stderr.contains("relays and address lookup on"), "{stderr}");
    // The daemon, on its default port, nothing mounted or shared.
    let work = tmp.path().join("work");
    std::fs::create_dir_all(work.join(".hero")).unwrap();
    std::fs::write(
        work.join(".hero/daemon.toml"),
        "[mount]\nenabled = false\n[dav]\nenabled = false\n",
    )
    .unwrap();
    ok(&repo, &["commit", work.to_str().unwrap(), "-m", "config"]);
    let (took, stderr) = ticket_time_default_net(ns, &repo, &["daemon"]);
    assert!(
        took < Duration::from_secs(3),
        "daemon: ticket after {took:?}"
    );
    assert!(noisy(&stderr).is_empty(), "daemon: {stderr}");
    assert!(stderr.contains("relays and address lookup on"), "{stderr}");
}

#[test]
fn daemons_on_a_lan_keep_in_sync_with_peers_named_by_id_alone() {
    require_fuse();
    let lan = Lan::pair();
    let (ns_a, ns_b) = (&lan.ns[0], &lan.ns[1]);
    let tmp = tempfile::tempdir().unwrap();
    let [a, b, work] = ["a.hero", "b.hero", "work"].map(|n| tmp.path().join(n));
    let (mnt_a, mnt_b) = (tmp.path().join("mnt-a"), tmp.path().join("mnt-b"));
    let (id_a, id_b) = (
        ok(&a, &["id"]).trim().to_owned(),
        ok(&b, &["id"]).trim().to_owned(),
    );
    // One shared configuration: each peer by its id, no address anywhere.
    std::fs::create_dir_all(work.join(".hero")).unwrap();
    std::fs::write(
        work.join(".hero/daemon.toml"),
        format!(
            "peers = [\"{id_a}\", \"{id_b}\"]\n[mount]\nidle_commit_ms = 50\n[dav]\nenabled = false\n"
        ),
    )
    .unwrap();
    ok(&a, &["init"]);
    ok(&a, &["commit", work.to_str().unwrap(), "-m", "fleet"]);
    ok(&a, &["member", "add", &id_b, "--role", "writer"]);
    // B clones from a `serve` on another port than the daemon's: its origin is stale as soon as
    // A's daemon replaces the server.
    let served = Served::start(ns_a, &a, &["serve", "--bind", "0.0.0.0:4001"]);
    let out = cmd_in(ns_b, &b, &["clone", &served.ticket])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    drop(served);

    std::fs::create_dir_all(&mnt_a).unwrap();
    std::fs::create_dir_all(&mnt_b).unwrap();
    let _da = Served::start(ns_a, &a, &["daemon", "--mount", mnt_a.to_str().unwrap()]);
    let _db = Served::start(ns_b, &b, &["daemon", "--mount", mnt_b.to_str().unwrap()]);
    std::fs::write(mnt_a.join("from-a.txt"), "found by id\n").unwrap();
    wait_for(60, "from-a.txt in B's mount", || {
        (read(&mnt_b.join("from-a.txt")).as_deref() == Some("found by id\n")).then_some(())
    });
    std::fs::write(mnt_b.join("from-b.txt"), "and back\n").unwrap();
    wait_for(60, "from-b.txt in A's mount", || {
        (read(&mnt_a.join("from-b.txt")).as_deref() == Some("and back\n")).then_some(())
    });
}
