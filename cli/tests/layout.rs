//! The repository file's format: `heroctl upgrade` of a format-1 repository, and `kill -9` in
//! the middle of it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use hero_store::{ObjectId, Repo};

use crate::cli::{heroctl, ok};
use hero_tests::noise;

/// The format-1 fixture of hero-store, copied into `dir`.
pub(crate) fn fixture(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../store/tests/fixtures/format1.hero");
    let dst = dir.join("format1.hero");
    std::fs::copy(&src, &dst).unwrap();
    dst
}

/// Adds `n` large blobs to a format-1 repository the way format 1 stores them (one plain record
/// per object in `objects-1`: type 1, encoding 0, varint length, bytes), with redb itself.
pub(crate) fn add_format1_blobs(path: &Path, n: u64, len: usize) -> Vec<ObjectId> {
    let objects: redb::TableDefinition<&[u8; 32], &[u8]> = redb::TableDefinition::new("objects-1");
    let mut b = redb::Database::builder();
    b.set_concurrency_mode(redb::ConcurrencyMode::MultiWriter);
    let db = b.open(path).unwrap();
    let txn = db.begin_write().unwrap();
    let mut ids = Vec::new();
    {
        let mut t = txn.open_table(objects).unwrap();
        for i in 0..n {
            let data = noise(1000 + i, len);
            let mut rec = vec![1u8, 0];
            let mut v = data.len() as u64;
            while v >= 0x80 {
                rec.push((v as u8) | 0x80);
                v >>= 7;
            }
            rec.push(v as u8);
            rec.extend_from_slice(&data);
            let id = ObjectId::of(&data);
            t.insert(&id.0, rec.as_slice()).unwrap();
            ids.push(id);
        }
    }
    txn.commit().unwrap();
    ids
}

/// Bytes a process has read and written through system calls (`rchar`, `wchar`).
fn io_of(child: &Child) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{}/io", child.id())).ok()?;
    let field = |name: &str| -> Option<u64> {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    Some((field("rchar:")?, field("wchar:")?))
}

/// Runs `heroctl -R path args` and kills it (SIGKILL) once it has read `read` and written
/// `written` bytes, unless it ends first; its exit status.
fn killed_once_it_did_io(path: &Path, args: &[&str], read: u64, written: u64) -> ExitStatus {
    let mut child = Command::new(heroctl())
        .arg("-R")
        .arg(path)
        .args(args)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if let Some((r, w)) = io_of(&child)
            && r >= read
            && w >= written
        {
            child.kill().unwrap();
            break;
        }
        assert!(
            Instant::now() < deadline,
            "heroctl {args:?} neither ran nor ended"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    child.wait().unwrap()
}

/// The repository opens, verifies, holds everything the fixture and the added blobs hold, and
/// is at format 1 or 4 (never anything in between). Returns the format.
fn check_whole(path: &Path, head: ObjectId, blobs: &[ObjectId]) -> u32 {
    let repo = Repo::open(path).unwrap();
    let format = repo.format().unwrap();
    assert!(format == 1 || format == 4, "format {format}");
    let report = repo.verify(None).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.objects, 27 + blobs.len() as u64);
    assert_eq!(repo.branch_head("main").unwrap(), Some(head));
    assert_eq!(repo.tags().unwrap().len(), 2);
    let v = repo.view().unwrap();
    for id in blobs.iter().step_by(37) {
        assert!(v.read_file(id, u64::MAX).is_ok());
    }
    format
}

#[test]
fn heroctl_upgrade_converts_a_format_1_repository_and_reports_it() {
    let tmp = tempfile::tempdir().unwrap();
    let path = fixture(tmp.path());
    let out = ok(&path, &["--json", "upgrade"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["from"], 1);
    assert_eq!(v["to"], 4);
    assert!(v["records_converted"].as_u64().unwrap() >= 1, "{v}");
    let out = ok(&path, &["upgrade"]);
    assert!(out.contains("already format 4"), "{out}");
    let out = ok(&path, &["verify"]);
    assert!(out.starts_with("ok: 27 objects"), "{out}");
}

/// `kill -9` at several points of `heroctl upgrade` (reading the old records, writing the new
/// layout, compacting): every time the repository opens and verifies with all its content, at
/// format 1 (nothing of the upgrade landed) or 4 (all of it did); a later upgrade finishes.
#[test]
fn kill_9_during_upgrade_leaves_the_old_or_the_new_repository_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let path = fixture(tmp.path());
    let head = Repo::open(&path)
        .unwrap()
        .branch_head("main")
        .unwrap()
        .unwrap();
    let blobs = add_format1_blobs(&path, 300, 100_000);
    let data = 300 * 100_000u64;
    assert_eq!(check_whole(&path, head, &blobs), 1);

    let mut killed_at_1 = 0;
    // When to kill: after reading a third of the records, after reading them all, and once it
    // has written as much as it read (committing or compacting).
    let points: [(u64, u64); 3] = [(data / 3, 0), (data, 0), (0, data)];
    for (read, written) in points {
        let status = killed_once_it_did_io(&path, &["upgrade"], read, written);
        let format = check_whole(&path, head, &blobs);
        if !status.success() && format == 1 {
            killed_at_1 += 1;
        }
        if format == 4 {
            break;
        }
    }
    assert!(
        killed_at_1 >= 1,
        "at least one kill landed before the upgrade committed"
    );
    ok(&path, &["upgrade"]);
    assert_eq!(check_whole(&path, head, &blobs), 4);
}

/// A repository of this build's format: the fixture upgraded, plus `n` orphan blobs of `len` random bytes
/// (what an interrupted large commit leaves). Returns the main head and the orphans.
pub(crate) fn with_orphans(dir: &Path, n: u64, len: usize) -> (PathBuf, ObjectId, Vec<ObjectId>) {
    let path = fixture(dir);
    let mut repo = Repo::open(&path).unwrap();
    repo.upgrade().unwrap();
    let head = repo.branch_head("main").unwrap().unwrap();
    let orphans = repo
        .batch(|b| {
            (0..n)
                .map(|i| b.put_blob(&noise(5000 + i, len), None))
                .collect::<hero_store::Result<Vec<_>>>()
        })
        .unwrap();
    (path, head, orphans)
}

#[test]
fn heroctl_gc_dry_run_then_gc_removes_orphans() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, head, orphans) = with_orphans(tmp.path(), 20, 50_000);
    let v: serde_json::Value =
        serde_json::from_str(&ok(&path, &["--json", "gc", "--dry-run", "--grace", "0"])).unwrap();
    assert_eq!(v["removed"], 20, "{v}");
    assert_eq!(v["reachable"], 27, "{v}");
    assert!(Repo::open(&path).unwrap().has_object(&orphans[0]).unwrap());
    // With the default grace period they are only listed.
    let v: serde_json::Value = serde_json::from_str(&ok(&path, &["--json", "gc"])).unwrap();
    assert_eq!(
        (v["removed"].as_u64(), v["listed"].as_u64()),
        (Some(0), Some(20)),
        "{v}"
    );
    let out = ok(&path, &["gc", "--grace", "0"]);
    assert!(out.starts_with("removed 20 unreachable objects"), "{out}");
    let repo = Repo::open(&path).unwrap();
    assert!(!repo.has_object(&orphans[0]).unwrap());
    assert_eq!(repo.branch_head("main").unwrap(), Some(head));
    assert!(repo.verify(None).unwrap().is_ok());
}

/// `kill -9` during `heroctl gc` (marking, removing, compacting): the repository opens and
/// verifies with everything the refs reach, the orphans either all there or all gone, and no
/// file is left beside it; a later gc finishes.
#[test]
fn kill_9_during_gc_leaves_a_whole_repository_and_nothing_beside_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, head, orphans) = with_orphans(tmp.path(), 300, 100_000);
    let data = 300 * 100_000u64;
    let mut killed = 0;
    for (read, written) in [(data / 4, 0), (data, 0), (0, data / 4)] {
        if !killed_once_it_did_io(&path, &["gc", "--grace", "0"], read, written).success() {
            killed += 1;
        }
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["format1.hero"], "nothing beside the repository");
        let repo = Repo::open(&path).unwrap();
        let report = repo.verify(None).unwrap();
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(repo.branch_head("main").unwrap(), Some(head));
        let left = orphans
            .iter()
            .filter(|id| repo.has_object(id).unwrap())
            .count();
        assert!(left == 0 || left == orphans.len(), "{left} orphans left");
        assert_eq!(report.objects, 27 + left as u64);
        if left == 0 {
            break;
        }
    }
    assert!(killed >= 1, "at least one kill landed during a gc");
    ok(&path, &["gc", "--grace", "0"]);
    let repo = Repo::open(&path).unwrap();
    assert!(!repo.has_object(&orphans[0]).unwrap());
    assert!(repo.verify(None).unwrap().is_ok());
}
