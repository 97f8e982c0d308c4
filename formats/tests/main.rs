//! Integration tests of hero-formats: each parser against the corpus under `corpus/`, the
//! odd cases of each grammar, paths, queries, diffs and property tests.

mod corpus;
