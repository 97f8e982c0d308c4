//! TOML: errors with positions, types, and what the `toml` parser refuses.

use hero_formats::{Format, ParseError, parse};
use serde_json::json;

#[test]
fn errors_point_at_the_line_and_column() {
    let cases: [(&str, u32, u32); 4] = [
        ("a = 1\nb = \"unterminated\n", 2, 18),
        ("[t]\nx = 1\n[t]\n", 3, 2),
        ("a = [1, 2\n", 1, 10),
        ("name = ü\n", 1, 8),
    ];
    for (text, line, column) in cases {
        let err = parse(Format::Toml, text.as_bytes()).unwrap_err();
        assert!(matches!(err, ParseError::Toml { .. }), "{err}");
        assert_eq!(
            (err.line(), err.column()),
            (line, column),
            "{text:?}: {err}"
        );
    }
}

#[test]
fn reordered_tables_parse_to_the_same_value() {
    let a = parse(Format::Toml, b"[a]\nx = 1\ny = 2\n[b]\nz = 3\n").unwrap();
    let b = parse(Format::Toml, b"[b]\nz = 3\n[a]\ny = 2\nx = 1\n").unwrap();
    assert_eq!(a.value, b.value);
    assert!(hero_formats::diff(&a.value, &b.value).is_empty());
}

#[test]
fn large_integers_and_special_floats_stay_exact() {
    let d = parse(
        Format::Toml,
        b"big = 9223372036854775807\nneg = -9223372036854775808\nnan = nan\npinf = +inf\nexp = 1e3\n",
    )
    .unwrap();
    assert_eq!(
        d.value,
        json!({"big": i64::MAX, "neg": i64::MIN, "nan": "nan", "pinf": "inf", "exp": 1000.0})
    );
}

#[test]
fn not_utf8_says_where() {
    let err = parse(Format::Toml, b"a = 1\nb = \"\xff\"\n").unwrap_err();
    assert!(matches!(err, ParseError::NotUtf8 { .. }));
    assert_eq!((err.line(), err.column()), (2, 6));
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let text = format!("a = {}{}\n", "[".repeat(5000), "]".repeat(5000));
    assert!(parse(Format::Toml, text.as_bytes()).is_err());
}
