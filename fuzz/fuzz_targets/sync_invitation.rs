//! An invitation as pasted. The check: `hero_sync::fuzzing::invitation`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hero_sync::fuzzing::invitation(data));
