//! Paths and queries: any text parses or fails, and evaluates without panicking.
#![no_main]

use hero_formats::{Path, Query, get};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let value = serde_json::json!({
        "a": [{"b": 1, "name": "x"}, {"b": [2, 3], "name": "y"}],
        "c": {"d": "text", "e": null, "f": true}
    });
    if let Ok(path) = Path::parse(text) {
        let _ = path.resolve(&value);
        let _ = Path::parse(&path.to_string());
    }
    let _ = get(&value, text);
    if let Ok(query) = Query::parse(text) {
        let _ = query.eval(&value);
    }
});
