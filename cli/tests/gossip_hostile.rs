//! Hostile peers on the gossip ALPN of a real `heroctl daemon`: strangers are closed before
//! gossip sees them (and audited); a member's stale, future-dated, replayed or relayed
//! non-member announcements are dropped; the daemon goes on serving.

use std::process::Stdio;
use std::time::Duration;

use hero_store::{ObjectId, Repo};
use hero_sync::testing::attacker::{self, GossipPeer};
use hero_sync::{NetConfig, NetMode, Ticket};
use hero_tests::wait_for;
use serde_json::Value;

use super::{cmd, free_udp_port, ok, ticket_line};

struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn strangers_are_kept_off_the_gossip_and_stale_announcements_are_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("n0.hero");
    let id = ok(&repo, &["id"]).trim().to_owned();
    let port = free_udp_port();
    let work = tmp.path().join("work");
    std::fs::create_dir_all(work.join(".hero")).unwrap();
    std::fs::write(
        work.join(".hero/daemon.toml"),
        format!(
            "peers = []\n[mount]\nenabled = false\n[dav]\nenabled = false\n[ui]\nenabled = false\n\
             [node.{id}]\nlisten = \"127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    std::fs::write(work.join("hello.txt"), "hello\n").unwrap();
    ok(&repo, &["init"]);
    ok(&repo, &["commit", work.to_str().unwrap(), "-m", "first"]);
    let member_key = hero_sync::load_or_create_key(&tmp.path().join("m.hero")).unwrap();
    let stranger = hero_sync::load_or_create_key(&tmp.path().join("s.hero")).unwrap();
    ok(
        &repo,
        &[
            "member",
            "add",
            &member_key.public().to_string(),
            "--role",
            "reader",
        ],
    );
    let log = tmp.path().join("n0.log");
    let mut child = cmd(&repo, &["daemon"])
        .env("RUST_LOG", "heroctl=debug,hero_sync=info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let ticket = ticket_line(&mut child, || std::fs::read_to_string(&log).unwrap());
    let _daemon = Daemon(child);
    let ticket: Ticket = ticket.parse().unwrap();
    let branches = || -> Value { serde_json::from_str(&ok(&repo, &["--json", "branch"])).unwrap() };
    let before = branches();
    let repo_id = hero_sync::access::sync_repo_id(&Repo::open(&repo).unwrap()).unwrap();
    let cfg = NetConfig {
        mode: NetMode::Local,
        ..Default::default()
    };
    let logged = |what: &str, n: usize| {
        wait_for(30, what, || {
            let text = std::fs::read_to_string(&log).unwrap();
            (text.matches(what).count() >= n).then_some(())
        })
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // A stranger on the gossip ALPN is closed before gossip reads anything.
        let why = attacker::gossip_connection_closed(
            stranger.clone(),
            &cfg,
            &ticket,
            Duration::from_secs(20),
        )
        .await
        .unwrap();
        assert!(why.contains("not a member"), "{why}");
        // A member joins the topic and lies.
        let m = GossipPeer::join(
            member_key.clone(),
            &cfg,
            &ticket,
            &repo_id,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        let bogus = |i: u8| vec![("main".to_owned(), ObjectId::of(&[i]))];
        m.announce(now() - 3600, bogus(1)).await.unwrap();
        logged("TooOld", 1);
        m.announce(now() + 3600, bogus(2)).await.unwrap();
        logged("FromTheFuture", 1);
        // A fresh one of heads that do not exist is taken (a hint; the pull would check).
        let t = now();
        m.announce(t, bogus(3)).await.unwrap();
        logged("new heads of main", 1);
        // An older one after it is a replay.
        m.announce(t - 5, bogus(4)).await.unwrap();
        logged("Superseded", 1);
        // A stranger's announcement relayed by the member.
        m.announce_signed(&stranger, now(), bogus(5)).await.unwrap();
        logged("its announcer is not a member", 1);
        m.close().await;
    });
    // Only the fresh one was taken.
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("new heads of main").count(), 1, "{text}");
    let audit: Value = serde_json::from_str(&ok(
        &repo,
        &["--json", "audit", "--peer", &stranger.public().to_string()],
    ))
    .unwrap();
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "gossip" && e["decision"] == "refused"),
        "{audit}"
    );
    assert_eq!(branches(), before);
    // The daemon still serves its members.
    let b = tmp.path().join("m.hero");
    ok(&b, &["clone", &ticket.to_string()]);
    assert_eq!(
        ok(&b, &["--json", "branch"]),
        ok(&repo, &["--json", "branch"])
    );
}
