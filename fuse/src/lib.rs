//! # hero-fuse
//!
//! A FUSE mount of the store (fuser), where writes become commits and changes from peers appear
//! live. Not written yet.
#![forbid(unsafe_code)]
