//! hero-sync tests.

mod membership;
mod merge;
mod replication;
