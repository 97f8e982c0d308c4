//! Markdown: any bytes parse or fail with a position (hero_formats::fuzzing::markdown).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hero_formats::fuzzing::markdown(data));
