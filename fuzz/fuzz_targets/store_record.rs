//! An object record as stored in the repository file. The check: `hero_store::fuzzing::record`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hero_store::fuzzing::record(data));
