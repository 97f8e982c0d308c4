//! Markdown: front matter, sections and decision-record fields on the odd cases.

use hero_formats::{Format, ParseError, parse};
use serde_json::json;

fn doc(text: &str) -> hero_formats::Document {
    parse(Format::Markdown, text.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn no_front_matter_no_headings_is_an_empty_section_list() {
    assert_eq!(doc("").value, json!({"sections": []}));
    assert_eq!(doc("just text\n").value, json!({"sections": []}));
}

#[test]
fn empty_front_matter_is_an_empty_object() {
    assert_eq!(doc("---\n---\n# T\n").value["front_matter"], json!({}));
    assert_eq!(doc("+++\n+++\n").value["front_matter"], json!({}));
    // `...` also closes YAML front matter.
    assert_eq!(
        doc("---\na: 1\n...\nbody\n").value["front_matter"],
        json!({"a": 1})
    );
}

#[test]
fn a_thematic_break_later_is_not_front_matter() {
    let d = doc("# T\n\n---\n\ntext\n");
    assert!(d.value.get("front_matter").is_none());
}

#[test]
fn unclosed_front_matter_and_bad_yaml_or_toml_say_where() {
    let err = parse(Format::Markdown, b"---\ntitle: x\n# no end\n").unwrap_err();
    assert!(matches!(
        err,
        ParseError::UnclosedFrontMatter { fence: "---", .. }
    ));
    assert_eq!((err.line(), err.column()), (1, 1));
    let err = parse(Format::Markdown, b"---\ntitle: x\nbad: [1, 2\n---\n").unwrap_err();
    assert!(matches!(err, ParseError::Yaml { .. }), "{err}");
    assert!(err.line() >= 3, "{err}");
    let err = parse(Format::Markdown, b"+++\ntitle = \"x\"\nbad = \n+++\n").unwrap_err();
    assert!(matches!(err, ParseError::Toml { .. }), "{err}");
    assert_eq!(err.line(), 3, "{err}");
}

#[test]
fn windows_line_endings_and_a_byte_order_mark() {
    let d =
        doc("\u{feff}---\r\nstatus: accepted\r\n---\r\n# Title\r\n\r\n## Context\r\n\r\nWhy.\r\n");
    assert_eq!(d.value["status"], "accepted");
    assert_eq!(d.get("#Context").unwrap(), "Why.");
    assert_eq!(d.value["title"], "Title");
}

#[test]
fn sections_by_heading_slug_or_any_case() {
    let d = doc(
        "# A\n\n## Decision Outcome\n\nChosen.\n\n### Positive Consequences\n\nGood.\n\n## Links\n\n- x\n",
    );
    assert_eq!(
        d.get("#Decision Outcome").unwrap(),
        "Chosen.\n\n### Positive Consequences\n\nGood."
    );
    assert_eq!(
        d.get("#decision outcome").unwrap(),
        d.get("#decision-outcome").unwrap()
    );
    assert_eq!(d.get("#positive-consequences").unwrap(), "Good.");
    let err = d.get("#Decision Outcom").unwrap_err();
    assert_eq!(
        err.to_string(),
        "`#Decision Outcom` not found; nearest: #Decision Outcome"
    );
}

#[test]
fn fences_of_either_kind_and_length_hide_headings() {
    let d = doc("````md\n```\n# not\n```\n````\n~~~\n# not either\n~~~\n# Yes\n");
    let headings: Vec<_> = d.value["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["heading"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(headings, ["Yes"]);
    // An unclosed fence runs to the end.
    let d = doc("```\n# not\n");
    assert_eq!(d.value["sections"], json!([]));
}

#[test]
fn setext_needs_a_paragraph_and_list_items_are_not_one() {
    let d = doc("Title\n=====\n\n- item\n---\n\nSub\n---\n");
    let headings: Vec<_> = d.value["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["heading"].as_str().unwrap().to_string(),
                s["level"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(headings, [("Title".to_string(), 1), ("Sub".to_string(), 2)]);
}

#[test]
fn status_and_date_precedence_front_matter_then_line_then_section() {
    let d = doc("---\nStatus: Accepted\n---\nStatus: Proposed\n\n## Status\n\nRejected\n");
    assert_eq!(d.get("status").unwrap(), "Accepted");
    let d = doc("Status: Proposed\n\n## Status\n\nRejected\n");
    assert_eq!(d.get("Status").unwrap(), "Proposed");
    let d = doc("# ADR\n\n## Status\n\n**Deprecated**\n\n## Date\n\n2026-01-01\n");
    assert_eq!(d.get("Status").unwrap(), "Deprecated");
    assert_eq!(d.get("Date").unwrap(), "2026-01-01");
}

#[test]
fn supersession_in_status_lines_sections_and_front_matter() {
    let d = doc("Status: Superseded by [ADR-0009](0009-x.md)\n");
    assert_eq!(d.get("superseded_by").unwrap(), &json!(["0009-x.md"]));
    assert_eq!(d.get("Superseded by").unwrap(), &json!(["0009-x.md"]));
    let d = doc("## Status\n\nAccepted\n\nSupersedes ADR 3 and ADR-0004\n");
    assert_eq!(d.get("supersedes").unwrap(), &json!(["0003", "0004"]));
    let d = doc("---\nsuperseded-by: [\"0012-y.md\", 13]\n---\n");
    assert_eq!(
        d.get("superseded_by").unwrap(),
        &json!(["0012-y.md", "0013"])
    );
}

#[test]
fn front_matter_keys_are_reached_directly_and_missing_ones_suggest() {
    let d = doc("---\ntitle: T\ntags: [a, b]\nowner:\n  team: infra\n---\n# Other\n");
    assert_eq!(d.get("title").unwrap(), "T");
    assert_eq!(d.get("tags[1]").unwrap(), "b");
    assert_eq!(d.get("owner.team").unwrap(), "infra");
    assert_eq!(d.get("Owner.team").unwrap(), "infra");
    let err = d.get("tag").unwrap_err();
    assert!(err.to_string().contains("tags"), "{err}");
}
