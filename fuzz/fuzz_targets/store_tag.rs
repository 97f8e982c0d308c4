//! An annotated tag object. The check: `hero_store::fuzzing::tag`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hero_store::fuzzing::tag(data));
