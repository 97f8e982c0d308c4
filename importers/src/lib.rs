//! # hero-importers
//!
//! Git import and export for the hero store, through gix: every branch and tag, full history,
//! incremental re-imports, and a lossless round trip back to git (every commit and tag that
//! came from git is exported with its original git id).
//!
//! - [`import_git`] brings a local git repository (bare or not, loose or packed) into a store.
//! - [`export_git`] writes the store's branches and tags out as a git repository: the objects
//!   the target lacks go into one new pack with deltas (`objects/pack/pack-<sha1>.pack` and
//!   its version 2 `.idx`), written to temporary files and renamed into place when complete;
//!   a rerun writes a pack of only what is new, or nothing (see `pack.rs` and ADR 0010).
//! - [`verify_import`] compares every imported commit's tree with git's, file by file.
//!
//! The mapping between git ids and store ids lives in the store as binary cross-references
//! (see [`mapping`]), so a second import only reads what is new.
#![forbid(unsafe_code)]

mod error;
mod export;
pub mod gitfmt;
mod import;
pub mod mapping;
mod pack;
mod reader;
mod verify;

pub use error::{ExportError, ImportError};
pub use export::{ExportOptions, ExportReport, export_git};
pub use gitfmt::GitId;
pub use import::{
    DroppedPath, ImportOptions, ImportProgress, ImportReport, RefusedRef, SkippedRef, import_git,
};
pub use verify::{Difference, VerifyOptions, VerifyReport, verify_import};
