//! hero-sync tests.

mod merge;
