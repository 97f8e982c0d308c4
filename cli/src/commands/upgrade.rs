//! `heroctl upgrade`: convert the repository to this format in place.

use crate::output::{bytes, count, outln, print_json};
use anyhow::{Context, Result};
use hero_store::Repo;
use serde_json::json;

pub fn run(mut repo: Repo, json: bool) -> Result<()> {
    let path = repo.path().to_path_buf();
    let r = repo
        .upgrade()
        .with_context(|| format!("upgrading {}", path.display()))?;
    if json {
        return print_json(&json!({
            "from": r.from,
            "to": r.to,
            "records_converted": r.records_converted,
            "records_packed": r.records_packed,
            "file_bytes_before": r.file_bytes_before,
            "file_bytes_after": r.file_bytes_after,
        }));
    }
    if r.from == r.to {
        outln!("already format {}", r.to)?;
    } else {
        outln!(
            "upgraded from format {} to {}: {} records moved into pieces, {} packed into \
             segments",
            r.from,
            r.to,
            count(r.records_converted),
            count(r.records_packed)
        )?;
    }
    outln!(
        "repository file: {} -> {}",
        bytes(r.file_bytes_before),
        bytes(r.file_bytes_after)
    )?;
    Ok(())
}
