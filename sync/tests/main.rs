//! hero-sync tests.

mod membership;
mod replication;
