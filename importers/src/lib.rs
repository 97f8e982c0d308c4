//! # hero-importers
//!
//! Git import and export with gix: full history, incremental, lossless. Not written yet.
#![forbid(unsafe_code)]
