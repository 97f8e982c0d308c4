//! # hero-tests
//!
//! Cross-crate and multi-process tests; the tests live in `tests/tests/`.
#![forbid(unsafe_code)]
