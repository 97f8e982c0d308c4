//! Integration tests of hero-store.
#![allow(clippy::unwrap_used, missing_docs)]

mod bad_input;
mod budget;
mod chunker;
mod common;
mod compaction;
mod default_branch;
mod delta;
mod file_usage;
mod format;
mod format3;
mod format4;
mod gc;
mod holes;
mod merge;
mod model;
mod notify;
mod reader;
mod segments;
mod small_commits;
mod transfer;
