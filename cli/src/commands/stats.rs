//! `heroctl stats`: objects, sizes, dedupe and delta ratios, file usage.

use crate::output::{bytes, count, outln, print_json};
use anyhow::Result;
use hero_store::Repo;
use serde_json::json;

pub fn run(repo: &Repo, json: bool) -> Result<()> {
    let s = repo.stats()?;
    let f = repo.file_usage()?;
    if json {
        let objects: serde_json::Map<String, serde_json::Value> = s
            .objects
            .iter()
            .map(|(t, n)| (t.as_str().to_owned(), json!(n)))
            .collect();
        let stored_by_type: serde_json::Map<String, serde_json::Value> = s
            .stored_by_type
            .iter()
            .map(|(t, n)| (t.as_str().to_owned(), json!(n)))
            .collect();
        print_json(&json!({
            "objects": objects,
            "stored_by_type": stored_by_type,
            "delta_objects": s.delta_objects,
            "commits": s.commits,
            "history_bytes": s.history_bytes,
            "content_bytes": s.content_bytes,
            "chunk_bytes": s.chunk_bytes,
            "logical_bytes": s.logical_bytes,
            "stored_bytes": s.stored_bytes,
            "file_bytes": s.file_bytes,
            "dedupe_ratio": s.dedupe_ratio(),
            "compression_ratio": s.compression_ratio(),
            "total_ratio": s.total_ratio(),
            "file": file_usage_json(&f),
        }))?;
        return Ok(());
    }
    let total: u64 = s.objects.iter().map(|(_, n)| n).sum();
    outln!("objects:          {}", count(total))?;
    for (t, n) in &s.objects {
        outln!("  {:<16}{}", t.as_str(), count(*n))?;
    }
    outln!("  stored as delta {}", count(s.delta_objects))?;
    outln!("commits:          {}", count(s.commits))?;
    outln!(
        "history bytes:    {} (every commit as a full copy)",
        bytes(s.history_bytes)
    )?;
    outln!(
        "content bytes:    {} (distinct files)",
        bytes(s.content_bytes)
    )?;
    outln!("chunk bytes:      {} (after dedupe)", bytes(s.chunk_bytes))?;
    outln!(
        "logical bytes:    {} (all objects, raw)",
        bytes(s.logical_bytes)
    )?;
    outln!(
        "stored bytes:     {} (all objects, compressed and delta'd)",
        bytes(s.stored_bytes)
    )?;
    outln!("repository file:  {}", bytes(s.file_bytes))?;
    outln!("dedupe ratio:     {:.2}", s.dedupe_ratio())?;
    outln!("compression+delta ratio: {:.2}", s.compression_ratio())?;
    outln!("overall ratio:    {:.2}", s.total_ratio())?;
    outln!()?;
    print_file_usage(&f)?;
    Ok(())
}

fn file_usage_json(f: &hero_store::FileUsage) -> serde_json::Value {
    json!({
        "file_bytes": f.file_bytes,
        "disk_bytes": f.disk_bytes,
        "page_size": f.page_size,
        "allocated_pages": f.allocated_pages,
        "free_bytes": f.free_bytes,
        "tables": f.tables.iter().map(|t| json!({
            "name": t.name,
            "entries": t.entries,
            "key_bytes": t.key_bytes,
            "value_bytes": t.value_bytes,
            "leaf_pages": t.leaf_pages,
            "branch_pages": t.branch_pages,
            "stored_bytes": t.stored_bytes,
            "metadata_bytes": t.metadata_bytes,
            "fragmented_bytes": t.fragmented_bytes,
        })).collect::<Vec<_>>(),
    })
}

/// Where the file's bytes go, one line per table.
fn print_file_usage(f: &hero_store::FileUsage) -> Result<()> {
    outln!(
        "{:<10} {:>9} {:>11} {:>12} {:>8} {:>8} {:>12} {:>12}",
        "table",
        "entries",
        "key bytes",
        "value bytes",
        "leaves",
        "branches",
        "meta bytes",
        "unused bytes"
    )?;
    for t in &f.tables {
        outln!(
            "{:<10} {:>9} {:>11} {:>12} {:>8} {:>8} {:>12} {:>12}",
            t.name,
            t.entries,
            t.key_bytes,
            t.value_bytes,
            t.leaf_pages,
            t.branch_pages,
            t.metadata_bytes,
            t.fragmented_bytes
        )?;
    }
    outln!(
        "file: {} bytes ({} on disk), {} pages of {} bytes in use, {} bytes free",
        f.file_bytes,
        f.disk_bytes,
        f.allocated_pages,
        f.page_size,
        f.free_bytes
    )?;
    Ok(())
}
