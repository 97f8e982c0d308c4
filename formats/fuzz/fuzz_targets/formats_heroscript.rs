//! HeroScript: parse, print, parse back to the same (hero_formats::fuzzing::heroscript).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hero_formats::fuzzing::heroscript(data));
