//! The durability contract of docs/durability.md, checked on real mounts and real processes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hero_fuse::MountOptions;
use hero_store::Repo;

use crate::util::*;

const MOUNT_HELPER: &str = "HERO_FUSE_TEST_MOUNT";

/// Not a test on its own: the body of the mount process `kill_9_mid_copy` kills. Mounts
/// `HERO_FUSE_TEST_REPO` on `HERO_FUSE_TEST_DIR` with commits put off for a minute (so
/// that only recovery can save what is written) and waits to be killed.
#[test]
fn mount_helper_process() {
    let Ok(spill) = std::env::var(MOUNT_HELPER) else {
        return;
    };
    let repo = std::env::var("HERO_FUSE_TEST_REPO").unwrap();
    let dir = std::env::var("HERO_FUSE_TEST_DIR").unwrap();
    let mut opts = MountOptions::new(repo, dir);
    opts.idle_commit = Duration::from_secs(60);
    opts.max_commit_delay = Duration::from_secs(60);
    if !spill.is_empty() {
        opts.spill_dir = Some(spill.into());
    }
    let h = hero_fuse::mount(opts).unwrap();
    println!("mounted");
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::park();
        let _ = &h;
    }
}

/// Whether `dir` is a mount point now (from /proc/self/mountinfo, without touching it).
fn is_mounted(dir: &Path) -> bool {
    let want = dir.to_str().unwrap();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want))
}

fn spawn_mount(repo: &Path, dir: &Path) -> Child {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "durability::mount_helper_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(MOUNT_HELPER, "")
        .env("HERO_FUSE_TEST_REPO", repo)
        .env("HERO_FUSE_TEST_DIR", dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    eventually("the helper's mount", || is_mounted(dir));
    child
}

/// Lists what is left under a spill root (relative paths), empty when it is gone.
fn spill_left(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().to_path_buf());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

/// A `cp -r` that exited 0, then a copy loop killed with the mount (`kill -9`) half way:
/// the next mount commits every file `cp` had closed, as a recovery commit, and leaves no
/// spill data behind.
#[test]
fn kill_9_mid_copy_then_remount_recovers_everything_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_path = tmp.path().join("store.hero");
    Repo::init(&repo_path).unwrap();
    let dir = tmp.path().join("mnt");
    fs::create_dir(&dir).unwrap();
    sh(
        tmp.path(),
        "mkdir -p src/a/b && for i in $(seq 1 40); do echo file $i > src/a/f$i; done && \
         head -c 3000000 /dev/urandom > src/a/b/big.bin && \
         mkdir loop && for i in $(seq 1 400); do head -c $((i * 97)) /dev/urandom > loop/f$i; done",
    );
    let mut mount = spawn_mount(&repo_path, &dir);
    sh(tmp.path(), "cp -r src mnt/tree");
    // Every kind of change, done to a reference copy too.
    for base in ["mnt/tree", "ref"] {
        if base == "ref" {
            sh(tmp.path(), "cp -r src ref");
        }
        sh(
            tmp.path(),
            &format!(
                "cd {base}/a && mv f1 f1.moved && rm f2 && chmod +x f3 && ln -s f3 link && \
                 mkdir -p new/empty && echo appended >> f4 && printf 'XY' | \
                 dd of=f5 bs=1 seek=1 conv=notrunc status=none && : > zero"
            ),
        );
    }
    // Copies one file at a time, noting each after `cp` returned (the file closed).
    let mut copier = Command::new("bash")
        .arg("-c")
        .arg(
            "mkdir mnt/loop && for i in $(seq 1 400); do \
               cp loop/f$i mnt/loop/f$i || exit 0; echo $i >> done.txt; done",
        )
        .current_dir(tmp.path())
        .spawn()
        .unwrap();
    let done_file = tmp.path().join("done.txt");
    eventually("the copy loop under way", || {
        fs::read_to_string(&done_file).is_ok_and(|s| s.lines().count() >= 30)
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(mount.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    mount.wait().unwrap();
    copier.wait().unwrap();
    let copied: Vec<String> = fs::read_to_string(&done_file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(copied.len() < 400, "the loop finished before the kill");
    // Nothing was committed before the kill (commits were put off for a minute).
    assert!(
        Repo::open(&repo_path)
            .unwrap()
            .branch_head("main")
            .unwrap()
            .is_none()
    );
    // The dead mount's spill directory is there, with its journal.
    let spill_root = tmp.path().join("store.hero.spill");
    assert!(
        spill_left(&spill_root)
            .iter()
            .any(|p| p.ends_with("journal"))
    );
    let _ = Command::new("fusermount3").arg("-u").arg(&dir).status();

    // The next mount of the repository recovers.
    let mut m = Mounted::reuse(tmp, |_| {});
    let repo = Repo::open(&m.repo).unwrap();
    let log = commits(&repo, "main");
    assert_eq!(log.len(), 1);
    let c = repo.commit(&log[0]).unwrap();
    assert!(String::from_utf8_lossy(&c.message).contains("recovery"));
    // Only the new mount's own spill directory is left.
    let left: Vec<PathBuf> = spill_left(&spill_root)
        .into_iter()
        .filter(|p| p.components().count() == 2)
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    sh(
        m.tmp(),
        "diff -r ref mnt/tree && test -x mnt/tree/a/f3 && test -L mnt/tree/a/link",
    );
    assert_eq!(
        kind(&repo, "main", "tree/a/f3"),
        Some(hero_store::EntryKind::Executable)
    );
    assert_eq!(
        kind(&repo, "main", "tree/a/new/empty"),
        Some(hero_store::EntryKind::Dir)
    );
    assert_eq!(content(&repo, "main", "tree/a/zero"), b"");
    for i in &copied {
        let want = fs::read(m.tmp().join(format!("loop/f{i}"))).unwrap();
        assert_eq!(content(&repo, "main", &format!("loop/f{i}")), want, "f{i}");
    }
    drop(repo);
    m.finish();
    assert_eq!(spill_left(&spill_root), Vec::<PathBuf>::new());
    assert!(!spill_root.exists());
}

/// A process that writes a file every 100 ms and never pauses: each closed file is
/// committed within the maximum delay (here 1 s), though the mount is never idle.
#[test]
fn steady_writer_is_committed_within_the_max_delay() {
    let m = Mounted::with(|o| {
        o.idle_commit = Duration::from_secs(3600);
        o.max_commit_delay = Duration::from_secs(1);
    });
    let dir = m.dir.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut i = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                fs::write(dir.join(format!("f{i}")), format!("{i}\n")).unwrap();
                i += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            i
        })
    };
    let repo = Repo::open(&m.repo).unwrap();
    // Files closed at different times while writes go on: each is on the branch in time.
    for probe in [3u32, 15, 30] {
        let closed = m.p(&format!("f{}", probe + 1));
        eventually("the writer got there", || closed.exists());
        let at = Instant::now();
        let name = format!("f{probe}");
        while entry(&repo, "main", &name).is_none() {
            assert!(
                // Without the maximum delay it would never be committed (the idle delay is an
                // hour); the margin is for polling and a loaded machine.
                at.elapsed() < Duration::from_secs(4),
                "{name} not committed within the max delay (1 s) plus polling"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            content(&repo, "main", &name),
            format!("{probe}\n").as_bytes()
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(writer.join().unwrap() > 30);
}

/// `fsync` returns once the file is committed: the branch has it right after, with
/// commits otherwise put off for an hour. `sync FILE` (coreutils) does the same.
#[test]
fn fsync_returns_with_the_file_committed() {
    let m = Mounted::with(|o| {
        o.idle_commit = Duration::from_secs(3600);
        o.max_commit_delay = Duration::from_secs(3600);
    });
    let repo = Repo::open(&m.repo).unwrap();
    let mut f = fs::File::create(m.p("db.dat")).unwrap();
    f.write_all(b"first record\n").unwrap();
    assert!(entry(&repo, "main", "db.dat").is_none());
    f.sync_all().unwrap();
    assert_eq!(content(&repo, "main", "db.dat"), b"first record\n");
    f.write_all(b"second record\n").unwrap();
    f.sync_data().unwrap();
    assert_eq!(
        content(&repo, "main", "db.dat"),
        b"first record\nsecond record\n"
    );
    drop(f);
    fs::write(m.p("other.txt"), b"other\n").unwrap();
    sh(&m.dir, "sync other.txt");
    assert_eq!(content(&repo, "main", "other.txt"), b"other\n");

    // A file whose last change is committed: its fsync returns without a commit (other
    // pending changes wait); an fsync of the directory commits them.
    let before = commits(&repo, "main").len();
    fs::write(m.p("pending.txt"), b"p\n").unwrap();
    fs::File::open(m.p("db.dat")).unwrap().sync_all().unwrap();
    assert_eq!(commits(&repo, "main").len(), before);
    assert!(entry(&repo, "main", "pending.txt").is_none());
    fs::File::open(&m.dir).unwrap().sync_all().unwrap();
    assert_eq!(content(&repo, "main", "pending.txt"), b"p\n");
    // A rename is a change of the file: its fsync commits it.
    fs::rename(m.p("other.txt"), m.p("renamed.txt")).unwrap();
    fs::File::open(m.p("renamed.txt"))
        .unwrap()
        .sync_all()
        .unwrap();
    assert_eq!(content(&repo, "main", "renamed.txt"), b"other\n");
    assert!(entry(&repo, "main", "other.txt").is_none());
}

/// Spill files are reused once committed (no file created and deleted per written file);
/// a reused one starts empty at offset 0, whether it is filled by writes or by a copy of
/// the stored content before a write in the middle.
#[test]
fn reused_spill_files_start_empty() {
    let m = Mounted::new();
    let spill_root = m.tmp().join("store.hero.spill");
    let count_files = || {
        spill_left(&spill_root)
            .iter()
            .filter(|p| p.components().count() == 3 && !p.ends_with("journal"))
            .count()
    };
    for round in 0..5u8 {
        let long = vec![b'a' + round; 50_000 - usize::from(round) * 7_000];
        fs::write(m.p(&format!("long{round}")), &long).unwrap();
        fs::write(m.p("short"), [b'0' + round; 10]).unwrap();
        fs::File::open(m.p("short")).unwrap().sync_all().unwrap();
        // A write in the middle of a committed file: its content is copied into a spill.
        sh(
            &m.dir,
            &format!("printf XY | dd of=long{round} bs=1 seek=2 conv=notrunc status=none"),
        );
        fs::File::open(m.p(&format!("long{round}")))
            .unwrap()
            .sync_all()
            .unwrap();
        let mut want = long.clone();
        want[2..4].copy_from_slice(b"XY");
        assert_eq!(fs::read(m.p(&format!("long{round}"))).unwrap(), want);
        let repo = Repo::open(&m.repo).unwrap();
        assert_eq!(content(&repo, "main", &format!("long{round}")), want);
        assert_eq!(content(&repo, "main", "short"), [b'0' + round; 10]);
    }
    // Far fewer spill files than files written (15 writes).
    assert!(count_files() <= 4, "{} spill files", count_files());
}

/// Spill directories left by killed mounts of the layout before the journal
/// (`mount-<pid>-<nanos>/`) are removed by the next mount once their process is gone.
#[test]
fn old_layout_spill_directories_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    Repo::init(tmp.path().join("store.hero")).unwrap();
    fs::create_dir(tmp.path().join("mnt")).unwrap();
    let root = tmp.path().join("store.hero.spill");
    // A process that has ended: a child we waited for.
    let mut dead = Command::new("true").spawn().unwrap();
    let pid = dead.id();
    dead.wait().unwrap();
    let old = root.join(format!("mount-{pid}-12345"));
    fs::create_dir_all(&old).unwrap();
    fs::write(old.join("0"), vec![7u8; 100_000]).unwrap();
    // One of a live process (this one) stays.
    let live = root.join(format!("mount-{}-1", std::process::id()));
    fs::create_dir_all(&live).unwrap();
    fs::write(live.join("0"), b"x").unwrap();
    let mut m = Mounted::reuse(tmp, |_| {});
    assert!(!old.exists());
    assert!(live.exists());
    m.finish();
}

/// Four writers `fsync`ing at once share commits (group commit), and each `fsync` still
/// returns only once its own file is committed.
#[test]
fn concurrent_fsyncs_share_commits_and_each_returns_committed() {
    let m = Mounted::with(|o| {
        o.idle_commit = Duration::from_secs(3600);
        o.max_commit_delay = Duration::from_secs(3600);
    });
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let dir = m.dir.clone();
            let repo_path = m.repo.clone();
            std::thread::spawn(move || {
                let repo = Repo::open(&repo_path).unwrap();
                for i in 0..40 {
                    let name = format!("w{w}-{i}");
                    let body = format!("{w} {i}\n");
                    let mut f = fs::File::create(dir.join(&name)).unwrap();
                    f.write_all(body.as_bytes()).unwrap();
                    f.sync_all().unwrap();
                    assert_eq!(content(&repo, "main", &name), body.as_bytes(), "{name}");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let repo = Repo::open(&m.repo).unwrap();
    let n = commits(&repo, "main").len();
    // Without group commits: one per fsync (160); with them about 60-75 here.
    assert!(n < 140, "{n} commits for 160 fsyncs");
}
