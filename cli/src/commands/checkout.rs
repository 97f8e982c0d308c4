//! `heroctl checkout REV DIR`: write a revision into a directory.

use crate::context::bar_callback;
use crate::output::{bytes, count, outln, print_json, progress_bar};
use anyhow::{Context, Result};
use clap::Args;
use hero_store::{CheckoutOptions, Repo};
use serde_json::json;
use std::path::PathBuf;

/// Arguments of `checkout`.
#[derive(Args, Debug)]
pub struct CheckoutArgs {
    /// The revision (branch, tag, id).
    pub rev: String,
    /// The directory to write (created if missing; must be empty unless --force).
    pub dir: PathBuf,
    /// Write into a non-empty directory, overwriting files the revision holds.
    #[arg(long)]
    pub force: bool,
}

pub fn run(repo: &Repo, a: CheckoutArgs, json: bool) -> Result<()> {
    let id = repo.resolve(&a.rev)?;
    let bar = progress_bar(json, "checkout");
    let cb = bar_callback(&bar, "checkout");
    let opts = CheckoutOptions {
        force: a.force,
        progress: Some(&cb),
    };
    let r = repo
        .checkout(&id, &a.dir, &opts)
        .with_context(|| format!("checking out {} into {}", a.rev, a.dir.display()))?;
    crate::commands::workdir::remember_checkout(repo, &a.rev, id, &a.dir)?;
    bar.finish_and_clear();
    let skipped: Vec<String> = r.skipped_unsafe.iter().map(|p| p.to_string()).collect();
    if json {
        print_json(&json!({
            "commit": id.to_hex(),
            "files": r.files,
            "dirs": r.dirs,
            "bytes": r.bytes,
            "skipped_unsafe": skipped,
        }))?;
    } else {
        outln!(
            "checked out {} ({}) into {}: {} files, {} directories, {}",
            a.rev,
            id.short(),
            a.dir.display(),
            count(r.files),
            count(r.dirs),
            bytes(r.bytes)
        )?;
        for p in &skipped {
            outln!("not written (git would take it for its .git directory): {p}")?;
        }
    }
    Ok(())
}
