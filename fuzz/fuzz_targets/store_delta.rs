//! A delta frame against a base. The check: `hero_store::fuzzing::delta`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hero_store::fuzzing::delta(data));
