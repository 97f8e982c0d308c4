//! Who commands the machines (docs/security.md): a daemon obeys `.hero/` only when an owner
//! wrote it, runs hooks with nothing of its own environment, and never lets a peer named in
//! its configuration in.

use super::*;

/// [`wait_for`], printing `log` when it times out.
fn wait_for_or<T>(secs: u64, what: &str, log: &Path, f: impl FnMut() -> Option<T>) -> T {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wait_for(secs, what, f)));
    match r {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{}", read(log).unwrap_or_default());
            std::panic::resume_unwind(e)
        }
    }
}

/// A node of `dir` named `name`: its key (and id) made, no repository yet.
fn node(dir: &Path, name: &str) -> Node {
    let repo = dir.join(format!("{name}.hero"));
    let id = ok(&repo, &["id"]).trim().to_owned();
    Node {
        mnt: dir.join(format!("mnt-{name}")),
        log: dir.join(format!("{name}.log")),
        repo,
        id,
        port: free_udp_port(),
        daemon: None,
    }
}

/// `path` of `repo`'s file with `suffix` appended (what the hooks below write).
fn beside(repo: &Path, suffix: &str) -> PathBuf {
    let mut p = repo.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Commits `files` onto main of `repo` as the node of `signer` and signs it, the way a
/// modified client would (or a receiver with a bug): nothing checks it on the way in.
fn plant(repo: &Path, signer: &Path, files: &[(&str, &str)]) -> String {
    let key = hero_sync::load_or_create_key(signer).unwrap();
    let files: Vec<(&str, &[u8])> = files.iter().map(|(p, c)| (*p, c.as_bytes())).collect();
    hero_tests::commit_signed_as(repo, &key, "main", &files)
}

/// A configuration for `a` with `peers` and one hook that appends the changed paths to
/// `<repo><hits>` (and, with `env`, what the hook sees of its environment to `<repo>.env`).
fn config(a: &Node, peers: &[String], hits: &str, env: bool) -> String {
    let record = if env {
        // What the hook sees is written first: the test reads it once the hit is there.
        format!(
            "env > \\\"$HERO_REPO.env\\\"; echo \\\"cwd=$(pwd)\\\" >> \\\"$HERO_REPO.env\\\"; \
             echo \\\"$HERO_CHANGED\\\" >> \\\"$HERO_REPO{hits}\\\""
        )
    } else {
        format!("echo \\\"$HERO_CHANGED\\\" >> \\\"$HERO_REPO{hits}\\\"")
    };
    let peers: Vec<String> = peers.iter().map(|p| format!("\"{p}\"")).collect();
    format!(
        "peers = [{}]\n[[watch]]\nglob = \"**\"\nrun = [\"sh\", \"-c\", \"{record}\"]\n\
         [mount]\nidle_commit_ms = 50\n[dav]\nenabled = false\n\
         [node.{}]\nlisten = \"127.0.0.1:{}\"\n",
        peers.join(", "),
        a.id,
        a.port
    )
}

#[test]
fn only_an_owners_configuration_is_obeyed_and_its_peers_are_not_let_in() {
    require_fuse();
    let tmp = tempfile::tempdir().unwrap();
    let mut a = node(tmp.path(), "a");
    let b = node(tmp.path(), "b");
    let stranger = node(tmp.path(), "s");
    let stranger_ticket = format!("{}@127.0.0.1:{}", stranger.id, stranger.port);

    // The owner's configuration names a stranger as a peer and runs one hook.
    let work = tmp.path().join("work");
    std::fs::create_dir_all(work.join(".hero")).unwrap();
    let owners = config(
        &a,
        std::slice::from_ref(&stranger_ticket),
        ".owner-hits",
        true,
    );
    std::fs::write(work.join(".hero/daemon.toml"), &owners).unwrap();
    std::fs::write(work.join("hello.txt"), "hello\n").unwrap();
    ok(&a.repo, &["init"]);
    ok(&a.repo, &["commit", work.to_str().unwrap(), "-m", "first"]);
    ok(&a.repo, &["member", "add", &b.id, "--role", "writer"]);
    a.start_env(None, &[("HERO_TEST_SECRET", "s3cret")]);

    // A peer named in the configuration is not a member: it can't clone.
    let out = run(&stranger.repo, &["clone", &a.ticket()]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let members = ok(&a.repo, &["member", "list"]);
    assert!(!members.contains(&stranger.id), "{members}");
    assert!(members.contains(&b.id), "{members}");

    // The writer's change of the configuration is refused by the owner's daemon.
    ok(&b.repo, &["clone", &a.ticket()]);
    let writers = config(&a, &[], ".writer-hits", false);
    plant(&b.repo, &b.repo, &[(".hero/daemon.toml", &writers)]);
    let out = run(&b.repo, &["push", "origin", "main"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only owners"),
        "{out:?}"
    );

    // The writer's own drive refuses the change too (its daemon knows it is no owner), and
    // takes every other file.
    let mut b = b;
    let listen = format!("127.0.0.1:{}", b.port);
    std::fs::create_dir_all(&b.mnt).unwrap();
    let mut child = cmd(
        &b.repo,
        &[
            "daemon",
            "--mount",
            b.mnt.to_str().unwrap(),
            "--listen",
            &listen,
        ],
    )
    .env("RUST_LOG", "warn")
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    ticket_line(&mut child, || "the writer's daemon exited".to_owned());
    b.daemon = Some(child);
    let e = std::fs::write(b.mnt.join(".hero/mine.toml"), "x = 1\n").unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
    std::fs::write(b.mnt.join("notes.txt"), "fine\n").unwrap();
    assert!(b.signal("-TERM").success());

    // Even when it gets into the owner's repository by a way no check saw, the daemon does
    // not obey it: it says so, audits it, and keeps the owner's configuration in force.
    let revision = config_revision(&a);
    let planted = plant(&a.repo, &b.repo, &[(".hero/daemon.toml", &writers)]);
    let err = wait_for(30, "the refusal in the daemon's status", || {
        let s = a.status();
        let e = s["config"]["error"]["message"].as_str().map(str::to_owned);
        e.filter(|e| e.contains("not obeyed"))
    });
    assert!(err.contains(&planted[..12]), "{err}");
    assert_eq!(config_revision(&a), revision, "the owner's stays in force");
    let audit = ok(&a.repo, &["--json", "audit"]);
    assert!(
        audit.contains("\"config\"") && audit.contains(&planted),
        "{audit}"
    );

    // A change: the owner's hook runs, the writer's never does.
    std::fs::write(a.mnt.join("x.txt"), "x\n").unwrap();
    wait_for(30, "the owner's hook", || {
        read(&beside(&a.repo, ".owner-hits"))
            .filter(|t| t.lines().any(|l| l == "x.txt"))
            .map(|_| ())
    });
    assert!(!beside(&a.repo, ".writer-hits").exists());
    // The hook got nothing of the daemon's environment, and ran in the change's directory.
    let env = read(&beside(&a.repo, ".env")).unwrap();
    assert!(!env.contains("s3cret"), "{env}");
    assert!(!env.contains("HERO_TEST_SECRET"), "{env}");
    assert!(env.contains("HERO_CHANGED="), "{env}");
    let cwd = env.lines().find_map(|l| l.strip_prefix("cwd=")).unwrap();
    assert!(cwd.contains("hero-watch-"), "{cwd}");

    // The same hook written by the owner (through its own mount) is obeyed: one run a change.
    let owners_now = format!(
        "# adopted by the owner\n{}",
        config(&a, &[], ".writer-hits", false)
    );
    std::fs::write(a.mnt.join(".hero/daemon.toml"), &owners_now).unwrap();
    wait_for_or(30, "the owner's new configuration applied", &a.log, || {
        let s = a.status();
        (s["config"]["error"].is_null() && config_revision(&a) != revision).then_some(())
    });
    for (i, name) in ["y.txt", "z.txt"].into_iter().enumerate() {
        std::fs::write(a.mnt.join(name), "y\n").unwrap();
        let hits = wait_for(30, "the hook", || {
            read(&beside(&a.repo, ".writer-hits"))
                .filter(|t| t.lines().any(|l| l == name))
                .map(|t| t.lines().count())
        });
        assert_eq!(hits, i + 1, "one run for each change");
    }
}
