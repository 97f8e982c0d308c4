//! Cross-crate and multi-process tests of the store (the `hero-writer` helper binary).
#![allow(clippy::unwrap_used, missing_docs)]

mod processes;
