//! A ticket as pasted. The check: `hero_sync::fuzzing::ticket`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hero_sync::fuzzing::ticket(data));
