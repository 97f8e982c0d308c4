//! Semantic diffs of whole documents.

use hero_formats::{Format, diff, parse};
use serde_json::json;

fn value(format: Format, text: &str) -> serde_json::Value {
    parse(format, text.as_bytes()).unwrap().value
}

#[test]
fn heroscript_actions_match_by_name_and_reordered_params_are_no_change() {
    let old = value(
        Format::HeroScript,
        "!!node.define name:n1 ipaddr:10.0.0.1 farmid:3\n!!node.define name:n2 ipaddr:10.0.0.2\n",
    );
    let new = value(
        Format::HeroScript,
        "// reordered, one address changed, one node added\n!!node.define name:n2 ipaddr:10.0.0.22\n!!node.define farmid:3 ipaddr:10.0.0.1 name:n1\n!!node.define name:n3\n",
    );
    let changes = diff(&old, &new);
    let summary: Vec<_> = changes
        .iter()
        .map(|c| (c.path.as_str(), c.old.clone(), c.new.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "node.define[name=n2].ipaddr",
                Some(json!("10.0.0.2")),
                Some(json!("10.0.0.22"))
            ),
            ("node.define[name=n3]", None, Some(json!({"name": "n3"}))),
        ]
    );
}

#[test]
fn toml_key_changes_additions_and_removals() {
    let old = value(
        Format::Toml,
        "[server]\nport = 80\nhost = \"a\"\n[[bin]]\nname = \"x\"\npath = \"a.rs\"\n",
    );
    let new = value(
        Format::Toml,
        "[[bin]]\npath = \"b.rs\"\nname = \"x\"\n[server]\nport = 8080\ntls = true\n",
    );
    let paths: Vec<_> = diff(&old, &new).into_iter().map(|c| c.path).collect();
    assert_eq!(
        paths,
        [
            "bin[name=x].path",
            "server.host",
            "server.port",
            "server.tls"
        ]
    );
}

#[test]
fn markdown_section_and_status_changes() {
    let old = value(
        Format::Markdown,
        "# T\n\n## Status\n\nProposed\n\n## Context\n\nA.\n",
    );
    let new = value(
        Format::Markdown,
        "# T\n\n## Status\n\nAccepted\n\n## Context\n\nA.\n",
    );
    let paths: Vec<_> = diff(&old, &new).into_iter().map(|c| c.path).collect();
    // The level-1 section's text holds its subsections: it changed too.
    assert_eq!(
        paths,
        [
            "sections[heading=T].text",
            "sections[heading=Status].text",
            "status"
        ]
    );
}

#[test]
fn whole_document_type_change_is_one_change_at_the_root() {
    let changes = diff(&json!([1]), &json!({"a": 1}));
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].path, "");
}
