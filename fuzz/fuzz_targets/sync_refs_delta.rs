//! A welcome's refs delta. The check: `hero_sync::fuzzing::refs_delta`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hero_sync::fuzzing::refs_delta(data));
