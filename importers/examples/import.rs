//! Imports a git repository into a hero store (used by `benches/import.sh`).
//!
//! `cargo run --release -p hero-importers --example import -- <git-dir> <store> [--verify] [--stats] [--export <dir>]`

use std::path::PathBuf;
use std::time::Instant;

use hero_importers::{ExportOptions, ImportOptions, VerifyOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: import <git-dir> <store> [--verify] [--stats] [--export <dir>]");
        std::process::exit(2);
    }
    let git_dir = PathBuf::from(&args[0]);
    let store = PathBuf::from(&args[1]);
    let mut repo = hero_store::Repo::open_or_init(&store)?;
    let start = Instant::now();
    let opts = ImportOptions {
        progress: Some(Box::new(|p| {
            if p.commits_done % 1000 == 0 {
                eprintln!(
                    "  {} / {} commits",
                    p.commits_done,
                    p.commits_total.map_or("?".to_owned(), |t| t.to_string())
                );
            }
        })),
        ..ImportOptions::default()
    };
    let report = hero_importers::import_git(&repo, &git_dir, &opts)?;
    // As `heroctl import git` does: give the free pages the import left back.
    if report.commits > 0 {
        repo.compact()?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "imported commits={} trees={} blobs={} tags={} raw_kept={} batches={} seconds={secs:.3} commits_per_sec={:.0}",
        report.commits,
        report.trees,
        report.blobs,
        report.tags,
        report.raw_kept,
        report.batches,
        report.commits as f64 / secs.max(1e-9)
    );
    if args.iter().any(|a| a == "--stats") {
        let stats = repo.stats()?;
        let mapping: usize = repo
            .xrefs_with_prefix(b"git/")?
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum();
        println!(
            "store file_bytes={} stored_object_bytes={} delta_objects={} mapping_bytes={mapping}",
            stats.file_bytes, stats.stored_bytes, stats.delta_objects
        );
    }
    if args.iter().any(|a| a == "--verify") {
        let start = Instant::now();
        let v = hero_importers::verify_import(&repo, &git_dir, &VerifyOptions::default())?;
        println!(
            "verified commits={} trees={} files={} differences={} seconds={:.3}",
            v.commits,
            v.trees,
            v.files,
            v.differences.len(),
            start.elapsed().as_secs_f64()
        );
    }
    if let Some(i) = args.iter().position(|a| a == "--export") {
        let dir = args.get(i + 1).ok_or("--export needs a directory")?;
        let start = Instant::now();
        let r = hero_importers::export_git(&repo, dir.as_ref(), &ExportOptions::default())?;
        println!(
            "exported commits={} trees={} blobs={} original_ids={} pack_bytes={} deltas={} seconds={:.3}",
            r.commits,
            r.trees,
            r.blobs,
            r.original_ids,
            r.pack_bytes,
            r.deltas,
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
