//! The checks of the parsers' fuzz targets (`formats/fuzz/`), shared with the test that
//! replays their checked-in corpora on stable Rust (`cli/tests/fuzz_corpus.rs`). Each takes
//! any bytes and panics only on a bug: a parser that panics, an error without a position, or
//! printed HeroScript that does not parse back to the same actions.

use crate::heroscript::{Script, to_string};
use crate::{Format, Path, Query, Span, diff, get, parse, parse_heroscript};

/// TOML: any bytes parse or fail with a position; a parsed document answers paths and
/// differs from itself nowhere.
pub fn toml(data: &[u8]) {
    match parse(Format::Toml, data) {
        Ok(doc) => {
            let _ = doc.get("package.name");
            let _ = doc.get("a[0].b");
            assert!(diff(&doc.value, &doc.value).is_empty());
        }
        Err(e) => assert!(e.line() >= 1 && e.column() >= 1),
    }
}

/// Markdown: any bytes parse or fail with a position; a parsed document answers its
/// decision-record fields, sections and front matter.
pub fn markdown(data: &[u8]) {
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
}

fn without_spans(mut script: Script) -> Script {
    for a in &mut script.actions {
        a.span = Span::START;
        for p in &mut a.params {
            p.span = Span::START;
        }
    }
    script
}

/// HeroScript: any bytes parse or fail with a position, and what parses prints to text that
/// parses back to the same actions.
pub fn heroscript(data: &[u8]) {
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
}

/// Paths and queries: any text parses or fails, and evaluates without panicking; a parsed
/// path prints to text that parses again.
pub fn query(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let value = serde_json::json!({
        "a": [{"b": 1, "name": "x"}, {"b": [2, 3], "name": "y"}],
        "c": {"d": "text", "e": null, "f": true}
    });
    if let Ok(path) = Path::parse(text) {
        let _ = path.resolve(&value);
        let printed = path.to_string();
        if let Err(e) = Path::parse(&printed) {
            panic!("printed path {printed:?} of {text:?} does not parse: {e}");
        }
    }
    let _ = get(&value, text);
    if let Ok(query) = Query::parse(text) {
        let _ = query.eval(&value);
    }
}
