//! Integration tests of hero-formats.
