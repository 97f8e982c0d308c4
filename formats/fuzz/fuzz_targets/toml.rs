//! TOML: any bytes parse or fail with a position; a parsed document answers paths and
//! differs from itself nowhere.
#![no_main]

use hero_formats::{Format, diff, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse(Format::Toml, data) {
        Ok(doc) => {
            let _ = doc.get("package.name");
            let _ = doc.get("a[0].b");
            assert!(diff(&doc.value, &doc.value).is_empty());
        }
        Err(e) => assert!(e.line() >= 1 && e.column() >= 1),
    }
});
