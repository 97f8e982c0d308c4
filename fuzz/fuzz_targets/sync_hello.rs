//! A session's first message, the hello. The check: `hero_sync::fuzzing::hello`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hero_sync::fuzzing::hello(data));
