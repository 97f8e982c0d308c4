//! Every fuzz target's checked-in corpus (`fuzz/seeds/<target>/`; the targets are in `fuzz/`,
//! for the daemon configuration in `cli/fuzz/`, for the structured-file parsers in
//! `formats/fuzz/`), replayed on stable Rust
//! through the check function the target runs (the crates' `fuzzing` modules): the targets'
//! regression test, cheap enough for every CI run. A crash the fuzzer finds is added to its
//! target's folder under a name saying what it pins, and stays here.

use std::path::{Path, PathBuf};

type Check = fn(&[u8]);

/// Every target of `fuzz/Cargo.toml` and its check.
const TARGETS: &[(&str, Check)] = &[
    ("store_record", hero_store::fuzzing::record),
    ("store_tree", hero_store::fuzzing::tree),
    ("store_commit", hero_store::fuzzing::commit),
    ("store_tag", hero_store::fuzzing::tag),
    ("store_manifest", hero_store::fuzzing::manifest),
    ("store_delta", hero_store::fuzzing::delta),
    ("sync_wire_frames", hero_sync::fuzzing::wire_frames),
    ("sync_wire_fields", hero_sync::fuzzing::wire_fields),
    ("sync_pack_entries", hero_sync::fuzzing::pack_entries),
    ("sync_refs_delta", hero_sync::fuzzing::refs_delta),
    ("sync_ticket", hero_sync::fuzzing::ticket),
    ("sync_invitation", hero_sync::fuzzing::invitation),
    ("sync_envelope", hero_sync::fuzzing::envelope),
    ("sync_membership_doc", hero_sync::fuzzing::membership_doc),
    ("sync_hello", hero_sync::fuzzing::hello),
    ("daemon_config", heroctl::fuzzing::daemon_config),
    ("formats_toml", hero_formats::fuzzing::toml),
    ("formats_markdown", hero_formats::fuzzing::markdown),
    ("formats_heroscript", hero_formats::fuzzing::heroscript),
    ("formats_query", hero_formats::fuzzing::query),
];

/// The parsers' targets (`formats/fuzz/`), seeded with real-shaped files by hand.
const FORMATS_TARGETS: &[&str] = &[
    "formats_toml",
    "formats_markdown",
    "formats_heroscript",
    "formats_query",
];

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds")
}

fn all_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut v = hero_store::fuzzing::seeds();
    v.extend(hero_sync::fuzzing::seeds());
    v.extend(heroctl::fuzzing::seeds());
    v
}

#[test]
fn every_fuzz_target_replays_its_checked_in_corpus() {
    // fuzz/'s targets, then cli/fuzz/'s.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut listed: Vec<String> = std::fs::read_to_string(root.join("../fuzz/targets.txt"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    listed.push("daemon_config".to_owned());
    listed.extend(FORMATS_TARGETS.iter().map(|t| (*t).to_owned()));
    let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(listed, names, "fuzz/targets.txt and this list differ");
    let cli_fuzz = std::fs::read_to_string(root.join("fuzz/Cargo.toml")).unwrap();
    assert!(cli_fuzz.contains("name = \"daemon_config\""));
    let formats_fuzz = std::fs::read_to_string(root.join("../formats/fuzz/Cargo.toml")).unwrap();
    for t in FORMATS_TARGETS {
        assert!(formats_fuzz.contains(&format!("name = \"{t}\"")), "{t}");
    }
    let mut replayed = 0;
    for (name, check) in TARGETS {
        let dir = seeds_dir().join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{name}: no corpus");
        for f in files {
            let data = std::fs::read(&f).unwrap();
            if std::panic::catch_unwind(|| check(&data)).is_err() {
                panic!("{name}: {} fails its check", f.display());
            }
            replayed += 1;
        }
    }
    eprintln!("{replayed} inputs of {} targets", TARGETS.len());
}

#[test]
fn the_seeds_made_by_the_encoders_pass_their_checks_and_are_checked_in() {
    for (name, data) in all_seeds() {
        let (_, check) = TARGETS.iter().find(|(n, _)| *n == name).unwrap();
        check(&data);
        let f = seeds_dir()
            .join(name)
            .join(format!("seed-{}", &blake3_hex(&data)[..16]));
        assert!(
            f.exists(),
            "{} is not checked in: run `HERO_WRITE_FUZZ_SEEDS=1 cargo test -p heroctl --test main fuzz_corpus`",
            f.display()
        );
    }
}

/// Writes the seeds the encoders make into `fuzz/seeds/` (run once after an encoding
/// changes; the test above then finds them).
#[test]
fn write_seeds_when_asked() {
    if std::env::var_os("HERO_WRITE_FUZZ_SEEDS").is_none() {
        return;
    }
    for (name, data) in all_seeds() {
        let dir = seeds_dir().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("seed-{}", &blake3_hex(&data)[..16])),
            &data,
        )
        .unwrap();
    }
}

fn blake3_hex(data: &[u8]) -> String {
    hero_store::ObjectId::of(data).to_hex()
}
