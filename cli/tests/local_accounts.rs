//! Other accounts on the same machine (ADR 0022): the daemon's share
//! refuses a request without the token, `.hero/` in a mount is changed only by the mount's
//! own account, what the drive hides is not readable beside it (repository file, spill
//! directory), and racing first runs make one node key. The other account is `nobody`
//! (uid 65534), reached with util-linux's `setpriv`; these tests run as root.

use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};

use super::*;

const NOBODY: u32 = 65534;

fn require_root_and_setpriv() {
    assert_eq!(
        euid(),
        0,
        "these tests act as another account: run them as root"
    );
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("setpriv").exists()))
        .unwrap_or(false);
    assert!(
        found,
        "these tests need setpriv (apt-get install util-linux)"
    );
}

/// A mount at `.0` served by the process `.1`: on drop the process is stopped and the mount
/// lazily unmounted, whatever the test did.
struct Unmount<'a>(&'a Path, Child);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.1.id().to_string()).status();
        let _ = self.1.wait();
        let _ = Command::new("fusermount3")
            .args(["-u", "-z"])
            .arg(self.0)
            .stderr(Stdio::null())
            .status();
    }
}

/// The effective uid, from the owner of a file this process creates.
fn euid() -> u32 {
    let f = tempfile::NamedTempFile::new().unwrap();
    f.as_file().metadata().unwrap().uid()
}

/// `args` run as `nobody` (no groups), `stdin` on its standard input.
fn as_nobody(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "--",
        ])
        .args(args)
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("setpriv");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Lets other accounts traverse (not list) `dir`: what a home directory usually allows.
fn traversable(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn denied(out: &Output, what: &str) {
    assert!(!out.status.success(), "{what}: allowed: {out:?}");
    assert!(
        text(&out.stderr).contains("Permission denied"),
        "{what}: {out:?}"
    );
}

fn commits(repo: &Path) -> usize {
    let log: Value = serde_json::from_str(&ok(repo, &["--json", "log"])).unwrap();
    log.as_array().map_or(0, Vec::len)
}

/// `heroctl` run through `sh` with umask 000, so every mode it sets is its own.
fn heroctl_umask_000(repo: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("umask 000 && exec \"$@\"")
        .arg("sh")
        .arg(heroctl())
        .arg("-R")
        .arg(repo)
        .args(args)
        .env("HERO_AUTHOR_NAME", "Tester")
        .env("HERO_AUTHOR_EMAIL", "t@example.com")
        .env("HERO_NET", "local");
    c
}

/// A PUT of `.hero/daemon.toml` with a hook, by another account without the token: 401,
/// nothing committed, the hook never runs. The daemon's own account, with the token, is let
/// in (and then the hook does run).
#[test]
fn another_accounts_put_into_the_daemons_share_is_refused_and_no_hook_runs() {
    require_root_and_setpriv();
    let tmp = tempfile::tempdir().unwrap();
    traversable(tmp.path());
    let marker = tmp.path().join("hook-ran");
    let hook = format!(
        "[[watch]]\nglob = \"*.txt\"\nrun = [\"sh\", \"-c\", \"echo \\\"$HERO_CHANGED\\\" >> {}\"]\n",
        marker.display()
    );
    let nodes = fleet(tmp.path(), 1, 600);
    let node = &nodes[0];
    let share = wait_for(30, "the share", || {
        node.status()["share"].as_str().map(str::to_owned)
    });
    let url = format!("{share}.hero/daemon.toml");
    let with_hook = fleet_config(&nodes, 600, &hook);
    let before = commits(&node.repo);
    let config_before = ok(&node.repo, &["cat", "main:.hero/daemon.toml"]);

    // Without credentials, with a guessed token, and as the other account.
    for user in [None, Some("hero:guess")] {
        let mut args = vec!["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"];
        if let Some(u) = user {
            args.extend(["-u", u]);
        }
        args.extend(["-T", "-", url.as_str()]);
        let out = as_nobody(&args, with_hook.as_bytes());
        assert_eq!(text(&out.stdout), "401", "{user:?}: {out:?}");
    }
    // The token file is the daemon account's alone.
    let token_file = {
        let mut p = node.repo.clone().into_os_string();
        p.push(".dav-token");
        PathBuf::from(p)
    };
    denied(
        &as_nobody(&["cat", token_file.to_str().unwrap()], b""),
        "reading the token file",
    );
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().mode() & 0o777,
        0o600
    );

    // Everything beside the repository is the daemon account's alone: the repository, its
    // key, the token, the control socket, the audit log, the spill directory.
    let mut seen = Vec::new();
    for e in std::fs::read_dir(tmp.path()).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("n0.hero") {
            continue;
        }
        let m = std::fs::symlink_metadata(e.path()).unwrap();
        let want = if m.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(m.mode() & 0o777, want, "{name}");
        seen.push(name);
    }
    for want in [
        "n0.hero",
        "n0.hero.key",
        "n0.hero.dav-token",
        "n0.hero.sock",
    ] {
        assert!(seen.iter().any(|n| n == want), "{want} not in {seen:?}");
    }

    // A change through the mount: had the hook been applied it would run for it.
    std::fs::write(node.mnt.join("before.txt"), "before\n").unwrap();
    wait_for(30, "the mount's commit", || {
        (commits(&node.repo) == before + 1).then_some(())
    });
    assert_eq!(
        ok(&node.repo, &["cat", "main:.hero/daemon.toml"]),
        config_before,
        "the configuration changed"
    );

    // The daemon's account, with the token: accepted.
    let token = std::fs::read_to_string(&token_file).unwrap();
    let mut put = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-u"])
        .arg(format!("hero:{}", token.trim()))
        .args(["-T", "-", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl (scripts/deps.sh installs it)");
    put.stdin
        .take()
        .unwrap()
        .write_all(with_hook.as_bytes())
        .unwrap();
    let out = put.wait_with_output().unwrap();
    assert_eq!(text(&out.stdout), "204", "{out:?}");
    wait_for(30, "the new configuration in force", || {
        node.status()["watches"]
            .as_array()
            .is_some_and(|w| w.len() == 1)
            .then_some(())
    });
    std::fs::write(node.mnt.join("after.txt"), "after\n").unwrap();
    wait_for(30, "the hook", || {
        read(&marker)
            .is_some_and(|m| m.contains("after.txt"))
            .then_some(())
    });
    // It ran for the change after it was put in by the daemon's account, never before.
    assert!(!read(&marker).unwrap().contains("before.txt"));
}

/// A file written 0600 through an `--allow-other` mount: another account cannot read it
/// through the mount, nor from the spill directory while it is open, nor from the repository
/// file once committed; every file beside the repository is 0600 and every directory 0700,
/// with umask 000.
#[test]
fn another_account_reads_neither_the_spill_nor_the_repository_file() {
    require_root_and_setpriv();
    require_fuse();
    let tmp = tempfile::tempdir().unwrap();
    traversable(tmp.path());
    let repo = tmp.path().join("r.hero");
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    traversable(&mnt);
    let out = heroctl_umask_000(&repo, &["init"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut mount = heroctl_umask_000(
        &repo,
        &[
            "mount",
            mnt.to_str().unwrap(),
            "--allow-other",
            "--idle-ms",
            "600000",
            "--max-delay-ms",
            "600000",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(mount.stdout.take().unwrap()).lines();
    let mounted = lines
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("the mount did not start: {:?}", mount.wait()));
    assert!(mounted.starts_with("mounted"), "{mounted}");
    let mut guard = Unmount(&mnt, mount);
    std::fs::set_permissions(&mnt, std::fs::Permissions::from_mode(0o755)).unwrap();

    let secret = b"the secret 7f3a9c\n";
    let path = mnt.join("secret.txt");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    f.write_all(secret).unwrap();
    f.flush().unwrap();
    // Still open, not committed: its bytes are in the spill directory.
    let spill = {
        let mut p = repo.clone().into_os_string();
        p.push(".spill");
        PathBuf::from(p)
    };
    let mut found = false;
    let mut stack = vec![spill.clone()];
    while let Some(d) = stack.pop() {
        let m = std::fs::symlink_metadata(&d).unwrap();
        if m.is_dir() {
            assert_eq!(m.mode() & 0o777, 0o700, "{}", d.display());
            for e in std::fs::read_dir(&d).unwrap() {
                stack.push(e.unwrap().path());
            }
        } else {
            assert_eq!(m.mode() & 0o777, 0o600, "{}", d.display());
            found |= std::fs::read(&d).unwrap() == secret;
        }
    }
    assert!(
        found,
        "the open file's bytes are not in the spill directory"
    );

    denied(
        &as_nobody(&["cat", path.to_str().unwrap()], b""),
        "cat through the mount",
    );
    let find = as_nobody(
        &[
            "find",
            spill.to_str().unwrap(),
            "-type",
            "f",
            "-exec",
            "cat",
            "{}",
            "+",
        ],
        b"",
    );
    denied(&find, "reading the spill directory");
    assert!(!text(&find.stdout).contains("secret"), "{find:?}");
    let grep = as_nobody(
        &[
            "grep",
            "-r",
            "secret",
            spill.to_str().unwrap(),
            repo.to_str().unwrap(),
        ],
        b"",
    );
    denied(&grep, "searching the spill directory and the repository");

    // Committed: its bytes are in the repository file, which only the owner reads.
    drop(f);
    let unmounted = Command::new("kill")
        .arg(guard.1.id().to_string())
        .status()
        .unwrap();
    assert!(unmounted.success());
    assert!(guard.1.wait().unwrap().success());
    assert_eq!(ok(&repo, &["cat", "main:secret.txt"]).as_bytes(), secret);
    denied(
        &as_nobody(&["cat", repo.to_str().unwrap()], b""),
        "reading the repository file",
    );
    for e in std::fs::read_dir(tmp.path()).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("r.hero") {
            continue;
        }
        let m = e.metadata().unwrap();
        let want = if m.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(m.mode() & 0o777, want, "{name}");
    }
}

/// `.hero/` through an `--allow-other` mount, its directory mode 0777: another account gets
/// EACCES for every change there, while the rest of the drive follows the modes.
#[test]
fn another_account_cannot_write_the_configuration_through_the_mount() {
    require_root_and_setpriv();
    require_fuse();
    let tmp = tempfile::tempdir().unwrap();
    traversable(tmp.path());
    let repo = tmp.path().join("r.hero");
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    ok(&repo, &["init"]);
    let mut mount = cmd(&repo, &["mount", mnt.to_str().unwrap(), "--allow-other"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(mount.stdout.take().unwrap()).lines();
    let mounted = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(mounted.starts_with("mounted"), "{mounted}");
    let _guard = Unmount(&mnt, mount);
    std::fs::set_permissions(&mnt, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::create_dir(mnt.join(".hero")).unwrap();
    std::fs::set_permissions(mnt.join(".hero"), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(mnt.join(".hero/daemon.toml"), "peers = []\n").unwrap();
    std::fs::set_permissions(
        mnt.join(".hero/daemon.toml"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let x = mnt.join(".hero/x");
    let x = x.to_str().unwrap();
    let toml = mnt.join(".hero/daemon.toml");
    let toml = toml.to_str().unwrap();
    for script in [
        format!("echo hook > {x}"),
        format!("echo '[[watch]]' >> {toml}"),
        format!("rm {toml}"),
        format!("mkdir {x}"),
    ] {
        denied(&as_nobody(&["sh", "-c", &script], b""), &script);
    }
    // Elsewhere, the 0777 root lets it write.
    let out = as_nobody(
        &[
            "sh",
            "-c",
            &format!("echo ok > {}", mnt.join("ok.txt").display()),
        ],
        b"",
    );
    assert!(out.status.success(), "{out:?}");
    assert!(!Path::new(x).exists());
    assert_eq!(read(Path::new(toml)).unwrap(), "peers = []\n");
}

/// 200 first runs of `heroctl id` at once on a new repository path: all succeed and print
/// the same id, and one key file is left (mode 0600 with umask 000), nothing else.
#[test]
fn two_hundred_concurrent_first_runs_make_one_key() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("new.hero");
    let children: Vec<Child> = (0..200)
        .map(|_| {
            heroctl_umask_000(&repo, &["id"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for o in &outs {
        assert!(o.status.success(), "{o:?}");
    }
    let first = text(&outs[0].stdout);
    assert_eq!(first.trim().len(), 64, "{first}");
    assert!(outs.iter().all(|o| text(&o.stdout) == first));
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["new.hero.key"]);
    let key = tmp.path().join("new.hero.key");
    assert_eq!(std::fs::metadata(&key).unwrap().mode() & 0o777, 0o600);
    // An empty key file (left by an older version) says what to do, with its own exit code.
    std::fs::write(&key, b"").unwrap();
    let out = run(&repo, &["id"]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    let err = text(&out.stderr);
    assert!(err.contains("is empty"), "{err}");
    assert!(
        err.contains("hint: it never held a key") && err.contains(key.to_str().unwrap()),
        "{err}"
    );
}
