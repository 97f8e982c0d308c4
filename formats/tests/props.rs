//! Property tests: printing and parsing HeroScript round-trips, paths print and parse back,
//! and no parser panics on any input.

use hero_formats::heroscript::{Action, Param, ParamValue, Script, to_string};
use hero_formats::{Format, Path, Query, Span, Step, diff, parse};
use proptest::prelude::*;
use serde_json::Value;

fn name() -> impl Strategy<Value = String> {
    "[a-z0-9_-]{1,8}"
}

fn key() -> impl Strategy<Value = String> {
    "[a-z0-9_./-]{1,8}".prop_filter("not reserved, not a comment", |k| {
        k != "_args" && !k.starts_with("//")
    })
}

/// Any text but carriage returns (a `\r\n` in a value is read as `\n`).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9.:/-]{0,12}",
        "(?s)[^\r]{0,40}",
        "[ \t\n'\"\\\\,\\[\\]a/#!]{0,16}",
    ]
}

fn param_value() -> impl Strategy<Value = ParamValue> {
    prop_oneof![
        text().prop_map(ParamValue::Text),
        prop::collection::vec(text(), 0..4).prop_map(ParamValue::List),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    (
        name(),
        name(),
        prop::collection::vec(text(), 0..3),
        prop::collection::btree_map(key(), param_value(), 0..5),
    )
        .prop_map(|(actor, name, args, params)| Action {
            actor,
            name,
            args,
            params: params
                .into_iter()
                .map(|(key, value)| Param {
                    key,
                    value,
                    span: Span::START,
                })
                .collect(),
            span: Span::START,
        })
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

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        "(?s).{1,8}"
            .prop_filter("not blank", |k| !k.trim().is_empty())
            .prop_map(Step::Key),
        any::<i32>().prop_map(|i| Step::Index(i64::from(i))),
        ("[a-z_]{1,6}", "[^\\]\"'\\\\ ]{0,6}( [^\\]\"'\\\\ ]{1,6})?")
            .prop_map(|(key, value)| Step::Select { key, value }),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-c]{0,3}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("name|[a-c]{1,2}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Inputs made of the characters the grammars care about, to reach deeper than bytes do.
fn grammar_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("!!a.b ".to_string()),
            Just("\n    ".to_string()),
            Just("---\n".to_string()),
            Just("+++\n".to_string()),
            Just("```\n".to_string()),
            Just("# H\n".to_string()),
            Just("Status: x\n".to_string()),
            Just("Superseded by [a](b)\n".to_string()),
            "[a-z]{1,3}:".prop_map(|s| s),
            "[ \t\r\n'\"\\\\,\\[\\]{}=/#!.:*@?&|`()a-z0-9-]{1,6}",
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn heroscript_printed_then_parsed_is_the_same_script(actions in prop::collection::vec(action(), 0..4)) {
        let script = Script { actions };
        let printed = to_string(&script);
        let parsed = Script::parse(&printed)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{printed}")))?;
        prop_assert_eq!(without_spans(parsed), script, "{}", printed);
    }

    #[test]
    fn paths_printed_then_parsed_are_the_same_path(first in "[a-z]{1,4}", rest in prop::collection::vec(step(), 0..5)) {
        let mut steps = vec![Step::Key(first)];
        steps.extend(rest);
        let path = Path { steps };
        let printed = path.to_string();
        let parsed = Path::parse(&printed).map_err(|e| TestCaseError::fail(format!("{e}: {printed}")))?;
        prop_assert_eq!(parsed, path, "{}", printed);
    }

    #[test]
    fn a_value_differs_from_itself_nowhere_and_from_another_somewhere(a in json(), b in json()) {
        prop_assert!(diff(&a, &a).is_empty());
        prop_assert_eq!(diff(&a, &b).is_empty(), a == b);
    }

    #[test]
    fn no_parser_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        for format in Format::ALL {
            let _ = parse(format, &bytes);
        }
    }

    #[test]
    fn no_parser_panics_on_grammar_soup(text in grammar_soup()) {
        for format in Format::ALL {
            if let Err(e) = parse(format, text.as_bytes()) {
                prop_assert!(e.line() >= 1 && e.column() >= 1);
            }
        }
        let _ = Path::parse(&text);
        if let Ok(q) = Query::parse(&text) {
            let _ = q.eval(&serde_json::json!({"a": [{"b": 1}], "c": {"d": "x"}}));
        }
    }

    #[test]
    fn documents_answer_every_path_without_panicking(text in grammar_soup(), path in "[a-z#\\[\\]0-9.=\\- ]{0,12}") {
        for format in Format::ALL {
            if let Ok(doc) = parse(format, text.as_bytes()) {
                let _ = doc.get(&path);
            }
        }
    }
}
