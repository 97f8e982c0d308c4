//! A damaged repository file: every command gives the right answer or exits 5 naming
//! `heroctl repair`; `heroctl repair` rebuilds the repository from what still verifies, keeps
//! the damaged file aside, reports what was lost, and fetches it from a peer with `--from`.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::cli::{ok, run};

/// Read commands and their arguments, run on every damaged copy.
const COMMANDS: &[&[&str]] = &[
    &["log"],
    &["cat", "main:a.txt"],
    &["ls", "main", "d"],
    &["cat", "v1:d/big.bin"],
    &["verify"],
];

/// Deterministic bytes zstd cannot shrink (xorshift).
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A repository with two commits on main, a branch, a tag, a small file and a large one.
fn sample(dir: &Path) -> (PathBuf, Vec<u8>) {
    let repo = dir.join("r.hero");
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("a.txt"), "hello\n").unwrap();
    let big = noise(48 << 10, 7);
    std::fs::write(src.join("d/big.bin"), &big).unwrap();
    std::fs::write(src.join("d/small.txt"), "small\n").unwrap();
    ok(&repo, &["init"]);
    ok(&repo, &["commit", src.to_str().unwrap(), "-m", "one"]);
    ok(&repo, &["tag", "v1"]);
    std::fs::write(src.join("a.txt"), "hello again\n").unwrap();
    ok(&repo, &["commit", src.to_str().unwrap(), "-m", "two"]);
    ok(&repo, &["branch", "dev"]);
    (repo, big)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Offsets to damage: every 67th byte of the first page (redb's header and both commit
/// slots), and two places on every later page (table pages, object records, pieces), spread
/// so that each page is hit at other positions.
fn offsets(len: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..4096.min(len)).step_by(67).collect();
    for page in 1..len / 4096 {
        for k in 0..2 {
            v.push(page * 4096 + (page * 389 + k * 1531 + 11) % 4096);
        }
    }
    v
}

fn damaged(dir: &Path, bytes: &[u8], off: usize) -> PathBuf {
    let mut d = bytes.to_vec();
    d[off] ^= 0x55;
    let p = dir.join(format!("f{off}.hero"));
    std::fs::write(&p, d).unwrap();
    p
}

/// What a command did on a damaged copy, or why that is wrong.
fn judge(o: &Output, expected: &[u8]) -> Result<bool, String> {
    match o.status.code() {
        Some(0) if o.stdout == expected => Ok(true),
        Some(0) => Err(format!(
            "exit 0 with a wrong answer: {:?}",
            String::from_utf8_lossy(&o.stdout)
        )),
        Some(5) if stderr(o).contains("heroctl repair") => Ok(false),
        code => Err(format!("exit {code:?}: {}", stderr(o))),
    }
}

#[test]
fn every_damaged_byte_gives_the_right_answer_or_exit_5_naming_repair() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, _) = sample(tmp.path());
    let expected: Vec<Vec<u8>> = COMMANDS
        .iter()
        .map(|c| {
            let o = run(&repo, c);
            assert!(o.status.success(), "{c:?}: {}", stderr(&o));
            o.stdout
        })
        .collect();
    let bytes = std::fs::read(&repo).unwrap();
    let offs = offsets(bytes.len());
    assert!(offs.len() > 60, "{} offsets", offs.len());
    let results = std::sync::Mutex::new((Vec::new(), 0usize, 0usize));
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&off) = offs.get(i) else { break };
                    let copy = damaged(tmp.path(), &bytes, off);
                    for (c, want) in COMMANDS.iter().zip(&expected) {
                        let o = run(&copy, c);
                        let mut r = results.lock().unwrap();
                        match judge(&o, want) {
                            Ok(true) => r.1 += 1,
                            Ok(false) => r.2 += 1,
                            Err(e) => r.0.push(format!("byte {off}, {c:?}: {e}")),
                        }
                    }
                    std::fs::remove_file(&copy).unwrap();
                }
            });
        }
    });
    let (failures, right, refused) = results.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The spread reaches damage that matters and damage that does not.
    assert!(right > 0 && refused > 0, "{right} right, {refused} exit 5");
    eprintln!(
        "{} offsets of {} bytes: {right} right answers, {refused} exit 5 with the hint",
        offs.len(),
        bytes.len()
    );
}

#[test]
fn repair_never_answers_wrong_and_keeps_every_damaged_file_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, _) = sample(tmp.path());
    let expected: Vec<Vec<u8>> = COMMANDS.iter().map(|c| run(&repo, c).stdout).collect();
    let bytes = std::fs::read(&repo).unwrap();
    let offs: Vec<usize> = offsets(bytes.len()).into_iter().step_by(3).collect();
    let failures = std::sync::Mutex::new(Vec::new());
    let whole = std::sync::atomic::AtomicUsize::new(0);
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&off) = offs.get(i) else { break };
                    let dir = tmp.path().join(format!("r{off}"));
                    std::fs::create_dir(&dir).unwrap();
                    let copy = damaged(&dir, &bytes, off);
                    let d = std::fs::read(&copy).unwrap();
                    let fail =
                        |m: String| failures.lock().unwrap().push(format!("byte {off}: {m}"));
                    let o = run(&copy, &["--json", "repair"]);
                    if !matches!(o.status.code(), Some(0 | 5)) {
                        fail(format!("repair exit {:?}: {}", o.status.code(), stderr(&o)));
                        continue;
                    }
                    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
                    let kept = PathBuf::from(v["damaged_kept_as"].as_str().unwrap());
                    if std::fs::read(&kept).unwrap() != d {
                        fail("the damaged file was not kept as it was".to_owned());
                    }
                    if v["nothing_lost"] == true {
                        whole.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    for (c, want) in COMMANDS.iter().zip(&expected) {
                        let o = run(&copy, c);
                        let lost = v["nothing_lost"] == false;
                        match o.status.code() {
                            Some(0) if &o.stdout == want => {}
                            // `verify` counts what is there, which is less when something was.
                            Some(0) if c[0] == "verify" && lost => {}
                            Some(0) => fail(format!(
                                "{c:?} after repair: wrong answer {:?} ({v})",
                                String::from_utf8_lossy(&o.stdout)
                            )),
                            // What was lost: named refs are gone (3) or objects (5).
                            Some(3 | 5) if v["nothing_lost"] == false => {}
                            code => fail(format!(
                                "{c:?} after repair: exit {code:?}: {} ({v})",
                                stderr(&o)
                            )),
                        }
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(whole.into_inner() > 0);
}

/// The offset of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("the content is stored as it is")
}

#[test]
fn repair_reports_the_file_a_damaged_byte_destroyed_and_the_rest_works() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, big) = sample(tmp.path());
    let mut bytes = std::fs::read(&repo).unwrap();
    let at = find(&bytes, &big[30000..30064]);
    bytes[at + 7] ^= 0x55;
    std::fs::write(&repo, &bytes).unwrap();

    let o = run(&repo, &["cat", "main:d/big.bin"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("heroctl repair"), "{}", stderr(&o));

    // Every command opening the file may write redb's header; the file is kept as repair
    // found it.
    let bytes = std::fs::read(&repo).unwrap();
    let o = run(&repo, &["--json", "repair"]);
    assert_eq!(
        o.status.code(),
        Some(5),
        "something was lost: {}",
        stderr(&o)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_ne!(v["opened"], "unopenable", "{v}");
    assert_eq!(v["nothing_lost"], false);
    assert_eq!(v["objects_dropped"].as_array().unwrap().len(), 1, "{v}");
    assert!(!v["objects_missing"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(v["refs_kept"], 4, "{v}"); // main, dev, v1, the membership branch
    assert_eq!(v["commits_lost"].as_array().unwrap().len(), 0, "{v}");
    let kept = PathBuf::from(v["damaged_kept_as"].as_str().unwrap());
    assert!(std::fs::read(kept).unwrap() == bytes);

    // What did not depend on the lost object works; the lost file says so.
    assert_eq!(ok(&repo, &["cat", "main:a.txt"]), "hello again\n");
    assert_eq!(ok(&repo, &["cat", "main:d/small.txt"]), "small\n");
    let o = run(&repo, &["cat", "main:d/big.bin"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let o = run(&repo, &["verify"]);
    assert_eq!(o.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&o.stdout).contains("missing object"));
    // The repaired repository takes new commits.
    let src = tmp.path().join("src");
    std::fs::write(src.join("a.txt"), "after the repair\n").unwrap();
    ok(&repo, &["commit", src.to_str().unwrap(), "-m", "three"]);
    assert_eq!(ok(&repo, &["cat", "main:a.txt"]), "after the repair\n");
}

#[test]
fn repair_from_a_peer_fetches_what_was_lost() {
    use crate::sync::{head, id, json, ok as sok, run as srun, serve};
    let tmp = tempfile::tempdir().unwrap();
    let (a, big) = sample(tmp.path());
    let b = tmp.path().join("b.hero");
    let sa = serve(&a, None);
    sok(&a, &["allow", "add", &id(&b)]);
    json(&b, &["clone", &sa.ticket]);
    let mut bytes = std::fs::read(&b).unwrap();
    let at = find(&bytes, &big[20000..20064]);
    bytes[at + 3] ^= 0x55;
    std::fs::write(&b, &bytes).unwrap();
    assert_eq!(srun(&b, &["cat", "main:d/big.bin"]).status.code(), Some(5));

    let v = json(&b, &["repair", "--from", "origin"]);
    assert_eq!(v["nothing_lost"], false, "{v}");
    assert_eq!(v["fetched"]["still_lost"], serde_json::json!([]), "{v}");
    assert!(v["fetched"]["bytes_in"].as_u64().unwrap() > 40_000, "{v}");
    let o = srun(&b, &["cat", "main:d/big.bin"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout == big);
    assert!(srun(&b, &["verify"]).status.success());
    assert_eq!(head(&b, "main"), head(&a, "main"));
    assert_eq!(head(&b, "dev"), head(&a, "dev"));
    assert_eq!(sok(&b, &["cat", "v1:a.txt"]), "hello\n");
}

#[test]
fn a_damaged_commit_slot_is_found_by_its_checksum_and_nothing_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, _) = sample(tmp.path());
    let bytes = std::fs::read(&repo).unwrap();
    let dev = ok(&repo, &["log", "dev"]);
    // redb's two commit slots: 128 bytes each from byte 64, the one in use and the one before.
    for off in (64..320).step_by(9) {
        let dir = tmp.path().join(format!("s{off}"));
        std::fs::create_dir(&dir).unwrap();
        let copy = damaged(&dir, &bytes, off);
        let o = run(&copy, &["cat", "main:a.txt"]);
        assert!(
            judge(&o, b"hello again\n").is_ok(),
            "byte {off}: {}",
            stderr(&o)
        );
        let o = run(&copy, &["--json", "repair"]);
        assert_eq!(o.status.code(), Some(0), "byte {off}: {}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["opened"], "checked", "byte {off}: {v}");
        assert_eq!(v["nothing_lost"], true, "byte {off}: {v}");
        assert_eq!(
            ok(&copy, &["cat", "main:a.txt"]),
            "hello again\n",
            "byte {off}"
        );
        assert_eq!(ok(&copy, &["log", "dev"]), dev, "byte {off}");
    }
}

#[test]
fn a_damaged_byte_in_a_ref_name_is_damage_not_a_missing_branch() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, _) = sample(tmp.path());
    let bytes = std::fs::read(&repo).unwrap();
    let want = ok(&repo, &["log", "dev"]);
    let name = b"refs/heads/dev";
    let places: Vec<usize> = bytes
        .windows(name.len())
        .enumerate()
        .filter(|(_, w)| w == name)
        .map(|(i, _)| i)
        .collect();
    // The ref table's key and the reflog's.
    assert!(places.len() >= 2, "{places:?}");
    for at in places {
        let copy = damaged(tmp.path(), &bytes, at + name.len() - 1);
        let o = run(&copy, &["log", "dev"]);
        assert!(
            judge(&o, want.as_bytes()).is_ok(),
            "byte {at}: exit {:?}: {}",
            o.status.code(),
            stderr(&o)
        );
        // After the repair: still right, or still exit 5; the report names both names.
        let v: Value = serde_json::from_slice(&run(&copy, &["--json", "repair"]).stdout).unwrap();
        assert_eq!(v["refs_ambiguous"].as_array().unwrap().len(), 1, "{v}");
        let o = run(&copy, &["log", "dev"]);
        assert!(
            judge(&o, want.as_bytes()).is_ok(),
            "byte {at} after repair: exit {:?}: {} ({v})",
            o.status.code(),
            stderr(&o)
        );
        std::fs::remove_file(&copy).unwrap();
    }
}
