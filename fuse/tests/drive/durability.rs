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

/// The system call number of `fsync` (what `/proc/<tid>/syscall` shows while a thread is in it).
#[cfg(target_arch = "x86_64")]
const SYS_FSYNC: &str = "74";
#[cfg(target_arch = "aarch64")]
const SYS_FSYNC: &str = "82";

/// While a 500 MB file's `fsync` commits it, other files can be opened, read and looked up:
/// the commit streams the file into the store without holding the mount's lock. Asserted on
/// order: the read and the lookup return while the `fsync` has not returned yet. The data
/// lives under /var/tmp (disk) and goes with the test.
#[test]
fn reads_and_lookups_proceed_while_a_large_file_is_committed() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let tmp = tempfile::Builder::new()
        .prefix("hero-fuse-lock-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let repo = Repo::init(tmp.path().join("store.hero")).unwrap();
    let mut cs = repo.change_set("main").unwrap();
    for (p, data) in [("other.txt", &b"other\n"[..]), ("dir/peer.txt", b"peer\n")] {
        cs.put_bytes(
            &hero_store::RepoPath::parse(p).unwrap(),
            hero_store::EntryKind::File,
            data,
        )
        .unwrap();
    }
    let sig = hero_store::Author::new("t", "t@example.com").signature();
    cs.commit(
        hero_store::CommitMeta::new(sig, "prepare"),
        hero_store::Expect::Latest,
    )
    .unwrap();
    drop(repo);
    fs::create_dir(tmp.path().join("mnt")).unwrap();
    let m = Mounted::reuse(tmp, |o| {
        o.idle_commit = Duration::from_secs(3600);
        o.max_commit_delay = Duration::from_secs(3600);
    });

    // 500 MB that neither compresses nor repeats (a repeated block would be stored once).
    const MB: usize = 1 << 20;
    const SIZE: usize = 500 * MB;
    let mut big = fs::File::create(m.p("big.bin")).unwrap();
    let mut rng = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
    let mut block = vec![0u8; MB];
    for _ in 0..SIZE / MB {
        rng.fill(&mut block);
        big.write_all(&block).unwrap();
    }

    // Another file pending: the fsync's commit holds it too, read after big.bin.
    fs::write(m.p("second.bin"), vec![b'a'; 4 * MB]).unwrap();

    let returned = Arc::new(AtomicBool::new(false));
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let fsync = {
        let returned = returned.clone();
        std::thread::spawn(move || {
            tid_tx
                .send(fs::read_link("/proc/thread-self").unwrap())
                .unwrap();
            let res = big.sync_all();
            returned.store(true, Ordering::SeqCst);
            res
        })
    };
    // Wait until the thread is inside `fsync` (the kernel has sent it to the mount).
    let task = Path::new("/proc")
        .join(tid_rx.recv().unwrap())
        .join("syscall");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = fs::read_to_string(&task).unwrap_or_default();
        if now.split(' ').next() == Some(SYS_FSYNC) {
            break;
        }
        assert!(
            !returned.load(Ordering::SeqCst),
            "fsync returned before it was seen"
        );
        assert!(
            Instant::now() < deadline,
            "the fsync thread never entered fsync"
        );
        std::thread::yield_now();
    }

    // ... and the mount is reading big.bin into the store: this process (the mount is in it)
    // has read 16 MB more since.
    let rchar = || {
        let io = fs::read_to_string("/proc/self/io").unwrap();
        let line = io.lines().find(|l| l.starts_with("rchar:")).unwrap();
        line["rchar:".len()..].trim().parse::<u64>().unwrap()
    };
    let start = rchar();
    while rchar() < start + 16 * MB as u64 {
        assert!(
            !returned.load(Ordering::SeqCst),
            "fsync returned before the commit was seen"
        );
        assert!(Instant::now() < deadline, "the commit never read big.bin");
        std::thread::sleep(Duration::from_millis(5));
    }

    // Other files, never touched through the mount before: open, read and lookup all go
    // to the mount.
    assert_eq!(fs::read(m.p("other.txt")).unwrap(), b"other\n");
    assert!(
        !returned.load(Ordering::SeqCst),
        "the read of another file waited for the commit of big.bin"
    );
    assert_eq!(fs::metadata(m.p("dir/peer.txt")).unwrap().len(), 5);
    assert!(
        !returned.load(Ordering::SeqCst),
        "the lookup of another file waited for the commit of big.bin"
    );

    // Changes made meanwhile belong to the next commit: a new file, and an append to
    // big.bin (which waits until the commit has read big.bin).
    fs::write(m.p("small.txt"), b"small\n").unwrap();
    assert!(
        !returned.load(Ordering::SeqCst),
        "creating a file waited for the commit"
    );
    let append = {
        let path = m.p("big.bin");
        std::thread::spawn(move || {
            let mut f = fs::OpenOptions::new().append(true).open(path).unwrap();
            f.write_all(b"tail").unwrap();
        })
    };
    // An overwrite of second.bin, which the commit has taken but not read yet: it waits until
    // the commit has read it, and is not in that commit.
    let overwrite = {
        let path = m.p("second.bin");
        std::thread::spawn(move || {
            use std::os::unix::fs::FileExt;
            let f = fs::OpenOptions::new().write(true).open(path).unwrap();
            f.write_all_at(b"ZZZZ", 0).unwrap();
        })
    };

    // The fsync then returns with the file committed (a generous guard, not a timing test).
    let deadline = Instant::now() + Duration::from_secs(600);
    while !returned.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "the fsync of big.bin never returned"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    fsync.join().unwrap().unwrap();
    append.join().unwrap();
    overwrite.join().unwrap();
    let repo = Repo::open(&m.repo).unwrap();
    assert_eq!(
        commits(&repo, "main").len(),
        2,
        "prepare, then the fsync's commit"
    );
    assert_eq!(entry(&repo, "main", "big.bin").unwrap().size, SIZE as u64);
    assert!(entry(&repo, "main", "small.txt").is_none());
    let second = content(&repo, "main", "second.bin");
    assert_eq!(second.len(), 4 * MB);
    assert!(
        second.iter().all(|&b| b == b'a'),
        "the fsync's commit holds the overwrite made while it was under way"
    );
    // The next commit has them.
    m.handle.as_ref().unwrap().flush().unwrap();
    assert_eq!(commits(&repo, "main").len(), 3);
    assert_eq!(
        entry(&repo, "main", "big.bin").unwrap().size,
        SIZE as u64 + 4
    );
    assert_eq!(content(&repo, "main", "small.txt"), b"small\n");
    let big = content(&repo, "main", "big.bin");
    assert_eq!(&big[SIZE..], b"tail");
    let second = content(&repo, "main", "second.bin");
    assert_eq!(&second[..5], b"ZZZZa");
}

/// What `stat` says of a path: mode bits, owner, modification time.
fn stat_meta(p: &Path) -> (u32, u32, u32, hero_store::Timestamp) {
    use std::os::unix::fs::MetadataExt;
    let md = fs::symlink_metadata(p).unwrap();
    let t = hero_store::Timestamp {
        secs: md.mtime(),
        nanos: u32::try_from(md.mtime_nsec()).unwrap(),
    };
    (md.mode() & 0o7777, md.uid(), md.gid(), t)
}

/// After `kill -9`, the recovery commit records the mode, owner and modification time each
/// entry had before the kill: set by chmod, chown and `touch -d`, or the time of the last
/// write — not the recovery commit's time.
#[test]
fn kill_9_then_recovery_keeps_modes_owners_and_times() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_path = tmp.path().join("store.hero");
    {
        // A file committed before the mount: its binding stays the stored content.
        let repo = Repo::init(&repo_path).unwrap();
        let mut cs = repo.change_set("main").unwrap();
        cs.put_bytes(
            &hero_store::RepoPath::parse("old.txt").unwrap(),
            hero_store::EntryKind::File,
            b"old\n",
        )
        .unwrap();
        let sig = hero_store::Author::new("t", "t@example.com").signature();
        cs.commit(
            hero_store::CommitMeta::new(sig, "prepare"),
            hero_store::Expect::Latest,
        )
        .unwrap();
    }
    let dir = tmp.path().join("mnt");
    fs::create_dir(&dir).unwrap();
    let mut mount = spawn_mount(&repo_path, &dir);
    // Root can give files away; anyone else records their own ids explicitly.
    let owner = if nix::unistd::geteuid().is_root() {
        "1234:5678".to_owned()
    } else {
        format!("{}:{}", nix::unistd::getuid(), nix::unistd::getgid())
    };
    sh(
        tmp.path(),
        &format!(
            "cd mnt && echo written > written.txt && \
             echo private > modes.txt && chmod 640 modes.txt && chown {owner} modes.txt && \
             echo old > touched.txt && touch -d '2001-02-03 04:05:06.789' touched.txt && \
             echo a > rewritten.txt && touch -d '2001-02-03 04:05:06' rewritten.txt && \
             echo b >> rewritten.txt && \
             chmod 600 old.txt && touch -d '2003-04-05 06:07:08.5' old.txt && \
             mkdir -p d/sub && echo x > d/sub/f && chmod 2750 d && \
             touch -d '2002-03-04 05:06:07.25' d && \
             ln -s written.txt link && touch -h -d '2004-05-06 07:08:09' link"
        ),
    );
    let paths = [
        "written.txt",
        "modes.txt",
        "touched.txt",
        "rewritten.txt",
        "old.txt",
        "d",
        "d/sub",
        "d/sub/f",
    ];
    let before: Vec<_> = paths.iter().map(|p| stat_meta(&dir.join(p))).collect();
    // What the script set, as the mount showed it.
    assert_eq!(before[1].0, 0o640);
    assert_eq!(before[2].3.secs, 981_173_106);
    assert_eq!(before[2].3.nanos, 789_000_000);
    assert!(
        before[3].3.secs > 981_173_106,
        "the write after touch -d sets the time"
    );
    assert_eq!(before[5].0, 0o2750);
    let link_before = stat_meta(&dir.join("link"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(mount.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    mount.wait().unwrap();
    let _ = Command::new("fusermount3").arg("-u").arg(&dir).status();
    assert_eq!(
        commits(&Repo::open(&repo_path).unwrap(), "main").len(),
        1,
        "nothing committed before the kill"
    );

    let m = Mounted::reuse(tmp, |_| {});
    let repo = Repo::open(&m.repo).unwrap();
    let log = commits(&repo, "main");
    assert_eq!(log.len(), 2);
    let c = repo.commit(&log[0]).unwrap();
    assert!(String::from_utf8_lossy(&c.message).contains("recovery"));
    for (p, (mode, uid, gid, mtime)) in paths.iter().zip(&before) {
        let e = entry(&repo, "main", p).unwrap();
        assert_eq!(e.meta.mode, Some(*mode), "{p}: mode");
        // old.txt never had an owner recorded (it shows the mounting user's).
        let owner = (*p != "old.txt").then_some(hero_store::Owner {
            uid: *uid,
            gid: *gid,
        });
        assert_eq!(e.meta.owner, owner, "{p}: owner");
        assert_eq!(e.meta.mtime, Some(*mtime), "{p}: time");
        // And the new mount shows them.
        assert_eq!(stat_meta(&m.p(p)), (*mode, *uid, *gid, *mtime), "{p}");
    }
    assert_eq!(
        entry(&repo, "main", "link").unwrap().meta.mtime,
        Some(link_before.3),
        "link: time"
    );
    assert_eq!(content(&repo, "main", "rewritten.txt"), b"a\nb\n");
}

/// A file created while a commit is under way, then `kill -9` before the next commit: the
/// recovery commit holds that file and only it (the journal's marker says which records the
/// earlier commit held; resetting the journal after that commit would lose the file).
#[test]
fn kill_9_after_a_commit_that_overlapped_a_change_recovers_only_the_change() {
    const MB: usize = 1 << 20;
    let tmp = tempfile::Builder::new()
        .prefix("hero-fuse-marker-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let repo_path = tmp.path().join("store.hero");
    Repo::init(&repo_path).unwrap();
    let dir = tmp.path().join("mnt");
    fs::create_dir(&dir).unwrap();
    let mut mount = spawn_mount(&repo_path, &dir);
    let mut big = fs::File::create(dir.join("big.bin")).unwrap();
    let mut rng = fastrand::Rng::with_seed(0x2545_f491_4f6c_dd1d);
    let mut block = vec![0u8; MB];
    for _ in 0..64 {
        rng.fill(&mut block);
        big.write_all(&block).unwrap();
    }
    let rchar = |pid: u32| {
        let io = fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
        let line = io.lines().find(|l| l.starts_with("rchar:")).unwrap();
        line["rchar:".len()..].trim().parse::<u64>().unwrap()
    };
    let start = rchar(mount.id());
    let fsync = std::thread::spawn(move || big.sync_all());
    // The mount process reads big.bin into the store: the commit is under way.
    let deadline = Instant::now() + Duration::from_secs(120);
    while rchar(mount.id()) < start + 8 * MB as u64 {
        assert!(
            !fsync.is_finished(),
            "the commit was over before it was seen"
        );
        assert!(Instant::now() < deadline, "the commit never read big.bin");
        std::thread::sleep(Duration::from_millis(2));
    }
    fs::write(dir.join("during.txt"), b"made during the commit\n").unwrap();
    assert!(
        !fsync.is_finished(),
        "during.txt was not made during the commit"
    );
    fsync.join().unwrap().unwrap();
    let repo = Repo::open(&repo_path).unwrap();
    assert_eq!(commits(&repo, "main").len(), 1);
    assert!(entry(&repo, "main", "during.txt").is_none());
    drop(repo);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(mount.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    mount.wait().unwrap();
    let _ = Command::new("fusermount3").arg("-u").arg(&dir).status();

    let m = Mounted::reuse(tmp, |_| {});
    let repo = Repo::open(&m.repo).unwrap();
    let log = commits(&repo, "main");
    assert_eq!(log.len(), 2);
    let c = repo.commit(&log[0]).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&c.message),
        "mount: recovery of 1 changes not committed before the mount ended\n"
    );
    assert_eq!(
        content(&repo, "main", "during.txt"),
        b"made during the commit\n"
    );
    assert_eq!(
        entry(&repo, "main", "big.bin").unwrap().size,
        64 * MB as u64
    );
}

/// Unmounted from outside with `unmount_cmd`: the session ends, what was pending is
/// committed without anyone asking, and the handle then unmounts cleanly and removes its
/// spill directory.
fn unmounted_from_outside_commits_pending(unmount_cmd: &[&str]) {
    let mut m = Mounted::with(|o| {
        o.idle_commit = Duration::from_secs(3600);
        o.max_commit_delay = Duration::from_secs(3600);
    });
    fs::write(m.p("pending.txt"), b"not committed yet\n").unwrap();
    let repo = Repo::open(&m.repo).unwrap();
    assert!(entry(&repo, "main", "pending.txt").is_none());
    let ended = m.handle.as_ref().unwrap().ended();
    assert!(!ended.is_ended());
    let st = Command::new(unmount_cmd[0])
        .args(&unmount_cmd[1..])
        .arg(&m.dir)
        .status()
        .unwrap();
    assert!(st.success(), "{unmount_cmd:?}");
    assert!(
        ended.wait_timeout(Duration::from_secs(15)),
        "the session did not end"
    );
    eventually("the pending file committed", || {
        entry(&repo, "main", "pending.txt").is_some()
    });
    assert_eq!(
        content(&repo, "main", "pending.txt"),
        b"not committed yet\n"
    );
    let spill = m.repo.with_extension("hero.spill");
    m.handle.take().unwrap().unmount().unwrap();
    assert!(!spill.exists(), "spill directory left behind");
}

#[test]
fn unmounted_with_umount_the_session_ends_and_pending_writes_are_committed() {
    unmounted_from_outside_commits_pending(&["umount"]);
}

#[test]
fn unmounted_with_fusermount3_the_session_ends_and_pending_writes_are_committed() {
    unmounted_from_outside_commits_pending(&["fusermount3", "-u"]);
}

/// Hard links, FIFOs and device nodes made before a `kill -9` come back from the journal:
/// every name of a linked file with its content and one link group, the special files as
/// what they are, an access time set with `touch -a`.
#[test]
fn kill_9_then_recovery_keeps_hard_links_and_special_files() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let repo_path = tmp.path().join("store.hero");
    Repo::init(&repo_path).unwrap();
    let dir = tmp.path().join("mnt");
    fs::create_dir(&dir).unwrap();
    let mut mount = spawn_mount(&repo_path, &dir);
    sh(
        tmp.path(),
        "cd mnt && mkdir x y && echo one > x/a && ln x/a y/b && echo two >> y/b && \
         mkfifo pipe && mknod null c 1 3 && touch -a -d '2001-09-09 01:46:40 UTC' x/a",
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(mount.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    mount.wait().unwrap();
    let _ = Command::new("fusermount3").arg("-u").arg(&dir).status();

    let m = Mounted::reuse(tmp, |_| {});
    let repo = Repo::open(&m.repo).unwrap();
    let (a, b) = (
        entry(&repo, "main", "x/a").unwrap(),
        entry(&repo, "main", "y/b").unwrap(),
    );
    assert_eq!(content(&repo, "main", "x/a"), b"one\ntwo\n");
    assert!(a.meta.link.is_some());
    assert_eq!((a.id, a.meta), (b.id, b.meta));
    assert_eq!(a.meta.atime.map(|t| t.secs), Some(1_000_000_000));
    assert_eq!(
        entry(&repo, "main", "pipe").unwrap().kind,
        hero_store::EntryKind::Fifo
    );
    let null = entry(&repo, "main", "null").unwrap();
    assert_eq!(null.kind, hero_store::EntryKind::CharDevice);
    assert_eq!(null.meta.rdev, Some(nix::sys::stat::makedev(1, 3)));
    // And the new mount shows one inode with two names.
    let (sa, sb) = (
        fs::metadata(m.p("x/a")).unwrap(),
        fs::metadata(m.p("y/b")).unwrap(),
    );
    assert_eq!((sa.ino(), sa.nlink()), (sb.ino(), 2));
}
