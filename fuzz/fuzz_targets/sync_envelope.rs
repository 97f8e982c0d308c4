//! A membership envelope as received. The check: `hero_sync::fuzzing::envelope`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hero_sync::fuzzing::envelope(data));
