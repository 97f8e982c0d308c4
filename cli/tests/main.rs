//! End-to-end tests of `heroctl`: the binary cargo just built (`CARGO_BIN_EXE_heroctl`), real
//! repositories, real git, real mounts and shares, peers as separate processes.
#![allow(clippy::unwrap_used, missing_docs)]

mod cli;
mod crash_points;
mod drive;
mod fuzz_corpus;
mod hostile;
mod layout;
mod membership;
mod refusals;
mod repair;
mod special;
mod structured;
mod sync;
mod unix;
