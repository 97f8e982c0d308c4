//! The daemon's configuration file. The check: `heroctl::fuzzing::daemon_config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| heroctl::fuzzing::daemon_config(data));
