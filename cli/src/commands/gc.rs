//! `heroctl gc`: remove what nothing reaches, after a grace period.

use crate::context::parse_grace;
use crate::output::{bytes, count, outln, print_json};
use anyhow::{Context, Result};
use clap::Args;
use hero_store::Repo;
use serde_json::json;

/// `heroctl gc`.
#[derive(Args, Debug)]
pub struct GcArgs {
    /// Say what would be removed; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Reflog entries younger than this keep what they reach, and an object found unreachable
    /// is removed only by a collection at least this much later: a number with s, m, h or d
    /// (`0` removes at once: only when nothing else writes to the repository).
    #[arg(long, default_value = "14d", value_parser = parse_grace)]
    grace: u64,
}

pub fn run(mut repo: Repo, a: GcArgs, json: bool) -> Result<()> {
    let path = repo.path().to_path_buf();
    let r = repo
        .gc(a.grace, a.dry_run)
        .with_context(|| format!("collecting garbage in {}", path.display()))?;
    if json {
        return print_json(&json!({
            "dry_run": a.dry_run,
            "reachable": r.reachable,
            "removed": r.removed,
            "removed_bytes": r.removed_bytes,
            "listed": r.listed,
            "file_bytes_before": r.file_bytes_before,
            "file_bytes_after": r.file_bytes_after,
        }));
    }
    let verb = if a.dry_run { "would remove" } else { "removed" };
    outln!(
        "{verb} {} unreachable objects ({}); {} reachable; {} unreachable kept until their grace period ends",
        count(r.removed),
        bytes(r.removed_bytes),
        count(r.reachable),
        count(r.listed)
    )?;
    if !a.dry_run {
        outln!(
            "repository file: {} -> {}",
            bytes(r.file_bytes_before),
            bytes(r.file_bytes_after)
        )?;
    }
    Ok(())
}
