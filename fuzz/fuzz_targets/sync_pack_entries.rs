//! The entries of a PACK message. The check: `hero_sync::fuzzing::pack_entries`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hero_sync::fuzzing::pack_entries(data));
