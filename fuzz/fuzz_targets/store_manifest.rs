//! A large file's manifest node. The check: `hero_store::fuzzing::manifest`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hero_store::fuzzing::manifest(data));
