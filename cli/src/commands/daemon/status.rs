//! What `heroctl daemon status` reports: the state the daemon's tasks update, and its JSON and
//! text forms.

use anyhow::Result;
use hero_store::{ObjectId, Repo};
use serde_json::json;

use super::ctx::{Ctx, unix_now};
use super::watch;
use crate::output::outln;

pub(super) fn print_status(v: &serde_json::Value) -> Result<()> {
    let s = |v: &serde_json::Value| v.as_str().map(str::to_owned).unwrap_or_else(|| "-".into());
    outln!("daemon {} (pid {})", s(&v["node_id"]), v["pid"])?;
    outln!("ticket: {}", s(&v["ticket"]))?;
    outln!("mount: {}", v["mount"].as_str().unwrap_or("off"),)?;
    outln!("share: {}", v["share"].as_str().unwrap_or("off"))?;
    outln!("web face: {}", v["ui"].as_str().unwrap_or("off"))?;
    let c = &v["config"];
    outln!(
        "config: revision {} ({})",
        s(&c["revision"]),
        s(&c["source"])
    )?;
    if let Some(e) = c["error"].as_object() {
        outln!(
            "config error: {}:{}:{}: {}",
            s(&e["file"].clone()),
            e.get("line").cloned().unwrap_or_default(),
            e.get("column").cloned().unwrap_or_default(),
            s(&e.get("message").cloned().unwrap_or_default())
        )?;
    }
    if let Some(r) = c["restart_needed"].as_array().filter(|r| !r.is_empty()) {
        let keys: Vec<String> = r.iter().map(s).collect();
        outln!("restart needed to apply: {}", keys.join(", "))?;
    }
    outln!(
        "local commits not yet seen by any peer: {}",
        v["unseen_local_commits"]
    )?;
    outln!("open conflicts: {}", v["open_conflicts"])?;
    for f in v["invalid_files"].as_array().into_iter().flatten() {
        let warning = if f["severity"] == "warning" {
            "warning: "
        } else {
            ""
        };
        outln!(
            "invalid: {}:{}:{}: {warning}{}",
            s(&f["path"]),
            f["line"],
            f["column"],
            s(&f["message"])
        )?;
    }
    for w in v["watches"].as_array().into_iter().flatten() {
        outln!(
            "watch {}: {} run(s), {} refused by the check, last: {}{}",
            s(&w["glob"]),
            w["runs"],
            w["checks_failed"],
            s(&w["last_result"]),
            w["last_error"]
                .as_str()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        )?;
    }
    let g = &v["gc"];
    if g["enabled"].as_bool() == Some(true) {
        let last = match (g["last_run"].as_u64(), g["last_error"].as_str()) {
            (None, _) => "never ran".to_owned(),
            (Some(t), Some(e)) => {
                format!("last run {}s ago failed: {e}", unix_now().saturating_sub(t))
            }
            (Some(t), None) => format!(
                "last run {}s ago removed {} object(s) ({} bytes), {} listed",
                unix_now().saturating_sub(t),
                g["last_removed"],
                g["last_removed_bytes"],
                g["last_listed"]
            ),
        };
        outln!(
            "gc: every {}s, grace {}s{}; {last}",
            g["interval_secs"],
            g["grace_secs"],
            if g["running"].as_bool() == Some(true) {
                ", running now"
            } else {
                ""
            }
        )?;
    } else {
        outln!("gc: off")?;
    }
    for p in v["peers"].as_array().into_iter().flatten() {
        outln!(
            "peer {} ({}): {}, last sync {}{}",
            s(&p["id"]),
            s(&p["source"]),
            if p["connected"].as_bool() == Some(true) {
                "reachable"
            } else {
                "unreachable"
            },
            p["last_sync"]
                .as_u64()
                .map(|t| format!("{}s ago", unix_now().saturating_sub(t)))
                .unwrap_or_else(|| "never".into()),
            p["last_error"]
                .as_str()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default(),
        )?;
    }
    Ok(())
}

pub(super) fn watch_statuses(specs: &[watch::WatchSpec]) -> Vec<watch::WatchStatus> {
    specs
        .iter()
        .map(|s| watch::WatchStatus {
            glob: s.glob.clone(),
            last_result: Some("not started".into()),
            ..Default::default()
        })
        .collect()
}

/// The status answer.
pub(super) fn status_json(ctx: &Ctx, ticket: &str) -> serde_json::Value {
    let (peers, config, mount, share, share_error, ui, ui_error, confirmed, watches, gc, invalid) = {
        let st = ctx.status();
        (
            st.peers.values().cloned().collect::<Vec<_>>(),
            st.config.clone(),
            st.mount.clone(),
            st.share.clone(),
            st.share_error.clone(),
            st.ui.clone(),
            st.ui_error.clone(),
            st.confirmed,
            st.watches.clone(),
            st.gc.clone(),
            st.invalid.clone(),
        )
    };
    let unseen = unseen_commits(&ctx.repo, &ctx.branch, confirmed);
    let conflicts = hero_store::merge::open_conflicts(&ctx.repo, &ctx.branch)
        .map(|c| c.len())
        .unwrap_or(0);
    json!({
        "pid": std::process::id(),
        "repository": ctx.path,
        "node_id": ctx.me.to_string(),
        "ticket": ticket,
        "branch": ctx.branch,
        "peers": peers,
        "unseen_local_commits": unseen,
        "open_conflicts": conflicts,
        "mount": mount,
        "share": share,
        "share_error": share_error,
        "ui": ui,
        "ui_error": ui_error,
        "config": config,
        "watches": watches,
        "gc": gc,
        "invalid_files": invalid,
    })
}

/// Commits on the first-parent line of `branch` after the head some peer has (at most 1,000).
fn unseen_commits(repo: &Repo, branch: &str, confirmed: Option<ObjectId>) -> u64 {
    let Ok(Some(mut at)) = repo.branch_head(branch) else {
        return 0;
    };
    let mut n = 0u64;
    while Some(at) != confirmed && n < 1000 {
        n += 1;
        match repo.commit(&at) {
            Ok(c) => match c.parents.first() {
                Some(p) => at = *p,
                None => break,
            },
            Err(_) => break,
        }
    }
    n
}
