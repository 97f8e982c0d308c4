//! Cross-crate and multi-process tests.
#![allow(clippy::unwrap_used, missing_docs)]

mod cli;
mod drive;
mod layout;
mod membership;
mod processes;
mod refusals;
mod structured;
mod sync;
mod unix;
