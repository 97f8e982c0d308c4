//! Size and load time of a membership: `cargo run --release -p hero-sync --example
//! membership_bench`. Two shapes: 1,000 changes on 100 members (adds, role, scope and name
//! changes, removals), and 1,000 members (one add each). Prints one line per shape.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use hero_store::{CommitMeta, EntryKind, Expect, Repo, RepoPath, Signature};
use hero_sync::SecretKey;
use hero_sync::membership::{self, BRANCH, Envelope, Op, Role, sign_change};

const T0: i64 = 1_780_000_000_000;

fn key(i: u32) -> SecretKey {
    let mut b = [7u8; 32];
    b[..4].copy_from_slice(&i.to_be_bytes());
    SecretKey::from_bytes(&b)
}

/// The changes as one chain by `owner` (each after the previous): what
/// `Membership::change` makes when one owner makes them one after the other.
fn build(ops: impl Iterator<Item = Op>, owner: &SecretKey) -> Vec<Envelope> {
    let g = membership::genesis(owner, "owner", T0).unwrap();
    let mut prev = g.verify().unwrap().hash;
    let mut out = vec![g];
    for (i, op) in ops.enumerate() {
        let n = i as u64 + 2;
        let e = sign_change(owner, &op, vec![prev], n, n, T0).unwrap();
        prev = e.verify().unwrap().hash;
        out.push(e);
    }
    out
}

fn run(label: &str, envs: &[Envelope], commit_each: bool) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::init(dir.path().join("r.hero")).unwrap();
    let sig = Signature {
        name: b"bench".to_vec(),
        email: Vec::new(),
        time: 1,
        tz_offset_minutes: 0,
    };
    let mut bytes = 0usize;
    for chunk in envs.chunks(if commit_each { 1 } else { envs.len() }) {
        let mut cs = repo.change_set(BRANCH).unwrap();
        for e in chunk {
            let name = membership::file_name(e).unwrap();
            bytes += e.as_bytes().len();
            cs.put_bytes(
                &RepoPath::parse(format!("changes/{name}")).unwrap(),
                EntryKind::File,
                e.as_bytes(),
            )
            .unwrap();
        }
        cs.commit(CommitMeta::new(sig.clone(), "bench"), Expect::Latest)
            .unwrap();
    }
    let mut best = f64::MAX;
    let mut result = None;
    for _ in 0..5 {
        let t = Instant::now();
        let r = membership::load(&repo).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
        result = Some(r);
    }
    let (m, refused) = result.unwrap();
    let t = Instant::now();
    let verified: Vec<_> = envs.iter().map(|e| e.verify().unwrap()).collect();
    let verify_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let _ = membership::evaluate_verified(verified, None);
    let eval_s = t.elapsed().as_secs_f64();
    let doc = m.document().unwrap().save();
    let file = std::fs::metadata(repo.path()).unwrap().len();
    println!(
        "{label}: {} changes, {} members, {} refused; envelopes {} bytes ({:.0} per change), \
         automerge document {} bytes, repository file {} bytes; load {:.1} ms (verify {:.1} ms, evaluate {:.1} ms)",
        envs.len(),
        m.members().count(),
        refused.len(),
        bytes,
        bytes as f64 / envs.len() as f64,
        doc.len(),
        file,
        best * 1e3,
        verify_s * 1e3,
        eval_s * 1e3,
    );
}

fn main() {
    let owner = key(0);
    // `-- checks`: only the connection and push lines.
    if std::env::args().any(|a| a == "checks") {
        decide_and_check(&owner);
        push_end_to_end();
        return;
    }
    // 1,000 changes on 100 members.
    let n = 100u32;
    let mut ops = Vec::new();
    for i in 1..=n {
        ops.push(Op::Add {
            target: key(i).public(),
            name: format!("member {i}"),
            role: Role::Writer,
            scopes: vec![format!("services/s{i}/**")],
        });
    }
    let mut i = 0u32;
    while ops.len() < 999 {
        let t = key(1 + i % n).public();
        ops.push(match (i / n) % 4 {
            0 => Op::SetScopes {
                target: t,
                scopes: vec![format!("services/s{i}/**"), "docs/**".into()],
            },
            1 => Op::Rename {
                target: t,
                name: format!("renamed {i}"),
            },
            2 => Op::SetRole {
                target: t,
                role: Role::Reader,
            },
            _ => Op::SetRole {
                target: t,
                role: Role::Writer,
            },
        });
        i += 1;
    }
    let chain = build(ops.into_iter(), &owner);
    run("1,000 changes", &chain, false);
    run("1,000 changes, one commit each", &chain, true);
    // 1,000 members.
    let ops = (1..1000u32).map(|i| Op::Add {
        target: key(i).public(),
        name: format!("member {i}"),
        role: Role::Writer,
        scopes: Vec::new(),
    });
    run("1,000 members", &build(ops, &owner), false);
    // 1,000 owners (the evaluation's worst ordinary case: every change checks every owner).
    let ops = (1..1000u32).map(|i| Op::Add {
        target: key(i).public(),
        name: format!("owner {i}"),
        role: Role::Owner,
        scopes: Vec::new(),
    });
    run("1,000 owners", &build(ops, &owner), false);
    decide_and_check(&owner);
}

/// Time to decide one connection (ADR 0018: `gate::standing`, loading the membership, then
/// from the cache), and the scope check of a push of 1,000 new commits by a scoped writer
/// against the same push by an owner, whose commits are not walked (the check bypassed).
fn decide_and_check(owner: &SecretKey) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::init(dir.path().join("r.hero")).unwrap();
    let writer = key(1);
    let stranger = key(2);
    let m = membership::init(&repo, owner, "owner", T0).unwrap();
    let add = Op::Add {
        target: writer.public(),
        name: "w".into(),
        role: Role::Writer,
        scopes: vec!["services/web/**".into()],
    };
    membership::append(&repo, &m.change(owner, &add, T0).unwrap()).unwrap();
    let sig = Signature {
        name: b"bench".to_vec(),
        email: Vec::new(),
        time: 1,
        tz_offset_minutes: 0,
    };
    let path = |i: u32| RepoPath::parse(format!("services/web/f{}.txt", i % 50)).unwrap();
    let mut cs = repo.change_set("main").unwrap();
    cs.put_bytes(&path(0), EntryKind::File, b"base").unwrap();
    cs.commit(CommitMeta::new(sig.clone(), "base"), Expect::Latest)
        .unwrap();
    let mut head = None;
    for i in 0..1000u32 {
        let mut cs = repo.change_set("pushed").unwrap();
        cs.put_bytes(&path(i), EntryKind::File, format!("v{i}").as_bytes())
            .unwrap();
        head = Some(
            cs.commit(CommitMeta::new(sig.clone(), "c"), Expect::Latest)
                .unwrap()
                .id,
        );
    }
    let head = head.unwrap();
    // The pushed commits are stored but no ref of this side reaches them, as on arrival.
    repo.update_branch("pushed", Some(head), None, "bench")
        .unwrap();
    let t = Instant::now();
    let s = hero_sync::gate::standing(&repo, &writer.public()).unwrap();
    let cold = t.elapsed();
    let mut warm = std::time::Duration::MAX;
    for _ in 0..100 {
        let t = Instant::now();
        let _ = hero_sync::gate::standing(&repo, &stranger.public()).unwrap();
        warm = warm.min(t.elapsed());
    }
    let pushed = vec![("pushed".to_owned(), head)];
    let mut checked = std::time::Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let r = hero_sync::gate::check_push(&repo, &s, &writer.public(), &pushed).unwrap();
        checked = checked.min(t.elapsed());
        assert!(r.is_none());
    }
    let so = hero_sync::gate::standing(&repo, &owner.public()).unwrap();
    let mut bypassed = std::time::Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let _ = hero_sync::gate::check_push(&repo, &so, &owner.public(), &pushed).unwrap();
        bypassed = bypassed.min(t.elapsed());
    }
    // Signatures: the writer signs its 1,000 commits (what the sender does once, lazily), then
    // the receiver's end-to-end check (signature, cited membership, own changes, scopes).
    let commits = hero_sync::commitsig::new_commits(&repo, &[head]).unwrap();
    assert_eq!(commits.len(), 1000);
    let mheads = s.membership.as_ref().unwrap().heads().to_vec();
    let t = Instant::now();
    let sigs: Vec<_> = commits
        .iter()
        .map(|c| {
            (
                *c,
                hero_sync::commitsig::CommitSig::sign(
                    &writer,
                    hero_sync::commitsig::Kind::Made,
                    c,
                    &mheads,
                ),
            )
        })
        .collect();
    hero_sync::commitsig::store(&repo, &sigs).unwrap();
    let signed = t.elapsed();
    let mut sig_checked = std::time::Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let r = hero_sync::commitsig::check(&repo, None, &commits).unwrap();
        sig_checked = sig_checked.min(t.elapsed());
        assert!(r.is_none(), "{r:?}");
    }
    println!(
        "decide one connection: {:.2} ms loading the membership, {:.3} ms from the cache; \
         push of 1,000 commits: pusher's scope check {:.1} ms (owner, not walked: {:.3} ms); \
         signing them {:.1} ms; signature and scope check of each {:.1} ms",
        cold.as_secs_f64() * 1e3,
        warm.as_secs_f64() * 1e3,
        checked.as_secs_f64() * 1e3,
        bypassed.as_secs_f64() * 1e3,
        signed.as_secs_f64() * 1e3,
        sig_checked.as_secs_f64() * 1e3,
    );
}

/// A push of 1,000 commits by a scoped writer over the real protocol (an in-memory pipe), into
/// a repository under membership (signatures fetched and every commit checked) and into one
/// that is not (the allow list: signatures exchanged the same, nothing checked).
fn push_end_to_end() {
    use hero_sync::session;
    use hero_sync::wire::Wire;
    let owner = key(0);
    let writer = key(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pipe = |server: &Repo,
                client: &Repo,
                peer: hero_sync::EndpointId,
                me: hero_sync::EndpointId,
                push: bool| {
        let (a, b) = tokio::io::duplex(256 << 10);
        let (ar, aw) = tokio::io::split(a);
        let (br, bw) = tokio::io::split(b);
        rt.block_on(async {
            let serve = async {
                let mut w = Wire::new(br, bw);
                let r = session::serve(&mut w, server, &me).await;
                use tokio::io::AsyncWriteExt;
                let _ = w.writer().shutdown().await;
                r
            };
            let run = async {
                let mut w = Wire::new(ar, aw);
                if push {
                    session::push(&mut w, client, &peer, &me, None, None).await
                } else {
                    session::pull(&mut w, client, &peer, &me, None).await
                }
            };
            let (s, c) = tokio::join!(serve, run);
            s.unwrap();
            c.unwrap()
        })
    };
    let sig = Signature {
        name: b"bench".to_vec(),
        email: Vec::new(),
        time: 1,
        tz_offset_minutes: 0,
    };
    let mut line = Vec::new();
    for enforced in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let server = Repo::init(dir.path().join("s.hero")).unwrap();
        let client = Repo::init(dir.path().join("c.hero")).unwrap();
        // Each side's key beside its repository, as heroctl keeps it.
        for (repo, k) in [(&client, &writer), (&server, &owner)] {
            let hex: String = k.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
            std::fs::write(hero_sync::key_path(repo.path()), hex + "\n").unwrap();
        }
        if enforced {
            let m = membership::init(&server, &owner, "owner", T0).unwrap();
            let add = Op::Add {
                target: writer.public(),
                name: "w".into(),
                role: Role::Writer,
                scopes: vec!["services/web/**".into()],
            };
            membership::append(&server, &m.change(&owner, &add, T0).unwrap()).unwrap();
        } else {
            hero_sync::access::allow(&server, &writer.public(), hero_sync::Access::ReadWrite)
                .unwrap();
        }
        let mut cs = server.change_set("main").unwrap();
        cs.put_bytes(
            &RepoPath::parse("services/web/f0.txt").unwrap(),
            EntryKind::File,
            b"base",
        )
        .unwrap();
        cs.commit(CommitMeta::new(sig.clone(), "base"), Expect::Latest)
            .unwrap();
        let r = pipe(&server, &client, owner.public(), writer.public(), false);
        assert!(r.branches_failed.is_empty(), "{:?}", r.branches_failed);
        for i in 0..1000u32 {
            let mut cs = client.change_set("main").unwrap();
            cs.put_bytes(
                &RepoPath::parse(format!("services/web/f{}.txt", i % 50)).unwrap(),
                EntryKind::File,
                format!("v{i}").as_bytes(),
            )
            .unwrap();
            let mut meta = CommitMeta::new(sig.clone(), "c");
            meta.extra.push(hero_sync::peer_header(&writer.public()));
            cs.commit(meta, Expect::Latest).unwrap();
        }
        let t = Instant::now();
        let r = pipe(&server, &client, owner.public(), writer.public(), true);
        let took = t.elapsed();
        assert_eq!(r.transfer.commits, 1000);
        assert_eq!(
            server.branch_head("main").unwrap(),
            client.branch_head("main").unwrap()
        );
        line.push(format!(
            "{}: {:.0} ms",
            if enforced {
                "checked (membership)"
            } else {
                "unchecked (allow list)"
            },
            took.as_secs_f64() * 1e3
        ));
    }
    println!(
        "push of 1,000 commits end to end, signed on the way: {}",
        line.join(", ")
    );
}
