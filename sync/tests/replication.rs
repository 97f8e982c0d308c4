//! Replication between repositories in one process: both ends of the real protocol
//! ([`hero_sync::session`]) over an in-memory pipe, so histories of any shape can be tried
//! quickly. Network behaviour (iroh, separate processes) is tested in `tests/tests/sync.rs`.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use hero_store::{CommitMeta, EntryKind, Expect, ObjectId, Repo, RepoPath, Signature};
use hero_sync::access::allow;
use hero_sync::session::{self, SyncReport};
use hero_sync::wire::Wire;
use hero_sync::{Access, EndpointId, SecretKey, SyncError};

/// A repository with the identity it speaks as.
pub struct Peer {
    _dir: tempfile::TempDir,
    pub repo: Repo,
    pub id: EndpointId,
    clock: std::cell::Cell<i64>,
}

impl Peer {
    /// A new, empty repository; peer `n`'s key is fixed so runs are reproducible.
    pub fn new(n: u8) -> Peer {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::init(dir.path().join("r.hero")).unwrap();
        let id = SecretKey::from_bytes(&[n.wrapping_add(1); 32]).public();
        Peer {
            _dir: dir,
            repo,
            id,
            clock: std::cell::Cell::new(1_700_000_000 + i64::from(n) * 7),
        }
    }

    /// Lets `other` read and write this repository.
    pub fn admit(&self, other: &Peer) {
        allow(&self.repo, &other.id, Access::ReadWrite).unwrap();
    }

    fn tick(&self) -> i64 {
        self.clock.set(self.clock.get() + 60);
        self.clock.get()
    }

    /// Commits `files` (path, content; `None` deletes) onto `branch` (created when missing).
    pub fn commit(&self, branch: &str, files: &[(&str, Option<&[u8]>)], msg: &str) -> ObjectId {
        let mut cs = self.repo.change_set(branch).unwrap();
        for (path, content) in files {
            let path = RepoPath::parse(path).unwrap();
            match content {
                Some(c) => {
                    cs.put_bytes(&path, EntryKind::File, c).unwrap();
                }
                None => cs.delete(&path).unwrap(),
            }
        }
        let sig = Signature {
            name: b"tester".to_vec(),
            email: b"t@example.com".to_vec(),
            time: self.tick(),
            tz_offset_minutes: 0,
        };
        cs.commit(CommitMeta::new(sig, msg.to_owned()), Expect::Latest)
            .unwrap()
            .id
    }

    /// Branches and tags, by name.
    pub fn refs(&self) -> BTreeMap<String, ObjectId> {
        let mut out = BTreeMap::new();
        for (b, id) in self.repo.branches().unwrap() {
            out.insert(format!("b/{b}"), id);
        }
        for (t, v) in self.repo.tags().unwrap() {
            out.insert(format!("t/{t}"), v.id());
        }
        out
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `client` against `server`'s session handler over an in-memory pipe.
fn over_pipe<F, Fut>(
    server: &Peer,
    client_id: EndpointId,
    client: F,
) -> Result<SyncReport, SyncError>
where
    F: FnOnce(
        Wire<
            tokio::io::ReadHalf<tokio::io::DuplexStream>,
            tokio::io::WriteHalf<tokio::io::DuplexStream>,
        >,
    ) -> Fut,
    Fut: std::future::Future<Output = Result<SyncReport, SyncError>>,
{
    let (a, b) = tokio::io::duplex(256 << 10);
    let (ar, aw) = tokio::io::split(a);
    let (br, bw) = tokio::io::split(b);
    runtime().block_on(async move {
        let serve = async {
            let mut w = Wire::new(br, bw);
            let r = session::serve(&mut w, &server.repo, &client_id).await;
            use tokio::io::AsyncWriteExt;
            let _ = w.writer().shutdown().await;
            r
        };
        let (s, c) = tokio::join!(serve, client(Wire::new(ar, aw)));
        match (c, s) {
            (Ok(report), Ok(())) => Ok(report),
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e),
        }
    })
}

/// `dst` pulls every branch and tag of `src`.
pub fn pull(dst: &Peer, src: &Peer) -> Result<SyncReport, SyncError> {
    over_pipe(src, dst.id, |mut w| async move {
        session::pull(&mut w, &dst.repo, &src.id, &dst.id, None).await
    })
}

/// `src` pushes every branch and tag to `dst`.
pub fn push(src: &Peer, dst: &Peer) -> Result<SyncReport, SyncError> {
    over_pipe(dst, src.id, |mut w| async move {
        session::push(&mut w, &src.repo, &dst.id, &src.id, None, None).await
    })
}

/// Every file of `commit`, by path.
pub fn files(p: &Peer, commit: &ObjectId) -> BTreeMap<String, Vec<u8>> {
    let view = p.repo.view().unwrap();
    let mut out = BTreeMap::new();
    let mut stack = vec![(String::new(), view.commit(commit).unwrap().tree)];
    while let Some((prefix, tree)) = stack.pop() {
        for e in view.tree(&tree).unwrap().entries {
            let name = format!("{prefix}{}", String::from_utf8_lossy(&e.name));
            if e.kind == EntryKind::Dir {
                stack.push((format!("{name}/"), e.id));
            } else {
                out.insert(name, view.read_file(&e.id, u64::MAX).unwrap());
            }
        }
    }
    out
}

/// A history shaped like a real project's: `main` moves on while `branches` branches fork
/// off it at different points (most of them stale), each with its own commits, and `tags`
/// annotated tags spread over all of them.
fn real_shaped(p: &Peer, branches: usize, tags: usize) {
    let text = |i: usize, v: usize| format!("fn f{i}() {{\n    // version {v}\n}}\n").repeat(20);
    let mut v = 0;
    let mut main_step = |p: &Peer| {
        let i = v % 8;
        let path = format!("crates/c{}/src/m{i}.rs", i % 3);
        let content = text(i, v);
        v += 1;
        p.commit(
            "main",
            &[(&path, Some(content.as_bytes()))],
            &format!("main {v}"),
        )
    };
    for _ in 0..10 {
        main_step(p);
    }
    for b in 0..branches {
        main_step(p);
        let fork = main_step(p);
        let name = format!("feature-{b:03}");
        p.repo.force_branch(&name, Some(fork), "test").unwrap();
        for w in 0..3 {
            let c = format!("// {name} {w}\n").repeat(10);
            p.commit(
                &name,
                &[(
                    &format!("crates/c{}/src/{name}.rs", b % 3),
                    Some(c.as_bytes()),
                )],
                &format!("{name} {w}"),
            );
        }
    }
    let all: Vec<ObjectId> = p
        .repo
        .branches()
        .unwrap()
        .into_iter()
        .map(|(_, h)| h)
        .collect();
    for t in 0..tags {
        let target = all[t % all.len()];
        let tag = hero_store::Tag {
            target,
            target_kind: hero_store::TargetKind::Commit,
            name: format!("v{t}").into_bytes(),
            tagger: None,
            message: format!("release {t}\n").into_bytes(),
            extra: Vec::new(),
        };
        p.repo
            .create_tag(&format!("v{t}"), target, Some(tag))
            .unwrap();
    }
}

#[test]
fn a_pull_after_a_clone_succeeds_when_the_changed_branch_sorts_last_among_many() {
    let a = Peer::new(0);
    let b = Peer::new(1);
    a.admit(&b);
    b.admit(&a);
    real_shaped(&a, 24, 220);
    pull(&b, &a).unwrap();
    assert_eq!(a.refs(), b.refs());
    // Nothing new: nothing moves.
    let r = pull(&b, &a).unwrap();
    assert_eq!(r.transfer.objects, 0);
    assert_eq!(r.updated(), 0);
    // One line changed on the branch that sorts last.
    let last = a.repo.branches().unwrap().last().unwrap().0.clone();
    assert_eq!(last, "main");
    let head = a.commit(
        &last,
        &[("crates/c0/src/m3.rs", Some(b"one line\n"))],
        "late",
    );
    let r = pull(&b, &a).unwrap();
    assert_eq!(r.updated(), 1);
    assert_eq!(b.repo.branch_head(&last).unwrap(), Some(head));
    assert!(
        r.transfer.objects <= 6,
        "a one-file change moved {} objects",
        r.transfer.objects
    );
    assert_eq!(files(&a, &head), files(&b, &head));
    assert_eq!(a.refs(), b.refs());
    // And back: a change on a branch in the middle, pushed.
    let head = b.commit(
        "feature-011",
        &[("crates/c2/src/m5.rs", Some(b"pushed\n"))],
        "push",
    );
    let r = push(&b, &a).unwrap();
    assert_eq!(r.updated(), 1);
    assert_eq!(a.repo.branch_head("feature-011").unwrap(), Some(head));
    assert_eq!(a.refs(), b.refs());
}
