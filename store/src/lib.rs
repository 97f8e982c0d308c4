//! # hero-store
//!
//! A Fossil-like versioned repository in one redb file, shared by several processes at once.
//!
//! - Every object is keyed by its BLAKE3 hash; a file's id is the BLAKE3 of its whole content
//!   (what `b3sum` prints), so any peer can verify any file it receives. A large file with
//!   holes (long runs of zeros, stored as nothing) is named by its manifest instead, which
//!   names every chunk by hash and every hole by length.
//! - Files larger than [`SMALL_FILE_MAX`] are split with FastCDC; an edit inside a large file
//!   stores only the changed chunks.
//! - A new version of an object is stored whole and the previous version becomes a zstd delta
//!   against it (Fossil's reverse deltas): the newest version reads fastest, chains are bounded.
//! - Commits, trees, branches and tags; each commit is one transaction; branch moves are
//!   compare-and-swap.
//!
//! ```no_run
//! use hero_store::{CommitMeta, EntryKind, Expect, Repo, RepoPath, Signature};
//! # fn main() -> Result<(), hero_store::Error> {
//! let repo = Repo::open_or_init("/tmp/example.hero")?;
//! let mut changes = repo.change_set("main")?;
//! changes.put_bytes(&RepoPath::parse("etc/app.toml")?, EntryKind::File, b"port = 80\n")?;
//! let sig = Signature { name: b"me".to_vec(), email: b"me@example.com".to_vec(), time: 0, tz_offset_minutes: 0 };
//! let done = changes.commit(CommitMeta::new(sig, "configure"), Expect::Latest)?;
//! let view = repo.view()?;
//! let entry = view.entry_in_commit(&done.id, &RepoPath::parse("etc/app.toml")?)?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod author;
mod changes;
pub mod codec;
mod config_dir;
mod dated;
mod db;
mod diff;
mod error;
mod file;
#[doc(hidden)]
pub mod fuzzing;
mod gc;
mod history;
mod id;
pub mod merge;
pub mod notify;
mod object;
mod path;
pub mod private;
mod record;
mod refs;
pub mod repair;
mod repo;
mod segment;
mod snapshot;
mod stats;
mod transfer;
mod upgrade;
mod verify;

pub use author::Author;
pub use changes::{Batch, ChangeSet, CommitMeta, Committed, Expect};
pub use codec::DecodeError;
pub use config_dir::{CONFIG_DIR, is_config_path};
pub use dated::parse_utc_date;
pub use diff::{DiffEntry, DiffKind, LineDiff, line_diff};
pub use error::{DbError, DbErrorKind, Error, Result, is_disk_full_io};
pub use file::{
    CHUNK_AVG, CHUNK_MAX, CHUNK_MIN, Extent, FANOUT, FileReader, SMALL_FILE_MAX, StoredFile,
    chunk_boundaries,
};
pub use gc::GcReport;
pub use history::{LogIter, PathTracker};
pub use id::{IdBuildHasher, IdHasher, IdMap, IdSet, ObjectId, ParseIdError};
pub use notify::Subscription;
pub use object::{
    Commit, EntryKind, EntryMeta, LinkGroup, MODE_BITS, Owner, PEER_HEADER, ROOT_META_HEADER,
    Signature, Tag, TargetKind, Timestamp, Tree, TreeEntry,
};
pub use path::{NameError, RepoPath, check_git_safe, is_git_unsafe, validate_name};
pub use record::ObjType;
pub use refs::{
    BRANCH_PREFIX, RESERVED_BRANCH_PREFIX, RefMove, RefValue, TAG_PREFIX, branch_ref,
    check_ref_name, is_reserved_branch, tag_ref,
};
pub use repo::{DEFAULT_BRANCH_KEY, MemoryBudget, Repo, View};
pub use segment::PackReport;
pub use snapshot::{
    CHECKOUT_RECORD, CheckoutOptions, CheckoutRecord, CheckoutReport, Progress, SnapshotOptions,
    SnapshotReport, StatusEntry, StatusKind,
};
pub use stats::{FileUsage, Stats, TableUsage};
pub use transfer::{
    Incoming, Known, Prepared, Received, Stored, StoredForm, apply_delta_frame, decode_zstd_frame,
    delta_frame, entry_link_type, object_links,
};
pub use upgrade::UpgradeReport;
pub use verify::{CorruptObject, VerifyReport};
