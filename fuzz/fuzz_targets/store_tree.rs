//! A tree object. The check: `hero_store::fuzzing::tree`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hero_store::fuzzing::tree(data));
