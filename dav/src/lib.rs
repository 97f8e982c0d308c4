//! # hero-dav
//!
//! A WebDAV share over the store (dav-server), where writes become commits. Not written yet.
#![forbid(unsafe_code)]
