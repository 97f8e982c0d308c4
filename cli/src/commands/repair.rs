//! `heroctl repair [--from PEER|TICKET]`: rebuild a damaged repository from what still
//! verifies, say what was lost, and fetch it from a peer.

use crate::context::{NetArgs, repo_path};
use crate::output::{count, outln, print_json};
use anyhow::{Context, Result};
use clap::Args;
use hero_store::repair::{Opened, RepairReport};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `repair`.
#[derive(Args, Debug)]
pub struct RepairArgs {
    /// Fetch what was lost from this peer (a saved remote's name or a ticket) once the
    /// repository is rebuilt.
    #[arg(long, value_name = "PEER|TICKET")]
    pub from: Option<String>,
    /// Networking (with --from).
    #[command(flatten)]
    pub net: NetArgs,
}

pub fn run(cli_repo: &Option<PathBuf>, json: bool, a: RepairArgs) -> Result<ExitCode> {
    let path = repo_path(cli_repo)?;
    let (report, kept) = hero_store::repair::repair_in_place(&path)
        .with_context(|| format!("repairing {}", path.display()))?;
    let pulled = match &a.from {
        None => None,
        Some(from) => {
            let repo = crate::context::with_open_context(hero_store::Repo::open(&path), &path)?;
            let ticket = hero_sync::access::resolve_remote(&repo, from)?;
            // The peer sends a commit's history only to a repository that lacks the commit.
            let aside = hero_store::repair::set_aside_incomplete(&repo)?;
            let pulled = super::sync::pull(&repo, &path, &ticket, &a.net, true);
            let restored = hero_store::repair::put_back(&repo, aside)?;
            let r = pulled.context("fetching what was lost from the peer")?;
            for name in &restored {
                tracing::info!(r#ref = %name, "the peer did not have it: put back as it was");
            }
            let still = still_lost(&repo, &report)?;
            Some((r, still))
        }
    };
    let still_missing = pulled.as_ref().map(|(_, s)| s.len());
    if json {
        let ids = |v: &[hero_store::ObjectId]| v.iter().map(|i| i.to_hex()).collect::<Vec<_>>();
        print_json(&json!({
            "repaired": path.display().to_string(),
            "damaged_kept_as": kept.display().to_string(),
            "opened": opened_str(report.opened),
            "tables": report.tables.iter().map(|t| json!({
                "name": t.name, "expected": t.expected, "read": t.read, "error": t.error,
            })).collect::<Vec<_>>(),
            "objects_kept": report.objects_kept,
            "objects_dropped": ids(&report.objects_dropped),
            "objects_unreadable": report.objects_unreadable,
            "objects_missing": ids(&report.objects_missing),
            "commits_lost": ids(&report.commits_lost),
            "refs_kept": report.refs_kept,
            "refs_lost": report.refs_lost.iter().map(|(n, id)| json!({"ref": n, "target": id.to_hex()})).collect::<Vec<_>>(),
            "refs_unreadable": report.refs_unreadable,
            "refs_restored_from_reflog": report.refs_restored,
            "refs_ambiguous": report.refs_ambiguous.iter().map(|(kept, logged)| json!({"kept": kept, "reflog_names": logged})).collect::<Vec<_>>(),
            "reflog_kept": report.reflog_kept,
            "reflog_lost": report.reflog_lost,
            "repo_id_kept": report.repo_id_kept,
            "nothing_lost": report.nothing_lost(),
            "fetched": pulled.as_ref().map(|(r, still)| json!({
                "bytes_in": r.bytes_in, "still_lost": ids(still),
            })),
        }))?;
    } else {
        print_report(&report, &kept)?;
        if let Some((r, still)) = &pulled {
            outln!(
                "fetched from the peer: {}; {}",
                crate::output::bytes(r.bytes_in),
                if still.is_empty() {
                    "nothing is lost any more".to_owned()
                } else {
                    format!("{} commits or objects are still missing", still.len())
                }
            )?;
        }
    }
    // Something lost and not fetched back: the repository works, but is not whole.
    let whole = match still_missing {
        Some(n) => n == 0,
        None => report.nothing_lost(),
    };
    Ok(if whole {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::error::Kind::Corrupt.exit_code())
    })
}

/// What the report named lost that the repository still lacks after a fetch.
fn still_lost(repo: &hero_store::Repo, r: &RepairReport) -> Result<Vec<hero_store::ObjectId>> {
    let view = repo.view()?;
    let mut out = Vec::new();
    let named = r
        .commits_lost
        .iter()
        .chain(r.objects_missing.iter())
        .chain(r.refs_lost.iter().map(|(_, id)| id));
    for id in named {
        if view.object_type(id)?.is_none() {
            out.push(*id);
        }
    }
    let verified = repo.verify(None)?;
    out.extend(verified.missing.iter().map(|(id, _)| *id));
    out.extend(verified.corrupt.iter().map(|c| c.id));
    out.sort();
    out.dedup();
    Ok(out)
}

fn opened_str(o: Opened) -> &'static str {
    match o {
        Opened::Checked => "checked",
        Opened::PreviousCommit => "previous_commit",
        Opened::Unchecked => "unchecked",
        Opened::Unopenable => "unopenable",
    }
}

fn print_report(r: &RepairReport, kept: &std::path::Path) -> Result<()> {
    outln!("damaged file kept as {}", kept.display())?;
    outln!(
        "opened: {}",
        match r.opened {
            Opened::Checked => "checked by the database engine (every page checksum verified)",
            Opened::PreviousCommit =>
                "at the commit before the last one (the latest commit slot is damaged): \
                 what the last write added is lost",
            Opened::Unchecked => "as it is (the engine's check failed); read table by table",
            Opened::Unopenable => "not at all: nothing could be read",
        }
    )?;
    for t in &r.tables {
        if let Some(e) = &t.error {
            outln!(
                "table {}: read {} of {} entries ({e})",
                t.name,
                count(t.read),
                t.expected.map_or("?".to_owned(), count)
            )?;
        }
    }
    outln!("objects kept: {}", count(r.objects_kept))?;
    for id in &r.objects_dropped {
        outln!("lost object {id} (does not verify)")?;
    }
    if r.objects_unreadable > 0 {
        outln!(
            "lost {} objects on unreadable pages",
            count(r.objects_unreadable)
        )?;
    }
    for id in &r.commits_lost {
        outln!("lost commit {id}")?;
    }
    for id in &r.objects_missing {
        outln!("missing object {id} (named by a kept commit)")?;
    }
    outln!("refs kept: {}", count(r.refs_kept))?;
    for (name, id) in &r.refs_lost {
        outln!("lost ref {name} (it pointed at {})", id.short())?;
    }
    for name in &r.refs_restored {
        outln!("ref {name} restored from its reflog (the ref table lacked it)")?;
    }
    for (kept, logged) in &r.refs_ambiguous {
        outln!(
            "ref {kept} (kept) and the reflog's {logged} point at the same commit: one of the \
             two names is damaged; rename with `heroctl branch` if it is {kept}"
        )?;
    }
    if r.refs_unreadable > 0 {
        outln!("lost {} unreadable refs", count(r.refs_unreadable))?;
    }
    outln!(
        "reflog entries kept: {}, lost: {}",
        count(r.reflog_kept),
        count(r.reflog_lost)
    )?;
    if !r.repo_id_kept {
        outln!("lost the repository id: peers will see a new repository")?;
    }
    if r.nothing_lost() {
        outln!("nothing was lost")?;
    }
    Ok(())
}
