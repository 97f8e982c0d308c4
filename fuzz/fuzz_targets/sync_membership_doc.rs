//! Membership envelopes as received, evaluated into the document. The check: `hero_sync::fuzzing::membership_doc`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hero_sync::fuzzing::membership_doc(data));
