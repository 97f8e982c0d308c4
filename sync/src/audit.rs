//! The audit log (ADR 0018): every accepted or refused connection, pull, push, membership
//! change and invitation, with time, peer, what was asked, the decision and the reason.
//!
//! It is local to each peer and lives beside the repository file, as `<repository>.audit`:
//! one JSON object per line, appended with a single `write` on a file opened with `O_APPEND`
//! (several processes may append at once; each line arrives whole). Nothing rewrites a line;
//! only the retention below drops whole old lines.
//!
//! Retention: settings `audit/retention-days` (default [`DEFAULT_RETENTION_DAYS`]) and
//! `audit/max-bytes` (default [`DEFAULT_MAX_BYTES`]). When the file grows past the byte limit,
//! the lines older than the retention are dropped, then the oldest until the file is at most
//! half the limit; the result replaces the file by rename. So the file never stays much
//! larger than the limit, and a line younger than the retention is dropped only when the limit
//! forces it.

use std::io::{BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use hero_store::Repo;
use serde::{Deserialize, Serialize};

/// Days a line is kept (when the size limit does not force it out earlier).
pub const DEFAULT_RETENTION_DAYS: u64 = 365;
/// The size past which old lines are dropped.
pub const DEFAULT_MAX_BYTES: u64 = 16 << 20;
/// Setting: days a line is kept.
pub const RETENTION_KEY: &str = "audit/retention-days";
/// Setting: the size limit in bytes.
pub const MAX_BYTES_KEY: &str = "audit/max-bytes";

/// What was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Done.
    Accepted,
    /// Not done.
    Refused,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// When, in milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The peer (node id) the decision was about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// What was asked: `connect`, `pull`, `push`, `membership`, `invite`, `join`, `close`,
    /// `session` (a peer disconnected for breaking the protocol or staying silent).
    pub action: String,
    /// The decision.
    pub decision: Decision,
    /// Why, in words.
    pub reason: String,
    /// The commit a refused push was refused for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The path a refused push was refused for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The rule that decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

impl Entry {
    /// A line stamped now.
    pub fn new(
        peer: Option<&iroh::EndpointId>,
        action: &str,
        decision: Decision,
        reason: impl Into<String>,
    ) -> Entry {
        Entry {
            time_ms: now_ms(),
            peer: peer.map(|p| p.to_string()),
            action: action.to_owned(),
            decision,
            reason: reason.into(),
            commit: None,
            path: None,
            rule: None,
        }
    }

    /// With the rule that decided.
    pub fn rule(mut self, rule: impl Into<String>) -> Entry {
        self.rule = Some(rule.into());
        self
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The audit log of the repository at `repo_path`: `<repository>.audit`.
pub fn log_path(repo_path: &Path) -> PathBuf {
    let mut s = repo_path.as_os_str().to_owned();
    s.push(".audit");
    PathBuf::from(s)
}

/// Errors of the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The file could not be read or written.
    #[error("audit log {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A setting could not be read.
    #[error(transparent)]
    Store(#[from] hero_store::Error),
}

fn setting_u64(repo: &Repo, key: &str, default: u64) -> u64 {
    match repo.setting(key) {
        Ok(Some(v)) => String::from_utf8_lossy(&v)
            .trim()
            .parse()
            .unwrap_or(default),
        _ => default,
    }
}

/// Appends a line to the audit log of `repo`. A failure is logged, never fatal: the decision
/// stands whether or not its receipt could be written.
pub fn record(repo: &Repo, entry: Entry) {
    // Sessions record at once from many threads; an append racing a prune's rewrite lost the
    // line, and two prunes raced for one temporary file.
    static WRITING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let written = {
        let _one = WRITING.lock().unwrap_or_else(|p| p.into_inner());
        try_record(repo, &entry)
    };
    if let Err(e) = written {
        let cause = std::error::Error::source(&e)
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        tracing::warn!("could not write to the audit log: {e}{cause}");
    }
    match entry.decision {
        Decision::Accepted => tracing::debug!(
            "audit: {} {} accepted: {}",
            entry.action,
            entry.peer.as_deref().unwrap_or("-"),
            entry.reason
        ),
        Decision::Refused => tracing::info!(
            "audit: {} {} refused: {}",
            entry.action,
            entry.peer.as_deref().unwrap_or("-"),
            entry.reason
        ),
    }
}

fn try_record(repo: &Repo, entry: &Entry) -> Result<(), AuditError> {
    let path = log_path(repo.path());
    let io = |source| AuditError::Io {
        path: path.clone(),
        source,
    };
    let mut line = serde_json::to_vec(entry).map_err(|e| io(std::io::Error::other(e)))?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    f.write_all(&line).map_err(io)?;
    let size = f.metadata().map_err(io)?.len();
    let max = setting_u64(repo, MAX_BYTES_KEY, DEFAULT_MAX_BYTES).max(4096);
    if size > max {
        let days = setting_u64(repo, RETENTION_KEY, DEFAULT_RETENTION_DAYS);
        prune(&path, days, max / 2)?;
    }
    Ok(())
}

/// Drops lines older than `days`, then the oldest until at most `keep_bytes` remain.
pub fn prune(path: &Path, days: u64, keep_bytes: u64) -> Result<(), AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_owned(),
        source,
    };
    let cutoff =
        now_ms().saturating_sub(i64::try_from(days.saturating_mul(86_400_000)).unwrap_or(i64::MAX));
    let f = std::fs::File::open(path).map_err(io)?;
    let mut lines: Vec<String> = Vec::new();
    for line in std::io::BufReader::new(f).lines() {
        let line = line.map_err(io)?;
        let keep = match serde_json::from_str::<Entry>(&line) {
            Ok(e) => e.time_ms >= cutoff,
            Err(_) => false,
        };
        if keep {
            lines.push(line);
        }
    }
    let mut total: u64 = lines.iter().map(|l| l.len() as u64 + 1).sum();
    let mut start = 0;
    while total > keep_bytes && start < lines.len() {
        total -= lines[start].len() as u64 + 1;
        start += 1;
    }
    // One temporary file per process: daemons and commands of one repository prune alike.
    let tmp = path.with_extension(format!("audit.tmp-{}", std::process::id()));
    {
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        for l in &lines[start..] {
            out.write_all(l.as_bytes()).map_err(io)?;
            out.write_all(b"\n").map_err(io)?;
        }
        out.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(())
}

/// Reads the audit log of the repository at `repo_path`: the lines about `peer` (all when
/// `None`) at or after `since_ms`, oldest first. Lines that do not parse are skipped.
pub fn read(
    repo_path: &Path,
    peer: Option<&str>,
    since_ms: Option<i64>,
) -> Result<Vec<Entry>, AuditError> {
    let path = log_path(repo_path);
    let f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(AuditError::Io { path, source }),
    };
    let mut out = Vec::new();
    for line in std::io::BufReader::new(f).lines() {
        let line = line.map_err(|source| AuditError::Io {
            path: path.clone(),
            source,
        })?;
        let Ok(e) = serde_json::from_str::<Entry>(&line) else {
            continue;
        };
        if peer.is_some_and(|p| e.peer.as_deref() != Some(p)) {
            continue;
        }
        if since_ms.is_some_and(|s| e.time_ms < s) {
            continue;
        }
        out.push(e);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn line(time_ms: i64, reason: &str) -> Entry {
        Entry {
            time_ms,
            peer: Some("p".into()),
            action: "pull".into(),
            decision: Decision::Accepted,
            reason: reason.into(),
            commit: None,
            path: None,
            rule: None,
        }
    }

    #[test]
    fn lines_survive_reopening_and_retention_bounds_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.hero");
        let repo = Repo::init(&path).unwrap();
        repo.set_setting(MAX_BYTES_KEY, Some(b"8192")).unwrap();
        repo.set_setting(RETENTION_KEY, Some(b"30")).unwrap();
        // One line older than the retention, then enough young ones to pass the limit.
        record(&repo, line(now_ms() - 40 * 86_400_000, "old"));
        for i in 0..200 {
            record(&repo, line(now_ms(), &format!("young {i}")));
        }
        let size = std::fs::metadata(log_path(&path)).unwrap().len();
        assert!(size <= 8192, "{size}");
        let lines = read(&path, None, None).unwrap();
        assert!(lines.iter().all(|e| e.reason != "old"));
        // The newest are kept, in order, and survive a reopening.
        assert_eq!(lines.last().unwrap().reason, "young 199");
        drop(repo);
        let repo = Repo::open(&path).unwrap();
        record(&repo, line(now_ms(), "after"));
        let again = read(&path, None, None).unwrap();
        assert_eq!(again.len(), lines.len() + 1);
        assert_eq!(again.last().unwrap().reason, "after");
        // Filters.
        assert!(read(&path, Some("q"), None).unwrap().is_empty());
        assert!(
            read(&path, None, Some(now_ms() + 60_000))
                .unwrap()
                .is_empty()
        );
    }
}
