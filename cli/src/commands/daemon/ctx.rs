//! What the daemon's tasks share: the context every task holds (`Ctx`) and the status they
//! report into (what `heroctl daemon status` shows).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hero_store::{ObjectId, Repo};
use hero_sync::EndpointId;
use serde::Serialize;
use tokio::sync::watch as signal;

use super::config::{self, ConfigError};
use super::watch::{self};

/// What every task shares.
pub(super) struct Ctx {
    pub(super) repo: Arc<Repo>,
    pub(super) path: PathBuf,
    /// Connections to peers, dialled from the sync endpoint.
    pub(super) pool: hero_sync::Pool,
    pub(super) me: EndpointId,
    pub(super) branch: String,
    pub(super) status: Mutex<Status>,
    /// Catch-up interval in force.
    pub(super) catch_up: Mutex<Duration>,
    /// Whether this node may change `.hero/` (an owner): the mount and the share refuse
    /// such changes while it is off; read again whenever the repository changes.
    pub(super) config_writable: Arc<std::sync::atomic::AtomicBool>,
    /// Watch hooks in force.
    pub(super) watch: Mutex<Vec<watch::WatchSpec>>,
    /// Where hooks run.
    pub(super) hook_env: Mutex<watch::HookEnv>,
    /// The garbage collection schedule in force; the collector is told when it changes.
    pub(super) gc: signal::Sender<config::GcSection>,
    /// Each peer's branch heads as far as this node knows: what it announced, advertised in a
    /// session or took in a push.
    pub(super) known: Mutex<HashMap<EndpointId, HashMap<String, ObjectId>>>,
}

impl Ctx {
    pub(super) fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        // A poisoned lock still holds usable status.
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub(super) fn catch_up(&self) -> Duration {
        *self.catch_up.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What `heroctl daemon status` reports about a peer.
#[derive(Debug, Clone, Serialize)]
pub(super) struct PeerStatus {
    pub(super) id: String,
    pub(super) source: String,
    pub(super) ticket: String,
    pub(super) connected: bool,
    pub(super) last_sync: Option<u64>,
    pub(super) last_error: Option<String>,
    pub(super) syncs: u64,
}

/// The configuration in force and the last refusal.
#[derive(Debug, Clone, Serialize, Default)]
pub(super) struct ConfigStatus {
    /// The blob id of the file in force (`None`: defaults, no file).
    pub(super) revision: Option<String>,
    /// `repository` or `default`.
    pub(super) source: String,
    pub(super) error: Option<ConfigError>,
    pub(super) restart_needed: Vec<String>,
    pub(super) applied: u64,
}

/// Everything the status answer needs that the loops update.
#[derive(Debug, Default)]
pub(super) struct Status {
    pub(super) peers: BTreeMap<String, PeerStatus>,
    pub(super) config: ConfigStatus,
    pub(super) mount: Option<String>,
    pub(super) share: Option<String>,
    pub(super) share_error: Option<String>,
    pub(super) ui: Option<String>,
    pub(super) ui_error: Option<String>,
    /// The default branch's head that some peer is known to have.
    pub(super) confirmed: Option<ObjectId>,
    /// The watch hooks, in the order of the configuration.
    pub(super) watches: Vec<watch::WatchStatus>,
    /// The scheduled garbage collection.
    pub(super) gc: GcStatus,
    /// The default branch's files that do not parse or keep their schemas.
    pub(super) invalid: Vec<crate::commands::check::Finding>,
}

/// What `heroctl daemon status` reports about the scheduled garbage collection.
#[derive(Debug, Clone, Serialize, Default)]
pub(super) struct GcStatus {
    pub(super) enabled: bool,
    pub(super) interval_secs: u64,
    pub(super) grace_secs: u64,
    /// A collection is running now.
    pub(super) running: bool,
    /// When the next one starts (Unix seconds), when enabled.
    pub(super) next_run: Option<u64>,
    /// Collections finished (with or without an error).
    pub(super) runs: u64,
    /// When the last one ended (Unix seconds).
    pub(super) last_run: Option<u64>,
    pub(super) last_duration_ms: Option<u64>,
    /// What the last one that succeeded found and did.
    pub(super) last_removed: Option<u64>,
    pub(super) last_removed_bytes: Option<u64>,
    pub(super) last_listed: Option<u64>,
    pub(super) last_reachable: Option<u64>,
    pub(super) last_file_bytes_before: Option<u64>,
    pub(super) last_file_bytes_after: Option<u64>,
    /// Why the last one failed (cleared by one that succeeds).
    pub(super) last_error: Option<String>,
}
