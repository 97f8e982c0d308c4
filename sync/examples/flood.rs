//! A flooding attacker for `benches/hostile.sh`: runs until killed against the server at
//! TICKET (`--net local`), in parallel:
//! - strangers: new keys that connect, send two bytes of a frame and stay silent;
//! - garbage: a member's connections that claim a 4 GiB frame;
//! - a member that pulls everything, then asks for 200,000 signatures in one SIG_WANT.
//!
//! usage: flood TICKET MEMBER_REPO [STRANGERS] [FLOODERS] [FROM]
//!   MEMBER_REPO: a repository path whose key (MEMBER_REPO.key) is a member of the server.
//!   FROM: the IP address every connection comes from (default 127.0.0.1; Linux loopback
//!   answers every 127.x.y.z, so an attacker on 127.0.0.3 is another address than a client on
//!   127.0.0.1).
//!   Prints one line per second: sessions tried, how each ended, and the connections that
//!   failed to open (refused before the handshake, or no answer).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hero_store::{ObjectId, Repo};
use hero_sync::testing::attacker;
use hero_sync::testing::{self, RawPeer};
use hero_sync::{NetConfig, NetMode, SecretKey, Ticket};

#[derive(Default)]
struct Counts {
    strangers: AtomicU64,
    garbage: AtomicU64,
    pulls: AtomicU64,
    refused: AtomicU64,
    turned_away: AtomicU64,
}

static FROM: std::sync::OnceLock<std::net::IpAddr> = std::sync::OnceLock::new();

fn cfg() -> NetConfig {
    NetConfig {
        mode: NetMode::Local,
        bind: FROM.get().map(|ip| std::net::SocketAddr::new(*ip, 0)),
        ..Default::default()
    }
}

async fn stranger(ticket: Ticket, counts: Arc<Counts>) {
    loop {
        let Ok(mut p) = RawPeer::connect(SecretKey::generate(), &cfg(), &ticket).await else {
            counts.turned_away.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let _ = p.send_garbage(&[0, 0]).await;
        let _ = p.wait_closed(Duration::from_secs(60)).await;
        p.close().await;
        counts.strangers.fetch_add(1, Ordering::Relaxed);
    }
}

async fn garbage(key: SecretKey, ticket: Ticket, counts: Arc<Counts>) {
    loop {
        let Ok(mut p) = RawPeer::connect(key.clone(), &cfg(), &ticket).await else {
            counts.turned_away.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let _ = p
            .send_garbage(&attacker::frame_claiming(u32::MAX, &[1; 64]))
            .await;
        let _ = p.wait_closed(Duration::from_secs(60)).await;
        p.close().await;
        counts.garbage.fetch_add(1, Ordering::Relaxed);
    }
}

async fn sig_flood(key: SecretKey, ticket: Ticket, scratch: Arc<Repo>, counts: Arc<Counts>) {
    let ids: Vec<ObjectId> = (0..200_000u32)
        .map(|i| ObjectId::of(&i.to_be_bytes()))
        .collect();
    let body = attacker::sig_want_body(&ids);
    loop {
        let Ok(mut p) = RawPeer::connect(key.clone(), &cfg(), &ticket).await else {
            counts.turned_away.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        if let Ok(adv) = p.open_pull(&scratch, None).await {
            let all = adv.ids();
            let wants = attacker::wants_body(&all, &[], all.len());
            if p.send(testing::WANTS, &wants).await.is_ok() && p.drain_pack().await.is_ok() {
                counts.pulls.fetch_add(1, Ordering::Relaxed);
                let _ = p.send(testing::kinds::SIG_WANT, &body).await;
            }
        }
        if let Ok(e) = p.wait_closed(Duration::from_secs(60)).await
            && e.error.contains("over the limit")
        {
            counts.refused.fetch_add(1, Ordering::Relaxed);
        }
        p.close().await;
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: flood TICKET MEMBER_REPO [STRANGERS] [FLOODERS] [FROM]");
        std::process::exit(2);
    }
    let ticket: Ticket = args[1].parse().unwrap();
    let member = hero_sync::load_or_create_key(std::path::Path::new(&args[2])).unwrap();
    let strangers: usize = args.get(3).map_or(8, |s| s.parse().unwrap());
    let flooders: usize = args.get(4).map_or(1, |s| s.parse().unwrap());
    if let Some(from) = args.get(5) {
        let Ok(ip) = from.parse() else {
            eprintln!("flood: FROM {from:?} is not an IP address");
            std::process::exit(2);
        };
        let _ = FROM.set(ip);
    }
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let counts = Arc::new(Counts::default());
    rt.block_on(async {
        for _ in 0..strangers {
            tokio::spawn(stranger(ticket.clone(), counts.clone()));
        }
        // One key holds at most two sessions: the garbage and the signature flood share it.
        tokio::spawn(garbage(member.clone(), ticket.clone(), counts.clone()));
        for i in 0..flooders {
            let scratch = Arc::new(Repo::init(dir.path().join(format!("s{i}.hero"))).unwrap());
            tokio::spawn(sig_flood(
                member.clone(),
                ticket.clone(),
                scratch,
                counts.clone(),
            ));
        }
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            println!(
                "strangers held {} garbage {} pulls {} signature floods refused {} connections turned away {}",
                counts.strangers.load(Ordering::Relaxed),
                counts.garbage.load(Ordering::Relaxed),
                counts.pulls.load(Ordering::Relaxed),
                counts.refused.load(Ordering::Relaxed),
                counts.turned_away.load(Ordering::Relaxed),
            );
        }
    });
}
