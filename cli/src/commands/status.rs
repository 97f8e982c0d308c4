//! `heroctl status [DIR]`: what changed in a directory against its revision.

use crate::output::print_json;
use anyhow::Result;
use clap::Args;
use hero_store::{Repo, StatusKind};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The revision to compare with (HEAD: what the directory was checked out or last
    /// committed as, else the default branch).
    #[arg(short, long, default_value = "HEAD")]
    pub rev: String,
}

pub fn run(repo: &Repo, a: StatusArgs, json: bool) -> Result<ExitCode> {
    // A checked-out directory compares with what it came from (the branch may have moved on:
    // others' changes are not local modifications).
    let record = match a.rev.as_str() {
        "HEAD" if a.dir.is_dir() => crate::commands::workdir::read_record(repo, &a.dir)?,
        _ => None,
    };
    let resolved = match &record {
        Some(r) => Ok(r.base),
        None => repo.resolve(&a.rev),
    };
    let commit = match resolved {
        Ok(id) => Some(id),
        Err(hero_store::Error::UnknownRevision(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let st = repo.status(&a.dir, commit)?;
    if json {
        let items: Vec<_> = st
            .iter()
            .map(|s| json!({"path": s.path.to_string(), "status": format!("{:?}", s.kind).to_lowercase()}))
            .collect();
        print_json(&json!({ "clean": st.is_empty(), "changes": items }))?;
    } else {
        let mut out = std::io::stdout().lock();
        for s in &st {
            let c = match s.kind {
                StatusKind::Added => 'A',
                StatusKind::Modified => 'M',
                // Same content; mode, owner or time differ.
                StatusKind::Metadata => 'm',
                StatusKind::Deleted => 'D',
            };
            writeln!(out, "{c} {}", s.path)?;
        }
        if st.is_empty() {
            writeln!(out, "clean: {} matches {}", a.dir.display(), a.rev)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
