//! `heroctl verify`: recompute every hash and name what is damaged.

use crate::context::bar_callback;
use crate::error::Kind;
use crate::output::{bytes, count, outln, print_json, progress_bar};
use anyhow::Result;
use hero_store::{Repo, RepoPath};
use serde_json::json;
use std::process::ExitCode;

pub fn run(repo: &Repo, json: bool) -> Result<ExitCode> {
    let bar = progress_bar(json, "verify");
    let cb = bar_callback(&bar, "verify");
    let report = repo.verify(Some(&cb))?;
    bar.finish_and_clear();
    if json {
        let corrupt: Vec<_> = report
            .corrupt
            .iter()
            .map(|c| json!({
                "id": c.id.to_hex(),
                "reason": c.reason,
                "used_by": c.used_by.iter().map(|(commit, p)| json!({"commit": commit.to_hex(), "path": p.to_string()})).collect::<Vec<_>>(),
            }))
            .collect();
        let missing: Vec<_> = report
            .missing
            .iter()
            .map(|(id, p)| json!({"id": id.to_hex(), "path": p.to_string()}))
            .collect();
        print_json(
            &json!({"ok": report.is_ok(), "objects": report.objects, "bytes": report.bytes, "corrupt": corrupt, "missing": missing}),
        )?;
    } else {
        for c in &report.corrupt {
            outln!("corrupt object {}: {}", c.id, c.reason)?;
            for (commit, p) in &c.used_by {
                outln!(
                    "    used by {} in commit {}",
                    display_path(p),
                    commit.short()
                )?;
            }
        }
        for (id, p) in &report.missing {
            outln!("missing object {id} (at {})", display_path(p))?;
        }
        if report.is_ok() {
            outln!(
                "ok: {} objects, {} verified",
                count(report.objects),
                bytes(report.bytes)
            )?;
        } else {
            outln!(
                "FAILED: {} corrupt and {} missing objects out of {}",
                count(report.corrupt.len() as u64),
                count(report.missing.len() as u64),
                count(report.objects)
            )?;
        }
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        eprintln!("hint: {}", crate::error::REPAIR);
        ExitCode::from(Kind::Corrupt.exit_code())
    })
}

fn display_path(p: &RepoPath) -> String {
    if p.is_root() {
        "/".to_owned()
    } else {
        p.to_string()
    }
}
