//! `heroctl init [PATH]`: create a repository, this node its first owner.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::json;

use crate::context::{create_repo, host_name, repo_path};
use crate::output::{outln, print_json};

/// Creates the repository at `path` (else the one `-R`, `HERO_REPO` or the default names).
pub fn run(cli_repo: &Option<PathBuf>, path: Option<PathBuf>, json: bool) -> Result<()> {
    let path = match path {
        Some(p) => p,
        None => repo_path(cli_repo)?,
    };
    let repo = create_repo(&path)?;
    // The node that creates the repository is its first owner (ADR 0017, 0018).
    let key = hero_sync::load_or_create_key(&path)?;
    let m = hero_sync::membership::init(&repo, &key, &host_name(), hero_sync::audit::now_ms())
        .with_context(|| format!("starting the membership of {}", path.display()))?;
    hero_sync::audit::record(
        &repo,
        hero_sync::audit::Entry::new(
            Some(&key.public()),
            "membership",
            hero_sync::audit::Decision::Accepted,
            "genesis: this node is the first owner",
        ),
    );
    if json {
        print_json(&json!({
            "repository": path,
            "owner": key.public().to_string(),
            "genesis": m.genesis().map(|g| g.to_string()),
        }))?;
    } else {
        outln!("Initialized empty hero store in {}", path.display())?;
    }
    Ok(())
}
