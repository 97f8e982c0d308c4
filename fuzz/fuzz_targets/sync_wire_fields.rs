//! A message's fields. The check: `hero_sync::fuzzing::wire_fields`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hero_sync::fuzzing::wire_fields(data));
