//! Markdown: any bytes parse or fail with a position; a parsed document answers its
//! decision-record fields, sections and front matter.
#![no_main]

use hero_formats::{Format, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse(Format::Markdown, data) {
        Ok(doc) => {
            for path in [
                "Status",
                "#Context",
                "superseded_by",
                "title",
                "tags[0]",
                "#",
            ] {
                let _ = doc.get(path);
            }
        }
        Err(e) => assert!(e.line() >= 1 && e.column() >= 1),
    }
});
