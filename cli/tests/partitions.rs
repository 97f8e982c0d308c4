//! Partitions: daemons in network namespaces of their own, each with a real FUSE mount, joined
//! by a bridge in a hub namespace. A node's link is cut (its port on the bridge set down) in
//! the middle of a sync or while the membership changes, edits go on on both sides, and the
//! link is healed. Each daemon listens on its veth address (`heroctl daemon --listen
//! 10.78.0.N:4919`) and its peers are tickets carrying those addresses. Nothing here leaves the
//! namespaces: they have no route to the machine's own network.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// The port every daemon listens on (each namespace has ports of its own).
const PORT: u16 = 4919;

/// A hub namespace holding a bridge, and node namespaces each joined to it by a veth pair
/// (`eth1` in the node, `pN` on the bridge); node `i` is [`Star::addr`]`(i)`. Everything is
/// deleted when dropped, after a panic too (deleting a namespace deletes its links).
struct Star {
    hub: String,
    nodes: Vec<String>,
}

impl Star {
    fn new(n: usize) -> Star {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let made = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = |what: &str| format!("hero-part-{}-{made}-{what}", std::process::id());
        // The names exist before any namespace does: a failure half way deletes what was made.
        let star = Star {
            hub: name("hub"),
            nodes: (0..n).map(|i| name(&i.to_string())).collect(),
        };
        for ns in std::iter::once(&star.hub).chain(&star.nodes) {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        let hub = star.hub.as_str();
        ip(&["-n", hub, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", hub, "link", "set", "br0", "up"]);
        for (i, ns) in star.nodes.iter().enumerate() {
            let port = format!("p{i}");
            ip(&[
                "-n", hub, "link", "add", &port, "type", "veth", "peer", "name", "eth1", "netns",
                ns,
            ]);
            ip(&["-n", hub, "link", "set", &port, "master", "br0"]);
            ip(&["-n", hub, "link", "set", &port, "up"]);
            let cidr = format!("{}/24", Star::addr(i));
            ip(&["-n", ns, "addr", "add", &cidr, "dev", "eth1"]);
            ip(&["-n", ns, "link", "set", "eth1", "up"]);
        }
        star
    }

    /// Node `i`'s address.
    fn addr(i: usize) -> String {
        format!("10.78.0.{}", i + 1)
    }

    /// Cuts node `i` off: nothing it sends or is sent arrives any more.
    fn cut(&self, i: usize) {
        ip(&["-n", &self.hub, "link", "set", &format!("p{i}"), "down"]);
    }

    /// Joins node `i` again.
    fn heal(&self, i: usize) {
        ip(&["-n", &self.hub, "link", "set", &format!("p{i}"), "up"]);
    }

    /// Limits what node `i` sends to `rate` (tc's token bucket), so a large change takes
    /// seconds to leave it.
    fn limit(&self, i: usize, rate: &str) {
        let args = [
            "qdisc", "add", "dev", "eth1", "root", "tbf", "rate", rate, "burst", "64kb", "latency",
            "400ms",
        ];
        tc(&self.nodes[i], &args);
    }

    /// Lifts [`Star::limit`].
    fn unlimit(&self, i: usize) {
        tc(&self.nodes[i], &["qdisc", "del", "dev", "eth1", "root"]);
    }

    /// The bytes node `i` has sent onto the bridge.
    fn sent_by(&self, i: usize) -> u64 {
        let out = Command::new("ip")
            .args([
                "-n",
                &self.hub,
                "-s",
                "-j",
                "link",
                "show",
                &format!("p{i}"),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "ip -s link show p{i}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["stats64"]["rx"]["bytes"].as_u64().unwrap()
    }
}

impl Drop for Star {
    fn drop(&mut self) {
        for ns in std::iter::once(&self.hub).chain(&self.nodes) {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
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

/// Runs `tc ARGS` in namespace `ns`, which must succeed.
fn tc(ns: &str, args: &[&str]) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "tc"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tc {args:?}: {} (iproute2's tc with the tbf qdisc is needed)",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One node: a repository, its mount, its namespace and its daemon (when running).
struct NsNode {
    ns: String,
    addr: String,
    repo: PathBuf,
    mnt: PathBuf,
    log: PathBuf,
    id: String,
    daemon: Option<Child>,
}

impl NsNode {
    fn ticket(&self) -> String {
        format!("{}@{}:{PORT}", self.id, self.addr)
    }

    /// `heroctl -R REPO ARGS` in this node's network namespace, peers on direct addresses only
    /// (`--net local`). `nsenter` enters the network namespace only: the daemon's mount is made
    /// in this process's mount namespace, where the test sees it.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.ns))
            .arg("--")
            .arg(heroctl())
            .arg("-R")
            .arg(&self.repo)
            .args(args)
            .env("HERO_NET", "local")
            .env("HERO_AUTHOR_NAME", "Tester")
            .env("HERO_AUTHOR_EMAIL", "t@example.com")
            .env_remove("NOTIFY_SOCKET");
        c
    }

    /// Starts the daemon on this node's address and waits for its ticket.
    fn start(&mut self) {
        std::fs::create_dir_all(&self.mnt).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let listen = format!("{}:{PORT}", self.addr);
        let mut child = self
            .cmd(&[
                "daemon",
                "--mount",
                self.mnt.to_str().unwrap(),
                "--listen",
                &listen,
            ])
            .env("RUST_LOG", "heroctl=info,hero_fuse=warn,hero_sync=warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let ticket = ticket_line(&mut child, || {
            format!(
                "daemon in {} exited before it was ready: {}",
                self.ns,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            )
        });
        assert_eq!(ticket, self.ticket(), "the ticket carries the veth address");
        self.daemon = Some(child);
    }

    fn status(&self) -> Value {
        serde_json::from_str(&ok(&self.repo, &["--json", "daemon", "status"])).unwrap()
    }

    /// The head of `main` here.
    fn head(&self) -> String {
        let v: Value = serde_json::from_str(&ok(&self.repo, &["--json", "branch"])).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == "main")
            .and_then(|b| b["head"].as_str())
            .unwrap_or_default()
            .to_owned()
    }

    /// The ids of the members as this node sees them.
    fn members(&self) -> Vec<String> {
        let v: Value =
            serde_json::from_str(&ok(&self.repo, &["--json", "member", "list"])).unwrap();
        let mut ids: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    }

    /// The reasons of this node's refusals of what `peer` sent or served (its audit log).
    fn refusals_of(&self, peer: &str) -> Vec<String> {
        let v: Value =
            serde_json::from_str(&ok(&self.repo, &["--json", "audit", "--peer", peer])).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["decision"] == "refused")
            .map(|e| e["reason"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// What the daemon last said of its syncs with `peer` (`null` when they went well).
    fn last_error_with(&self, peer: &str) -> Value {
        self.status()["peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == peer)
            .map(|p| p["last_error"].clone())
            .unwrap_or(Value::Null)
    }

    fn verify(&self) {
        let out = run(&self.repo, &["verify"]);
        assert!(
            out.status.success(),
            "verify of {}: {}{}",
            self.repo.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for NsNode {
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

/// One node per namespace of `star`, daemons running: the first repository is made with a
/// configuration naming every node's ticket as a peer (catch-ups every 3 s), the others
/// (members with `roles[i]`) clone it over the bridge.
fn ns_fleet(star: &Star, dir: &Path, roles: &[&str]) -> Vec<NsNode> {
    require_fuse();
    let mut nodes: Vec<NsNode> = star
        .nodes
        .iter()
        .enumerate()
        .map(|(i, ns)| {
            let repo = dir.join(format!("n{i}.hero"));
            let id = ok(&repo, &["id"]).trim().to_owned();
            NsNode {
                ns: ns.clone(),
                addr: Star::addr(i),
                mnt: dir.join(format!("mnt{i}")),
                log: dir.join(format!("n{i}.log")),
                repo,
                id,
                daemon: None,
            }
        })
        .collect();
    let peers: Vec<String> = nodes
        .iter()
        .map(|n| format!("\"{}\"", n.ticket()))
        .collect();
    let config = format!(
        "peers = [{}]\ncatch_up_secs = 3\n[mount]\nidle_commit_ms = 50\n\n[dav]\nenabled = \
         false\n\n[ui]\naddr = \"127.0.0.1:0\"\n",
        peers.join(", ")
    );
    let work = dir.join("work");
    std::fs::create_dir_all(work.join(".hero")).unwrap();
    std::fs::write(work.join(".hero/daemon.toml"), config).unwrap();
    std::fs::write(work.join("hello.txt"), "hello\n").unwrap();
    ok(&nodes[0].repo, &["init"]);
    ok(
        &nodes[0].repo,
        &["commit", work.to_str().unwrap(), "-m", "first"],
    );
    for (n, role) in nodes.iter().zip(roles).skip(1) {
        ok(&nodes[0].repo, &["member", "add", &n.id, "--role", role]);
    }
    nodes[0].start();
    let origin = nodes[0].ticket();
    for node in nodes.iter_mut().skip(1) {
        let out = node.cmd(&["clone", &origin]).output().unwrap();
        assert!(
            out.status.success(),
            "clone in {}: {}",
            node.ns,
            String::from_utf8_lossy(&out.stderr)
        );
        node.start();
    }
    for n in &nodes {
        wait_for(30, "hello.txt in every mount", || {
            read(&n.mnt.join("hello.txt"))
        });
    }
    nodes
}

/// The versions of `name` in `dir`: the file and its conflict copies (`NAME.conflict-…`).
fn versions(dir: &Path, name: &str) -> Vec<String> {
    let copy = format!("{name}.conflict-");
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let n = e.file_name().to_string_lossy().into_owned();
            (n == name || n.starts_with(&copy)).then(|| read(&e.path()))?
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_link_cut_in_the_middle_of_a_sync_heals_and_every_edit_reaches_every_peer() {
    let star = Star::new(3);
    let tmp = tempfile::tempdir().unwrap();
    let nodes = ns_fleet(&star, tmp.path(), &["owner", "owner", "owner"]);
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);

    // A large change leaves A at 16 Mbit/s; its link is cut once 1 MiB of it went out.
    star.limit(0, "16mbit");
    let big = hero_tests::noise(31, 8 << 20);
    let before = star.sent_by(0);
    std::fs::write(a.mnt.join("big.bin"), &big).unwrap();
    wait_for(30, "1 MiB of the change on A's link", || {
        (star.sent_by(0) >= before + (1 << 20)).then_some(())
    });
    star.cut(0);
    let cut_at = Instant::now();
    for n in [b, c] {
        assert!(
            !n.mnt.join("big.bin").exists(),
            "the change was on its way, not there yet"
        );
    }

    // Edits on both sides of the cut: each side its own files, and both the same file.
    std::fs::write(a.mnt.join("a.txt"), "written on A, cut off\n").unwrap();
    std::fs::write(a.mnt.join("shared.txt"), "A's version\n").unwrap();
    std::fs::write(b.mnt.join("b.txt"), "written on B\n").unwrap();
    std::fs::write(b.mnt.join("shared.txt"), "B's version\n").unwrap();
    std::fs::write(c.mnt.join("c.txt"), "written on C\n").unwrap();
    // B and C still reach each other.
    wait_for(30, "B's and C's edits on both of them", || {
        (read(&b.mnt.join("c.txt")).is_some()
            && read(&c.mnt.join("shared.txt")).as_deref() == Some("B's version\n"))
        .then_some(())
    });
    // A's connections to them die (QUIC's idle timeout): the flows are broken, not paused.
    wait_for(45, "A's syncs with B and C failing", || {
        [b, c]
            .iter()
            .all(|n| !a.last_error_with(&n.id).is_null())
            .then_some(())
    });
    assert!(!b.mnt.join("big.bin").exists(), "nothing crosses the cut");

    star.unlimit(0);
    star.heal(0);
    let healed_at = Instant::now();
    let want_files = ["big.bin", "a.txt", "b.txt", "c.txt"];
    let head = wait_for(60, "every peer on one head with every edit", || {
        let heads: Vec<String> = nodes.iter().map(NsNode::head).collect();
        let one = heads.iter().all(|h| *h == heads[0]);
        let all_there = nodes.iter().all(|n| {
            want_files.iter().all(|f| n.mnt.join(f).exists())
                && versions(&n.mnt, "shared.txt").len() == 2
        });
        (one && all_there).then(|| heads[0].clone())
    });
    eprintln!(
        "partition held {:?}; converged {:?} after the heal on {head}",
        healed_at - cut_at,
        healed_at.elapsed()
    );
    for n in &nodes {
        assert!(
            std::fs::read(n.mnt.join("big.bin")).unwrap() == big,
            "big.bin whole in {}",
            n.mnt.display()
        );
        assert_eq!(
            read(&n.mnt.join("a.txt")).as_deref(),
            Some("written on A, cut off\n")
        );
        assert_eq!(
            read(&n.mnt.join("b.txt")).as_deref(),
            Some("written on B\n")
        );
        assert_eq!(
            read(&n.mnt.join("c.txt")).as_deref(),
            Some("written on C\n")
        );
        // Both versions of the file both sides edited: one under its name, one as a
        // conflict copy beside it.
        assert_eq!(
            versions(&n.mnt, "shared.txt"),
            vec!["A's version\n".to_owned(), "B's version\n".to_owned()]
        );
        n.verify();
    }
}

#[test]
fn a_member_removed_during_a_partition_is_removed_everywhere_once_healed() {
    let star = Star::new(3);
    let tmp = tempfile::tempdir().unwrap();
    let nodes = ns_fleet(&star, tmp.path(), &["owner", "writer", "writer"]);
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);

    // A, the owner, is cut off from B and C, and removes C.
    star.cut(0);
    ok(&a.repo, &["member", "remove", &c.id]);
    // C keeps writing; B, which has not heard of the removal, takes C's write.
    std::fs::write(c.mnt.join("before.txt"), "C, before it could know\n").unwrap();
    wait_for(30, "C's write on B", || read(&b.mnt.join("before.txt")));
    assert!(b.members().contains(&c.id));

    star.heal(0);
    // The removal reaches B.
    let mut want: Vec<String> = vec![a.id.clone(), b.id.clone()];
    want.sort();
    wait_for(60, "C removed on B", || (b.members() == want).then_some(()));
    assert_eq!(a.members(), want);
    // What C wrote while it was a member where it wrote stands everywhere: a signature is
    // judged at the membership it cites (ADR 0018).
    wait_for(60, "C's earlier write on A", || {
        read(&a.mnt.join("before.txt"))
    });
    // C learns of its own removal too: A and B still pull from it and push to it (C's
    // server serves them, owners and members in its eyes), and the push carries the membership.
    wait_for(60, "C's removal known to C", || {
        (c.members() == want).then_some(())
    });
    // From now on every commit C signs cites a membership without it: refused everywhere.
    std::fs::write(c.mnt.join("after.txt"), "C, after its removal\n").unwrap();
    let commit = wait_for(30, "C's write committed on C", || {
        run(&c.repo, &["cat", "main:after.txt"])
            .status
            .success()
            .then(|| c.head())
    });
    let short = &commit[..12];
    for n in [a, b] {
        wait_for(30, "C's commit refused by A and B", || {
            n.refusals_of(&c.id)
                .iter()
                .any(|r| {
                    r.contains(short)
                        && r.contains("after.txt")
                        && r.contains("was not a member at the membership it cites")
                })
                .then_some(())
        });
    }
    for n in [a, b] {
        assert!(!run(&n.repo, &["cat", "main:after.txt"]).status.success());
        assert!(!n.mnt.join("after.txt").exists());
        assert_eq!(
            read(&n.mnt.join("before.txt")).as_deref(),
            Some("C, before it could know\n")
        );
        n.verify();
    }
    c.verify();
    assert_eq!(a.head(), b.head());
}
