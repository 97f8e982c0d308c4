//! Membership enforced between separate `heroctl` processes on 127.0.0.1 (`--net local`):
//! invitations, roles, scopes, forged changes, removal, partitions (ADR 0017, 0018).

use std::path::{Path, PathBuf};

use hero_store::{CommitMeta, EntryKind, Expect, Repo, RepoPath, Signature};
use hero_sync::membership::{self, Op, Role};
use hero_sync::{EndpointId, SecretKey};
use serde_json::Value;

use crate::sync::{Server, edit, edit_branch, first_commit, head, id, json, ok, run, serve};

/// Exit code of a refusal (cli/src/error.rs).
const REFUSED: i32 = 4;

fn refused(repo: &Path, args: &[&str]) -> String {
    let out = run(repo, args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(REFUSED), "heroctl {args:?}: {err}");
    err
}

fn invite(repo: &Path, args: &[&str]) -> String {
    let mut a = vec!["invite"];
    a.extend_from_slice(args);
    ok(repo, &a).trim().to_owned()
}

/// The members as `id -> (role, scopes)`, from `member list --json`.
fn members(repo: &Path) -> Vec<(String, String, Vec<String>)> {
    let v = json(repo, &["member", "list"]);
    let mut out: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
                m["scopes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect();
    out.sort();
    out
}

fn audit(repo: &Path, peer: &str) -> Vec<Value> {
    json(repo, &["audit", "--peer", peer])
        .as_array()
        .unwrap()
        .clone()
}

fn key_of(repo: &Path) -> SecretKey {
    let text = std::fs::read_to_string(hero_sync::key_path(repo)).unwrap();
    let t = text.trim();
    let mut b = [0u8; 32];
    for (i, o) in b.iter_mut().enumerate() {
        *o = u8::from_str_radix(&t[i * 2..i * 2 + 2], 16).unwrap();
    }
    SecretKey::from_bytes(&b)
}

/// Commits `files` onto `branch` through a checkout (the branch is created from main first
/// when it does not exist).
fn edit_on(repo: &Path, branch: &str, files: &[(&str, &[u8])], msg: &str) {
    if head(repo, branch).is_empty() {
        ok(repo, &["branch", branch, "main"]);
    }
    edit_branch(repo, branch, files, msg);
}

struct Fleet {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Fleet {
    fn new() -> Fleet {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        Fleet { _tmp: tmp, dir }
    }
    fn repo(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.hero"))
    }
}

/// An owner with one commit, serving.
fn owner_serving(f: &Fleet) -> (PathBuf, Server) {
    let a = f.repo("a");
    first_commit(
        &a,
        &[("README", b"hello\n"), ("docs/index.md", b"# docs\n")],
    );
    let s = serve(&a, None);
    (a, s)
}

#[test]
fn invite_and_join_and_the_invitations_that_are_refused() {
    let f = Fleet::new();
    let (a, _sa) = owner_serving(&f);
    let b = f.repo("b");
    let inv = invite(&a, &["--role", "writer", "--scope", "docs/**"]);
    assert!(inv.starts_with("invite:"), "{inv}");
    ok(&b, &["join", &inv, "--name", "bee"]);
    assert_eq!(head(&b, "main"), head(&a, "main"));
    // The inviting peer added the new one; the joiner has the same membership.
    let mine = members(&a);
    assert_eq!(mine, members(&b));
    assert!(mine.contains(&(id(&b), "writer".into(), vec!["docs/**".into()])));
    assert!(mine.contains(&(id(&a), "owner".into(), vec![])));
    // The joiner can pull from now on like any member.
    ok(&b, &["pull"]);

    // A used invitation is refused, with a clear message and exit code 4.
    let c = f.repo("c");
    let err = refused(&c, &["join", &inv]);
    assert!(err.contains("already used"), "{err}");
    // An expired one.
    let expired = invite(&a, &["--expires", "0s"]);
    let err = refused(&c, &["join", &expired]);
    assert!(err.contains("expired"), "{err}");
    // A forged one: a secret the inviting peer never made.
    let forged = format!("invite:{}:{}", "ab".repeat(32), _sa.ticket);
    let err = refused(&c, &["join", &forged]);
    assert!(err.contains("unknown invitation"), "{err}");
    // None of them made C a member, and each refusal is in the inviting peer's audit log.
    assert!(!members(&a).iter().any(|(m, _, _)| *m == id(&c)));
    let log = audit(&a, &id(&c));
    let refusals: Vec<&str> = log
        .iter()
        .filter(|e| e["action"] == "join" && e["decision"] == "refused")
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(refusals.len(), 3, "{log:?}");
    assert!(refusals[0].contains("already used"), "{refusals:?}");
    assert!(refusals[1].contains("expired"), "{refusals:?}");
    assert!(refusals[2].contains("unknown"), "{refusals:?}");
    assert!(
        audit(&a, &id(&b))
            .iter()
            .any(|e| e["action"] == "join" && e["decision"] == "accepted")
    );
}

#[test]
fn a_readers_push_is_refused_and_audited() {
    let f = Fleet::new();
    let (a, sa) = owner_serving(&f);
    let r = f.repo("r");
    ok(&r, &["join", &invite(&a, &["--role", "reader"])]);
    edit(&r, &[("README", b"changed by a reader\n")], "reader edit");
    let before = head(&a, "main");
    let err = refused(&r, &["push"]);
    assert!(err.contains("pull only"), "{err}");
    assert_eq!(head(&a, "main"), before);
    let log = audit(&a, &id(&r));
    let e = log
        .iter()
        .find(|e| e["action"] == "push")
        .expect("the push is in the audit log");
    assert_eq!(e["decision"], "refused");
    assert_eq!(e["rule"], "readers may not push");
    // `--since`: a duration ago, or a date.
    let recent = json(&a, &["audit", "--since", "1h"]);
    assert!(
        recent
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["action"] == "push")
    );
    let future = json(&a, &["audit", "--since", "2999-01-01"]);
    assert!(future.as_array().unwrap().is_empty());
    let text = ok(&a, &["audit", "--peer", &id(&r)]);
    assert!(
        text.contains("REFUSED") && text.contains("readers may not push"),
        "{text}"
    );
    // Pulling is fine.
    ok(&r, &["pull", &sa.ticket]);
}

#[test]
fn a_scoped_writer_is_refused_outside_its_scope_and_accepted_inside() {
    let f = Fleet::new();
    let (a, _sa) = owner_serving(&f);
    let w = f.repo("w");
    ok(
        &w,
        &[
            "join",
            &invite(&a, &["--role", "writer", "--scope", "docs/**"]),
        ],
    );
    // Outside: one good commit and one bad one on a branch; the push is refused whole.
    edit_on(&w, "mixed", &[("docs/ok.md", b"fine\n")], "inside");
    edit_on(
        &w,
        "mixed",
        &[("src/main.rs", b"fn main() {}\n")],
        "outside",
    );
    let bad = head(&w, "mixed");
    let err = refused(&w, &["push", "origin", "mixed"]);
    assert!(err.contains("src/main.rs"), "{err}");
    assert!(err.contains(&bad[..12]), "{err}");
    assert_eq!(head(&a, "mixed"), "", "nothing of a refused push moves");
    // Its objects stay on the receiver until gc; offered again, it is checked again.
    let err = refused(&w, &["push", "origin", "mixed"]);
    assert!(err.contains("src/main.rs"), "{err}");
    assert_eq!(head(&a, "mixed"), "");
    let log = audit(&a, &id(&w));
    let e = log
        .iter()
        .find(|e| e["action"] == "push" && e["decision"] == "refused")
        .expect("refusal audited");
    assert_eq!(e["commit"], bad.as_str());
    assert_eq!(e["path"], "src/main.rs");
    assert!(e["rule"].as_str().unwrap().contains("docs/**"), "{e}");
    // Inside: accepted.
    edit(&w, &[("docs/guide.md", b"a guide\n")], "guide");
    ok(&w, &["push", "origin", "main"]);
    assert_eq!(head(&a, "main"), head(&w, "main"));
    assert!(
        audit(&a, &id(&w))
            .iter()
            .any(|e| e["action"] == "push" && e["decision"] == "accepted")
    );
}

/// Writes a change signed by `key` into `repo`'s membership branch as a file, the way a
/// misbehaving peer would (nothing checks it on the way in).
fn plant_change(repo: &Path, key: &SecretKey, op: &Op) -> String {
    let r = Repo::open(repo).unwrap();
    let (m, _) = membership::load(&r).unwrap();
    let env = m.change(key, op, 1_800_000_000_000).unwrap();
    let name = membership::file_name(&env).unwrap();
    let mut cs = r.change_set_reserved(membership::BRANCH).unwrap();
    let path = RepoPath::parse(format!("{}/{name}", membership::CHANGES_DIR)).unwrap();
    cs.put_bytes(&path, EntryKind::File, env.as_bytes())
        .unwrap();
    let sig = Signature {
        name: b"forger".to_vec(),
        email: Vec::new(),
        time: 1_800_000_000,
        tz_offset_minutes: 0,
    };
    cs.commit(CommitMeta::new(sig, "forged".to_owned()), Expect::Latest)
        .unwrap();
    name
}

#[test]
fn a_forged_membership_change_is_refused_everywhere() {
    let f = Fleet::new();
    let (a, _sa) = owner_serving(&f);
    let (b, c) = (f.repo("b"), f.repo("c"));
    ok(&b, &["join", &invite(&a, &["--role", "writer"])]);
    ok(&c, &["join", &invite(&a, &["--role", "writer"])]);
    // B learns that C is a member (so that C may pull from it later).
    ok(&b, &["pull"]);
    // B, a writer, signs a change making itself an owner and stores it.
    let bid: EndpointId = id(&b).parse().unwrap();
    let file = plant_change(
        &b,
        &key_of(&b),
        &Op::SetRole {
            target: bid,
            role: Role::Owner,
        },
    );
    let before = members(&a);
    // Pushed to the owner: refused whole, and audited with the change that broke the rule.
    let err = refused(&b, &["push"]);
    assert!(err.contains("membership change refused"), "{err}");
    assert_eq!(members(&a), before);
    let log = audit(&a, &id(&b));
    let e = log
        .iter()
        .find(|e| e["action"] == "push" && e["decision"] == "refused")
        .unwrap();
    assert!(e["path"].as_str().unwrap().contains(&file), "{e}");
    // Pulled by a third peer from B: the membership is not taken, C's stays as it was.
    let sb = serve(&b, None);
    let out = run(&c, &["--json", "pull", &sb.ticket]);
    assert_eq!(out.status.code(), Some(REFUSED));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed = v["branches_failed"].as_array().unwrap();
    assert!(
        failed.iter().any(|x| x["branch"] == membership::BRANCH),
        "{v}"
    );
    assert_eq!(members(&c), before);
    assert!(
        audit(&c, &id(&b))
            .iter()
            .any(|e| e["action"] == "pull" && e["decision"] == "refused")
    );
    // B's own view does not count the forged change either.
    assert_eq!(members(&b), before);
}

#[test]
fn a_removed_member_is_refused_on_its_next_connection() {
    let f = Fleet::new();
    let (a, sa) = owner_serving(&f);
    let b = f.repo("b");
    ok(&b, &["join", &invite(&a, &["--role", "writer"])]);
    ok(&b, &["pull"]);
    ok(&a, &["member", "remove", &id(&b)]);
    let err = refused(&b, &["pull", &sa.ticket]);
    assert!(err.contains("does not allow"), "{err}");
    // It learned nothing, not even the names of branches made since.
    ok(&a, &["branch", "secret-plans", "main"]);
    let err = refused(&b, &["pull"]);
    assert!(!err.contains("secret-plans"), "{err}");
    assert_eq!(head(&b, "secret-plans"), "");
    assert!(
        audit(&a, &id(&b))
            .iter()
            .any(|e| e["action"] == "connect" && e["decision"] == "refused")
    );
    // Only owners change the membership.
    let c = f.repo("c");
    let err = refused(&b, &["member", "add", &id(&c)]);
    assert!(err.contains("not an owner"), "{err}");
}

#[test]
fn partitions_that_edit_membership_concurrently_converge_when_healed() {
    let f = Fleet::new();
    let (a, sa) = owner_serving(&f);
    let (b, c, d) = (f.repo("b"), f.repo("c"), f.repo("d"));
    ok(&b, &["join", &invite(&a, &["--role", "owner"])]);
    ok(&c, &["join", &invite(&a, &["--role", "writer"])]);
    ok(&d, &["join", &invite(&a, &["--role", "writer"])]);
    ok(&b, &["pull"]);
    ok(&c, &["pull"]);
    ok(&d, &["pull"]);
    let sb = serve(&b, None);
    // Partition: A and B do not talk. A removes C and B; B demotes C and removes A.
    ok(&a, &["member", "remove", &id(&c)]);
    ok(&a, &["member", "remove", &id(&b)]);
    ok(&b, &["member", "role", &id(&c), "reader"]);
    ok(&b, &["member", "remove", &id(&a)]);
    // Heal through D, a member on both sides: it takes both histories and hands them back.
    ok(&d, &["pull", &sa.ticket]);
    ok(&d, &["pull", &sb.ticket]);
    ok(&d, &["push", &sa.ticket]);
    ok(&d, &["push", &sb.ticket]);
    let want = vec![
        (id(&a), "owner".to_owned(), Vec::new()),
        (id(&d), "writer".to_owned(), Vec::new()),
    ];
    let mut want = want;
    want.sort();
    // Removal wins over the concurrent demotion of C; the two owners removed each other,
    // which would leave none: the most senior (A, the genesis) stays.
    assert_eq!(members(&a), want);
    assert_eq!(members(&b), want);
    assert_eq!(members(&d), want);
    // C was not reachable during the heal; it is refused now, and B too.
    assert!(refused(&c, &["pull", &sa.ticket]).contains("does not allow"));
    assert!(refused(&b, &["pull", &sa.ticket]).contains("does not allow"));
}

#[test]
fn an_allow_list_becomes_the_membership_with_nothing_lost_and_hero_branches_are_reserved() {
    let f = Fleet::new();
    let a = f.repo("a");
    // A repository from before membership: an allow list, no membership branch.
    let peers: Vec<SecretKey> = (1..=3u8).map(|n| SecretKey::from_bytes(&[n; 32])).collect();
    {
        let r = Repo::init(&a).unwrap();
        hero_sync::access::allow(&r, &peers[0].public(), hero_sync::Access::ReadWrite).unwrap();
        hero_sync::access::allow(&r, &peers[1].public(), hero_sync::Access::ReadOnly).unwrap();
        hero_sync::access::allow(&r, &peers[2].public(), hero_sync::Access::ReadWrite).unwrap();
    }
    let mut want = vec![
        (id(&a), "owner".to_owned(), Vec::new()),
        (
            peers[0].public().to_string(),
            "writer".to_owned(),
            Vec::new(),
        ),
        (
            peers[1].public().to_string(),
            "reader".to_owned(),
            Vec::new(),
        ),
        (
            peers[2].public().to_string(),
            "writer".to_owned(),
            Vec::new(),
        ),
    ];
    want.sort();
    assert_eq!(members(&a), want);
    // `allow` is an alias of `member` now.
    let listed = ok(&a, &["allow", "list"]);
    for p in &peers {
        assert!(listed.contains(&p.public().to_string()), "{listed}");
    }
    // Users cannot make, move or delete hero's branches.
    let err = refused(&a, &["branch", "hero/x"]);
    assert!(err.contains("reserved"), "{err}");
    let err = refused(&a, &["branch", "-d", membership::BRANCH]);
    assert!(err.contains("reserved"), "{err}");
    assert!(!json(&a, &["branch"]).to_string().contains("hero/"));
}

#[test]
fn an_open_session_of_a_removed_member_is_closed_when_the_removal_arrives() {
    use hero_sync::testing::{RawPeer, kinds};
    use hero_sync::{NetConfig, NetMode, Ticket};
    let f = Fleet::new();
    let (a, sa) = owner_serving(&f);
    let b = f.repo("b");
    ok(&b, &["join", &invite(&a, &["--role", "writer"])]);
    let repo_id = hero_sync::access::sync_repo_id(&Repo::open(&a).unwrap()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cfg = NetConfig {
            mode: NetMode::Local,
            ..NetConfig::default()
        };
        let ticket: Ticket = sa.ticket.parse().unwrap();
        let mut p = RawPeer::connect(key_of(&b), &cfg, &ticket).await.unwrap();
        p.hello_pull_version(&repo_id, hero_sync::wire::VERSION)
            .await
            .unwrap();
        let (k, _) = p.recv().await.unwrap();
        assert_eq!(k, kinds::WELCOME);
        // The session is open: the server waits for B's wants (for up to two minutes).
        ok(&a, &["member", "remove", &id(&b)]);
        let t0 = std::time::Instant::now();
        let r = tokio::time::timeout(std::time::Duration::from_secs(60), p.recv()).await;
        assert!(matches!(r, Ok(Err(_))), "the connection is closed: {r:?}");
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(20),
            "closed when the removal arrived, not by a timeout: {:?}",
            t0.elapsed()
        );
        p.close().await;
    });
    assert!(
        audit(&a, &id(&b))
            .iter()
            .any(|e| e["action"] == "close" && e["decision"] == "refused")
    );
}

#[test]
fn an_out_of_scope_commit_relayed_through_an_owner_is_refused_by_a_third_peer() {
    use hero_sync::commitsig::{CommitSig, Kind};
    let f = Fleet::new();
    let (o, so) = owner_serving(&f);
    let (w, p) = (f.repo("w"), f.repo("p"));
    ok(
        &w,
        &[
            "join",
            &invite(&o, &["--role", "writer", "--scope", "docs/**"]),
        ],
    );
    ok(&p, &["join", &invite(&o, &["--role", "writer"])]);
    // The owner holds a commit W made outside its scope, signed by W (as a compromised or
    // careless owner could: it took it without checking).
    let wkey = key_of(&w);
    let evil = {
        let r = Repo::open(&o).unwrap();
        let m = hero_sync::gate::membership_of(&r).unwrap();
        let mut cs = r.change_set("relayed").unwrap();
        cs.put_bytes(
            &RepoPath::parse("src/evil.rs").unwrap(),
            EntryKind::File,
            b"evil\n",
        )
        .unwrap();
        let mut meta = CommitMeta::new(
            Signature {
                name: b"w".to_vec(),
                email: Vec::new(),
                time: 1_800_000_000,
                tz_offset_minutes: 0,
            },
            "outside docs/".to_owned(),
        );
        meta.extra.push(hero_sync::peer_header(&wkey.public()));
        let id = cs.commit(meta, Expect::Latest).unwrap().id;
        let sig = CommitSig::sign(&wkey, Kind::Made, &id, m.heads());
        assert_eq!(hero_sync::commitsig::store(&r, &[(id, sig)]).unwrap(), 1);
        id.to_hex()
    };
    // A third peer pulling from the owner refuses that history, whole, and says why.
    let before = head(&p, "main");
    let out = run(&p, &["pull", &so.ticket]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(REFUSED), "{err}");
    assert!(err.contains("src/evil.rs"), "{err}");
    assert!(err.contains("docs/**"), "{err}");
    assert_eq!(head(&p, "relayed"), "");
    assert_eq!(head(&p, "main"), before);
    let log = audit(&p, &id(&o));
    let e = log
        .iter()
        .find(|e| e["action"] == "pull" && e["decision"] == "refused")
        .expect("the refusal is audited");
    assert_eq!(e["commit"], evil.as_str());
    assert_eq!(e["path"], "src/evil.rs");
    // Commits inside W's scope, made and pushed by W, reach the third peer through the owner.
    edit(&w, &[("docs/fine.md", b"fine\n")], "inside");
    ok(&w, &["push", "origin", "main"]);
    ok(&o, &["branch", "-d", "relayed"]);
    ok(&p, &["pull", &so.ticket]);
    assert_eq!(head(&p, "main"), head(&w, "main"));
}

#[test]
fn git_imports_are_vouched_for_by_the_importer_within_its_scope() {
    let f = Fleet::new();
    let (o, so) = owner_serving(&f);
    let (w, p) = (f.repo("w"), f.repo("p"));
    ok(
        &w,
        &[
            "join",
            &invite(&o, &["--role", "writer", "--scope", "docs/**"]),
        ],
    );
    ok(&p, &["join", &invite(&o, &["--role", "reader"])]);
    let src = f.dir.join("src");
    hero_tests::git_repo_with(&src, "main", &[("docs/a.md", "one\n")], "docs only");
    let src = src.to_str().unwrap();
    // Inside its scope, a writer's import is signed by it and accepted.
    ok(&w, &["import", "git", src, "--branch-prefix", "in/"]);
    ok(&w, &["push", "origin", "in/main"]);
    // Outside its scope: refused, the imported commit named.
    let src2 = f.dir.join("src2");
    hero_tests::git_repo_with(&src2, "main", &[("setup.sh", "rm -rf /\n")], "outside");
    let src2 = src2.to_str().unwrap();
    ok(&w, &["import", "git", src2, "--branch-prefix", "out/"]);
    let err = refused(&w, &["push", "origin", "out/main"]);
    assert!(err.contains("setup.sh"), "{err}");
    // An owner's import is vouched for by the owner: every peer takes it.
    ok(&o, &["import", "git", src2, "--branch-prefix", "owner/"]);
    ok(&p, &["pull", &so.ticket]);
    assert_eq!(head(&p, "owner/main"), head(&o, "owner/main"));
    assert_eq!(head(&p, "in/main"), head(&o, "in/main"));
}

fn commit_as(repo: &Path, key: &SecretKey, branch: &str, files: &[(&str, &[u8])]) -> String {
    hero_tests::commit_signed_as(repo, key, branch, files)
}

const HOOK: &[u8] = b"[[watch]]\nglob = \"**\"\nrun = [\"touch\", \"/tmp/pwned\"]\n";

#[test]
fn a_writers_change_of_hero_is_refused_by_its_own_cli_and_by_every_receiver() {
    let f = Fleet::new();
    let (o, so) = owner_serving(&f);
    let (w, p) = (f.repo("w"), f.repo("p"));
    // A writer without scopes: everywhere but the configuration the daemons obey.
    ok(&w, &["join", &invite(&o, &["--role", "writer"])]);
    ok(&p, &["join", &invite(&o, &["--role", "writer"])]);

    // Its own CLI refuses before anything moves, and says why.
    let before = head(&w, "main");
    let work = w.with_extension("work-hero");
    ok(&w, &["checkout", "main", work.to_str().unwrap()]);
    std::fs::create_dir_all(work.join(".hero")).unwrap();
    std::fs::write(work.join(".hero/daemon.toml"), HOOK).unwrap();
    let err = refused(&w, &["commit", work.to_str().unwrap(), "-m", "hook"]);
    assert!(err.contains(".hero/daemon.toml"), "{err}");
    assert!(err.contains("only owners"), "{err}");
    assert_eq!(head(&w, "main"), before, "nothing moved");

    // A modified client commits it anyway: the owner refuses the push, whole, and audits it.
    let bad = commit_as(&w, &key_of(&w), "main", &[(".hero/daemon.toml", HOOK)]);
    let err = refused(&w, &["push", "origin", "main"]);
    assert!(err.contains(".hero/daemon.toml"), "{err}");
    assert!(err.contains("only owners"), "{err}");
    assert_ne!(head(&o, "main"), bad);
    let log = audit(&o, &id(&w));
    let e = log
        .iter()
        .find(|e| e["action"] == "push" && e["decision"] == "refused")
        .expect("refusal audited");
    assert_eq!(e["commit"], bad.as_str());
    assert_eq!(e["path"], ".hero/daemon.toml");

    // Relayed through an owner that took it without checking, a third peer refuses it too.
    let relayed = commit_as(&o, &key_of(&w), "relayed", &[(".hero/x.toml", b"x = 1\n")]);
    let out = run(&p, &["pull", &so.ticket]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(REFUSED), "{err}");
    assert!(err.contains(".hero/x.toml"), "{err}");
    assert_eq!(head(&p, "relayed"), "");
    let log = audit(&p, &id(&o));
    assert!(
        log.iter().any(|e| e["action"] == "pull"
            && e["decision"] == "refused"
            && e["commit"] == relayed.as_str()),
        "{log:?}"
    );
    ok(&o, &["branch", "-d", "relayed"]);

    // The owner's own change of `.hero/` reaches the writers.
    edit(
        &o,
        &[(".hero/daemon.toml", b"catch_up_secs = 5\n")],
        "config",
    );
    ok(&p, &["pull", &so.ticket]);
    assert_eq!(head(&p, "main"), head(&o, "main"));
    assert_eq!(
        ok(&p, &["cat", "main:.hero/daemon.toml"]),
        "catch_up_secs = 5\n"
    );
}

#[test]
fn an_empty_repository_made_by_init_is_told_to_clone_or_join_instead_of_pulling() {
    let f = Fleet::new();
    let (o, so) = owner_serving(&f);
    let w = f.repo("w");
    ok(&w, &["init"]);
    ok(&o, &["member", "add", &id(&w), "--role", "writer"]);
    ok(&w, &["remote", "add", "origin", &so.ticket]);
    let err = refused(&w, &["pull"]);
    assert!(err.contains("membership of its own"), "{err}");
    assert!(err.contains("heroctl clone"), "{err}");
    assert!(err.contains("heroctl join"), "{err}");
    // The way it names works.
    let c = f.repo("c");
    ok(&o, &["member", "add", &id(&c), "--role", "writer"]);
    ok(&c, &["clone", &so.ticket]);
    assert_eq!(head(&c, "main"), head(&o, "main"));
}

#[test]
fn neither_a_reader_nor_a_stranger_can_change_hero_and_an_owner_can() {
    let f = Fleet::new();
    let (o, so) = owner_serving(&f);
    let (r, s) = (f.repo("r"), f.repo("s"));
    ok(&r, &["join", &invite(&o, &["--role", "reader"])]);
    let before = head(&o, "main");

    // A reader: its own CLI refuses, and so does the owner when a modified client pushes.
    let work = r.with_extension("work-hero");
    ok(&r, &["checkout", "main", work.to_str().unwrap()]);
    std::fs::create_dir_all(work.join(".hero")).unwrap();
    std::fs::write(work.join(".hero/daemon.toml"), HOOK).unwrap();
    let err = refused(&r, &["commit", work.to_str().unwrap(), "-m", "hook"]);
    assert!(err.contains("only owners"), "{err}");
    commit_as(&r, &key_of(&r), "main", &[(".hero/daemon.toml", HOOK)]);
    refused(&r, &["push", "origin", "main"]);
    assert_eq!(head(&o, "main"), before, "nothing of the reader's moved");

    // A stranger, with a history of its own holding a hook: not even let in.
    first_commit(&s, &[(".hero/daemon.toml", HOOK)]);
    let out = run(&s, &["push", &so.ticket, "main"]);
    assert_eq!(out.status.code(), Some(REFUSED), "{out:?}");
    assert_eq!(head(&o, "main"), before, "nothing of the stranger's moved");
    assert!(
        audit(&o, &id(&s))
            .iter()
            .any(|e| e["decision"] == "refused"),
        "the stranger's attempt is audited"
    );

    // The owner can, and a reader takes it.
    edit(
        &o,
        &[(".hero/daemon.toml", b"catch_up_secs = 7\n")],
        "config",
    );
    let owners = head(&o, "main");
    ok(&r, &["pull", &so.ticket]);
    assert_eq!(
        ok(&r, &["cat", &format!("{owners}:.hero/daemon.toml")]),
        "catch_up_secs = 7\n"
    );
}
