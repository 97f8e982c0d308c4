//! A commit object. The check: `hero_store::fuzzing::commit`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hero_store::fuzzing::commit(data));
