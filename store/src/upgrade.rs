//! The repository's format number and `Repo::upgrade`, which converts an older repository to
//! this build's layout in place (docs/format.md, ADR 0013).

use redb::ReadableDatabase;

use crate::db::{FORMAT_VERSION, META, stored_format};
use crate::error::{DbResultExt as _, Error, Result};
use crate::repo::Repo;

/// What [`Repo::upgrade`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpgradeReport {
    /// The format found.
    pub from: u32,
    /// The format now recorded.
    pub to: u32,
    /// Object records moved to the new layout (large records into pieces).
    pub records_converted: u64,
    /// Small records packed into segments.
    pub records_packed: u64,
    /// The file's length before.
    pub file_bytes_before: u64,
    /// The file's length after (the upgrade ends with [`Repo::compact`]).
    pub file_bytes_after: u64,
}

impl Repo {
    /// The format recorded in the repository now (another process may have changed it since
    /// this handle was opened).
    pub fn format(&self) -> Result<u32> {
        let txn = self.db().begin_read().db_err()?;
        let meta = txn.open_table(META).db_err()?;
        stored_format(&meta)
    }

    /// Converts an older repository to this build's format in place: one write transaction
    /// rewrites what the new layout stores differently and records the new format number, so
    /// an interrupted upgrade (kill, power loss, full disk) leaves the old repository as it
    /// was; then the file is compacted. A repository already at this format is only
    /// compacted. Safe while other processes use the repository: they see the old layout until
    /// the transaction commits and the new one after, with the same content.
    pub fn upgrade(&mut self) -> Result<UpgradeReport> {
        let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut report = UpgradeReport {
            file_bytes_before: size(self.path()),
            to: FORMAT_VERSION,
            ..UpgradeReport::default()
        };
        let txn = self.db().begin_write().db_err()?;
        {
            let mut meta = txn.open_table(META).db_err()?;
            report.from = stored_format(&meta)?;
            if report.from > FORMAT_VERSION {
                return Err(Error::FormatTooNew {
                    found: report.from,
                    supported: FORMAT_VERSION,
                });
            }
            if report.from < FORMAT_VERSION {
                report.records_converted = crate::db::convert_large_records(&txn)?;
                meta.insert("format", FORMAT_VERSION.to_le_bytes().as_slice())
                    .db_err()?;
            }
        }
        crate::db::move_legacy_chains(&txn)?;
        if report.from < FORMAT_VERSION {
            // The small records into segments, in the same transaction.
            report.records_packed = crate::segment::pack(&txn, &self.cache)?.records;
        }
        txn.commit().db_err()?;
        tracing::info!(
            path = %self.path().display(),
            from = report.from,
            to = report.to,
            converted = report.records_converted,
            packed = report.records_packed,
            "upgraded repository"
        );
        let (_, after) = self.compact()?;
        report.file_bytes_after = after;
        Ok(report)
    }
}
