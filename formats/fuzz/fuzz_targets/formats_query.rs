//! Paths and queries: parse and evaluate without panicking (hero_formats::fuzzing::query).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hero_formats::fuzzing::query(data));
