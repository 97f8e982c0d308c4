//! HeroScript: any bytes parse or fail with a position, and what parses prints to text
//! that parses back to the same actions.
#![no_main]

use hero_formats::heroscript::{Script, to_string};
use hero_formats::{Span, parse_heroscript};
use libfuzzer_sys::fuzz_target;

fn without_spans(mut script: Script) -> Script {
    for a in &mut script.actions {
        a.span = Span::START;
        for p in &mut a.params {
            p.span = Span::START;
        }
    }
    script
}

fuzz_target!(|data: &[u8]| {
    match parse_heroscript(data) {
        Ok(script) => {
            // No parsed value holds a carriage return, so one round is exact.
            let printed = to_string(&script);
            let again = match Script::parse(&printed) {
                Ok(again) => again,
                Err(e) => panic!("printed text does not parse: {e}\n{printed}"),
            };
            assert_eq!(
                without_spans(again),
                without_spans(script.clone()),
                "{printed}"
            );
            let _ = script.to_document().get("a.b[0].c");
        }
        Err(e) => assert!(e.line() >= 1 && e.column() >= 1),
    }
});
