//! HeroScript: every odd case `docs/heroscript.md` decides, one test each.

use hero_formats::heroscript::{ParamValue, Script, to_string};
use hero_formats::{Format, HeroScriptError, ParseError, parse};
use serde_json::{Value, json};

fn value(text: &str) -> Value {
    parse(Format::HeroScript, text.as_bytes())
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .value
}

fn error(text: &str) -> (u32, u32, HeroScriptError) {
    match parse(Format::HeroScript, text.as_bytes()) {
        Err(ParseError::HeroScript { at, kind }) => (at.line, at.column, kind),
        other => panic!("expected a HeroScript error, got {other:?}"),
    }
}

#[test]
fn several_actions_in_file_order_grouped_by_actor_and_action() {
    let v = value("!!a.x n:1\n!!b.y n:2\n!!a.x n:3\n!!a.z\n");
    assert_eq!(
        v,
        json!({"a": {"x": [{"n": "1"}, {"n": "3"}], "z": [{}]}, "b": {"y": [{"n": "2"}]}})
    );
}

#[test]
fn an_action_with_no_params_is_an_empty_object() {
    assert_eq!(value("!!core.reset"), json!({"core": {"reset": [{}]}}));
}

#[test]
fn names_are_case_insensitive_and_kept_lowercase_values_keep_case() {
    assert_eq!(
        value("!!Node.DEFINE Name:Gent-01\n"),
        json!({"node": {"define": [{"name": "Gent-01"}]}})
    );
}

#[test]
fn dashes_and_underscores_in_actor_action_and_key_names() {
    assert_eq!(
        value("!!garage_s3.bucket-create api_port:1 read-only:yes path/to:x a.b:c\n"),
        json!({"garage_s3": {"bucket-create": [{"api_port": "1", "read-only": "yes", "path/to": "x", "a.b": "c"}]}})
    );
}

#[test]
fn empty_values_key_with_nothing_and_empty_quotes() {
    assert_eq!(
        value("!!a.b x: y:'' z:\"\"\n    w:\n    v: // nothing\n"),
        // After `x:` blanks are skipped and the next word is the value (as Hero's own
        // parser reads it): `x` takes `y:''`. Write `x:''` for an empty value before more.
        json!({"a": {"b": [{"x": "y:''", "z": "", "w": "", "v": ""}]}})
    );
    assert_eq!(
        value("!!a.b empty:''\n"),
        json!({"a": {"b": [{"empty": ""}]}})
    );
}

#[test]
fn a_blank_after_the_colon_is_skipped() {
    assert_eq!(
        value("!!a.b name:   test other: 'x y'\n"),
        json!({"a": {"b": [{"name": "test", "other": "x y"}]}})
    );
}

#[test]
fn duplicate_keys_are_an_error_naming_both_places() {
    let (line, column, kind) = error("!!a.b name:x\n    NAME:y\n");
    assert_eq!((line, column), (2, 5));
    assert_eq!(
        kind,
        HeroScriptError::DuplicateKey {
            key: "name".into(),
            first: hero_formats::Span { line: 1, column: 7 }
        }
    );
    // The same key in two actions is fine.
    value("!!a.b name:x\n!!a.b name:x\n");
}

#[test]
fn quotes_inside_values_and_escapes() {
    assert_eq!(
        value(
            r#"!!a.b q:"it's" s:'say "hi"' e:'it\'s' b:'C:\dir\\' t:'a\\b' u:it's w:"\"x\""
"#
        ),
        json!({"a": {"b": [{
            "q": "it's", "s": "say \"hi\"", "e": "it's", "b": "C:\\dir\\", "t": "a\\b",
            "u": "it's", "w": "\"x\""
        }]}})
    );
}

#[test]
fn a_quote_glued_to_more_text_is_an_error() {
    let (line, column, kind) = error("!!a.b name:'x'y\n");
    assert_eq!((line, column), (1, 15));
    assert_eq!(kind, HeroScriptError::AfterValue { found: 'y' });
}

#[test]
fn an_unclosed_quote_names_where_it_opened() {
    let (line, column, kind) = error("!!a.b\n    name:'never\n    closed\n");
    assert_eq!((line, column), (2, 10));
    assert!(matches!(
        kind,
        HeroScriptError::UnclosedQuote { quote: '\'', .. }
    ));
}

#[test]
fn multi_line_values_are_dedented_by_their_closing_quote() {
    let text = "!!node.define\n    description:'\n        # Heading\n\n          indented line\n        last line\n        '\n    next:1\n";
    assert_eq!(
        value(text),
        json!({"node": {"define": [{
            "description": "# Heading\n\n  indented line\nlast line",
            "next": "1"
        }]}})
    );
    // The closing quote less indented than the text: only its width is removed.
    let text = "!!a.b\n    d:'\n        x\n        y\n    '\n";
    assert_eq!(value(text), json!({"a": {"b": [{"d": "    x\n    y"}]}}));
    // Text right after the opening quote stays; the other lines lose their common indent.
    let text = "!!a.b d:'first\n        second\n          third'\n";
    assert_eq!(
        value(text),
        json!({"a": {"b": [{"d": "first\nsecond\n  third"}]}})
    );
    // `//` and `!!` inside quotes are text.
    let text = "!!a.b d:'\n    see https://x.org // not a comment\n    !!not.an_action\n    '\n";
    assert_eq!(
        value(text),
        json!({"a": {"b": [{"d": "see https://x.org // not a comment\n!!not.an_action"}]}})
    );
}

#[test]
fn comments_at_line_end_and_on_their_own_lines() {
    let text = "// header comment\n!!a.b x:1 // trailing\n    // own line\n    # hash line in a block\n    y:2//not-a-comment\n    z:'v' //c\n    url:https://example.org/a//b\n";
    assert_eq!(
        value(text),
        json!({"a": {"b": [{"x": "1", "y": "2//not-a-comment", "z": "v", "url": "https://example.org/a//b"}]}})
    );
}

#[test]
fn lists_comma_separated_bracketed_and_quoted() {
    let text = "!!a.b l:a,b,c s:a, b, c q:'x,y' m:'a b',c e:[] one:[x] br:[ a , 'b c',\n      d, ] holes:a,,b t:a,\n";
    assert_eq!(
        value(text),
        json!({"a": {"b": [{
            "l": ["a", "b", "c"], "s": ["a", "b", "c"], "q": "x,y", "m": ["a b", "c"],
            "t": ["a"], "e": [], "one": ["x"], "br": ["a", "b c", "d"], "holes": ["a", "", "b"]
        }]}})
    );
    let (line, column, kind) = error("!!a.b l:[a b]\n");
    assert_eq!(
        (line, column, kind),
        (1, 12, HeroScriptError::InList { found: 'b' })
    );
    let (line, _, kind) = error("!!a.b l:[a,\n  b\n");
    assert_eq!(line, 1);
    assert!(matches!(kind, HeroScriptError::UnclosedList { .. }));
}

#[test]
fn positional_arguments_go_under_args() {
    assert_eq!(
        value("!!git.clone https://github.com/x/y 'my dir' depth:1\n"),
        // `https://…` reads as key `https`, value `//github.com/x/y`: quote URLs used as
        // positional arguments.
        json!({"git": {"clone": [{"https": "//github.com/x/y", "_args": ["my dir"], "depth": "1"}]}})
    );
    assert_eq!(
        value("!!git.pull main --rebase\n"),
        json!({"git": {"pull": [{"_args": ["main", "--rebase"]}]}})
    );
    let (_, _, kind) = error("!!a.b _args:x\n");
    assert_eq!(kind, HeroScriptError::ReservedKey);
    let (line, column, kind) = error("!!a.b é:x\n");
    assert_eq!(
        (line, column, kind),
        (1, 7, HeroScriptError::BadKeyChar { found: 'é' })
    );
    let (_, _, kind) = error("!!a.b :x\n");
    assert_eq!(kind, HeroScriptError::EmptyKey);
}

#[test]
fn actions_indented_and_their_parameter_lines_deeper() {
    let text = "- item\n  !!a.b x:1\n    y:2\n  z:3 is text at the action's own indentation\n!!a.c\n\tw:4\n";
    assert_eq!(
        value(text),
        json!({"a": {"b": [{"x": "1", "y": "2"}], "c": [{"w": "4"}]}})
    );
}

#[test]
fn blank_lines_inside_an_action_text_between_actions_and_fences() {
    let text = "# Title\n\nSome prose: with a colon.\n\n```heroscript\n!!a.b x:1\n\n    y:2\n```\nmore prose\n    indented prose after a fence is text\n!!a.c\n";
    assert_eq!(
        value(text),
        json!({"a": {"b": [{"x": "1", "y": "2"}], "c": [{}]}})
    );
}

#[test]
fn windows_line_endings_tabs_and_unicode() {
    let text = "!!node.define name:n1\r\n\tdescription:'\r\n\t\tZürich — 東京\r\n\t\t'\r\n\tcity:Zürich\r\n";
    assert_eq!(
        value(text),
        json!({"node": {"define": [{"name": "n1", "description": "Zürich — 東京", "city": "Zürich"}]}})
    );
    // A lone carriage return (old Macs) is a line break too.
    assert_eq!(
        value("!!a.b x:'1\r2'\r    y:2\r"),
        json!({"a": {"b": [{"x": "1\n2", "y": "2"}]}})
    );
    // Columns count characters: the `x` after `'ü'` is column 10, not 11.
    let (line, column, _) = error("!!a.b\n    k:'ü'x\n");
    assert_eq!((line, column), (2, 10));
}

#[test]
fn header_errors() {
    assert_eq!(error("!!!a.b\n").2, HeroScriptError::TooManyBangs);
    assert_eq!(error("!!\n").2, HeroScriptError::MissingActor);
    assert_eq!(
        error("!!node\n").2,
        HeroScriptError::MissingAction {
            actor: "node".into()
        }
    );
    assert_eq!(
        error("!!node.\n").2,
        HeroScriptError::MissingAction {
            actor: "node".into()
        }
    );
    assert_eq!(
        error("!!a.b.c\n"),
        (1, 6, HeroScriptError::BadNameChar { found: '.' })
    );
    assert_eq!(
        error("!!a.b:x\n"),
        (1, 6, HeroScriptError::BadNameChar { found: ':' })
    );
    assert_eq!(
        error("text\n  !!é.b\n"),
        (2, 5, HeroScriptError::BadNameChar { found: 'é' })
    );
    // A single `!` is text.
    assert_eq!(value("!important\n"), json!({}));
}

#[test]
fn an_empty_or_prose_only_text_has_no_actions() {
    assert_eq!(value(""), json!({}));
    assert_eq!(value("\n\n// only comments\n# and a heading\n"), json!({}));
}

#[test]
fn the_printer_writes_what_the_parser_reads() {
    let text = "!!node.define name:n1 ipaddr:'10.0.0.1' roles:a,b one:[x] none:[]\n    description:'\n        two\n          lines\n        '\n    quote:'it\\'s' arg\n";
    let script = Script::parse(text).unwrap();
    let printed = to_string(&script);
    assert_eq!(
        printed,
        "!!node.define arg\n    name:n1\n    ipaddr:10.0.0.1\n    roles:a,b\n    one:[x]\n    none:[]\n    description:'\n        two\n          lines\n        '\n    quote:'it\\'s'\n"
    );
    let again = Script::parse(&printed).unwrap();
    assert_eq!(again.to_value(), script.to_value());
    let description = again.actions[0].param("description").unwrap();
    assert_eq!(description, &ParamValue::Text("two\n  lines".into()));
}

#[test]
fn the_example_of_the_grammar_page_is_the_document_it_shows() {
    let page = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/heroscript.md"),
    )
    .unwrap();
    let block = |fence: &str| {
        let start = page.find(fence).unwrap() + fence.len();
        let end = start + page[start..].find("\n```").unwrap();
        page[start..end].to_string()
    };
    let script = block("```heroscript\n");
    let shown: Value = serde_json::from_str(&block("```json\n")).unwrap();
    assert_eq!(value(&script), shown);
}

/// Found by the fuzz target: `\r\r\n` inside quotes kept a `\r` before the `\n`, and each
/// print-and-parse round removed one more.
#[test]
fn carriage_returns_before_a_line_feed_do_not_erode_on_each_round_trip() {
    let script = Script::parse("!!a.b x:'a\r\r\r\nb' y:\"\r\"\n").unwrap();
    assert_eq!(
        script.actions[0].param("x"),
        Some(&ParamValue::Text("a\n\n\nb".into()))
    );
    let again = Script::parse(&to_string(&script)).unwrap();
    assert_eq!(again.to_value(), script.to_value());
}
