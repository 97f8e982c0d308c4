//! Integration tests of hero-formats: each parser against the corpus under `corpus/`, the
//! odd cases of each grammar, paths, queries, diffs and property tests.
#![allow(clippy::unwrap_used, missing_docs)]

mod corpus;
mod get;
mod heroscript;
mod markdown;
mod props;
mod query;
mod semantic_diff;
mod toml;
