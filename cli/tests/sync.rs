//! Replication between separate `heroctl` processes on 127.0.0.1 (`--net local`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use hero_store::{ObjType, ObjectId, Repo};
use hero_tests::{Heroctl, write_files};
use serde_json::Value;

pub(crate) use crate::cli::heroctl;

/// The heroctl cargo built, its peers on 127.0.0.1.
fn bin() -> Heroctl {
    Heroctl::local(heroctl())
}

pub(crate) fn cmd(repo: &Path, args: &[&str]) -> Command {
    bin().cmd(repo, args)
}

pub(crate) fn run(repo: &Path, args: &[&str]) -> Output {
    bin().run(repo, args)
}

pub(crate) fn ok(repo: &Path, args: &[&str]) -> String {
    bin().ok(repo, args)
}

pub(crate) fn json(repo: &Path, args: &[&str]) -> Value {
    bin().json(repo, args)
}

/// A running `heroctl serve`, killed on drop.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) ticket: String,
    pub(crate) log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn serve(repo: &Path, bind: Option<&str>) -> Server {
    let log = repo.with_extension(format!("serve-{}.log", rand_suffix()));
    let mut args = vec!["serve"];
    if let Some(b) = bind {
        args.extend_from_slice(&["--bind", b]);
    }
    let mut child = cmd(repo, &args)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ticket = loop {
        let line = lines
            .next()
            .expect("serve exited before printing a ticket")
            .unwrap();
        if let Some(t) = line.strip_prefix("ticket: ") {
            break t.to_owned();
        }
    };
    Server { child, ticket, log }
}

pub(crate) fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

pub(crate) fn id(repo: &Path) -> String {
    ok(repo, &["id"]).trim().to_owned()
}

/// Checks out main, applies `files`, commits.
pub(crate) fn edit(repo: &Path, files: &[(&str, &[u8])], msg: &str) {
    edit_branch(repo, "main", files, msg);
}

/// Checks out `branch` into a directory of its own beside the repository, applies `files`,
/// commits, and removes the directory.
pub(crate) fn edit_branch(repo: &Path, branch: &str, files: &[(&str, &[u8])], msg: &str) {
    let work = repo.with_extension(format!("work-{}", rand_suffix()));
    ok(repo, &["checkout", branch, work.to_str().unwrap()]);
    write_files(&work, files);
    ok(repo, &["commit", work.to_str().unwrap(), "-m", msg]);
    std::fs::remove_dir_all(&work).unwrap();
}

pub(crate) fn first_commit(repo: &Path, files: &[(&str, &[u8])]) {
    let work = repo.with_extension("init-work");
    write_files(&work, files);
    ok(repo, &["init"]);
    ok(repo, &["commit", work.to_str().unwrap(), "-m", "first"]);
}

pub(crate) fn head(repo: &Path, branch: &str) -> String {
    let v = json(repo, &["branch"]);
    v.as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == branch)
        .map(|b| b["head"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

fn cat(repo: &Path, spec: &str) -> String {
    ok(repo, &["cat", spec])
}

#[test]
fn three_peers_converge_in_any_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a.hero"),
        tmp.path().join("b.hero"),
        tmp.path().join("c.hero"),
    );
    first_commit(&a, &[("shared.txt", b"one\n"), ("dir/x.txt", b"x\n")]);
    let sa = serve(&a, None);
    ok(&a, &["allow", "add", &id(&b)]);
    ok(&a, &["allow", "add", &id(&c)]);
    let v = json(&b, &["clone", &sa.ticket]);
    assert_eq!(v["branches_updated"], 1);
    assert!(v["objects"].as_u64().unwrap() >= 4, "{v}");
    json(&c, &["clone", &sa.ticket]);
    assert_eq!(head(&b, "main"), head(&a, "main"));
    // A fresh clone lets the peer it cloned from in.
    assert!(ok(&b, &["allow", "list"]).contains(&id(&a)));

    edit(&a, &[("from-a.txt", b"a\n")], "a");
    edit(
        &b,
        &[("from-b.txt", b"b\n"), ("dir/x.txt", b"x from b\n")],
        "b",
    );
    edit(&c, &[("from-c.txt", b"c\n")], "c");
    ok(&b, &["branch", "topic"]);
    ok(&b, &["tag", "from-b", "-m", "an annotated tag made on b"]);
    ok(&c, &["tag", "from-c"]);

    let sb = serve(&b, None);
    ok(&b, &["allow", "add", &id(&c)]);
    // C syncs with B directly (no A involved), then B with A, then C with A, then B again.
    ok(&c, &["remote", "add", "bee", &sb.ticket]);
    ok(&c, &["sync", "bee"]);
    ok(&b, &["sync"]);
    ok(&c, &["sync", "origin"]);
    ok(&b, &["sync", "origin"]);
    ok(&c, &["sync", "bee"]);

    let h = head(&a, "main");
    assert_eq!(head(&b, "main"), h);
    assert_eq!(head(&c, "main"), h);
    assert_eq!(head(&a, "topic"), head(&b, "topic"));
    assert_eq!(head(&c, "topic"), head(&b, "topic"));
    let tags = json(&a, &["tag"]);
    assert_eq!(tags.as_array().unwrap().len(), 2, "{tags}");
    assert_eq!(json(&b, &["tag"]), tags);
    assert_eq!(json(&c, &["tag"]), tags);
    for r in [&a, &b, &c] {
        assert_eq!(cat(r, "main:from-a.txt"), "a\n");
        assert_eq!(cat(r, "main:from-b.txt"), "b\n");
        assert_eq!(cat(r, "main:from-c.txt"), "c\n");
        assert_eq!(cat(r, "main:dir/x.txt"), "x from b\n");
        assert_eq!(cat(r, "main:shared.txt"), "one\n");
        assert!(ok(r, &["verify"]).starts_with("ok:"));
    }
    // Nothing left to do: a second sync moves nothing and sends no objects.
    let v = json(&c, &["sync", "origin"]);
    assert_eq!(v["pull"]["objects"], 0, "{v}");
    assert_eq!(v["push"]["objects"], 0, "{v}");
    assert_eq!(v["pull"]["branches_updated"], 0, "{v}");
    // ... and writes nothing: mounts watching the generation are not woken.
    let before = Repo::open(&c).unwrap().generation().unwrap();
    json(&c, &["pull", "origin"]);
    assert_eq!(Repo::open(&c).unwrap().generation().unwrap(), before);
}

#[test]
fn concurrent_edits_merge_identically_on_both_peers() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.hero"), tmp.path().join("b.hero"));
    let lines: String = (1..=12).map(|i| format!("line {i}\n")).collect();
    first_commit(
        &a,
        &[("notes.txt", lines.as_bytes()), ("same.txt", b"original\n")],
    );
    let sa = serve(&a, None);
    ok(&a, &["allow", "add", &id(&b)]);
    json(&b, &["clone", &sa.ticket]);

    edit(
        &a,
        &[
            (
                "notes.txt",
                lines.replace("line 2\n", "line 2 by a\n").as_bytes(),
            ),
            ("same.txt", b"edited on a\n"),
        ],
        "a edits",
    );
    edit(
        &b,
        &[
            (
                "notes.txt",
                lines.replace("line 11\n", "line 11 by b\n").as_bytes(),
            ),
            ("same.txt", b"edited on b\n"),
        ],
        "b edits",
    );
    // Each side merges on its own: each pulls from a copy of the other as it is now (same
    // repository, same key), so neither sees the other's merge first.
    drop(sa);
    let snapshot = |name: &str| {
        let from = tmp.path().join(format!("{name}.hero"));
        let to = tmp.path().join(format!("{name}-then.hero"));
        std::fs::copy(&from, &to).unwrap();
        std::fs::copy(
            tmp.path().join(format!("{name}.hero.key")),
            tmp.path().join(format!("{name}-then.hero.key")),
        )
        .unwrap();
        serve(&to, None)
    };
    let (a_then, b_then) = (snapshot("a"), snapshot("b"));
    let vb = json(&b, &["pull", &a_then.ticket]);
    let va = json(&a, &["pull", &b_then.ticket]);
    assert_eq!(va["branches"][0]["how"], "merged", "{va}");
    assert_eq!(vb["branches"][0]["how"], "merged", "{vb}");
    assert_eq!(va["branches"][0]["conflicts"], 1, "{va}");
    let sb = serve(&b, None);
    let (ha, hb) = (head(&a, "main"), head(&b, "main"));
    assert_eq!(ha, hb, "both peers made the same merge commit");
    // Clean line merge, and a conflict that keeps both versions.
    let notes = cat(&a, "main:notes.txt");
    assert!(
        notes.contains("line 2 by a\n") && notes.contains("line 11 by b\n"),
        "{notes}"
    );
    let conflicts = json(&a, &["conflicts"]);
    let list = conflicts.as_array().unwrap();
    assert_eq!(list.len(), 1, "{conflicts}");
    assert_eq!(list[0]["path"], "same.txt");
    let copy = list[0]["conflict_path"].as_str().unwrap();
    let mut both = [cat(&a, "main:same.txt"), cat(&a, &format!("main:{copy}"))];
    both.sort();
    assert_eq!(both, ["edited on a\n", "edited on b\n"]);
    assert_eq!(json(&b, &["conflicts"]), conflicts);
    // Syncing again is a no-op on both sides.
    let v = json(&a, &["sync", &sb.ticket]);
    assert_eq!(v["pull"]["branches_updated"], 0, "{v}");
    assert_eq!(head(&b, "main"), ha);
}

#[test]
fn a_stranger_is_refused_and_the_printed_command_lets_it_in() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, c) = (tmp.path().join("a.hero"), tmp.path().join("c.hero"));
    first_commit(&a, &[("secret-branch-content.txt", b"s\n")]);
    ok(&a, &["branch", "secret-name"]);
    let sa = serve(&a, None);
    let out = run(&c, &["clone", &sa.ticket]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("secret-name"), "{err}");
    let cmdline = err
        .split("run: ")
        .nth(1)
        .expect("the error tells what to run")
        .trim()
        .to_owned();
    assert_eq!(
        cmdline,
        format!("heroctl member add {} --role writer", id(&c))
    );
    // The refused clone left the repository in place, with nothing in it.
    assert!(c.exists());
    assert!(json(&c, &["branch"]).as_array().unwrap().is_empty());
    // Run the printed command on the serving peer, then the same clone command works.
    let words: Vec<&str> = cmdline.split_whitespace().skip(1).collect();
    ok(&a, &words);
    let v = json(&c, &["clone", &sa.ticket]);
    assert_eq!(v["branches_updated"], 2, "{v}");
    assert_eq!(head(&c, "main"), head(&a, "main"));
    // The server said why it refused.
    let log = std::fs::read_to_string(&sa.log).unwrap();
    assert!(log.contains("not a member"), "{log}");

    // Another repository cannot pull from this one.
    let d = tmp.path().join("d.hero");
    first_commit(&d, &[("other.txt", b"o\n")]);
    ok(&a, &["allow", "add", &id(&d)]);
    let out = run(&d, &["pull", &sa.ticket]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("repository mismatch"), "{err}");

    // A read-only peer may pull but not push.
    ok(&a, &["allow", "add", &id(&c), "--read-only"]);
    edit(&c, &[("mine.txt", b"m\n")], "c");
    ok(&c, &["pull"]);
    let out = run(&c, &["push"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pull only"), "{err}");
    assert_ne!(head(&a, "main"), head(&c, "main"));
    // Removing a peer shuts it out again.
    ok(&a, &["allow", "remove", &id(&c)]);
    let out = run(&c, &["pull"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not allow"));
}

#[test]
fn a_clone_interrupted_by_kill_9_resumes_without_sending_everything_again() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.hero"), tmp.path().join("b.hero"));
    // Random (incompressible) files.
    let work = tmp.path().join("big");
    std::fs::create_dir_all(&work).unwrap();
    let file_size = 4 << 20;
    let files = 32;
    let mut urandom = std::fs::File::open("/dev/urandom").unwrap();
    for i in 0..files {
        let mut buf = vec![0u8; file_size];
        std::io::Read::read_exact(&mut urandom, &mut buf).unwrap();
        std::fs::write(work.join(format!("f{i:02}.bin")), &buf).unwrap();
    }
    let total = (file_size * files) as u64;
    ok(&a, &["init"]);
    let t0 = Instant::now();
    ok(&a, &["commit", work.to_str().unwrap(), "-m", "big"]);
    eprintln!("commit took {:?}", t0.elapsed());
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let bind = format!("127.0.0.1:{port}");
    let mut sa = serve(&a, Some(&bind));
    ok(&b, &["init"]);
    ok(&a, &["allow", "add", &id(&b)]);
    let mut clone = cmd(&b, &["--json", "clone", &sa.ticket])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the server once part of the data has arrived.
    let start = Instant::now();
    eprintln!("clone started");
    loop {
        let have = std::fs::metadata(&b).map(|m| m.len()).unwrap_or(0);
        if have > total / 3 {
            break;
        }
        assert!(
            clone.try_wait().unwrap().is_none(),
            "the clone finished before it could be interrupted"
        );
        assert!(start.elapsed() < Duration::from_secs(90), "clone too slow");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = sa.child.kill(); // SIGKILL
    let _ = sa.child.wait();
    eprintln!("server killed after {:?}", start.elapsed());
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(s) = clone.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = clone.kill();
            let _ = clone.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("clone ended after {:?}: {status:?}", start.elapsed());
    if let Some(s) = status {
        assert!(!s.success(), "the clone cannot have completed");
    }
    assert_eq!(head(&b, "main"), "", "no branch before everything is there");
    // The peer comes back on the same address; the next pull finishes the job.
    let _sa = serve(&a, Some(&bind));
    let t0 = Instant::now();
    let v = json(&b, &["pull"]);
    eprintln!("resume took {:?}", t0.elapsed());
    let sent = v["bytes_in"].as_u64().unwrap();
    assert!(sent < total * 9 / 10, "resumed pull sent {sent} of {total}");
    assert!(sent > 0);
    assert_eq!(head(&b, "main"), head(&a, "main"));
    assert!(ok(&b, &["verify"]).starts_with("ok:"));
    let ls = json(&b, &["ls", "main"]);
    assert_eq!(ls.as_array().unwrap().len(), files);
}

#[test]
fn a_hostile_peer_is_disconnected_and_nothing_it_sent_is_kept() {
    use hero_sync::testing::{self, RawPeer};
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.hero");
    let evil = tmp.path().join("evil.hero");
    first_commit(&a, &[("f.txt", b"f\n")]);
    let sa = serve(&a, None);
    let key = hero_sync::load_or_create_key(&evil).unwrap();
    ok(&a, &["allow", "add", &key.public().to_string()]);
    let before = head(&a, "main");
    let repo_id = Repo::open(&a).unwrap().repo_id().unwrap();
    let fake_commit = ObjectId::of(b"a commit that is not there");
    let ticket: hero_sync::Ticket = sa.ticket.parse().unwrap();
    let cfg = hero_sync::NetConfig {
        mode: hero_sync::NetMode::Local,
        bind: None,
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // A peer that pushed a branch head and was asked for the objects.
    let pushing = || async {
        let mut p = RawPeer::connect(key.clone(), &cfg, &ticket).await.unwrap();
        p.hello_push(&repo_id).await.unwrap();
        let (k, _) = p.recv().await.unwrap(); // welcome
        assert_eq!(k, 2);
        p.send(
            testing::kinds::PUSH,
            &testing::push_body("main", &fake_commit),
        )
        .await
        .unwrap();
        let (k, _) = p.recv().await.unwrap();
        assert_eq!(k, testing::WANTS);
        p
    };
    rt.block_on(async {
        // 1. An object whose content does not match its id.
        let mut p = pushing().await;
        // No id travels with an object: the receiver hashes what arrives, and an object
        // that is not the head it was told about (nor reachable from it) is refused.
        p.send(testing::kinds::PACK_START, &testing::pack_start_body(1))
            .await
            .unwrap();
        p.send(
            testing::kinds::PACK,
            &testing::pack_body(ObjType::Blob, b"something else entirely"),
        )
        .await
        .unwrap();
        p.send(testing::kinds::END, &[]).await.unwrap();
        let err = p.recv().await.unwrap_err().to_string();
        assert!(err.contains("does not match the id"), "{err}");
        p.close().await;

        // 2. A frame header announcing 4 GiB.
        let mut p = RawPeer::connect(key.clone(), &cfg, &ticket).await.unwrap();
        p.send_garbage(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3])
            .await
            .unwrap();
        assert!(p.recv().await.is_err());
        p.close().await;

        // 3. A stream cut in the middle of a message.
        let mut p = RawPeer::connect(key.clone(), &cfg, &ticket).await.unwrap();
        p.send_garbage(&[0, 0, 0, 50, 1, b'H']).await.unwrap();
        p.finish();
        assert!(p.recv().await.is_err());
        p.close().await;

        // 4. A pack that says more objects will be counted later, then ends uncounted.
        let mut p = pushing().await;
        p.send(
            testing::kinds::PACK_START,
            &testing::pack_start_more_body(0),
        )
        .await
        .unwrap();
        p.send(testing::kinds::END, &[]).await.unwrap();
        assert!(p.recv().await.is_err());
        p.close().await;

        // 5. A peer speaking a future version of the protocol is told so.
        let mut p = RawPeer::connect(key.clone(), &cfg, &ticket).await.unwrap();
        p.hello_pull_version(&repo_id, 99).await.unwrap();
        let err = p.recv().await.unwrap_err();
        assert!(matches!(err, hero_sync::SyncError::Remote(_)), "{err}");
        p.close().await;
    });
    let repo = Repo::open(&a).unwrap();
    let view = repo.view().unwrap();
    assert!(
        view.object_type(&ObjectId::of(b"something else entirely"))
            .unwrap()
            .is_none()
    );
    assert_eq!(head(&a, "main"), before);
    // The server still serves honest peers.
    let b = tmp.path().join("b.hero");
    ok(&a, &["allow", "add", &id(&b)]);
    json(&b, &["clone", &sa.ticket]);
    assert_eq!(head(&b, "main"), before);
    // Each bad peer got a clear log line.
    let log = std::fs::read_to_string(&sa.log).unwrap();
    assert!(log.contains("does not match the id"), "{log}");
    assert!(log.contains("over the limit"), "{log}");
    assert!(log.contains("ended in the middle"), "{log}");
    assert!(log.contains("incompatible version"), "{log}");
    assert!(log.contains("without saying how many"), "{log}");
}

#[test]
fn a_clone_larger_than_the_first_listing_streams_and_arrives_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.hero"), tmp.path().join("b.hero"));
    // 5,000 files in 50 directories: more objects than the sender lists before it starts
    // sending (4,097), so the rest is listed while the first part travels.
    let work = tmp.path().join("many");
    for d in 0..50 {
        let dir = work.join(format!("d{d:03}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            std::fs::write(dir.join(format!("f{f:03}.txt")), format!("{d} {f}\n")).unwrap();
        }
    }
    ok(&a, &["init"]);
    ok(&a, &["commit", work.to_str().unwrap(), "-m", "many"]);
    edit(&a, &[("d000/f000.txt", b"changed\n")], "second");
    let mut server = cmd(&a, &["serve"]);
    let log = tmp.path().join("serve.log");
    server
        .env("RUST_LOG", "hero_sync=debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut child = server.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ticket = loop {
        let line = lines.next().expect("no ticket").unwrap();
        if let Some(t) = line.strip_prefix("ticket: ") {
            break t.to_owned();
        }
    };
    let sa = Server {
        child,
        ticket,
        log: log.clone(),
    };
    ok(&a, &["allow", "add", &id(&b)]);
    let v = json(&b, &["clone", &sa.ticket]);
    // 5,001 blobs, 51 + 2 trees, 2 commits; and the membership branch: two changes (the
    // genesis, B's addition), each a commit, two trees and a file.
    assert_eq!(v["objects"], 5_056 + 8, "{v}");
    assert_eq!(v["commits"], 2 + 2, "{v}");
    assert_eq!(head(&b, "main"), head(&a, "main"));
    assert!(ok(&b, &["verify"]).starts_with("ok: 5,064 objects"));
    assert_eq!(cat(&b, "main:d000/f000.txt"), "changed\n");
    assert_eq!(cat(&b, "main~1:d000/f000.txt"), "0 0\n");
    assert_eq!(cat(&b, "main:d049/f099.txt"), "49 99\n");
    let log = std::fs::read_to_string(&sa.log).unwrap();
    assert!(
        log.contains("complete=false"),
        "the listing was not streamed: {log}"
    );
}

#[test]
fn a_clone_is_packed_like_its_source_and_no_larger() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.hero"), tmp.path().join("b.hero"));
    // 40 commits of 24 text files in 4 directories, each changing a line in 6 of them: small
    // records and deltas, as a source's packed segments hold them.
    let work = tmp.path().join("w");
    let line = |f: usize, l: usize, rev: usize| {
        format!(
            "file {f} line {l}: {} of the history, revision {rev}\n",
            l * 7 + f
        )
    };
    let mut revs = [0usize; 24];
    ok(&a, &["init"]);
    for n in 0..40 {
        for k in 0..6 {
            revs[(n * 5 + k * 4) % 24] = n;
        }
        let files: Vec<(String, String)> = (0..24)
            .map(|f| {
                let text: String = (0..60)
                    .map(|l| line(f, l, if l == n % 60 { revs[f] } else { 0 }))
                    .collect();
                (format!("d{}/f{f:02}.txt", f % 4), text)
            })
            .collect();
        let files: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(p, t)| (p.as_str(), t.as_bytes()))
            .collect();
        write_files(&work, &files);
        ok(
            &a,
            &["commit", work.to_str().unwrap(), "-m", &format!("c{n}")],
        );
    }
    ok(&a, &["allow", "add", &id(&b)]);
    // The source as it is after a collection (which ends compacted, and so packed).
    ok(&a, &["gc"]);
    let source = std::fs::metadata(&a).unwrap().len();
    let sa = serve(&a, None);
    json(&b, &["clone", &sa.ticket]);
    assert_eq!(head(&b, "main"), head(&a, "main"));
    let clone = std::fs::metadata(&b).unwrap().len();
    assert!(
        clone * 10 <= source * 11,
        "clone {clone} bytes, its source {source} bytes"
    );
    assert!(ok(&b, &["verify"]).starts_with("ok: "));
}
