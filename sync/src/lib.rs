//! # hero-sync
//!
//! Peer-to-peer replication of a hero store over iroh: node keys as identities, iroh-blobs for
//! verified bulk transfer, iroh-gossip for change announcements, and an automerge membership
//! document enforced on every connection. Not written yet; see the sync issue.
#![forbid(unsafe_code)]
