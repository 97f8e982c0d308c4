//! hero-sync tests.

mod merge;
mod replication;
