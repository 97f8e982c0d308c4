//! The daemon's scheduled garbage collection (ADR 0019).

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use hero_store::Repo;

use super::config;
use super::ctx::{Ctx, unix_now};
use tokio::sync::watch as signal;

/// Runs `Repo::gc` every `gc.interval` (counted from the end of the previous collection, the
/// first from the start), with the configured grace, on a handle of its own (the collection
/// needs exclusive use of its handle to compact; other handles, in this process or others,
/// go on reading and writing: ADR 0004). One task, so never two collections at once.
pub(super) async fn gc_loop(ctx: Arc<Ctx>, mut schedule: signal::Receiver<config::GcSection>) {
    let mut since = Instant::now();
    loop {
        let gc = *schedule.borrow_and_update();
        let due = since + gc.interval;
        {
            let mut st = ctx.status();
            st.gc.enabled = gc.enabled;
            st.gc.interval_secs = gc.interval.as_secs();
            st.gc.grace_secs = gc.grace.as_secs();
            let left = due.saturating_duration_since(Instant::now());
            st.gc.next_run = gc.enabled.then(|| unix_now() + left.as_secs());
        }
        if !gc.enabled {
            if schedule.changed().await.is_err() {
                return;
            }
            continue;
        }
        tokio::select! {
            r = schedule.changed() => {
                if r.is_err() {
                    return;
                }
                continue;
            }
            _ = tokio::time::sleep_until(due.into()) => {}
        }
        ctx.status().gc.running = true;
        let t0 = Instant::now();
        let path = ctx.path.clone();
        let grace = gc.grace.as_secs();
        let result = tokio::task::spawn_blocking(move || -> Result<hero_store::GcReport> {
            let mut repo = crate::context::with_open_context(Repo::open(&path), &path)?;
            repo.gc(grace, false)
                .with_context(|| format!("collecting garbage in {}", path.display()))
        })
        .await
        .map_err(|e| anyhow::anyhow!("the collection task failed: {e}"))
        .and_then(|r| r);
        since = Instant::now();
        let mut st = ctx.status();
        let g = &mut st.gc;
        g.running = false;
        g.runs += 1;
        g.last_run = Some(unix_now());
        g.last_duration_ms = Some(t0.elapsed().as_millis() as u64);
        match result {
            Ok(r) => {
                tracing::info!(
                    "gc: removed {} unreachable objects ({} bytes), {} listed until their grace \
                     period ends; file {} -> {} bytes",
                    r.removed,
                    r.removed_bytes,
                    r.listed,
                    r.file_bytes_before,
                    r.file_bytes_after
                );
                g.last_removed = Some(r.removed);
                g.last_removed_bytes = Some(r.removed_bytes);
                g.last_listed = Some(r.listed);
                g.last_reachable = Some(r.reachable);
                g.last_file_bytes_before = Some(r.file_bytes_before);
                g.last_file_bytes_after = Some(r.file_bytes_after);
                g.last_error = None;
            }
            Err(e) => {
                let msg = format!("{e:#}");
                tracing::error!("gc: {msg}");
                g.last_error = Some(msg);
            }
        }
    }
}
