//! Queries: the JMESPath subset, its extensions and its refusals.

use hero_formats::{Query, QueryError, query};
use serde_json::{Value, json};

fn data() -> Value {
    json!({
        "node": {"define": [
            {"name": "n1", "ipaddr": "10.0.0.1", "roles": ["storage", "compute"], "port": 22},
            {"name": "n2", "ipaddr": "10.0.0.2", "roles": ["storage"], "port": 2222}
        ]},
        "adrs": [
            {"status": "Accepted", "title": "a"},
            {"status": "Superseded", "title": "b"},
            {"status": "Accepted", "title": "c", "draft": true}
        ],
        "package": {"rust-version": "1.85", "name": "x"}
    })
}

fn q(expr: &str) -> Value {
    query(&data(), expr).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

#[test]
fn paths_indices_and_projections() {
    assert_eq!(q("node.define[*].ipaddr"), json!(["10.0.0.1", "10.0.0.2"]));
    assert_eq!(q("node.define[0].name"), json!("n1"));
    assert_eq!(q("node.define[-1].name"), json!("n2"));
    assert_eq!(q("node.define[5]"), Value::Null);
    assert_eq!(q("node.define[*].roles[0]"), json!(["storage", "storage"]));
    assert_eq!(
        q("node.define[*].roles[]"),
        json!(["storage", "compute", "storage"])
    );
    assert_eq!(q("node.define[].name"), json!(["n1", "n2"]));
    assert_eq!(q("package.*"), json!(["x", "1.85"]));
    assert_eq!(q("missing.field"), Value::Null);
    assert_eq!(q("node.define[*].missing"), json!([]));
    assert_eq!(q("@.package.name"), json!("x"));
    assert_eq!(q("package.\"rust-version\""), json!("1.85"));
    assert_eq!(q("package.rust-version"), json!("1.85"));
}

#[test]
fn filters_comparisons_and_logic() {
    assert_eq!(q("adrs[?status=='Accepted'].title"), json!(["a", "c"]));
    assert_eq!(q("adrs[?status!='Accepted'].title"), json!(["b"]));
    assert_eq!(q("adrs[?status=='Accepted' && draft].title"), json!(["c"]));
    assert_eq!(
        q("adrs[?status=='Superseded' || draft].title"),
        json!(["b", "c"])
    );
    assert_eq!(q("adrs[?!draft].title"), json!(["a", "b"]));
    assert_eq!(q("adrs[?(status=='Accepted')].title | [0]"), json!("a"));
    assert_eq!(q("node.define[?port > `100`].name"), json!(["n2"]));
    assert_eq!(q("node.define[?port==22].name"), json!(["n1"]));
    assert_eq!(q("node.define[?port <= 22.0].name"), json!(["n1"]));
    assert_eq!(q("node.define[?name < 'n2'].name"), json!([]));
    assert_eq!(
        q("node.define[?roles==`[\"storage\"]`].name"),
        json!(["n2"])
    );
    assert_eq!(q("adrs[?status=='Accepted'] | [1].title"), json!("c"));
}

#[test]
fn unsupported_features_and_syntax_errors_name_their_column() {
    let cases: [(&str, &str); 9] = [
        (
            "length(adrs)",
            "query, column 1: functions are not supported",
        ),
        ("adrs[0:2]", "query, column 6: slices are not supported"),
        (
            "adrs[title, status]",
            "query, column 6: multi-select lists are not supported",
        ),
        (
            "{a: adrs}",
            "query, column 1: multi-select hashes are not supported",
        ),
        (
            "sort_by(adrs, &title)",
            "query, column 1: functions are not supported",
        ),
        (
            "adrs[?status='x']",
            "query, column 13: `=` alone; compare with `==`",
        ),
        (
            "adrs[?status=='x'",
            "query, column 18: unexpected end of the expression",
        ),
        ("adrs.", "query, column 6: unexpected end of the expression"),
        (
            "'open",
            "query, column 1: the raw string is not closed by `'`",
        ),
    ];
    for (expr, message) in cases {
        let err = Query::parse(expr).unwrap_err();
        assert_eq!(err.to_string(), message, "{expr}");
    }
}

#[test]
fn long_expressions_are_refused_before_any_recursion() {
    let deep = format!("{}a{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(matches!(
        Query::parse(&deep),
        Err(QueryError::TooLong { .. })
    ));
    let chain = vec!["a"; 600].join(".");
    assert!(matches!(
        Query::parse(&chain),
        Err(QueryError::TooLong { .. })
    ));
    let ok = vec!["a"; 200].join(".");
    assert_eq!(query(&json!({}), &ok).unwrap(), Value::Null);
}
