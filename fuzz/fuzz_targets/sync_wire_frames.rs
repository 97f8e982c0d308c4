//! A peer's byte stream, read as framed messages. The check: `hero_sync::fuzzing::wire_frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hero_sync::fuzzing::wire_frames(data));
